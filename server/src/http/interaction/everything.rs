//! `Patient/$everything` — https://hl7.org/fhir/R4/patient-operation-everything.html
//!
//! `GET|POST [base]/Patient/[id]/$everything` and `GET|POST [base]/Patient/$everything`.
//! Parameters come in the URL, or in a POSTed `Parameters` resource or form
//! (operations.html#request). The answer is a `searchset` Bundle; its `next` links are
//! GETs.

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::format::{parse_resource, query_params, Representation};
use crate::http::headers::prefer_handling_strict;
use crate::http::respond::{read_body, AppState, AuditTarget};
use crate::service::Access;

/// `GET [base]/Patient/[id]/$everything`
pub async fn everything_instance(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    everything(&req, &access, &state, Some(path.into_inner()), params).await
}

/// `POST [base]/Patient/[id]/$everything`
pub async fn everything_instance_post(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = posted_params(&req, payload, state.body_limit).await?;
    everything(&req, &access, &state, Some(path.into_inner()), params).await
}

/// `GET [base]/Patient/$everything`
pub async fn everything_type(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    everything(&req, &access, &state, None, params).await
}

/// `POST [base]/Patient/$everything`
pub async fn everything_type_post(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = posted_params(&req, payload, state.body_limit).await?;
    everything(&req, &access, &state, None, params).await
}

async fn everything(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
    patient: Option<String>,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate_bundle(req)?;
    let (subject, bundle) = state
        .service
        .everything(access, patient, params, prefer_handling_strict(req))
        .await?;
    let body = repr.render(&bundle)?;
    let mut response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body);
    if let Some(subject) = subject {
        response.extensions_mut().insert(AuditTarget::of(&subject));
    }
    Ok(response)
}

/// The URL's parameters, then those of the body: a `Parameters` resource (each
/// parameter's value as its string form) or a form.
async fn posted_params(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
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
            "POST $everything takes a Parameters resource (operations.html#request).",
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
