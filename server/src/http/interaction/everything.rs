//! `Patient/$everything` — https://hl7.org/fhir/R4/patient-operation-everything.html
//!
//! `GET|POST [base]/Patient/[id]/$everything` and `GET|POST [base]/Patient/$everything`.
//! Parameters come in the URL, or in a POSTed `Parameters` resource or form
//! (operations.html#request). The answer is a `searchset` Bundle; its `next` links are
//! GETs.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::operation_params;
use crate::http::error::ApiError;
use crate::http::format::{query_params, Representation};
use crate::http::headers::prefer_handling_strict;
use crate::http::respond::{AppState, AuditTarget};
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
    let params = operation_params(&req, payload, state.body_limit, "$everything").await?;
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
    let params = operation_params(&req, payload, state.body_limit, "$everything").await?;
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
