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
    /// Minimum cardinality.
    #[serde(default)]
    pub min: u32,
    /// The value set of a required binding, when it can be expanded ([`value_set`]).
    pub binding: Option<String>,
    /// The resource types a Reference element may point at (its `targetProfile`s); empty
    /// when any type may be.
    #[serde(default)]
    pub targets: Vec<String>,
}

static DEFINITIONS: OnceLock<HashMap<String, ElementDefinition>> = OnceLock::new();

fn definitions() -> &'static HashMap<String, ElementDefinition> {
    DEFINITIONS.get_or_init(|| {
        serde_json::from_str(include_str!("../data/types.json"))
            .expect("the vendored types.json is valid")
    })
}

/// The definition of an element path, if R4 defines it.
pub fn element(path: &str) -> Option<&'static ElementDefinition> {
    definitions().get(path)
}

type Children = HashMap<&'static str, Vec<(&'static str, &'static ElementDefinition)>>;
static CHILDREN: OnceLock<Children> = OnceLock::new();

/// The elements directly under `path` (a resource or data type name, or an element path
/// of a backbone element), by name (`status`, `value[x]`).
pub fn children(path: &str) -> &'static [(&'static str, &'static ElementDefinition)] {
    CHILDREN
        .get_or_init(|| {
            let mut out: Children = HashMap::new();
            for (p, def) in definitions() {
                if let Some((parent, name)) = p.rsplit_once('.') {
                    out.entry(parent).or_default().push((name, def));
                }
            }
            out
        })
        .get(path)
        .map_or(&[], Vec::as_slice)
}

static VALUE_SETS: OnceLock<HashMap<String, Vec<(String, String)>>> = OnceLock::new();

/// The (system, code) pairs of an R4 value set, expanded from the official CodeSystems
/// (`data/valuesets.json`); `None` for a value set that cannot be expanded here.
pub fn value_set(url: &str) -> Option<&'static [(String, String)]> {
    VALUE_SETS
        .get_or_init(|| {
            serde_json::from_str(include_str!("../data/valuesets.json"))
                .expect("the vendored valuesets.json is valid")
        })
        .get(url)
        .map(Vec::as_slice)
}

/// The StructureDefinitions Healthbook ships (`vn/`), as JSON.
pub fn shipped_profiles() -> [&'static str; 2] {
    [
        include_str!("../vn/StructureDefinition-vn-core-patient.json"),
        include_str!("../vn/StructureDefinition-vn-immunization.json"),
    ]
}

/// The OperationDefinitions of the named queries Healthbook ships (`vn/`), as JSON.
pub fn shipped_named_queries() -> [&'static str; 1] {
    [include_str!(
        "../vn/OperationDefinition-covid-19-doses.json"
    )]
}

/// The OperationDefinitions of Healthbook's own operations (`vn/`: the personal QR and
/// its access grants), as JSON.
pub fn shipped_operations() -> [&'static str; 6] {
    [
        include_str!("../vn/OperationDefinition-qr-issue.json"),
        include_str!("../vn/OperationDefinition-qr-revoke.json"),
        include_str!("../vn/OperationDefinition-qr.json"),
        include_str!("../vn/OperationDefinition-qr-resolve.json"),
        include_str!("../vn/OperationDefinition-emergency-access.json"),
        include_str!("../vn/OperationDefinition-consent-revoke.json"),
    ]
}

/// A COVID-19 vaccine of the national campaign (`vn/covid-19-vaccines.json`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vaccine {
    /// Code in http://hl7.org/fhir/sid/cvx.
    pub cvx: String,
    pub name: String,
    /// EU DCC medicinal product.
    pub mp: String,
    /// EU DCC marketing authorisation holder.
    pub ma: String,
    /// Doses of the primary series.
    pub primary_doses: u32,
    /// First authorisation for use anywhere (`YYYY-MM-DD`).
    pub first_authorised: String,
}

/// The COVID-19 vaccines of the campaign.
pub fn covid_vaccines() -> &'static [Vaccine] {
    #[derive(Deserialize)]
    struct Table {
        vaccines: Vec<Vaccine>,
    }
    static VACCINES: OnceLock<Vec<Vaccine>> = OnceLock::new();
    VACCINES.get_or_init(|| {
        serde_json::from_str::<Table>(include_str!("../vn/covid-19-vaccines.json"))
            .expect("the vendored vaccine table is valid")
            .vaccines
    })
}

