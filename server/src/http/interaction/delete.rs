//! FHIR delete and conditional delete — https://hl7.org/fhir/R4/http.html#delete,
//! https://hl7.org/fhir/R4/http.html#cdelete
//!
//! Success is 204 No Content, also when there was nothing to delete; the version that
//! records a deletion is given in `ETag`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::respond::AppState;
use crate::service::Access;

/// `DELETE [base]/[type]/[id]`
pub async fn delete(
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (res_type, id) = path.into_inner();
    let version = state.service.delete(&access, res_type, id).await?;
    Ok(deleted(version))
}

/// `DELETE [base]/[type]?[criteria]`
pub async fn conditional_delete(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let version = state
        .service
        .conditional_delete(&access, path.into_inner(), req.query_string().to_owned())
        .await?;
    Ok(deleted(version))
}

fn deleted(version: Option<i64>) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    if let Some(v) = version {
        response.insert_header((header::ETAG, format!("W/\"{v}\"")));
    }
    response.finish()
}
