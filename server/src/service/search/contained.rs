//! Searches of contained resources (search.html#contained).

use super::*;

/// A search of contained resources (search.html#contained): the criteria apply to the
/// contained resources of `res_type`; the matches are their containers, of any type, or
/// (`_containedType=contained`, `alone`) the contained resources themselves. With `both`,
/// the stored resources of `res_type` that meet the criteria match too.
#[derive(Debug, Clone)]
pub(super) struct ContainedSearch {
    pub(super) res_type: String,
    pub(super) both: bool,
    pub(super) alone: bool,
    /// The criteria as they apply to a contained resource (`_id` is its local id).
    pub(super) criteria: Filter,
    /// The criteria as they apply to a stored resource.
    pub(super) own: Filter,
}

/// Turns `plan` into a search of contained resources (search.html#contained): its
/// criteria apply to the contained resources of its type, its matches are their
/// containers (any type the token may search), and with `both` the stored resources of
/// the type that meet them.
pub(super) fn contain(
    plan: &mut Plan,
    scope: &SearchScope,
    both: bool,
    alone: bool,
) -> Result<(), ServiceError> {
    let SearchScope::Type(res_type) = scope else {
        return Err(ServiceError::at(
            ErrorCode::SearchCombination,
            "_contained",
            "_contained is supported in a search of one type ([base]/[type]?...).",
        ));
    };
    if !plan.sort.is_empty() {
        return Err(ServiceError::at(
            ErrorCode::SearchCombination,
            "_sort",
            "_sort is not supported together with _contained=true or both.",
        ));
    }
    if !plan.includes.is_empty() || !plan.revincludes.is_empty() {
        return Err(ServiceError::at(
            ErrorCode::SearchCombination,
            "_include",
            "_include and _revinclude are not supported together with _contained=true or both.",
        ));
    }
    let own = Filter::And(std::mem::take(&mut plan.filters));
    let criteria = local_ids(own.clone());
    let contains = Filter::Contains {
        types: vec![res_type.clone()],
        filter: Box::new(criteria.clone()),
    };
    plan.filters = vec![if both {
        Filter::Or(vec![
            Filter::And(vec![Filter::Types(vec![res_type.clone()]), own.clone()]),
            contains,
        ])
    } else {
        contains
    }];
    plan.types = fhir_format::resource_types()
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    plan.every_type = true;
    plan.contained = Some(ContainedSearch {
        res_type: res_type.clone(),
        both,
        alone,
        criteria,
        own,
    });
    Ok(())
}

/// `filter` with `_id` read as the local id of a contained resource (its `_id` token row).
pub(super) fn local_ids(filter: Filter) -> Filter {
    match filter {
        Filter::And(parts) => Filter::And(parts.into_iter().map(local_ids).collect()),
        Filter::Or(parts) => Filter::Or(parts.into_iter().map(local_ids).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(local_ids(*inner))),
        Filter::Id(ids) => Filter::Or(
            ids.into_iter()
                .map(|id| Filter::Index {
                    table: Table::Token,
                    param: "_id".to_owned(),
                    cond: Cond::Token {
                        system: None,
                        code: Some(id),
                    },
                })
                .collect(),
        ),
        other => other,
    }
}

impl Service {
    /// The entries of a page of containers when the contained resources are returned alone
    /// (`_containedType=contained`): for each container, in order, itself when it is a
    /// match of its own (`both`), then its contained resources that meet the criteria,
    /// each with the container's URL and `#` its local id as fullUrl.
    pub(super) async fn contained_alone(
        &self,
        c: &ContainedSearch,
        matches: &[SearchRow],
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let containers: Vec<ResourceKey> = matches.iter().map(key_of).collect();
        let own_ids: Vec<String> = matches
            .iter()
            .filter(|m| c.both && m.res_type == c.res_type)
            .map(|m| m.res_id.clone())
            .collect();
        let types = vec![c.res_type.clone()];
        let (criteria, own) = (c.criteria.clone(), c.own.clone());
        let (keys, own_matches) = self
            .read_tx(move |tx| {
                let keys = tx.contained_matching(&containers, &types, &criteria)?;
                let own_matches: HashSet<String> = if own_ids.is_empty() {
                    HashSet::new()
                } else {
                    let limit = own_ids.len() as i64;
                    let query = SearchQuery {
                        types,
                        filter: Filter::And(vec![Filter::Id(own_ids), own]),
                        sort: Vec::new(),
                        position: None,
                        limit,
                    };
                    tx.search(&query)?.into_iter().map(|r| r.res_id).collect()
                };
                Ok((keys, own_matches))
            })
            .await?;
        let base = self.base_url();
        let mut out = Vec::new();
        for m in matches {
            let url = format!("{base}/{}/{}", m.res_type, m.res_id);
            if m.res_type == c.res_type && own_matches.contains(&m.res_id) {
                out.push((url.clone(), m.content.clone()));
            }
            let locals: HashSet<&str> = keys
                .iter()
                .filter_map(|k| index::split_contained_key(&k.res_id))
                .filter(|(t, id, _)| *t == m.res_type && *id == m.res_id)
                .map(|(_, _, local)| local)
                .collect();
            if locals.is_empty() {
                continue;
            }
            let Ok(json) = serde_json::from_str::<Value>(&m.content) else {
                continue;
            };
            for resource in json
                .get("contained")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let local = resource.get("id").and_then(Value::as_str).unwrap_or("");
                if locals.contains(local) {
                    out.push((format!("{url}#{local}"), resource.to_string()));
                }
            }
        }
        Ok(out)
    }
}
