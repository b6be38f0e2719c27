//! FHIR batch — https://hl7.org/fhir/R4/http.html#transaction
//!
//! `POST [base]` takes a Bundle of type `batch` or `transaction`; this file reads and
//! checks it for both and runs a batch (each entry on its own: a failed entry has its own
//! status and OperationOutcome); a transaction goes to `transaction.rs`.
//!
//! The answer is a `batch-response` or `transaction-response` Bundle with one entry per
//! request entry, in order (bundle.html#transaction-response): `response.status`,
//! `location`, `etag` and `lastModified`, and the resource (or an OperationOutcome in
//! `response.outcome`) as `Prefer: return` asks.
//!
//! Limits (`[bundle]`): a body over `body_limit_bytes` or more than `max_entries` entries
//! is a 413 before any entry is processed.

use crate::service::ErrorCode;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::format::{parse_resource, Representation};
use crate::http::headers::{language, prefer_return, PreferReturn};
use crate::http::respond::{
    read_body, write_outcome, AppState, AuditTarget, BundleAudit, EntryAudit,
};
use crate::service::entry::{EntryOutcome, EntryResult};
use crate::service::validate::Language;
use crate::service::{instant, Access, BundleWriter};

/// `POST [base]` and `POST [base]/`
pub async fn batch(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate_bundle(&req)?;
    let body = read_body(payload, state.bundle.body_limit_bytes).await?;
    let bundle = parse_resource(&req, &body)?;
    let transaction = match (
        bundle["resourceType"].as_str(),
        bundle.get("type").and_then(Value::as_str),
    ) {
        (Some("Bundle"), Some("transaction")) => true,
        (Some("Bundle"), Some("batch")) => false,
        (Some("Bundle"), _) => {
            return Err(ApiError::new(
                ErrorCode::BundleType,
                "POST to the FHIR base takes a Bundle of type batch or transaction.",
            )
            .at(Some("Bundle.type".into())))
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::BundleType,
                "POST to the FHIR base takes a Bundle of type batch or transaction; to create a resource, POST it to [base]/[type].",
            ))
        }
    };
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if entries > state.bundle.max_entries {
        return Err(ApiError::new(
            ErrorCode::TooManyEntries,
            format!(
                "The Bundle has {entries} entries; this server takes at most {} in one Bundle.",
                state.bundle.max_entries
            ),
        )
        .at(Some("Bundle.entry".into())));
    }
    if transaction {
        return super::transaction::transaction(&req, &access, &state, &bundle, &repr).await;
    }
    let results = state.service.batch(&access, &bundle).await?;
    answer(&req, &state, &repr, results, false)
}

/// The response Bundle of a batch or transaction, with the audit of each entry.
///
/// # Errors
/// Rendering failures.
pub(super) fn answer(
    req: &HttpRequest,
    state: &AppState,
    repr: &Representation,
    results: Vec<EntryResult>,
    transaction: bool,
) -> Result<HttpResponse, ApiError> {
    let service = &state.service;
    let response_type = if transaction {
        "transaction-response"
    } else {
        "batch-response"
    };
    let prefer = prefer_return(req);
    let language = language(req, state.language);
    let mut writer = BundleWriter::new(response_type, None, &[]);
    let mut audit = Vec::with_capacity(results.len());
    for result in results {
        audit.push(write_entry(
            &mut writer,
            result,
            (prefer, language),
            service.base_url(),
        ));
    }
    let body = repr.render(&writer.finish())?;
    let mut response = HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body);
    response.extensions_mut().insert(BundleAudit {
        transaction,
        entries: audit,
    });
    Ok(response)
}

/// Writes one response entry; returns what its AuditEvent records.
fn write_entry(
    writer: &mut BundleWriter,
    result: EntryResult,
    (prefer, language): (PreferReturn, Language),
    base_url: &str,
) -> EntryAudit {
    let EntryResult {
        interaction,
        res_type,
        result,
    } = result;
    let mut audit = EntryAudit {
        interaction,
        res_type,
        target: None,
        status: 200,
    };
    match result {
        Ok(EntryOutcome::Written(w)) => {
            let r = &w.resource;
            let status = if w.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = json!({
                "status": status_line(status),
                "location": format!("{}/{}/_history/{}", r.res_type, r.id, r.version_id),
                "etag": r.etag(),
                "lastModified": instant(r.last_updated),
            });
            // Warnings are always reported (Bundle.entry.response.outcome: "hints and
            // warnings produced as part of processing this entry").
            if prefer == PreferReturn::OperationOutcome || !w.issues.is_empty() {
                response["outcome"] = write_outcome(&w, language);
            }
            let resource = match prefer {
                PreferReturn::Representation => r.content.as_deref(),
                PreferReturn::Minimal | PreferReturn::OperationOutcome => None,
            };
            let full_url = format!("{base_url}/{}/{}", r.res_type, r.id);
            writer.entry(Some(&full_url), resource, &[("response", response)]);
            audit.status = status.as_u16();
            audit.target = Some(AuditTarget::of(r));
        }
        Ok(EntryOutcome::Deleted(version)) => {
            let mut response = json!({ "status": status_line(StatusCode::NO_CONTENT) });
            if let Some(v) = version {
                response["etag"] = json!(format!("W/\"{v}\""));
            }
            writer.entry(None, None, &[("response", response)]);
            audit.status = 204;
        }
        Ok(EntryOutcome::Resource(r)) => {
            let full_url = format!("{base_url}/{}/{}", r.res_type, r.id);
            let response = json!({
                "status": status_line(StatusCode::OK),
                "etag": r.etag(),
                "lastModified": instant(r.last_updated),
            });
            writer.entry(
                Some(&full_url),
                r.content.as_deref(),
                &[("response", response)],
            );
            audit.target = Some(AuditTarget::of(&r));
        }
        Ok(EntryOutcome::Bundle(searchset)) => {
            let response = json!({ "status": status_line(StatusCode::OK) });
            writer.entry(None, Some(&searchset), &[("response", response)]);
        }
        Err(e) => {
            let error = ApiError::from(e);
            let response = json!({
                "status": status_line(error.status()),
                "outcome": error.outcome_in(language),
            });
            writer.entry(None, None, &[("response", response)]);
            audit.status = error.status().as_u16();
        }
    }
    audit
}

/// `201 Created`, as `Bundle.entry.response.status` carries it.
fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}
