//! `$reindex` — `POST [base]/$reindex` and `POST [base]/[type]/$reindex`: rebuilds the
//! search index rows of stored resources (docs/SEARCH.md). Answers a 200 OperationOutcome
//! saying how many resources were reindexed.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::respond::AppState;
use crate::service::Access;

/// `POST [base]/$reindex`
pub async fn reindex_system(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    reindex(&req, &access, &state, None).await
}

/// `POST [base]/[type]/$reindex`
pub async fn reindex_type(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    reindex(&req, &access, &state, Some(path.into_inner())).await
}

async fn reindex(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
    res_type: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate_bundle(req)?;
    let count = state.service.reindex(access, res_type).await?;
    let mut outcome = json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "information",
            "code": "informational",
            "details": {"text": format!("{count} resources reindexed.")},
        }]
    });
    let body = repr.render_value(&mut outcome)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body))
}
