//! FHIR capabilities — https://hl7.org/fhir/R4/http.html#capabilities
//!
//! The CapabilityStatement is generated from what this server implements: every R4
//! resource type with the interactions and operations of the route table
//! (`http/routes.rs`). It uses R4 elements only.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::format::Representation;
use crate::http::respond::AppState;
use crate::http::routes::{offered, Offers};
use crate::service::search_parameters::Registry;

/// `GET [base]/metadata`
pub async fn capabilities(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let repr = Representation::negotiate(&req)?;
    let mut statement =
        capability_statement(state.service.base_url(), state.service.search_parameters());
    if let Some(Ok(smart)) = state.authenticator.smart_configuration().await {
        statement["rest"][0]["security"] = security(&smart);
    }
    let body = repr.render_value(&mut statement)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, repr.content_type()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(body))
}

/// `rest.security` for SMART on FHIR: the service coding and the `oauth-uris` extension
/// (SMART App Launch conformance.html, for SMART 1.0 clients), from the SMART
/// configuration.
fn security(smart: &Value) -> Value {
    let uri = |name: &str, key: &str| {
        smart[key]
            .as_str()
            .map(|url| json!({"url": name, "valueUri": url}))
    };
    let uris: Vec<Value> = [
        uri("authorize", "authorization_endpoint"),
        uri("token", "token_endpoint"),
        uri("introspect", "introspection_endpoint"),
        uri("revoke", "revocation_endpoint"),
    ]
    .into_iter()
    .flatten()
    .collect();
    json!({
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": uris,
        }],
        "cors": true,
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }],
            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
        }],
    })
}

/// The CapabilityStatement of this build, with links under `base_url`.
pub fn capability_statement(base_url: &str, parameters: &Registry) -> Value {
    // What the route table offers, read once for every type.
    let offers: Vec<Offers> = offered().collect();
    let of_kind = |pick: fn(&Offers) -> Option<&'static str>| -> Vec<Value> {
        offers
            .iter()
            .filter_map(pick)
            .map(|code| json!({"code": code}))
            .collect()
    };
    let type_interactions = of_kind(|o| match o {
        Offers::Type(code) => Some(code),
        _ => None,
    });
    let system_interactions = of_kind(|o| match o {
        Offers::System(code) => Some(code),
        _ => None,
    });
    let resources: Vec<Value> = fhir_format::resource_types()
        .iter()
        .map(|t| {
            let mut resource = json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": type_interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchInclude": includes(parameters, t),
                "searchRevInclude": ["*"],
                "searchParam": crate::service::search::supported_parameters(parameters, t)
                    .iter()
                    .map(|sp| json!({"name": sp.code, "definition": sp.url, "type": sp.kind}))
                    .collect::<Vec<_>>(),
            });
            let mut operations: Vec<Value> = offers
                .iter()
                .filter_map(|o| match *o {
                    Offers::Operation {
                        name,
                        definition,
                        on,
                    } if on.is_none_or(|on| on == *t) => {
                        Some(json!({"name": name, "definition": definition}))
                    }
                    _ => None,
                })
                .collect();
            // Named queries (search.html#query) are listed as operations of their type.
            for query in crate::service::search::named::named_queries(t) {
                operations.push(json!({"name": query.code, "definition": query.definition}));
            }
            resource["operation"] = Value::Array(operations);
            let profiles: Vec<String> = crate::service::validate::vn::profiles_for(t)
                .iter()
                .map(|p| p.url())
                .collect();
            if !profiles.is_empty() {
                resource["supportedProfile"] = json!(profiles);
            }
            resource
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
            "interaction": system_interactions,
        }],
    })
}

/// `_include` values of a type: `[type]:*` and each reference parameter.
fn includes(parameters: &Registry, res_type: &str) -> Vec<String> {
    let mut out = vec![format!("{res_type}:*")];
    out.extend(
        crate::service::search::supported_parameters(parameters, res_type)
            .iter()
            .filter(|sp| sp.kind == "reference")
            .map(|sp| format!("{res_type}:{}", sp.code)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_statement_is_valid_r4() {
        let statement = capability_statement("http://localhost/fhir", &Registry::default());
        let parsed = fhir_format::parse_json(statement.to_string().as_bytes()).expect("valid R4");
        assert_eq!(parsed["rest"][0]["resource"].as_array().unwrap().len(), 146);
        let patient = parsed["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Patient")
            .unwrap();
        let names: Vec<&str> = patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for expected in [
            "identifier",
            "name",
            "family",
            "birthdate",
            "phone",
            "_id",
            "_lastUpdated",
            "_tag",
            "_text",
            "_content",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert!(!names.contains(&"_query"), "no named queries are defined");
    }

    #[test]
    fn smart_security_section_is_valid_r4() {
        let mut statement = capability_statement("http://localhost/fhir", &Registry::default());
        statement["rest"][0]["security"] = security(&json!({
            "authorization_endpoint": "http://idp/auth",
            "token_endpoint": "http://idp/token",
            "introspection_endpoint": "http://idp/token/introspection",
        }));
        let parsed = fhir_format::parse_json(statement.to_string().as_bytes()).expect("valid R4");
        let uris = &parsed["rest"][0]["security"]["extension"][0]["extension"];
        assert_eq!(uris.as_array().unwrap().len(), 3);
        assert_eq!(
            parsed["rest"][0]["security"]["service"][0]["coding"][0]["code"],
            "SMART-on-FHIR"
        );
    }
}
