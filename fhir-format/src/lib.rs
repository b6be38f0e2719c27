//! FHIR R4 JSON and XML behind plain, non-generic functions.
//!
//! fhirbolt is used through its generic element model (`Element<R4>`), never its typed
//! structs: the element model knows the R4 element names, their order, their types and
//! which repeat from compact tables, while the typed model instantiates serde code for
//! every element of every resource (one release build of this crate took 15 minutes on 2
//! cores and most of a 280 MB binary). Structure the typed model checked beyond element
//! names is checked here (`primitive`: one type per choice element) and by the validator
//! (`service/validate/base.rs`: minimum cardinality). The functions here also close the
//! gaps fhirbolt 0.4
//! leaves against <https://hl7.org/fhir/R4/json.html>: it panics on empty arrays, silently
//! converts `"true"` to `true`, keeps arrays given for single values, and reports unknown
//! elements without a location. Every rejection here carries the FHIRPath-style location of
//! the offending element (`Patient.name[0].given`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use fhirbolt::element::Element;
use fhirbolt::FhirReleases;
use serde_json::Value;

mod check;
mod locate;
mod primitive;
mod xhtml;
mod xml;

pub use xhtml::{check_narrative, NarrativeProblem};

/// Why a resource body was rejected, with where, in English and in Vietnamese (the
/// server answers in the language of `Accept-Language`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    /// Location of the offending element as a FHIRPath-like expression, when known.
    pub path: Option<String>,
    /// A sentence describing what is wrong, in English.
    pub message: String,
    /// The same sentence in Vietnamese.
    pub message_vi: String,
}

impl FormatError {
    fn at(path: impl Into<String>, en: impl Into<String>, vi: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            message: en.into(),
            message_vi: vi.into(),
        }
    }

    fn general(en: impl Into<String>, vi: impl Into<String>) -> Self {
        Self {
            path: None,
            message: en.into(),
            message_vi: vi.into(),
        }
    }
}

/// Parses a FHIR JSON resource strictly and returns it in canonical form: the elements of
/// the R4 model in their standard order, exactly the values the client sent.
///
/// # Errors
/// A [`FormatError`] when the body is not JSON, is not a FHIR R4 resource, or uses JSON that
/// json.html forbids (empty arrays/objects/strings, misplaced nulls, strings for numbers or
/// booleans, arrays for single values, unknown elements, modifier extensions).
pub fn parse_json(bytes: &[u8]) -> Result<Value, FormatError> {
    let input: Value = check::parse_without_duplicate_keys(bytes)?;
    let resource_type = check::resource_type(&input)?.to_owned();
    check::json_rules(&input, &resource_type)?;
    let resource = model_from_json(input.clone(), &resource_type)?;
    let canonical = model_to_json(resource)?;
    check::same_content(&input, &canonical, &resource_type)?;
    primitive::check(&canonical, &resource_type)?;
    Ok(canonical)
}

/// Brings a resource assembled by the server (a patch result) into canonical form: the
/// json.html rules are checked, and the R4 model puts single values of repeating elements
/// into arrays and orders the elements.
///
/// # Errors
/// A [`FormatError`] when the resource is not valid FHIR R4.
pub fn normalize(resource: Value) -> Result<Value, FormatError> {
    // A patch can nest values deeper than any body may (each adds up to the parse depth),
    // and the stored resource must read back.
    let depth = check::depth(&resource);
    if depth > check::MAX_DEPTH {
        return Err(FormatError::general(
            format!(
                "The resource nests {depth} levels deep; at most {} are allowed.",
                check::MAX_DEPTH
            ),
            format!(
                "Tài nguyên lồng {depth} cấp; tối đa {} cấp.",
                check::MAX_DEPTH
            ),
        ));
    }
    let resource_type = check::resource_type(&resource)?.to_owned();
    check::json_rules(&resource, &resource_type)?;
    let model = model_from_json(resource, &resource_type)?;
    let canonical = model_to_json(model)?;
    primitive::check(&canonical, &resource_type)?;
    Ok(canonical)
}

