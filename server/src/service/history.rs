//! FHIR history — https://hl7.org/fhir/R4/http.html#history
//!
//! Instance, type and system history as a Bundle of type `history`, newest version first,
//! with `_count`, `_since` and `_at` (the versions current at some time in a period). Pages continue through a `next` link that carries a cursor
//! (the position of the last version shown), so paging never skips or repeats versions
//! when writes happen in between and never scans past an offset.

use crate::service::ErrorCode;
use chrono::{DateTime, NaiveDate};
use serde_json::json;

use super::bundle::BundleWriter;
use super::{
    ensure_id, ensure_type, instant, parse_count, query_encode, Access, Service, ServiceError,
    StoredResource,
};
use crate::auth::Permission;
use crate::store::HistoryQuery;

/// Default and largest page sizes.
const DEFAULT_COUNT: i64 = 50;
const MAX_COUNT: i64 = 1000;

/// Whose history is listed.
#[derive(Debug, Clone)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance(String, String),
}

/// The parameters of a history interaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryParams {
    count: Option<i64>,
    since: Option<(i64, String)>,
    /// `_at` as written (read in the server's zone when it has none).
    at: Option<String>,
    cursor: Option<i64>,
}

impl HistoryParams {
    /// Reads `_count`, `_since` and the paging cursor from a query string; other
    /// parameters (`_format`, `_pretty`) are the response's business.
    ///
    /// # Errors
    /// 400 naming the parameter when a value is malformed.
    pub fn parse(query: &str) -> Result<Self, ServiceError> {
        let mut params = HistoryParams::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "_count" => params.count = Some(parse_count(&value, MAX_COUNT)?),
                "_since" => {
                    let ms = parse_instant(&value).ok_or_else(|| {
                        ServiceError::at(
                            ErrorCode::SearchValue,
                            "_since",
                            "_since must be an instant such as 2026-01-31T08:00:00Z (or a date).",
                        )
                    })?;
                    params.since = Some((ms, value.into_owned()));
                }
                "_cursor" => {
                    params.cursor = Some(value.parse().map_err(|_| {
                        ServiceError::at(
                            ErrorCode::Cursor,
                            "_cursor",
                            "The paging cursor is not valid.",
                        )
                    })?);
                }
                // http.html#history: the versions current at some time in the period
                // the date(Time) covers (`_at=2021` is the whole year).
                "_at" => {
                    let utc = chrono::FixedOffset::east_opt(0).expect("zero offset");
                    if params.at.is_some() || super::index::date::range(&value, utc).is_none() {
                        return Err(ServiceError::at(
                            ErrorCode::SearchValue,
                            "_at",
                            "_at is one date or dateTime (2021, 2021-07-01, 2021-07-01T08:00:00+07:00).",
                        ));
                    }
                    params.at = Some(value.into_owned());
                }
                // `_list` is not offered; ignoring it would answer another question.
                "_list" => {
                    return Err(ServiceError::at(
                        ErrorCode::SearchParameter,
                        "_list",
                        "_list is not supported in a history here; use _since, _at and _count.",
                    ))
                }
                _ => {}
            }
        }
        Ok(params)
    }
}

