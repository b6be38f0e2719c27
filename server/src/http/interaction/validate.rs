//! `$validate` — https://hl7.org/fhir/R4/resource-operation-validate.html
//!
//! `POST [base]/[type]/$validate` and `POST [base]/[type]/[id]/$validate`. The body is a
//! `Parameters` resource (`resource`, `mode`, `profile`) or the resource itself (then `mode`
//! and `profile` may come in the URL). The answer is a 200 OperationOutcome: the issues in
//! the request's language (`Accept-Language`), or one information issue when there are
//! none.

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::http::error::{validation_outcome, ApiError};
use crate::http::format::{query_param, request_format, Format, Representation};
use crate::http::headers::language;
use crate::http::respond::{read_body, AppState};
use crate::service::validate::operation::{Mode, ValidateRequest};
use crate::service::validate::Language;
use crate::service::Access;

/// `POST [base]/[type]/$validate`
pub async fn validate_type(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    validate(req, access, state, (path.into_inner(), None), payload).await
}

/// `POST [base]/[type]/[id]/$validate`
pub async fn validate_instance(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (res_type, id) = path.into_inner();
    validate(req, access, state, (res_type, Some(id)), payload).await
}

async fn validate(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    (res_type, id): (String, Option<String>),
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate_bundle(&req)?;
    let body = read_body(payload, state.body_limit).await?;
    let mut request = ValidateRequest {
        res_type,
        id,
        resource: None,
        mode: query_param(&req, "mode")
            .as_deref()
            .map(Mode::parse)
            .transpose()?,
        profile: query_param(&req, "profile"),
    };
    if !body.iter().all(u8::is_ascii_whitespace) {
        let sent = parse_loosely(&req, &body)?;
        if sent["resourceType"] == "Parameters" && request.res_type != "Parameters" {
            for p in sent["parameter"].as_array().into_iter().flatten() {
                match p["name"].as_str() {
                    Some("resource") => request.resource = p.get("resource").cloned(),
                    Some("mode") => {
                        let code = p["valueCode"].as_str().unwrap_or_default();
                        request.mode = Some(Mode::parse(code)?);
                    }
                    Some("profile") => {
                        request.profile = p["valueUri"]
                            .as_str()
                            .or_else(|| p["valueCanonical"].as_str())
                            .map(str::to_owned);
                    }
                    _ => {}
                }
            }
        } else {
            request.resource = Some(sent);
        }
    }
    let issues = state.service.validate(&access, request).await?;
    let language = language(&req, state.language);
    let mut outcome = if issues.is_empty() {
        let text = match language {
            Language::Vi => "Không có lỗi: tài nguyên hợp lệ.",
            Language::En => "No issues: the resource is valid.",
        };
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational", "details": {"text": text}}]})
    } else {
        validation_outcome(&issues, language)
    };
    let body = repr.render_value(&mut outcome)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body))
}

/// The body as JSON without the strict checks: a structurally wrong resource is something
/// `$validate` reports, not refuses. XML is read strictly (it cannot be read otherwise).
fn parse_loosely(req: &HttpRequest, body: &[u8]) -> Result<Value, ApiError> {
    match request_format(req, body)? {
        Format::Json => serde_json::from_slice(body)
            .map_err(|e| ApiError::new(ErrorCode::Format, format!("The body is not JSON: {e}."))),
        Format::Xml => Ok(fhir_format::parse_xml(body)?),
    }
}
