//! FHIR search — https://hl7.org/fhir/R4/search.html
//!
//! Type-level (`GET [base]/[type]?...`, `POST [base]/[type]/_search`), system-level
//! (`[base]?_type=...`) and Patient compartment search (`[base]/Patient/[id]/[type]`),
//! answered with a `searchset` Bundle (search.html#return): matches with
//! `search.mode = match`, `_include`/`_revinclude` resources with `include`.
//!
//! - Paging (search.html#paging, http.html#paging): keyset pages. `next` and `previous`
//!   links carry an opaque `_cursor` (the sort keys, type and id of the page's edge row),
//!   so a page never skips or repeats a resource that was not itself changed between
//!   pages, and a deep page costs what the first does.
//! - The self link lists only the parameters that were applied (search.html#errors).
//! - `_total` (search.html#total): `accurate` counts; `estimate` is PostgreSQL's planner
//!   estimate (no count; SQLite counts); by default a total is given when the first page
//!   holds every match (cheap), and left out otherwise. When the first page holds every
//!   match, its size is the total whatever `_total` asks.
//! - Access: the search is narrowed in the query by `Access::search_filter` (a `patient/`
//!   token's compartment, granular scopes), and every returned resource is checked again
//!   with `Access::permits`.

pub mod named;
pub mod params;

use crate::service::ErrorCode;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use base64::Engine;
use serde_json::{json, Value};

use super::bundle::BundleWriter;
use super::index;
use super::search_parameters::{Param, Registry};
use super::shape::Shape;
use super::{
    access, ensure_id, ensure_type, parse_count, query_encode, Access, Service, ServiceError,
};
use crate::auth::Permission;
use crate::store::{
    Cond, Filter, KeyKind, KeyValue, Position, ResourceKey, SearchQuery, SearchRow, SortKey, Table,
};
use params::ParseContext;

/// Default and largest page sizes.
const DEFAULT_COUNT: i64 = 20;
const MAX_COUNT: i64 = 1000;
/// How many rounds `:iterate` includes follow.
const MAX_ITERATE: usize = 3;
/// Most resources a page may include.
const MAX_INCLUDED: usize = 1000;

/// Where a search looks.
#[derive(Debug, Clone)]
pub enum SearchScope {
    /// `[base]?_type=...` (every type when `_type` is absent).
    System,
    /// `[base]/[type]`
    Type(String),
    /// `[base]/Patient/[id]/[type]` (compartment.html#search).
    PatientCompartment { patient: String, res_type: String },
    /// `[base]/Patient/[id]/$everything`, or `[base]/Patient/$everything` for every
    /// patient (patient-operation-everything.html).
    Everything { patient: Option<String> },
}

/// A search as the client sent it.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub scope: SearchScope,
    /// The parameters in order, from the query string or the form body of `_search`.
    pub params: Vec<(String, String)>,
    /// `Prefer: handling=strict`.
    pub strict: bool,
}

/// `_total` (search.html#total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Total {
    Default,
    None,
    Estimate,
    Accurate,
}

/// One `_include` or `_revinclude` (search.html#include).
#[derive(Debug, Clone)]
struct Include {
    /// The type holding the reference.
    source_type: String,
    /// The reference parameter; `None` for `*`.
    param: Option<String>,
    /// Only targets of this type.
    target_type: Option<String>,
    iterate: bool,
}

/// A parsed search.
struct Plan {
    types: Vec<String>,
    /// A system search without `_type`.
    every_type: bool,
    path: String,
    filters: Vec<Filter>,
    sort: Vec<SortKey>,
    count: i64,
    total: Total,
    summary_count: bool,
    shape: Shape,
    includes: Vec<Include>,
    revincludes: Vec<Include>,
    position: Option<Position>,
    /// What the self link shows.
    applied: Vec<(String, String)>,
    /// `$everything`: the page's references to resources outside any Patient compartment
    /// (Practitioner, Organization, Location, Medication...) are included.
    everything: bool,
    /// `_contained=true|both`.
    contained: Option<ContainedSearch>,
}

