//! The personal health QR operations (issue 15; docs/QR.md), each with its shipped
//! OperationDefinition (operations.html):
//!
//! - `POST [base]/Patient/[id]/$qr-issue`: issue or rotate; answers the token and payload.
//! - `POST [base]/Patient/[id]/$qr-revoke`: the token stops resolving.
//! - `GET [base]/Patient/[id]/$qr`: the current token again, for its owner.
//! - `GET|POST [base]/Patient/$qr-resolve?code=`: the Patient a scanned code names.
//!
//! Answers that hold a token are `Cache-Control: no-store`: it is a credential.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::operation_params;
use crate::http::error::ApiError;
use crate::http::format::{query_params, Representation};
use crate::http::respond::{self, AppState, AuditTarget};
use crate::service::qr::{IssuedQr, QR_SYSTEM};
use crate::service::{instant, Access, ErrorCode};

/// `POST [base]/Patient/[id]/$qr-issue` (parameter `expires`, an instant, optional).
pub async fn issue(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let params = operation_params(&req, payload, state.body_limit, "$qr-issue").await?;
    let expires_at = match params.iter().find(|(name, _)| name == "expires") {
        None => None,
        Some((_, text)) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::OperationParameter,
                        format!("expires is not an instant (2027-01-01T00:00:00+07:00): '{text}'."),
                    )
                    .at(Some("expires".into()))
                })?
                .timestamp_millis(),
        ),
    };
    let id = path.into_inner();
    let issued = state
        .service
        .qr_issue(&access, id.clone(), expires_at)
        .await?;
    answer(&repr, &id, &issued)
}

/// `POST [base]/Patient/[id]/$qr-revoke`
pub async fn revoke(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let id = path.into_inner();
    let revoked = state.service.qr_revoke(&access, id.clone()).await?;
    let mut parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "revoked", "valueBoolean": revoked},
    ]});
    let mut response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(repr.render_value(&mut parameters)?);
    response.extensions_mut().insert(patient_target(&id));
    Ok(response)
}

/// `GET [base]/Patient/[id]/$qr`
pub async fn show(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let id = path.into_inner();
    let current = state.service.qr_current(&access, id.clone()).await?;
    answer(&repr, &id, &current)
}

/// `GET [base]/Patient/$qr-resolve?code=...`
pub async fn resolve(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req)?;
    resolve_with(&req, &access, &state, params).await
}

/// `POST [base]/Patient/$qr-resolve` (a Parameters resource or a form with `code`).
pub async fn resolve_post(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = operation_params(&req, payload, state.body_limit, "$qr-resolve").await?;
    resolve_with(&req, &access, &state, params).await
}

async fn resolve_with(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(req)?;
    let code = params
        .into_iter()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::OperationParameter,
                "$qr-resolve needs the scanned text as the parameter 'code'.",
            )
            .at(Some("code".into()))
        })?;
    let patient = state.service.qr_resolve(access, &code).await?;
    respond::resource(&patient, &repr)
}

/// The Parameters of an issued or shown QR.
fn answer(repr: &Representation, patient: &str, qr: &IssuedQr) -> Result<HttpResponse, ApiError> {
    let mut parameter = vec![
        json!({"name": "token", "valueString": qr.token.as_str()}),
        json!({"name": "payload", "valueString": qr.token.payload()}),
        json!({"name": "identifier", "valueIdentifier": {"system": QR_SYSTEM, "value": qr.token.as_str()}}),
        json!({"name": "issued", "valueInstant": instant(qr.issued_at)}),
    ];
    if let Some(expires) = qr.expires_at {
        parameter.push(json!({"name": "expires", "valueInstant": instant(expires)}));
    }
    let mut parameters: Value = json!({"resourceType": "Parameters", "parameter": parameter});
    let mut response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(repr.render_value(&mut parameters)?);
    response.extensions_mut().insert(patient_target(patient));
    Ok(response)
}

/// The audit target of an operation on one Patient's QR.
fn patient_target(id: &str) -> AuditTarget {
    AuditTarget {
        res_type: "Patient".into(),
        id: id.into(),
        version_id: None,
        patients: vec![id.into()],
    }
}
