//! Per-request context: a request id (a well-formed incoming `X-Request-Id` is honoured and
//! always echoed), one access-log line with the route *template*, status and duration (no
//! query strings, bodies, identifiers or tokens: no patient data in logs), and server
//! errors (500) scrubbed to a generic OperationOutcome that names only the request id.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage};

use super::admission::Shed;
use super::error::{ApiError, Localized, RefusedPatients};
use super::interaction::qr::EmergencyAccess;
use super::respond::{AppState, AuditTarget, BundleAudit};
use super::routes::RoutePattern;
use crate::service::audit::{AuditEntry, AuditedInteraction};
use crate::service::validate::Language;
use crate::service::Access;
use crate::service::ErrorCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use tracing::Instrument;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The middleware function (wrap with `actix_web::middleware::from_fn`).
///
/// # Errors
/// Only what the wrapped service returns.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_well_formed(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %request_id, http.method = %method);
    let response = next.call(req).instrument(span.clone()).await?;
    let route: std::borrow::Cow<'static, str> = match response.request().app_data::<RoutePattern>()
    {
        Some(RoutePattern(pattern)) => (*pattern).into(),
        None => response
            .request()
            .match_pattern()
            .map_or("unmatched".into(), Into::into),
    };
    let status = response.status();
    let shed = response.response().extensions().get::<Shed>().is_some();
    if let Some(interaction) = super::routes::audited(response.request().method(), &route) {
        if !shed {
            record_audit(&response, interaction, &request_id).await;
        }
    }
    if let Some(state) = response.request().app_data::<web::Data<AppState>>() {
        state.metrics.observe(
            &route,
            &method,
            status.as_str(),
            started.elapsed().as_secs_f64(),
        );
    }
    span.in_scope(|| {
        tracing::info!(
            http.route = %route,
            http.status = status.as_u16(),
            // Microsecond resolution: `0.189`, not `0.18857100000000002`.
            duration_ms = (started.elapsed().as_micros() as f64) / 1000.0,
            "request finished"
        );
    });
    let localized = response.response().extensions().get::<Localized>().cloned();
    let mut response = if status == StatusCode::INTERNAL_SERVER_ERROR {
        scrub(response, &request_id)
    } else if let Some(localized) = localized {
        localize(response, &localized.0)
    } else {
        response.map_into_boxed_body()
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// Queues the AuditEvent of a finished request: who (from the request's Access, absent
/// when authentication failed), what (the resource the handler touched, or the type and id
/// in the path), and the outcome.
async fn record_audit(
    response: &ServiceResponse<impl MessageBody>,
    interaction: AuditedInteraction,
    request_id: &str,
) {
    let request = response.request();
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return;
    };
    let target = response
        .response()
        .extensions()
        .get::<AuditTarget>()
        .cloned();
    let path = request.match_info();
    let bundle = response
        .response()
        .extensions()
        .get::<BundleAudit>()
        .cloned();
    let interaction = match &bundle {
        Some(b) if b.transaction => AuditedInteraction::Transaction,
        _ => interaction,
    };
    let access = request.extensions().get::<Access>().cloned();
    let entry = AuditEntry {
        interaction,
        access: access.clone(),
        res_type: target
            .as_ref()
            .map(|t| t.res_type.clone())
            .or_else(|| path.get("type").map(str::to_owned)),
        id: target
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| path.get("id").map(str::to_owned)),
        version_id: target.as_ref().and_then(|t| t.version_id),
        patients: target.map(|t| t.patients).unwrap_or_else(|| {
            // A refusal of a person's record is in their access log too.
            response
                .response()
                .extensions()
                .get::<RefusedPatients>()
                .map(|r| r.0.clone())
                .unwrap_or_default()
        }),
        status: response.status().as_u16(),
        request_id: request_id.to_owned(),
        emergency: response
            .response()
            .extensions()
            .get::<EmergencyAccess>()
            .map(|e| e.0.clone()),
    };
    state.service.audit(entry).await;
    // Each entry of a batch or transaction is audited as the request it stands for.
    for e in bundle.map(|b| b.entries).unwrap_or_default() {
        let entry = AuditEntry {
            interaction: e.interaction,
            access: access.clone(),
            res_type: Some(e.res_type),
            id: e.target.as_ref().map(|t| t.id.clone()),
            version_id: e.target.as_ref().and_then(|t| t.version_id),
            patients: e.target.map(|t| t.patients).unwrap_or_default(),
            status: e.status,
            request_id: request_id.to_owned(),
            emergency: None,
        };
        state.service.audit(entry).await;
    }
}

/// Writes an error's OperationOutcome in the language the request prefers
/// (`Accept-Language`, else `validation.language`).
fn localize(
    response: ServiceResponse<impl MessageBody + 'static>,
    error: &ApiError,
) -> ServiceResponse<BoxBody> {
    let default = response
        .request()
        .app_data::<web::Data<AppState>>()
        .map_or(Language::Vi, |s| s.language);
    let language = super::headers::language(response.request(), default);
    let body = error.outcome_in(language).to_string();
    let (req, res) = response.into_parts();
    let mut localized = HttpResponse::build(res.status());
    for (name, value) in res.headers() {
        // The new body is sent as it is (the compressed one is dropped).
        if name != header::CONTENT_ENCODING && name != header::CONTENT_LENGTH {
            localized.append_header((name.clone(), value.clone()));
        }
    }
    ServiceResponse::new(req, localized.body(body))
}

/// Replaces a 500 body with a generic OperationOutcome (no cause, no data).
fn scrub(
    response: ServiceResponse<impl MessageBody + 'static>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let outcome = ApiError::new(
        ErrorCode::Internal,
        format!("An internal error occurred (request id {request_id})."),
    )
    .outcome();
    let (req, _) = response.into_parts();
    let body = HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/fhir+json; charset=utf-8"))
        .body(outcome.to_string());
    ServiceResponse::new(req, body)
}

fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}
