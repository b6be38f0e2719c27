//! SMART configuration — https://hl7.org/fhir/smart-app-launch/conformance.html
//!
//! `GET [base]/.well-known/smart-configuration`: always `application/json` (whatever the
//! Accept header says), absolute endpoint URLs from the OpenID provider's discovery, and
//! open to any origin (CORS) so browser apps can read it.

use crate::service::ErrorCode;
use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::http::error::ApiError;
use crate::http::respond::AppState;

/// `GET [base]/.well-known/smart-configuration`
pub async fn smart_configuration(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.authenticator.smart_configuration().await {
        None => Err(ApiError::new(
 ErrorCode::NoAuth,
            "This server runs without authorization (auth.mode = none), so it has no SMART configuration.",
        )),
        Some(Err(e)) => Err(ApiError::from(e)),
        Some(Ok(document)) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .body(document.to_string())),
    }
}
