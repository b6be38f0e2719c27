//! One handler file per FHIR interaction (named as in http.html) or operation.

pub mod batch;
pub mod capabilities;
pub mod create;
pub mod delete;
pub mod everything;
pub mod health;
pub mod history;
pub mod patch;
pub mod qr;
pub mod read;
pub mod reindex;
pub mod search;
pub mod smart_configuration;
mod transaction;
pub mod update;
pub mod validate;
pub mod vread;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::format::{parse_resource, query_params};
use crate::http::respond::read_body;
use crate::service::ErrorCode;

/// An operation's parameters (operations.html#request): the URL's, then those of the body: a `Parameters` resource (each
/// parameter's value as its string form) or a form.
pub(crate) async fn operation_params(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    operation: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut params = query_params(req)?;
    let body = read_body(payload, limit).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .starts_with("application/x-www-form-urlencoded")
        });
    if form {
        params.extend(crate::service::search::params::query_pairs(&body)?);
        return Ok(params);
    }
    let parameters = parse_resource(req, &body)?;
    if parameters["resourceType"] != "Parameters" {
        return Err(ApiError::new(
            ErrorCode::ResourceType,
            format!(
                "POST {operation} takes a Parameters resource or a form (operations.html#request)."
            ),
        ));
    }
    for p in parameters["parameter"].as_array().into_iter().flatten() {
        let Some(name) = p["name"].as_str() else {
            continue;
        };
        let value = p.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.starts_with("value"))
                .map(|(_, v)| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        });
        if let Some(value) = value {
            params.push((name.to_owned(), value));
        }
    }
    Ok(params)
}
