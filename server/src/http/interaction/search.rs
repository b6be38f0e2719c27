//! FHIR search — https://hl7.org/fhir/R4/http.html#search, search.html
//!
//! `GET [base]/[type]?...`, `POST [base]/[type]/_search` (parameters form-encoded in the
//! body, and in the URL), `GET [base]?_type=...` and `POST [base]/_search` (system level),
//! `GET [base]/Patient/[id]/[type]` (compartment search, compartment.html#search).
//! `Prefer: handling=strict` makes unknown parameters an error (search.html#errors).

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::{query_params, Representation};
use crate::http::headers::prefer_handling_strict;
use crate::http::respond::{read_body, AppState};
use crate::service::search::{SearchRequest, SearchScope};
use crate::service::Access;

/// `GET [base]/[type]`
pub async fn search_type(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    search(
        &req,
        &access,
        &state,
        SearchScope::Type(path.into_inner()),
        params,
    )
    .await
}

/// `POST [base]/[type]/_search`
pub async fn search_type_post(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = form_params(&req, payload, state.body_limit).await?;
    search(
        &req,
        &access,
        &state,
        SearchScope::Type(path.into_inner()),
        params,
    )
    .await
}

/// `GET [base]?_type=...`
pub async fn search_system(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    search(&req, &access, &state, SearchScope::System, params).await
}

/// `POST [base]/_search`
pub async fn search_system_post(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = form_params(&req, payload, state.body_limit).await?;
    search(&req, &access, &state, SearchScope::System, params).await
}

/// `GET [base]/Patient/[id]/[type]`
pub async fn search_compartment(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (compartment, patient, res_type) = path.into_inner();
    if compartment != "Patient" {
        return Err(ApiError::new(
            ErrorCode::NoCompartment,
            format!(
                "Compartment search is offered for the Patient compartment, not {compartment}."
            ),
        ));
    }
    let params = query_params(&req)?;
    let scope = SearchScope::PatientCompartment { patient, res_type };
    search(&req, &access, &state, scope, params).await
}

async fn search(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
    scope: SearchScope,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate_bundle(req)?;
    let request = SearchRequest {
        scope,
        params,
        strict: prefer_handling_strict(req),
    };
    let bundle = state.service.search(access, request).await?;
    let body = repr.render(&bundle)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body))
}

/// The URL's parameters, then the form body's (http.html#search: both count).
async fn form_params(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Vec<(String, String)>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body = read_body(payload, limit).await?;
    if !body.is_empty()
        && !content_type
            .trim_start()
            .starts_with("application/x-www-form-urlencoded")
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMedia,
            "POST _search takes its parameters as application/x-www-form-urlencoded.",
        ));
    }
    let mut params = query_params(req)?;
    params.extend(crate::service::search::params::query_pairs(&body)?);
    Ok(params)
}
