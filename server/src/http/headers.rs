//! Request headers of the RESTful API: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-None-Exist` (http.html#concurrency, #cread, #ccreate) and `Prefer`
//! (http.html#ops: `return=minimal|representation|OperationOutcome`).

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::HttpRequest;
use chrono::DateTime;

use super::error::ApiError;
use crate::service::validate::Language;
use crate::service::version_of_etag;

/// What the client prefers to get back from a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferReturn {
    Minimal,
    Representation,
    OperationOutcome,
}

/// `Prefer: return=...`, representation when absent or unknown (a preference, not a demand).
pub fn prefer_return(req: &HttpRequest) -> PreferReturn {
    preferences(req)
        .find_map(|p| match p.strip_prefix("return=")?.trim_matches('"') {
            "minimal" => Some(PreferReturn::Minimal),
            "representation" => Some(PreferReturn::Representation),
            "OperationOutcome" => Some(PreferReturn::OperationOutcome),
            _ => None,
        })
        .unwrap_or(PreferReturn::Representation)
}

/// The language of messages (RFC 9110 §12.5.4 `Accept-Language`): the most preferred of
/// Vietnamese and English, else `default`.
pub fn language(req: &HttpRequest, default: Language) -> Language {
    let mut ranges: Vec<(f32, Language)> = req
        .headers()
        .get_all(header::ACCEPT_LANGUAGE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let language = Language::parse(parts.next()?)?;
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, language))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.first().map_or(default, |(_, l)| *l)
}

/// `Prefer: handling=strict` (search.html#errors); lenient otherwise.
pub fn prefer_handling_strict(req: &HttpRequest) -> bool {
    preferences(req).any(|p| p == "handling=strict")
}

/// The preferences of every `Prefer` header (RFC 7240), one at a time.
fn preferences(req: &HttpRequest) -> impl Iterator<Item = &str> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .map(str::trim)
}

/// The version named by `If-Match` (`W/"3"`, `"3"`).
///
/// # Errors
/// 400 when the header is not a version ETag.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    match req.headers().get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(version_of_etag)
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::IfMatch,
                    "If-Match must be a version ETag such as W/\"3\".",
                )
                .at(Some("If-Match".into()))
            }),
    }
}

/// Whether `If-None-Match` names the current version (or `*`): the client's copy is fresh.
pub fn if_none_match_hits(req: &HttpRequest, version_id: i64) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == "*" || version_of_etag(tag) == Some(version_id))
        })
}

/// Whether the resource is unchanged since `If-Modified-Since` (HTTP dates have whole
/// seconds, so the comparison is by second).
pub fn not_modified_since(req: &HttpRequest, last_updated_ms: i64) -> bool {
    req.headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| last_updated_ms.div_euclid(1000) <= since.timestamp())
}

/// `If-None-Exist` criteria (http.html#ccreate), a query string without `?`.
///
/// # Errors
/// 400 for a header that is not UTF-8: ignoring it would make a plain create, and a
/// duplicate of what it was meant to find.
pub fn if_none_exist(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(header) = req.headers().get("if-none-exist") else {
        return Ok(None);
    };
    let v = std::str::from_utf8(header.as_bytes()).map_err(|_| {
        ApiError::new(
            ErrorCode::ConditionalCriteria,
            "If-None-Exist is not UTF-8; percent-encode its criteria (RFC 3986).",
        )
        .at(Some("If-None-Exist".into()))
    })?;
    let v = v.trim();
    // Some clients send the whole URL or `Patient?identifier=...`.
    Ok(Some(v.split_once('?').map_or(v, |(_, q)| q).to_owned()))
}

/// An HTTP-date (`Last-Modified`) for milliseconds since the epoch.
pub fn http_date(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let text = http_date(1_767_225_600_000);
        assert_eq!(text, "Thu, 01 Jan 2026 00:00:00 GMT");
        assert_eq!(
            DateTime::parse_from_rfc2822(&text).unwrap().timestamp(),
            1_767_225_600
        );
    }
}
