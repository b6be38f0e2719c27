//! Liveness and readiness for load balancers and orchestrators (not FHIR).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::respond::AppState;

/// `GET /health/live`: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "pass"}))
}

/// `GET /health/ready`: the database answers too (503 otherwise).
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.service.ready().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "pass"})))
}
