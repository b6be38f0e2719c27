//! FHIR read (and HEAD) — https://hl7.org/fhir/R4/http.html#read, with conditional read
//! (http.html#cread: `If-None-Match`, `If-Modified-Since` → 304).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::headers::{if_none_match_hits, not_modified_since};
use crate::http::respond::{self, AppState};
use crate::service::Access;

/// `GET|HEAD [base]/[type]/[id]`
pub async fn read(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let (res_type, id) = path.into_inner();
    let r = state.service.read(&access, res_type, id).await?;
    if if_none_match_hits(&req, r.version_id) || not_modified_since(&req, r.last_updated) {
        return Ok(respond::not_modified(&r));
    }
    respond::resource(&r, &repr)
}
