//! `POST [base]` — https://hl7.org/fhir/R4/http.html#transaction
//!
//! The FHIR base accepts only batch and transaction Bundles. Processing them is the next
//! issue's work; until then every body is answered with a clear OperationOutcome.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::respond::{read_resource, AppState};

/// `POST [base]` and `POST [base]/`
pub async fn batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let resource = read_resource(&req, payload, state.body_limit).await?;
    match (resource["resourceType"].as_str(), resource.get("type").and_then(Value::as_str)) {
        (Some("Bundle"), Some("batch" | "transaction")) => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not-supported",
            "HB-NOT-IMPLEMENTED",
            "Batch and transaction Bundles are not processed by this server version yet.",
        )),
        (Some("Bundle"), _) => Err(ApiError::bad_request(
            "POST to the FHIR base takes a Bundle of type batch or transaction.",
        )
        .at(Some("Bundle.type".into()))),
        _ => Err(ApiError::bad_request(
            "POST to the FHIR base takes a Bundle of type batch or transaction; to create a resource, POST it to [base]/[type].",
        )),
    }
}
