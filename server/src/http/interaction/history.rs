//! FHIR history — https://hl7.org/fhir/R4/http.html#history (instance, type, system).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::respond::AppState;
use crate::service::Access;
use crate::service::{HistoryParams, HistoryScope};

/// `GET [base]/_history`
pub async fn history_system(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    history(&req, &access, &state, HistoryScope::System).await
}

/// `GET [base]/[type]/_history`
pub async fn history_type(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    history(&req, &access, &state, HistoryScope::Type(path.into_inner())).await
}

/// `GET [base]/[type]/[id]/_history`
pub async fn history_instance(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (res_type, id) = path.into_inner();
    history(&req, &access, &state, HistoryScope::Instance(res_type, id)).await
}

async fn history(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
    scope: HistoryScope,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(req)?;
    let params = HistoryParams::parse(req.query_string())?;
    let bundle = state.service.history(access, scope, params).await?;
    let body = repr.render(&bundle)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body))
}
