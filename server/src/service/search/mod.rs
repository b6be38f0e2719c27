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

mod contained;
mod cursor;
mod include;
pub mod named;
pub mod params;
mod plan;
mod supported;

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
use cursor::{edge, encode_cursor};
use params::ParseContext;
use plan::{merged, Plan};
pub use supported::{supported_parameter, supported_parameters};

/// What one search may ask for (`[search]` of the configuration): past a limit it is a 400
/// `HB-SEARCH-COST` naming it, so that no request holds the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimits {
    pub max_parameters: usize,
    pub max_values: usize,
    pub max_includes: usize,
}

impl Default for SearchLimits {
    /// As `config/default.toml`.
    fn default() -> Self {
        Self {
            max_parameters: 40,
            max_values: 100,
            max_includes: 10,
        }
    }
}

impl SearchLimits {
    /// `HB-SEARCH-COST` unless `count` parameters are within the limit.
    pub fn check_parameters(&self, count: usize) -> Result<(), ServiceError> {
        if count > self.max_parameters {
            return Err(ServiceError::new(
                ErrorCode::SearchCost,
                format!(
                    "The search has {count} parameters; this server takes at most {} in one search (search.max_parameters).",
                    self.max_parameters
                ),
            ));
        }
        Ok(())
    }
}

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

impl Service {
    /// `Patient?identifier=<QR_SYSTEM>|<token>` (docs/QR.md): the personal QR is not an
    /// identifier the Patient holds, so the pair becomes `_id` of the Patient the token
    /// names (the self link then shows the id, never the token), or an id no resource can
    /// have (longer than 64 characters) when it names none.
    ///
    /// A practitioner's scan grants them the person's record (qr/grant.rs): the access of
    /// the rest of the search is returned with the request.
    async fn qr_identifiers(
        &self,
        access: &Access,
        mut request: SearchRequest,
    ) -> Result<(SearchRequest, Option<Access>), ServiceError> {
        if !matches!(&request.scope, SearchScope::Type(t) if t == "Patient") {
            return Ok((request, None));
        }
        let mut granted = None;
        let prefix = format!("{}|", super::qr::QR_SYSTEM);
        for (name, value) in &mut request.params {
            let Some(scanned) = value.strip_prefix(&prefix) else {
                continue;
            };
            if name != "identifier" {
                continue;
            }
            let id = match self
                .qr_patient(granted.as_ref().unwrap_or(access), scanned)
                .await
            {
                Ok((id, after)) => {
                    granted = Some(after);
                    id
                }
                // A throttled client is refused; an unknown token finds nobody.
                Err(ServiceError::Refused { .. }) => "no-patient-has-this-personal-qr-".repeat(3),
                Err(e) => return Err(e),
            };
            *name = "_id".to_owned();
            *value = id;
        }
        Ok((request, granted))
    }

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
        let (request, granted) = self.qr_identifiers(access, request).await?;
        let access = granted.as_ref().unwrap_or(access);
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
}

pub(super) fn key_of(row: &SearchRow) -> ResourceKey {
    ResourceKey {
        res_type: row.res_type.clone(),
        res_id: row.res_id.clone(),
    }
}

/// The entry's resource text: stored as is, or shaped by `_summary` / `_elements`.
pub(super) fn shaped<'a>(shape: &Shape, content: &'a str) -> Cow<'a, str> {
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
pub(super) fn readable(access: &Access, row: &SearchRow) -> bool {
    match access {
        Access::Open => true,
        Access::Token(..) => serde_json::from_str::<Value>(&row.content)
            .is_ok_and(|json| access.permits(Permission::Read, &json)),
    }
}
