//! FHIR vread — https://hl7.org/fhir/R4/http.html#vread

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::respond::{self, AppState};
use crate::service::Access;

/// `GET [base]/[type]/[id]/_history/[vid]`
pub async fn vread(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let (res_type, id, version) = path.into_inner();
    let r = state.service.vread(&access, res_type, id, version).await?;
    respond::resource(&r, &repr)
}
