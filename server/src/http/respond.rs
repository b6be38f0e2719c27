//! Building answers that carry a resource: status, `ETag`, `Last-Modified`, `Location`
//! (absolute, from `server.base_url`) and the body the client prefers (http.html#ops).

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use super::error::validation_outcome;
use super::error::ApiError;
use super::format::Representation;
use super::headers::{http_date, language, prefer_return, PreferReturn};
use crate::service::audit::AuditedInteraction;
use crate::service::validate::Language;
use crate::service::{StoredResource, Written};

/// Shared state of the handlers.
pub struct AppState {
    pub service: crate::service::Service,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Limits of batch and transaction Bundles.
    pub bundle: crate::config::BundleSettings,
    /// The language of validation messages when `Accept-Language` names no other.
    pub language: crate::service::validate::Language,
    /// Turns bearer tokens into principals.
    pub authenticator: std::sync::Arc<crate::auth::Authenticator>,
    /// Admission control: requests in flight, shedding, client quotas.
    pub admission: std::sync::Arc<super::admission::Admission>,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: std::sync::Arc<super::metrics::Metrics>,
}

/// Reads the request body up to the configured limit.
///
/// # Errors
/// 413 when the body is larger than `server.body_limit_bytes`; 400 if the client broke
/// the upload off.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                ErrorCode::BodyIncomplete,
                "The request body could not be read.",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("The request body is larger than this server accepts ({limit} bytes)."),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What a request touched, for its audit record (set on the response).
#[derive(Debug, Clone)]
pub struct AuditTarget {
    pub res_type: String,
    pub id: String,
    /// The version read or written; `None` for an operation on the resource as a whole.
    pub version_id: Option<i64>,
    pub patients: Vec<String>,
}

impl AuditTarget {
    /// What a request did to `r`.
    pub fn of(r: &StoredResource) -> Self {
        let patients = r
            .json()
            .map(|content| crate::service::access::patients_of(&content))
            .unwrap_or_default();
        Self {
            res_type: r.res_type.clone(),
            id: r.id.clone(),
            version_id: Some(r.version_id),
            patients,
        }
    }
}

/// What the entries of a batch or transaction did, for one AuditEvent each (set on the
/// response beside the Bundle's own).
#[derive(Debug, Clone)]
pub struct BundleAudit {
    pub transaction: bool,
    pub entries: Vec<EntryAudit>,
}

/// One entry of a batch or transaction, as audited.
#[derive(Debug, Clone)]
pub struct EntryAudit {
    pub interaction: AuditedInteraction,
    pub res_type: String,
    pub target: Option<AuditTarget>,
    pub status: u16,
}

/// Reads the request body (within the limit) and parses it as a FHIR resource in the
/// request's format, once the URL's type is known to be one.
///
/// # Errors
/// 404 for a type R4 does not have, 413 over the limit, 415 for an unsupported media
/// type, 400 for an invalid resource.
pub async fn read_resource(
    req: &HttpRequest,
    res_type: &str,
    payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    known_type(res_type)?;
    let body = read_body(payload, limit).await?;
    super::format::parse_resource(req, &body)
}

/// A URL naming a type R4 does not have is 404 (http.html#2.21.0.5: "resource type not
/// supported"), whatever its body holds: checked before the body is read.
///
/// # Errors
/// `HB-UNKNOWN-TYPE`.
pub fn known_type(res_type: &str) -> Result<(), ApiError> {
    crate::service::ensure_type(res_type).map_err(ApiError::from)
}

/// A read/vread answer: 200 with the resource and its version headers.
///
/// # Errors
/// Rendering failures (500).
pub fn resource(r: &StoredResource, repr: &Representation) -> Result<HttpResponse, ApiError> {
    let body = repr.render(r.content.as_deref().unwrap_or("{}"))?;
    let mut response = with_version_headers(&mut HttpResponse::Ok(), r)
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body);
    response.extensions_mut().insert(AuditTarget::of(r));
    Ok(response)
}

/// 304 Not Modified for a conditional read that hit.
pub fn not_modified(r: &StoredResource) -> HttpResponse {
    with_version_headers(&mut HttpResponse::NotModified(), r).finish()
}

/// The answer to create, update or patch: 201 or 200, `Location` and version headers, and
/// the body `Prefer: return` asks for.
///
/// # Errors
/// Rendering failures (500).
pub fn written(
    req: &HttpRequest,
    w: &Written,
    repr: &Representation,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    let mut response = written_response(req, w, repr, base_url)?;
    response
        .extensions_mut()
        .insert(AuditTarget::of(&w.resource));
    Ok(response)
}

fn written_response(
    req: &HttpRequest,
    w: &Written,
    repr: &Representation,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    let r = &w.resource;
    let mut builder = if w.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    with_version_headers(&mut builder, r);
    builder.insert_header((
        header::LOCATION,
        format!(
            "{base_url}/{}/{}/_history/{}",
            r.res_type, r.id, r.version_id
        ),
    ));
    match prefer_return(req) {
        PreferReturn::Minimal => Ok(builder.finish()),
        PreferReturn::Representation => {
            let body = repr.render(r.content.as_deref().unwrap_or("{}"))?;
            Ok(builder
                .insert_header((header::CONTENT_TYPE, repr.content_type()))
                .body(body))
        }
        PreferReturn::OperationOutcome => {
            let default = req
                .app_data::<web::Data<AppState>>()
                .map_or(Language::Vi, |s| s.language);
            let mut outcome = write_outcome(w, language(req, default));
            let body = repr.render_value(&mut outcome)?;
            Ok(builder
                .insert_header((header::CONTENT_TYPE, repr.content_type()))
                .body(body))
        }
    }
}

/// The OperationOutcome of a write: what was stored, and the validation warnings it was
/// stored with.
pub fn write_outcome(w: &Written, language: Language) -> serde_json::Value {
    let r = &w.resource;
    let what = if w.created { "created" } else { "stored" };
    let mut outcome = validation_outcome(&w.issues, language);
    if let Some(issues) = outcome["issue"].as_array_mut() {
        issues.insert(
            0,
            json!({
                "severity": "information",
                "code": "informational",
                "details": {"text": format!("{}/{} version {} {what}.", r.res_type, r.id, r.version_id)}
            }),
        );
    }
    outcome
}

fn with_version_headers<'a>(
    builder: &'a mut actix_web::HttpResponseBuilder,
    r: &StoredResource,
) -> &'a mut actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::ETAG, r.etag()))
        .insert_header((header::LAST_MODIFIED, http_date(r.last_updated)))
}