fn parse_instant(value: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

impl Service {
    /// A history Bundle (JSON) for `scope`.
    ///
    /// # Errors
    /// 404 for an unknown type, or an unknown instance, store failures.
    pub async fn history(
        &self,
        access: &Access,
        scope: HistoryScope,
        params: HistoryParams,
    ) -> Result<String, ServiceError> {
        let (res_type, res_id, path) = match &scope {
            HistoryScope::System => (None, None, "_history".to_owned()),
            HistoryScope::Type(t) => {
                ensure_type(t)?;
                (Some(t.clone()), None, format!("{t}/_history"))
            }
            HistoryScope::Instance(t, id) => {
                ensure_type(t)?;
                ensure_id(id)?;
                (
                    Some(t.clone()),
                    Some(id.clone()),
                    format!("{t}/{id}/_history"),
                )
            }
        };
        // Instance history needs `r`, type and system history `s` (SMART scopes).
        let permission = match &scope {
            HistoryScope::Instance(..) => Permission::Read,
            _ => Permission::Search,
        };
        match &res_type {
            Some(t) => access.require(permission, t)?,
            None => access.require_any(permission)?,
        }
        let restricted = access.is_restricted(res_type.as_deref());
        let count = params.count.unwrap_or(DEFAULT_COUNT);
        let query = HistoryQuery {
            res_type,
            res_id,
            since: params.since.as_ref().map(|(ms, _)| *ms),
            at: params
                .at
                .as_deref()
                .and_then(|at| super::index::date::range(at, self.index.default_offset))
                .map(|r| (r.lo, r.hi)),
            before_seq: params.cursor,
            limit: count + 1,
        };
        let instance = matches!(scope, HistoryScope::Instance(..));
        let (rows, total, current) = self
            .read_tx(move |tx| {
                let rows = tx.history(&query)?;
                let total = tx.history_total(&query)?;
                let current = match &scope {
                    HistoryScope::Instance(t, id) => tx.current(t, id)?,
                    _ => None,
                };
                Ok((rows, total, current))
            })
            .await?;
        let not_found = || {
            ServiceError::not_found(format!(
                "{path} has no versions: the resource is not known."
            ))
        };
        // A resource that never existed is not known; one that exists has a history, also
        // when `_since` leaves none of its versions on the page (an empty Bundle). A token
        // that may see none of it learns nothing either way.
        if instance {
            let Some(current) = current.map(StoredResource::from) else {
                return Err(not_found());
            };
            if rows.is_empty() && !visible(access, permission, restricted, &current) {
                return Err(not_found());
            }
        }
        let has_more = rows.len() as i64 > count;
        let rows_were_empty = rows.is_empty();
        let page: Vec<_> = rows.into_iter().take(count as usize).collect();
        let next_cursor = page.last().map(|r| r.seq);
        let shown: Vec<StoredResource> = page
            .into_iter()
            .map(StoredResource::from)
            .filter(|r| visible(access, permission, restricted, r))
            .collect();
        if instance && shown.is_empty() && !rows_were_empty {
            return Err(not_found());
        }

        let base = self.base_url();
        let mut common = vec![format!("_count={count}")];
        if let Some((_, since)) = &params.since {
            common.push(format!("_since={}", query_encode(since)));
        }
        if let Some(at) = &params.at {
            common.push(format!("_at={}", query_encode(at)));
        }
        let link = |cursor: Option<i64>| {
            let mut q = common.clone();
            if let Some(c) = cursor {
                q.push(format!("_cursor={c}"));
            }
            format!("{base}/{path}?{}", q.join("&"))
        };
        let mut links = vec![("self", link(params.cursor))];
        if has_more {
            links.push(("next", link(next_cursor)));
        }
        // A total over what the token cannot see would reveal it.
        let total = (!restricted).then_some(total);
        let mut bundle = BundleWriter::new("history", total, &links);
        for r in shown {
            let full_url = format!("{base}/{}/{}", r.res_type, r.id);
            let (request_url, status) = match r.method.as_str() {
                "POST" => (r.res_type.clone(), "201 Created"),
                "DELETE" => (format!("{}/{}", r.res_type, r.id), "204 No Content"),
                _ if r.version_id == 1 => (format!("{}/{}", r.res_type, r.id), "201 Created"),
                _ => (format!("{}/{}", r.res_type, r.id), "200 OK"),
            };
            bundle.entry(
                Some(&full_url),
                r.content.as_deref(),
                &[
                    ("request", json!({"method": r.method, "url": request_url})),
                    (
                        "response",
                        json!({"status": status, "etag": r.etag(), "lastModified": instant(r.last_updated)}),
                    ),
                ],
            );
        }
        Ok(bundle.finish())
    }
}

/// Whether a history entry may be shown: its type's scope letter, and its content inside
/// what the token may see. Deletions have no content; restricted tokens do not see them.
fn visible(access: &Access, permission: Permission, restricted: bool, r: &StoredResource) -> bool {
    match access {
        Access::Open => true,
        _ if !restricted => access.require(permission, &r.res_type).is_ok(),
        _ => match r.json() {
            Ok(serde_json::Value::Null) | Err(_) => false,
            Ok(content) => access.permits(permission, &content),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_count_since_and_cursor() {
        let p =
            HistoryParams::parse("_count=5&_since=2026-01-01T00:00:00Z&_cursor=17&_format=json")
                .unwrap();
        assert_eq!(p.count, Some(5));
        assert_eq!(p.since.unwrap().0, 1_767_225_600_000);
        assert_eq!(p.cursor, Some(17));
        assert_eq!(
            HistoryParams::parse("_since=2026-01-01")
                .unwrap()
                .since
                .unwrap()
                .0,
            1_767_225_600_000
        );
    }

    #[test]
    fn rejects_malformed_values_naming_the_parameter() {
        for q in ["_count=-1", "_count=x", "_since=yesterday", "_cursor=abc"] {
            match HistoryParams::parse(q) {
                Err(ServiceError::Refused { path: Some(p), .. }) => assert!(q.starts_with(&p)),
                other => panic!("{q}: {other:?}"),
            }
        }
    }
}
