//! FHIR create and conditional create — https://hl7.org/fhir/R4/http.html#create,
//! https://hl7.org/fhir/R4/http.html#ccreate

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::headers::if_none_exist;
use crate::http::respond::{self, read_resource, AppState};
use crate::service::Access;

/// `POST [base]/[type]` (with optional `If-None-Exist`)
pub async fn create(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let res_type = path.into_inner();
    let resource = read_resource(&req, &res_type, payload, state.body_limit).await?;
    let written = state
        .service
        .create(&access, res_type, resource, if_none_exist(&req)?)
        .await?;
    respond::written(&req, &written, &repr, state.service.base_url())
}
