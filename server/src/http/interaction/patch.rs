//! FHIR patch — https://hl7.org/fhir/R4/http.html#patch: JSON Patch
//! (`application/json-patch+json`) and FHIRPath Patch (a Parameters resource in FHIR JSON
//! or XML).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::{parse_resource, Representation};
use crate::http::headers::if_match;
use crate::http::respond::{self, read_body, AppState};
use crate::service::Access;
use crate::service::Patch;

/// `PATCH [base]/[type]/[id]`
pub async fn patch(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let expected = if_match(&req)?;
    respond::known_type(&path.0)?;
    let body = read_body(payload, state.body_limit).await?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let patch = if content_type
        .trim_start()
        .starts_with("application/json-patch+json")
    {
        Patch::json_patch(&body)?
    } else {
        Patch::fhirpath_patch(&parse_resource(&req, &body)?)?
    };
    let (res_type, id) = path.into_inner();
    let written = state
        .service
        .patch(&access, res_type, id, patch, expected)
        .await?;
    respond::written(&req, &written, &repr, state.service.base_url())
}
