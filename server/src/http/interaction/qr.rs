//! The personal health QR operations (issue 15; docs/QR.md), each with its shipped
//! OperationDefinition (operations.html):
//!
//! - `POST [base]/Patient/[id]/$qr-issue`: issue or rotate; answers the token and payload.
//! - `POST [base]/Patient/[id]/$qr-revoke`: the token stops resolving.
//! - `GET [base]/Patient/[id]/$qr`: the current token again, for its owner.
//! - `GET|POST [base]/Patient/$qr-resolve?code=`: the Patient a scanned code names; a
//!   practitioner's scan grants them the person's record.
//! - `POST [base]/Patient/[id]/$emergency-access?reason=`: break the glass.
//! - `POST [base]/Consent/[id]/$revoke`: ends the access grant the Consent records.
//!
//! Answers that hold a token are `Cache-Control: no-store`: it is a credential.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::operation_params;
use crate::http::error::ApiError;
use crate::http::format::{query_params, Representation};
use crate::http::respond::{self, AppState, AuditTarget};
use crate::service::qr::image as qr_image;
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
    let revoke_grants = revoke_grants(&params)?;
    let id = path.into_inner();
    let issued = state
        .service
        .qr_issue(&access, id.clone(), expires_at, revoke_grants)
        .await?;
    answer(&repr, &id, &issued)
}

/// `POST [base]/Patient/[id]/$qr-revoke` (parameter `revoke-grants`, optional).
pub async fn revoke(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let params = operation_params(&req, payload, state.body_limit, "$qr-revoke").await?;
    let revoke_grants = revoke_grants(&params)?;
    let id = path.into_inner();
    let (revoked, ended) = state
        .service
        .qr_revoke(&access, id.clone(), revoke_grants)
        .await?;
    let mut parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "revoked", "valueBoolean": revoked},
        {"name": "grants-ended", "valueInteger": ended},
    ]});
    let mut response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(repr.render_value(&mut parameters)?);
    response.extensions_mut().insert(patient_target(&id));
    Ok(response)
}

/// `GET [base]/Patient/[id]/$qr`: the current token as Parameters, or the code itself with
/// `Accept: image/png` or `image/svg+xml` (`size`: pixels per module, default 8).
pub async fn show(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let image = image_format(&req);
    let repr = match image {
        Some(_) => None,
        None => Some(Representation::negotiate(&req)?),
    };
    let size = module_pixels(&query_params(&req)?)?;
    let id = path.into_inner();
    let current = state.service.qr_current(&access, id.clone()).await?;
    let Some(image) = image else {
        return answer(repr.as_ref().expect("negotiated"), &id, &current);
    };
    let payload = current.token.payload();
    let body = match image {
        Image::Png => qr_image::png(&payload, size),
        Image::Svg => qr_image::svg(&payload, size).into_bytes(),
    };
    let mut response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, image.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body);
    response.extensions_mut().insert(patient_target(&id));
    Ok(response)
}

/// An image format of the code.
#[derive(Debug, Clone, Copy)]
enum Image {
    Png,
    Svg,
}

impl Image {
    fn content_type(self) -> &'static str {
        match self {
            Image::Png => "image/png",
            Image::Svg => "image/svg+xml",
        }
    }
}

/// The image format `Accept` asks for first, if any (FHIR formats otherwise).
fn image_format(req: &HttpRequest) -> Option<Image> {
    let accept = req.headers().get(header::ACCEPT)?.to_str().ok()?;
    accept.split(',').find_map(
        |item| match item.split(';').next().unwrap_or_default().trim() {
            "image/png" => Some(Image::Png),
            "image/svg+xml" => Some(Image::Svg),
            _ => None,
        },
    )
}

/// The `size` parameter: pixels per module.
fn module_pixels(params: &[(String, String)]) -> Result<u32, ApiError> {
    let Some((_, text)) = params.iter().find(|(name, _)| name == "size") else {
        return Ok(qr_image::DEFAULT_MODULE_PIXELS);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| qr_image::MODULE_PIXELS.contains(n))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::OperationParameter,
                format!(
                    "size is the pixels per module, {} to {}: '{text}'.",
                    qr_image::MODULE_PIXELS.start(),
                    qr_image::MODULE_PIXELS.end()
                ),
            )
            .at(Some("size".into()))
        })
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

/// `POST [base]/Patient/[id]/$emergency-access` (parameter `reason`): break the glass;
/// answers the Consent that records the grant. The AuditEvent of the request is flagged
/// as an emergency access with the reason.
pub async fn emergency_access(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let params = operation_params(&req, payload, state.body_limit, "$emergency-access").await?;
    let reason = params
        .into_iter()
        .find(|(name, _)| name == "reason")
        .map(|(_, value)| value)
        .unwrap_or_default();
    let id = path.into_inner();
    let consent = state
        .service
        .emergency_access(&access, id.clone(), reason.clone())
        .await?;
    let mut response = respond_json(&repr, consent)?;
    response.extensions_mut().insert(patient_target(&id));
    response
        .extensions_mut()
        .insert(EmergencyAccess(reason.trim().to_owned()));
    Ok(response)
}

/// `POST [base]/Consent/[id]/$revoke`: ends the access grant; answers the Consent.
pub async fn grant_revoke(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let id = path.into_inner();
    let consent = state.service.grant_revoke(&access, id.clone()).await?;
    let patient = consent
        .pointer("/patient/reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Patient/"))
        .map(str::to_owned);
    let mut response = respond_json(&repr, consent)?;
    response.extensions_mut().insert(AuditTarget {
        res_type: "Consent".into(),
        id,
        version_id: None,
        patients: patient.into_iter().collect(),
    });
    Ok(response)
}

/// The stated reason of an emergency access, for the request's AuditEvent.
#[derive(Debug, Clone)]
pub struct EmergencyAccess(pub String);

fn respond_json(repr: &Representation, mut resource: Value) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(repr.render_value(&mut resource)?))
}

/// `revoke-grants` of `$qr-issue` and `$qr-revoke`: true ends the grants earlier scans
/// made.
fn revoke_grants(params: &[(String, String)]) -> Result<bool, ApiError> {
    match params.iter().find(|(name, _)| name == "revoke-grants") {
        None => Ok(false),
        Some((_, v)) if v == "true" => Ok(true),
        Some((_, v)) if v == "false" => Ok(false),
        Some((_, v)) => Err(ApiError::new(
            ErrorCode::OperationParameter,
            format!("revoke-grants is true or false: '{v}'."),
        )
        .at(Some("revoke-grants".into()))),
    }
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