/// One R4 SearchParameter (search.html), trimmed to what the server evaluates: a standard
/// one, or a custom one defined by a SearchParameter resource of the store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParameter {
    pub code: String,
    pub base: Vec<String>,
    /// number | date | string | token | reference | composite | quantity | uri | special
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    /// FHIRPath over all base types, `|`-separated.
    pub expression: Option<String>,
    #[serde(default)]
    pub target: Vec<String>,
    /// The components of a composite parameter.
    #[serde(default)]
    pub component: Vec<Component>,
}

/// One component of a composite search parameter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Component {
    /// The canonical URL of the component's own SearchParameter.
    pub definition: String,
    /// Its FHIRPath, relative to the composite's expression.
    pub expression: String,
}

impl SearchParameter {
    /// The parts of the expression that apply to `res_type` (`Observation.subject` out of
    /// `AllergyIntolerance.patient | Observation.subject`), as FHIRPath expressions.
    pub fn expressions_for(&self, res_type: &str) -> Vec<&str> {
        let Some(expression) = &self.expression else {
            return Vec::new();
        };
        split_union(expression)
            .into_iter()
            .filter(|part| {
                let part = part.trim_start_matches('(');
                part.strip_prefix(res_type)
                    .is_some_and(|rest| rest.starts_with(['.', ' ', ')']) || rest.is_empty())
            })
            .collect()
    }
}

/// Splits a FHIRPath expression on top-level `|` (outside parentheses and quotes).
pub fn split_union(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in expression.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '|' if !quoted && depth == 0 => {
                parts.push(expression[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(expression[start..].trim());
    parts
}

static SEARCH_PARAMETERS: OnceLock<HashMap<(String, String), SearchParameter>> = OnceLock::new();

fn search_parameters() -> &'static HashMap<(String, String), SearchParameter> {
    SEARCH_PARAMETERS.get_or_init(|| {
        let all: Vec<SearchParameter> =
            serde_json::from_str(include_str!("../data/search-parameters.json"))
                .expect("the vendored search-parameters.json is valid");
        all.into_iter()
            .flat_map(|sp| {
                sp.base
                    .clone()
                    .into_iter()
                    .map(move |base| ((base, sp.code.clone()), sp.clone()))
            })
            .collect()
    })
}

/// The standard search parameter `code` of `res_type` (including those on Resource and
/// DomainResource).
pub fn standard_search_parameter(res_type: &str, code: &str) -> Option<&'static SearchParameter> {
    let params = search_parameters();
    params
        .get(&(res_type.to_owned(), code.to_owned()))
        .or_else(|| params.get(&("DomainResource".to_owned(), code.to_owned())))
        .or_else(|| params.get(&("Resource".to_owned(), code.to_owned())))
}

/// The standard search parameter with this canonical URL.
pub fn search_parameter_by_url(url: &str) -> Option<&'static SearchParameter> {
    search_parameters().values().find(|sp| sp.url == url)
}

type Hierarchies = HashMap<String, HashMap<String, String>>;
static HIERARCHIES: OnceLock<Hierarchies> = OnceLock::new();

/// The R4 code systems whose concepts nest (is-a): system -> code -> parent code.
fn hierarchies() -> &'static Hierarchies {
    HIERARCHIES.get_or_init(|| {
        serde_json::from_str(include_str!("../data/hierarchies.json"))
            .expect("the vendored hierarchies.json is valid")
    })
}

/// The code systems with a hierarchy that have `code` as a concept.
pub fn hierarchies_with(code: &str) -> Vec<&'static str> {
    hierarchies()
        .iter()
        .filter(|(_, parents)| parents.contains_key(code) || parents.values().any(|p| p == code))
        .map(|(system, _)| system.as_str())
        .collect()
}

/// `code` and every code below it in `system`'s hierarchy; empty when the hierarchy or
/// the code is unknown.
pub fn subsumed_by(system: &str, code: &str) -> Vec<String> {
    let Some(parents) = hierarchies().get(system) else {
        return Vec::new();
    };
    if !parents.contains_key(code) && !parents.values().any(|p| p == code) {
        return Vec::new();
    }
    let mut out = vec![code.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].clone();
        out.extend(
            parents
                .iter()
                .filter(|(_, p)| **p == parent)
                .map(|(c, _)| c.clone()),
        );
        i += 1;
    }
    out
}

