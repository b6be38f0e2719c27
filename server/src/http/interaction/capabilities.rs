//! FHIR capabilities — https://hl7.org/fhir/R4/http.html#capabilities
//!
//! The CapabilityStatement is generated from what this server implements: every R4
//! resource type with the interactions the routes serve. It uses R4 elements only.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::respond::AppState;

/// Interactions served for every resource type (CapabilityStatement.rest.resource.interaction).
pub const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
];

/// `GET [base]/metadata`
pub async fn capabilities(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let mut statement = capability_statement(state.service.base_url());
    let body = repr.render_value(&mut statement)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .body(body))
}

/// The CapabilityStatement of this build, with links under `base_url`.
pub fn capability_statement(base_url: &str) -> Value {
    let resources: Vec<Value> = fhir_format::resource_types()
        .iter()
        .map(|t| {
            json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": TYPE_INTERACTIONS.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "publisher": "Healthbook",
        "kind": "instance",
        "software": {"name": "Healthbook", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Healthbook FHIR R4 personal health record server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "history-system"}],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_statement_is_valid_r4() {
        let statement = capability_statement("http://localhost/fhir");
        let parsed = fhir_format::parse_json(statement.to_string().as_bytes()).expect("valid R4");
        assert_eq!(parsed["rest"][0]["resource"].as_array().unwrap().len(), 146);
    }
}