/// Parses a FHIR XML resource strictly and returns it as canonical FHIR JSON.
///
/// # Errors
/// A [`FormatError`] when the body is not well-formed FHIR R4 XML.
pub fn parse_xml(bytes: &[u8]) -> Result<Value, FormatError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        FormatError::general(
            "The XML body is not valid UTF-8.",
            "Nội dung XML không phải là UTF-8 hợp lệ.",
        )
    })?;
    xml::check_shape(text)?;
    let parsed =
        catch_unwind(|| fhirbolt::xml::from_str::<Resource>(text, None)).map_err(|_| {
            FormatError::general(
                "The XML body could not be read as a FHIR resource.",
                "Không đọc được nội dung XML như một tài nguyên FHIR.",
            )
        })?;
    let resource = parsed.map_err(|e| {
        FormatError::general(
            format!("Invalid FHIR XML: {e}."),
            format!("XML FHIR không hợp lệ: {e}."),
        )
    })?;
    // xml.html: elements appear in the documented order; fhirbolt reads them in any. Its
    // writer panics on some models its reader makes of broken input (found by fuzzing).
    let canonical = catch_unwind(|| fhirbolt::xml::to_string(&resource, None))
        .map_err(|_| {
            FormatError::general(
                "The XML body could not be read as a FHIR resource.",
                "Không đọc được nội dung XML như một tài nguyên FHIR.",
            )
        })?
        .map_err(|e| {
            FormatError::general(
                format!("Invalid FHIR XML: {e}."),
                format!("XML FHIR không hợp lệ: {e}."),
            )
        })?;
    xml::check_order(text, &canonical)?;
    let json = model_to_json(resource)?;
    let resource_type = check::resource_type(&json)?.to_owned();
    check::json_rules(&json, &resource_type)?;
    primitive::check(&json, &resource_type)?;
    Ok(json)
}

/// Serialises a stored (already valid) FHIR JSON resource as FHIR XML.
///
/// # Errors
/// A [`FormatError`] if the JSON is not a valid R4 resource (never for stored content).
pub fn json_to_xml(value: &Value) -> Result<String, FormatError> {
    let resource_type = check::resource_type(value)?.to_owned();
    let resource = model_from_json(value.clone(), &resource_type)?;
    let written = catch_unwind(|| fhirbolt::xml::to_string(&resource, None)).map_err(|_| {
        FormatError::general(
            "The resource cannot be written as XML.",
            "Không thể ghi tài nguyên dưới dạng XML.",
        )
    })?;
    written.map_err(|e| {
        FormatError::general(
            format!("The resource cannot be written as XML: {e}."),
            format!("Không thể ghi tài nguyên dưới dạng XML: {e}."),
        )
    })
}

/// Whether `name` is a resource type of FHIR R4 (as known to the R4 model).
pub fn is_resource_type(name: &str) -> bool {
    resource_types().binary_search(&name).is_ok()
}

/// Every R4 resource type, sorted.
pub fn resource_types() -> &'static [&'static str] {
    RESOURCE_TYPES
}

/// A resource in fhirbolt's generic element model of R4.
type Resource = Element<{ FhirReleases::R4 }>;

fn model_from_json(mut value: Value, resource_type: &str) -> Result<Resource, FormatError> {
    resource_type_first(&mut value);
    // fhirbolt 0.4 panics on some inputs (empty arrays); `check::json_rules` rejects those
    // first, and the unwind guard turns anything else into a 400 instead of a dead worker.
    let located = value.clone();
    let result = catch_unwind(AssertUnwindSafe(move || {
        fhirbolt::json::from_json_value::<Resource>(value, None)
    }))
    .map_err(|_| {
        FormatError::general(
            "The body could not be read as a FHIR resource.",
            "Không đọc được nội dung như một tài nguyên FHIR.",
        )
    })?;
    result.map_err(|e| {
        let mut error = locate::explain(&e.to_string(), &located, resource_type);
        if error.path.is_none() {
            error.path = locate::by_elimination(&located, resource_type, |candidate| {
                catch_unwind(AssertUnwindSafe(|| {
                    fhirbolt::json::from_json_value::<Resource>(candidate, None)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }))
                .unwrap_or_else(|_| Err("panic".into()))
            });
        }
        error
    })
}

/// The element model learns which resource an object is from its `resourceType` and checks
/// the names that follow it, so every resource (contained ones and Bundle entries too) must
/// name its type first; JSON object order carries no meaning (json.html).
fn resource_type_first(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.keys().next().is_some_and(|k| k != "resourceType") {
                if let Some(name) = map.remove("resourceType") {
                    let rest = std::mem::take(map);
                    map.insert("resourceType".to_owned(), name);
                    map.extend(rest);
                }
            }
            map.values_mut().for_each(resource_type_first);
        }
        Value::Array(items) => items.iter_mut().for_each(resource_type_first),
        _ => {}
    }
}

fn model_to_json(resource: Resource) -> Result<Value, FormatError> {
    fhirbolt::json::to_json_value(resource, None).map_err(|e| {
        FormatError::general(
            format!("The resource cannot be written as JSON: {e}."),
            format!("Không thể ghi tài nguyên dưới dạng JSON: {e}."),
        )
    })
}

const RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

#[cfg(test)]
mod tests;