/// `code` and every code above it in `system`'s hierarchy; empty when the hierarchy or the
/// code is unknown.
pub fn subsuming(system: &str, code: &str) -> Vec<String> {
    let Some(parents) = hierarchies().get(system) else {
        return Vec::new();
    };
    if !parents.contains_key(code) && !parents.values().any(|p| p == code) {
        return Vec::new();
    }
    let mut out = vec![code.to_owned()];
    while let Some(parent) = out.last().and_then(|c| parents.get(c)) {
        if out.contains(parent) {
            break;
        }
        out.push(parent.clone());
    }
    out
}

static BY_TYPE: OnceLock<HashMap<String, Vec<&'static SearchParameter>>> = OnceLock::new();

/// Every standard search parameter that applies to `res_type`, by code: its own and those
/// of DomainResource and Resource (`_id`, `_lastUpdated`, `_tag`, `_profile`...).
pub fn search_parameters_for(res_type: &str) -> &'static [&'static SearchParameter] {
    let by_type = BY_TYPE.get_or_init(|| {
        let mut by_type: HashMap<String, Vec<&'static SearchParameter>> = HashMap::new();
        for ((base, _), sp) in search_parameters() {
            by_type.entry(base.clone()).or_default().push(sp);
        }
        let of = |base: &str| by_type.get(base).cloned().unwrap_or_default();
        let (resource, domain_resource) = (of("Resource"), of("DomainResource"));
        // Every resource type, also those without parameters of their own: Resource's
        // parameters, and DomainResource's for all but Binary, Bundle and Parameters.
        for res_type in elements_by_type().keys() {
            let list = by_type.entry(res_type.clone()).or_default();
            list.extend(resource.iter().copied());
            if !matches!(res_type.as_str(), "Binary" | "Bundle" | "Parameters") {
                list.extend(domain_resource.iter().copied());
            }
        }
        for list in by_type.values_mut() {
            list.sort_by(|a, b| a.code.cmp(&b.code));
        }
        by_type
    });
    by_type
        .get(res_type)
        .or_else(|| by_type.get("Resource"))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

static PATIENT_COMPARTMENT: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();

/// The search parameters that place a `res_type` resource in a Patient's compartment
/// (CompartmentDefinition/patient); `None` when the type is never in one.
pub fn patient_compartment_params(res_type: &str) -> Option<&'static [String]> {
    PATIENT_COMPARTMENT
        .get_or_init(|| {
            serde_json::from_str(include_str!("../data/compartment-patient.json"))
                .expect("the vendored compartment-patient.json is valid")
        })
        .get(res_type)
        .map(Vec::as_slice)
}

static ELEMENTS: OnceLock<HashMap<String, ResourceElements>> = OnceLock::new();

/// The element facts of `resource_type`, if it is an R4 resource type.
pub fn elements(resource_type: &str) -> Option<&'static ResourceElements> {
    elements_by_type().get(resource_type)
}

fn elements_by_type() -> &'static HashMap<String, ResourceElements> {
    ELEMENTS.get_or_init(|| {
        serde_json::from_str(include_str!("../data/elements.json"))
            .expect("the vendored elements.json is valid")
    })
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
    fn search_parameters_by_type() {
        let subject = standard_search_parameter("Observation", "patient").unwrap();
        assert_eq!(subject.kind, "reference");
        assert_eq!(
            subject.expressions_for("Observation"),
            ["Observation.subject.where(resolve() is Patient)"]
        );
        assert_eq!(
            standard_search_parameter("Patient", "_id").unwrap().kind,
            "token"
        );
        assert_eq!(
            standard_search_parameter("Immunization", "patient")
                .unwrap()
                .expressions_for("Immunization"),
            ["Immunization.patient"]
        );
    }

    #[test]
    fn patient_compartment() {
        assert_eq!(
            patient_compartment_params("Immunization").unwrap(),
            ["patient"]
        );
        assert!(patient_compartment_params("Observation")
            .unwrap()
            .iter()
            .any(|p| p == "subject"));
        assert!(patient_compartment_params("Organization").is_none());
    }

    #[test]
    fn union_split_respects_parentheses() {
        assert_eq!(
            split_union("(A.b as X) | A.c.where(x = 'a|b')"),
            ["(A.b as X)", "A.c.where(x = 'a|b')"]
        );
    }

    #[test]
    fn observation_status_is_mandatory() {
        let obs = elements("Observation").unwrap();
        assert!(obs.mandatory.iter().any(|e| e == "status"));
    }
}
