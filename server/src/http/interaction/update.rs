//! FHIR update and conditional update — https://hl7.org/fhir/R4/http.html#update,
//! https://hl7.org/fhir/R4/http.html#cond-update

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::headers::if_match;
use crate::http::respond::{self, read_resource, AppState};
use crate::service::Access;

/// `PUT [base]/[type]/[id]`
pub async fn update(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let expected = if_match(&req)?;
    let (res_type, id) = path.into_inner();
    let resource = read_resource(&req, &res_type, payload, state.body_limit).await?;
    let written = state
        .service
        .update(&access, res_type, id, resource, expected)
        .await?;
    respond::written(&req, &written, &repr, state.service.base_url())
}

/// `PUT [base]/[type]?[criteria]`
pub async fn conditional_update(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let expected = if_match(&req)?;
    let resource = read_resource(&req, &path, payload, state.body_limit).await?;
    let written = state
        .service
        .conditional_update(
            &access,
            path.into_inner(),
            req.query_string().to_owned(),
            resource,
            expected,
        )
        .await?;
    respond::written(&req, &written, &repr, state.service.base_url())
}
