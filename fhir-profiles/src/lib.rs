//! R4 definitions Healthbook uses, vendored from the official FHIR 4.0.1 package
//! (`shared/fhir-r4/profiles-resources.json`, HL7, CC0; see `fhir-profiles/README.md`).
//!
//! - per resource type, its summary elements (`isSummary`, search.html#summary) and its
//!   mandatory top-level elements (min ≥ 1, which `_elements` keeps, search.html#elements);
//! - per element path of every resource and data type, its types, max cardinality and
//!   content reference (what the structural checks walk).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// Top-level element facts of one resource type.
#[derive(Debug, Deserialize)]
pub struct ResourceElements {
    /// Elements marked `isSummary`, choice elements written as `value[x]`.
    pub summary: Vec<String>,
    /// Elements with minimum cardinality 1.
    pub mandatory: Vec<String>,
}

impl ResourceElements {
    /// Whether the JSON property `name` (e.g. `deceasedBoolean`) is one of `elements`.
    pub fn contains(elements: &[String], name: &str) -> bool {
        elements.iter().any(|e| match e.strip_suffix("[x]") {
            Some(stem) => name
                .strip_prefix(stem)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase())),
            None => e == name,
        })
    }
}

/// The definition of one element path (`Patient.birthDate`, `HumanName.given`).
#[derive(Debug, Deserialize)]
pub struct ElementDefinition {
    /// `1` or `*` (or another number).
    pub max: String,
    /// Type codes; several for a choice element `x[x]`; `System.String` etc. for the
    /// primitive values of the FHIRPath system types.
    #[serde(default)]
    pub types: Vec<String>,
    /// For elements defined by reference to another (`Questionnaire.item.item`), that path.
    #[serde(rename = "ref")]
    pub content_reference: Option<String>,
}

static DEFINITIONS: OnceLock<HashMap<String, ElementDefinition>> = OnceLock::new();

/// The definition of an element path, if R4 defines it.
pub fn element(path: &str) -> Option<&'static ElementDefinition> {
    DEFINITIONS
        .get_or_init(|| {
            serde_json::from_str(include_str!("../data/types.json"))
                .expect("the vendored types.json is valid")
        })
        .get(path)
}

static ELEMENTS: OnceLock<HashMap<String, ResourceElements>> = OnceLock::new();

/// The element facts of `resource_type`, if it is an R4 resource type.
pub fn elements(resource_type: &str) -> Option<&'static ResourceElements> {
    ELEMENTS
        .get_or_init(|| {
            serde_json::from_str(include_str!("../data/elements.json"))
                .expect("the vendored elements.json is valid")
        })
        .get(resource_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_summary_includes_choice_elements() {
        let patient = elements("Patient").unwrap();
        assert!(ResourceElements::contains(
            &patient.summary,
            "deceasedBoolean"
        ));
        assert!(ResourceElements::contains(&patient.summary, "birthDate"));
        assert!(!ResourceElements::contains(&patient.summary, "photo"));
        assert!(!ResourceElements::contains(&patient.summary, "deceased"));
    }

    #[test]
    fn element_definitions() {
        assert_eq!(element("Patient.birthDate").unwrap().types, ["date"]);
        assert_eq!(element("HumanName.given").unwrap().max, "*");
        assert_eq!(
            element("Questionnaire.item.item")
                .unwrap()
                .content_reference
                .as_deref(),
            Some("Questionnaire.item")
        );
        assert!(element("Observation.value[x]").unwrap().types.len() > 5);
        assert!(element("Patient.nickname").is_none());
    }

    #[test]
    fn observation_status_is_mandatory() {
        let obs = elements("Observation").unwrap();
        assert!(obs.mandatory.iter().any(|e| e == "status"));
    }
}
