//! FHIR transaction — https://hl7.org/fhir/R4/http.html#transaction
//!
//! A Bundle of type `transaction` posted to `[base]` (read and checked in `batch.rs`):
//! every entry succeeds or none does ("if any resource operations fail, the entire set of
//! changes SHALL fail"), in the order http.html#trules gives (DELETE, POST, PUT/PATCH, GET
//! /HEAD), with `urn:uuid:` references rewritten to the resources made
//! (docs/BUNDLES.md). A failure is one OperationOutcome naming the entry; success is a
//! `transaction-response` Bundle.

use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::respond::AppState;
use crate::service::Access;

/// Runs the transaction `bundle` and answers it.
///
/// # Errors
/// The OperationOutcome of the failed entry (nothing is written), rendering failures.
pub(super) async fn transaction(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
    bundle: &Value,
    repr: &Representation,
) -> Result<HttpResponse, ApiError> {
    let results = state.service.transaction(access, bundle).await?;
    super::batch::answer(req, state, repr, results, true)
}
