//! `_include` and `_revinclude` (search.html#include), and what `$everything` includes.

use super::*;

/// One `_include` or `_revinclude` (search.html#include).
#[derive(Debug, Clone)]
pub(super) struct Include {
    /// The type holding the reference.
    pub(super) source_type: String,
    /// The reference parameter; `None` for `*`.
    pub(super) param: Option<String>,
    /// Only targets of this type.
    pub(super) target_type: Option<String>,
    pub(super) iterate: bool,
}

impl Service {
    /// The `_include` and `_revinclude` resources of a page the token may read.
    pub(super) async fn included(
        &self,
        access: &Access,
        plan: &Plan,
        matches: &[SearchRow],
    ) -> Result<Vec<SearchRow>, ServiceError> {
        if plan.everything {
            return self.referenced(access, matches).await;
        }
        if plan.includes.is_empty() && plan.revincludes.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen: HashSet<ResourceKey> = matches.iter().map(key_of).collect();
        let mut frontier: Vec<ResourceKey> = seen.iter().cloned().collect();
        let includes = plan.includes.clone();
        let revincludes = plan.revincludes.clone();
        let mut out: Vec<SearchRow> = Vec::new();
        for round in 0..=MAX_ITERATE {
            if frontier.is_empty() || out.len() >= MAX_INCLUDED {
                break;
            }
            let round_includes: Vec<Include> = includes
                .iter()
                .filter(|i| round == 0 || i.iterate)
                .cloned()
                .collect();
            let round_revincludes: Vec<Include> = revincludes
                .iter()
                .filter(|i| round == 0 || i.iterate)
                .cloned()
                .collect();
            if round_includes.is_empty() && round_revincludes.is_empty() {
                break;
            }
            let from = frontier.clone();
            let rows = self
                .read_tx(move |tx| {
                    let mut keys = Vec::new();
                    for inc in &round_includes {
                        let sources: Vec<ResourceKey> = from
                            .iter()
                            .filter(|k| k.res_type == inc.source_type)
                            .cloned()
                            .collect();
                        let params: Vec<String> = inc.param.iter().cloned().collect();
                        let targets: Vec<String> = inc.target_type.iter().cloned().collect();
                        keys.extend(tx.reference_targets(&sources, &params, &targets)?);
                    }
                    for inc in &round_revincludes {
                        let targets: Vec<ResourceKey> = from
                            .iter()
                            .filter(|k| inc.target_type.as_ref().is_none_or(|t| *t == k.res_type))
                            .cloned()
                            .collect();
                        keys.extend(tx.referrers(
                            &targets,
                            &inc.source_type,
                            inc.param.as_deref(),
                        )?);
                    }
                    keys.sort_by(|a, b| (&a.res_type, &a.res_id).cmp(&(&b.res_type, &b.res_id)));
                    keys.dedup();
                    keys.truncate(MAX_INCLUDED);
                    tx.current_many(&keys)
                })
                .await?;
            frontier.clear();
            for row in rows {
                let key = key_of(&row);
                // An included resource is shown only when the token may read it.
                if seen.insert(key.clone()) && readable(access, &row) {
                    frontier.push(key);
                    out.push(row);
                }
            }
        }
        out.sort_by(|a, b| (&a.res_type, &a.res_id).cmp(&(&b.res_type, &b.res_id)));
        Ok(out)
    }

    /// `$everything`'s included resources: what the page refers to outside any Patient
    /// compartment (one level; a resource of a compartment type is never included, so
    /// nothing of another person's record can come in by reference).
    pub(super) async fn referenced(
        &self,
        access: &Access,
        matches: &[SearchRow],
    ) -> Result<Vec<SearchRow>, ServiceError> {
        static OUTSIDE: OnceLock<Vec<String>> = OnceLock::new();
        let outside: &'static [String] = OUTSIDE.get_or_init(|| {
            fhir_format::resource_types()
                .iter()
                .filter(|t| {
                    **t != "Patient" && fhir_profiles::patient_compartment_params(t).is_none()
                })
                .map(|t| (*t).to_owned())
                .collect()
        });
        let sources: Vec<ResourceKey> = matches.iter().map(key_of).collect();
        let rows = self
            .read_tx(move |tx| {
                let mut keys = tx.reference_targets(&sources, &[], outside)?;
                keys.truncate(MAX_INCLUDED);
                tx.current_many(&keys)
            })
            .await?;
        let mut out: Vec<SearchRow> = rows.into_iter().filter(|r| readable(access, r)).collect();
        out.sort_by(|a, b| (&a.res_type, &a.res_id).cmp(&(&b.res_type, &b.res_id)));
        Ok(out)
    }
}

/// `Type:param[:target]` or `*` (search.html#include).
pub(super) fn parse_include(
    parameters: &Registry,
    name: &str,
    value: &str,
    iterate: bool,
) -> Result<Include, ServiceError> {
    let bad = || {
        ServiceError::at(
            ErrorCode::SearchValue,
            name.to_owned(),
            format!("'{value}' is not [type]:[reference parameter][:target type] or *."),
        )
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (source_type, param, target_type) = match parts.as_slice() {
        [t, p] => (*t, *p, None),
        [t, p, target] => (*t, *p, Some(*target)),
        _ => return Err(bad()),
    };
    if !fhir_format::is_resource_type(source_type) {
        return Err(bad());
    }
    if let Some(t) = target_type {
        if !fhir_format::is_resource_type(t) {
            return Err(bad());
        }
    }
    let param = if param == "*" {
        None
    } else {
        let sp = parameters
            .get(source_type, param)
            .filter(|sp| sp.kind == "reference")
            .ok_or_else(|| {
                ServiceError::at(
                    ErrorCode::SearchParameter,
                    name.to_owned(),
                    format!("'{param}' is not a reference parameter of {source_type}."),
                )
            })?;
        Some(sp.code.clone())
    };
    Ok(Include {
        source_type: source_type.to_owned(),
        param,
        target_type: target_type.map(str::to_owned),
        iterate,
    })
}