/// A search of contained resources (search.html#contained): the criteria apply to the
/// contained resources of `res_type`; the matches are their containers, of any type, or
/// (`_containedType=contained`, `alone`) the contained resources themselves. With `both`,
/// the stored resources of `res_type` that meet the criteria match too.
#[derive(Debug, Clone)]
struct ContainedSearch {
    res_type: String,
    both: bool,
    alone: bool,
    /// The criteria as they apply to a contained resource (`_id` is its local id).
    criteria: Filter,
    /// The criteria as they apply to a stored resource.
    own: Filter,
}

impl Service {
    /// A `searchset` Bundle (JSON).
    ///
    /// # Errors
    /// 400 for malformed parameters, 403 without a search scope, 404 for an unknown type,
    /// store failures.
    pub async fn search(
        &self,
        access: &Access,
        request: SearchRequest,
    ) -> Result<String, ServiceError> {
        let mut plan = self.plan(&request)?;
        if let Some(c) = &mut plan.contained {
            access.require(Permission::Search, &c.res_type)?;
            c.criteria = access.confine_joins(c.criteria.clone());
            c.own = access.confine_joins(c.own.clone());
        }
        // Access: the scope letter `s` on each type, and what the token may see ANDed in.
        // A system search without `_type` looks in the types the token may search.
        if plan.every_type {
            plan.types
                .retain(|t| access.require(Permission::Search, t).is_ok());
            if plan.types.is_empty() {
                access.require_any(Permission::Search)?;
                return Err(ServiceError::Forbidden {
                    scope: "*.s".to_owned(),
                });
            }
        }
        plan.filters = std::mem::take(&mut plan.filters)
            .into_iter()
            .map(|f| access.confine_joins(f))
            .collect();
        let mut narrowed = Vec::new();
        let mut restricted = false;
        for t in &plan.types {
            access.require(Permission::Search, t)?;
            match access.search_filter(t) {
                Some(f) => {
                    restricted = true;
                    narrowed.push(Filter::And(vec![Filter::Types(vec![t.clone()]), f]));
                }
                None => narrowed.push(Filter::Types(vec![t.clone()])),
            }
        }
        if restricted {
            plan.filters.push(merged(narrowed));
        }
        let filter = Filter::And(plan.filters.clone());
        let query = SearchQuery {
            types: plan.types.clone(),
            filter: filter.clone(),
            sort: plan.sort.clone(),
            position: plan.position.clone(),
            limit: plan.count + 1,
        };
        let count_all =
            plan.summary_count || matches!(plan.total, Total::Accurate | Total::Estimate);
        let fetch_page = !plan.summary_count && plan.count > 0;
        let estimate = plan.total == Total::Estimate && !plan.summary_count;
        let types = plan.types.clone();
        let (rows, total) = self
            .read_tx(move |tx| {
                let rows = if fetch_page {
                    tx.search(&query)?
                } else {
                    Vec::new()
                };
                let total = if estimate {
                    Some(tx.search_estimate(&types, &filter)?)
                } else if count_all {
                    Some(tx.search_count(&types, &filter)?)
                } else {
                    None
                };
                Ok((rows, total))
            })
            .await?;

        let has_more = rows.len() as i64 > plan.count;
        let backwards = plan.position.as_ref().is_some_and(|p| p.backwards);
        let mut rows = rows;
        if has_more {
            if backwards {
                rows.remove(0);
            } else {
                rows.truncate(plan.count as usize);
            }
        }
        let matches: Vec<SearchRow> = rows.into_iter().filter(|r| readable(access, r)).collect();
        let base = self.base_url();
        // (fullUrl, resource, search mode) of each entry.
        let mut entries: Vec<(String, Cow<'_, str>, &str)> = match &plan.contained {
            Some(c) if c.alone => self
                .contained_alone(c, &matches)
                .await?
                .into_iter()
                .map(|(url, content)| (url, Cow::Owned(content), "match"))
                .collect(),
            _ => matches
                .iter()
                .map(|m| {
                    let url = format!("{base}/{}/{}", m.res_type, m.res_id);
                    (url, Cow::Borrowed(m.content.as_str()), "match")
                })
                .collect(),
        };
        let alone = plan.contained.as_ref().is_some_and(|c| c.alone);
        // When the first page holds every match, its size is the total (an estimate then
        // gives way to it). A total of contained resources alone is known only then.
        let complete = fetch_page && plan.position.is_none() && !has_more;
        let total = match plan.total {
            Total::Default | Total::Estimate if complete => Some(entries.len() as i64),
            _ if alone => None,
            _ => total,
        };
        if !matches.is_empty() {
            for row in self.included(access, &plan, &matches).await? {
                let url = format!("{base}/{}/{}", row.res_type, row.res_id);
                entries.push((url, Cow::Owned(row.content), "include"));
            }
        }

        // Links (search.html#paging).
        let link = |position: Option<&Position>| {
            let mut q: Vec<String> = plan
                .applied
                .iter()
                .map(|(k, v)| format!("{}={}", query_encode(k), query_encode(v)))
                .collect();
            if let Some(p) = position {
                q.push(format!("_cursor={}", encode_cursor(p)));
            }
            format!("{base}/{}?{}", plan.path, q.join("&"))
        };
        let mut links = vec![("self", link(plan.position.as_ref()))];
        let more_after = if backwards { true } else { has_more };
        let more_before = if backwards {
            has_more
        } else {
            plan.position.is_some()
        };
        if let (true, Some(last)) = (more_after, matches.last()) {
            links.push(("next", link(Some(&edge(last, &plan.sort, false)))));
        }
        if let (true, Some(first)) = (more_before, matches.first()) {
            links.push(("previous", link(Some(&edge(first, &plan.sort, true)))));
        }

        let total = if plan.total == Total::None {
            None
        } else {
            total
        };
        let mut bundle = BundleWriter::new("searchset", total, &links);
        for (full_url, content, mode) in entries {
            let content = shaped(&plan.shape, &content);
            bundle.entry(
                Some(&full_url),
                Some(&content),
                &[("search", json!({ "mode": mode }))],
            );
        }
        Ok(bundle.finish())
    }

    fn plan(&self, request: &SearchRequest) -> Result<Plan, ServiceError> {
        let mut every_type = false;
        let (mut types, path, compartment) = match &request.scope {
            SearchScope::Type(t) => {
                ensure_type(t)?;
                (vec![t.clone()], t.clone(), None)
            }
            SearchScope::PatientCompartment { patient, res_type } => {
                ensure_id(patient)?;
                ensure_type(res_type)?;
                if fhir_profiles::patient_compartment_params(res_type).is_none()
                    && res_type != "Patient"
                {
                    return Err(ServiceError::not_found(format!(
                        "{res_type} is not in the Patient compartment."
                    )));
                }
                (
                    vec![res_type.clone()],
                    format!("Patient/{patient}/{res_type}"),
                    Some(access::compartment_filter(res_type, patient)),
                )
            }
            SearchScope::System => (Vec::new(), String::new(), None),
            SearchScope::Everything { patient } => {
                let types = everything_types(&request.params)?;
                let path = match patient {
                    Some(p) => {
                        ensure_id(p)?;
                        format!("Patient/{p}/$everything")
                    }
                    None => "Patient/$everything".to_owned(),
                };
                let compartment = patient.as_ref().map(|p| access::compartment_of(&types, p));
                every_type = true;
                (types, path, compartment)
            }
        };
        let everything = matches!(request.scope, SearchScope::Everything { .. });
        if matches!(request.scope, SearchScope::System) {
            for (name, value) in &request.params {
                if name == "_type" {
                    for t in value.split(',').map(str::trim) {
                        if !fhir_format::is_resource_type(t) {
                            return Err(ServiceError::at(
                                ErrorCode::SearchParameter,
                                "_type",
                                format!("'{t}' is not a FHIR R4 resource type."),
                            ));
                        }
                        if !types.iter().any(|x| x == t) {
                            types.push(t.to_owned());
                        }
                    }
                }
            }
            if types.is_empty() {
                every_type = true;
                types = fhir_format::resource_types()
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect();
            }
        }
        let ctx = ParseContext {
            strict: request.strict,
            ..self.parse_context()
        };
        let mut plan = Plan {
            types: types.clone(),
            every_type,
            path,
            filters: compartment.into_iter().collect(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            total: Total::Default,
            summary_count: false,
            shape: Shape::Full,
            includes: Vec::new(),
            revincludes: Vec::new(),
            position: None,
            applied: Vec::new(),
            everything,
            contained: None,
        };
        // `_contained` (true or both) and `_containedType` (alone).
        let mut contained: Option<bool> = None;
        let mut alone = false;
        let mut cursor = None;
        let mut shape_params = Vec::new();
        for (name, value) in &request.params {
            let keep = |plan: &mut Plan| plan.applied.push((name.clone(), value.clone()));
            if everything {
                // The parameters of patient-operation-everything.html; `start` and `end`
                // (care dates) are not supported, so they are unknown parameters.
                match name.as_str() {
                    "_format" | "_pretty" | "_count" | "_cursor" | "_summary" | "_elements" => {}
                    "_type" => {
                        keep(&mut plan);
                        continue;
                    }
                    "_since" => {
                        let since =
                            params::filter(&ctx, &types, "_lastUpdated", &format!("ge{value}"))
                                .ok()
                                .flatten()
                                .filter(|_| value.len() > 10 && value.contains('T'))
                                .ok_or_else(|| {
                                    ServiceError::at(
                                        ErrorCode::SearchValue,
                                        "_since",
                                        "_since is an instant such as 2021-07-01T00:00:00+07:00.",
                                    )
                                })?;
                        plan.filters.push(since);
                        keep(&mut plan);
                        continue;
                    }
                    // As in system and compartment searches, refused whatever the
                    // handling: ignoring it would answer something else than was asked.
                    "_contained" | "_containedType" => {
                        return Err(ServiceError::at(
                            ErrorCode::SearchCombination,
                            name.clone(),
                            "_contained is supported in a search of one type ([base]/[type]?...), not in $everything.",
                        ))
                    }
                    _ if request.strict => {
                        return Err(ServiceError::at(
                            ErrorCode::SearchParameter,
                            name.clone(),
                            format!("'{name}' is not a parameter of Patient/$everything."),
                        ))
                    }
                    _ => continue,
                }
            }
            match name.as_str() {
                "_format" | "_pretty" => {}
                "_type" if matches!(request.scope, SearchScope::System) => keep(&mut plan),
                "_count" => plan.count = parse_count(value, MAX_COUNT)?,
                "_sort" => {
                    plan.sort = params::sort(ctx.parameters, &types, value)?;
                    keep(&mut plan);
                }
                "_total" => {
                    plan.total = match value.as_str() {
                        "none" => Total::None,
                        "estimate" => Total::Estimate,
                        "accurate" => Total::Accurate,
                        _ => {
                            return Err(ServiceError::at(
                                ErrorCode::SearchValue,
                                "_total",
                                "_total takes none, estimate or accurate.",
                            ))
                        }
                    };
                    keep(&mut plan);
                }
                "_summary" if value == "count" => {
                    plan.summary_count = true;
                    keep(&mut plan);
                }
                "_summary" | "_elements" => {
                    shape_params.push((name.as_str(), value.as_str()));
                    keep(&mut plan);
                }
                "_contained" => {
                    contained = match value.as_str() {
                        "false" => None,
                        "true" => Some(false),
                        "both" => Some(true),
                        _ => {
                            return Err(ServiceError::at(
                                ErrorCode::SearchValue,
                                "_contained",
                                "_contained takes false, true or both.",
                            ))
                        }
                    };
                    keep(&mut plan);
                }
                "_containedType" => {
                    alone = match value.as_str() {
                        "container" => false,
                        "contained" => true,
                        _ => {
                            return Err(ServiceError::at(
                                ErrorCode::SearchValue,
                                "_containedType",
                                "_containedType takes container or contained.",
                            ))
                        }
                    };
                    keep(&mut plan);
                }
                "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
                    let reverse = name.starts_with("_revinclude");
                    let include =
                        parse_include(ctx.parameters, name, value, name.ends_with(":iterate"))?;
                    if !reverse && !include.iterate && !types.contains(&include.source_type) {
                        return Err(ServiceError::at(
                            ErrorCode::SearchParameter,
                            name.clone(),
                            format!("{} is not a type searched here.", include.source_type),
                        ));
                    }
                    if reverse {
                        plan.revincludes.push(include);
                    } else {
                        plan.includes.push(include);
                    }
                    keep(&mut plan);
                }
                "_query" => {
                    plan.filters.extend(named::criteria(&ctx, &types, value)?);
                    keep(&mut plan);
                }
                "_cursor" => cursor = Some(value.clone()),
                _ => {
                    if let Some(f) = params::filter(&ctx, &types, name, value)? {
                        plan.filters.push(f);
                        keep(&mut plan);
                    }
                }
            }
        }
        plan.applied
            .push(("_count".to_owned(), plan.count.to_string()));
        plan.shape = Shape::from_params(shape_params)?;
        if let Some(both) = contained {
            contain(&mut plan, &request.scope, both, alone)?;
        }
        if let Some(cursor) = cursor {
            plan.position = Some(decode_cursor(&cursor, &plan.sort)?);
        }
        Ok(plan)
    }

    /// The `_include` and `_revinclude` resources of a page the token may read.
    async fn included(
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
}

/// Turns `plan` into a search of contained resources (search.html#contained): its
/// criteria apply to the contained resources of its type, its matches are their
/// containers (any type the token may search), and with `both` the stored resources of
/// the type that meet them.
fn contain(
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
fn local_ids(filter: Filter) -> Filter {
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
    async fn contained_alone(
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

    /// `$everything`'s included resources: what the page refers to outside any Patient
    /// compartment (one level; a resource of a compartment type is never included, so
    /// nothing of another person's record can come in by reference).
    async fn referenced(
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

/// The types `$everything` returns: the Patient and every type of its compartment
/// (compartmentdefinition-patient.html), narrowed by `_type`. AuditEvents (the record of
/// who looked) come only when `_type` names them.
fn everything_types(params: &[(String, String)]) -> Result<Vec<String>, ServiceError> {
    let in_compartment = |t: &str| {
        t == "Patient"
            || fhir_profiles::patient_compartment_params(t).is_some_and(|p| !p.is_empty())
    };
    let mut wanted: Vec<String> = Vec::new();
    for (name, value) in params.iter().filter(|(n, _)| n == "_type") {
        for t in value.split(',').map(str::trim) {
            if !fhir_format::is_resource_type(t) {
                return Err(ServiceError::at(
                    ErrorCode::SearchParameter,
                    name.clone(),
                    format!("'{t}' is not a FHIR R4 resource type."),
                ));
            }
            if !in_compartment(t) {
                return Err(ServiceError::at(
                    ErrorCode::SearchParameter,
                    name.clone(),
                    format!(
                        "{t} is not in the Patient compartment; $everything does not return it."
                    ),
                ));
            }
            if !wanted.iter().any(|w| w == t) {
                wanted.push(t.to_owned());
            }
        }
    }
    if wanted.is_empty() {
        wanted = fhir_format::resource_types()
            .iter()
            .filter(|t| **t != "AuditEvent" && in_compartment(t))
            .map(|t| (*t).to_owned())
            .collect();
    }
    Ok(wanted)
}

/// The search parameters of `res_type` this server searches: every standard parameter of
/// a searchable type whose expression it evaluates, the composites (`params::composite_components`,
/// `index::grouped_composites`), `_id` and `_lastUpdated` (derived once per process), and
/// the custom parameters of the store (docs/SEARCH.md, "Custom search parameters").
pub fn supported_parameters(parameters: &Registry, res_type: &str) -> Vec<Param> {
    let mut supported: Vec<Param> = standard_parameters(res_type)
        .iter()
        .map(|sp| Param::Standard(sp))
        .collect();
    supported.extend(parameters.custom_for(res_type));
    supported
}

/// The parameter `code` of `res_type` this server searches (one of
/// [`supported_parameters`], found without collecting them).
pub fn supported_parameter(parameters: &Registry, res_type: &str, code: &str) -> Option<Param> {
    standard_parameters(res_type)
        .iter()
        .find(|sp| sp.code == code)
        .map(|sp| Param::Standard(sp))
        .or_else(|| {
            parameters
                .custom_for(res_type)
                .into_iter()
                .find(|sp| sp.code == code)
        })
}

/// The standard part of [`supported_parameters`].
fn standard_parameters(res_type: &str) -> &'static [&'static fhir_profiles::SearchParameter] {
    static SUPPORTED: OnceLock<HashMap<String, Vec<&'static fhir_profiles::SearchParameter>>> =
        OnceLock::new();
    let all = SUPPORTED.get_or_init(|| {
        fhir_format::resource_types()
            .iter()
            .map(|t| {
                let indexed = super::index::indexed_parameters(t);
                let supported = fhir_profiles::search_parameters_for(t)
                    .iter()
                    .copied()
                    .filter(|sp| {
                        // `_text`, `_content` and Location `near` are indexed by
                        // `index::rows` itself.
                        matches!(
                            sp.code.as_str(),
                            "_id" | "_lastUpdated" | "_text" | "_content"
                        ) || (*t == "Location" && sp.code == "near")
                            || (sp.code == "_query" && named::named_queries(t).next().is_some())
                            || indexed.iter().any(|(i, _)| std::ptr::eq(*i, *sp))
                            || params::composite_components(t, sp).is_some()
                            || super::index::grouped_composites(t)
                                .iter()
                                .any(|g| std::ptr::eq(g.sp, *sp))
                    })
                    .collect();
                ((*t).to_owned(), supported)
            })
            .collect()
    });
    all.get(res_type).map(Vec::as_slice).unwrap_or_default()
}

/// The per-type narrowing of a restricted token as one filter. When every type is
/// narrowed to the same compartment (a `patient/` token), one compartment filter over all
/// the types: a single index lookup instead of one per type.
fn merged(narrowed: Vec<Filter>) -> Filter {
    fn compartment(f: &Filter) -> Option<&Filter> {
        match f {
            Filter::And(parts) | Filter::Or(parts) if parts.len() == 1 => compartment(&parts[0]),
            Filter::Compartment { .. } => Some(f),
            _ => None,
        }
    }
    let mut target: Option<(String, String)> = None;
    let mut members = Vec::new();
    let mut itself = false;
    for f in &narrowed {
        let Filter::And(parts) = f else {
            return Filter::Or(narrowed);
        };
        let Some(Filter::Compartment {
            target_type,
            target_id,
            members: m,
            itself: i,
        }) = parts.get(1).and_then(compartment)
        else {
            return Filter::Or(narrowed);
        };
        let this = (target_type.clone(), target_id.clone());
        if parts.len() != 2 || target.as_ref().is_some_and(|t| *t != this) {
            return Filter::Or(narrowed);
        }
        target = Some(this);
        members.extend(m.iter().cloned());
        itself |= *i;
    }
    match target {
        Some((target_type, target_id)) => Filter::Compartment {
            target_type,
            target_id,
            members,
            itself,
        },
        None => Filter::Or(narrowed),
    }
}

fn key_of(row: &SearchRow) -> ResourceKey {
    ResourceKey {
        res_type: row.res_type.clone(),
        res_id: row.res_id.clone(),
    }
}

/// `Type:param[:target]` or `*` (search.html#include).
fn parse_include(
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

/// The cursor of a page edge: after the last row, or (paging back) before the first.
fn edge(row: &SearchRow, sort: &[SortKey], backwards: bool) -> Position {
    Position {
        keys: row.keys(sort),
        res_type: row.res_type.clone(),
        res_id: row.res_id.clone(),
        backwards,
    }
}

fn encode_cursor(position: &Position) -> String {
    let keys: Vec<Value> = position
        .keys
        .iter()
        .map(|k| match k {
            KeyValue::Text(s) => json!(s),
            KeyValue::Int(i) => json!(i.to_string()),
            KeyValue::Float(f) => json!(f),
        })
        .collect();
    let value =
        json!({"k": keys, "t": position.res_type, "i": position.res_id, "b": position.backwards});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_cursor(cursor: &str, sort: &[SortKey]) -> Result<Position, ServiceError> {
    let bad = || {
        ServiceError::at(
            ErrorCode::Cursor,
            "_cursor",
            "The paging cursor is not valid for this search.",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let keys = value.get("k").and_then(Value::as_array).ok_or_else(bad)?;
    if keys.len() != sort.len() {
        return Err(bad());
    }
    let keys = keys
        .iter()
        .zip(sort)
        .map(|(k, s)| match s.kind() {
            KeyKind::Text => k.as_str().map(|s| KeyValue::Text(s.to_owned())),
            KeyKind::Int => k.as_str().and_then(|s| s.parse().ok()).map(KeyValue::Int),
            KeyKind::Float => k.as_f64().map(KeyValue::Float),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(Position {
        keys,
        res_type: value
            .get("t")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned(),
        res_id: value
            .get("i")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned(),
        backwards: value.get("b").and_then(Value::as_bool).ok_or_else(bad)?,
    })
}

/// The entry's resource text: stored as is, or shaped by `_summary` / `_elements`.
fn shaped<'a>(shape: &Shape, content: &'a str) -> Cow<'a, str> {
    if shape.is_full() {
        return Cow::Borrowed(content);
    }
    match serde_json::from_str::<Value>(content) {
        Ok(mut json) => {
            shape.apply(&mut json);
            Cow::Owned(json.to_string())
        }
        Err(_) => Cow::Borrowed(content),
    }
}

/// Whether the request may read a found resource (`Access::permits`); the stored JSON is
/// parsed only when a token has to be checked against it.
fn readable(access: &Access, row: &SearchRow) -> bool {
    match access {
        Access::Open => true,
        Access::Token(_) => serde_json::from_str::<Value>(&row.content)
            .is_ok_and(|json| access.permits(Permission::Read, &json)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue "Search", done when: every standard search parameter of every R4 resource
    /// type is searchable. `_query` is a parameter of the types with named queries.
    #[test]
    fn every_standard_parameter_of_every_type_is_supported() {
        let mut missing = Vec::new();
        let mut pairs = 0;
        for t in fhir_format::resource_types() {
            for sp in fhir_profiles::search_parameters_for(t) {
                pairs += 1;
                let named = sp.code == "_query" && named::named_queries(t).next().is_none();
                if !named && supported_parameter(&Registry::default(), t, &sp.code).is_none() {
                    missing.push(format!("{t}.{}", sp.code));
                }
            }
        }
        assert!(pairs > 3000, "{pairs}");
        assert!(missing.is_empty(), "not supported: {missing:?}");
    }
}
