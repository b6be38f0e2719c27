//! http.html#capabilities — https://hl7.org/fhir/R4/http.html#capabilities
//!
//! "Servers SHALL provide a Capability Statement that specifies which interactions and
//! resources are supported." `GET [base]/metadata` returns it.

use conformance_tests::*;

fn metadata(s: &Server) -> Value {
    let resp = s.get("metadata").expect_status(200);
    resp.assert_fhir_json();
    resp.json()
}

/// The capabilities interaction "retrieves the information about a server's capabilities";
/// a server describes its actual end-point, i.e. CapabilityStatement.kind `instance`.
#[test]
fn metadata_returns_capability_statement() {
    for s in servers() {
        let cs = metadata(&s);
        assert_eq!(
            cs["resourceType"], "CapabilityStatement",
            "[{}] {cs}",
            s.backend
        );
        assert_eq!(cs["kind"], "instance", "{cs}");
        assert!(cs["status"].is_string(), "status is 1..1: {cs}");
        assert!(cs["date"].is_string(), "date is 1..1: {cs}");
    }
}

/// CapabilityStatement.fhirVersion (1..1) states the FHIR version the server implements,
/// which for R4 is `4.0.1`.
#[test]
fn metadata_declares_fhir_version_4_0_1() {
    for s in servers() {
        let cs = metadata(&s);
        assert_eq!(cs["fhirVersion"], "4.0.1", "[{}] {cs}", s.backend);
    }
}

/// CapabilityStatement.format (1..*): the supported mime types include JSON and XML.
#[test]
fn metadata_lists_json_and_xml_formats() {
    for s in servers() {
        let cs = metadata(&s);
        let formats: Vec<String> = cs["format"]
            .as_array()
            .unwrap_or_else(|| panic!("format missing: {cs}"))
            .iter()
            .filter_map(|f| f.as_str().map(str::to_ascii_lowercase))
            .collect();
        assert!(
            formats.iter().any(|f| f.contains("json")),
            "[{}] {formats:?}",
            s.backend
        );
        assert!(
            formats.iter().any(|f| f.contains("xml")),
            "[{}] {formats:?}",
            s.backend
        );
    }
}

/// rest.mode `server`, and Patient lists every interaction the server implements.
#[test]
fn metadata_lists_patient_interactions() {
    for s in servers() {
        let cs = metadata(&s);
        let rest = &cs["rest"][0];
        assert_eq!(rest["mode"], "server", "[{}] {cs}", s.backend);
        let patient = rest["resource"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["type"] == "Patient"))
            .unwrap_or_else(|| panic!("Patient not in rest[0].resource: {cs}"));
        let codes: Vec<&str> = patient["interaction"]
            .as_array()
            .map(|is| is.iter().filter_map(|i| i["code"].as_str()).collect())
            .unwrap_or_default();
        for expected in [
            "read",
            "vread",
            "update",
            "patch",
            "delete",
            "history-instance",
            "history-type",
            "create",
        ] {
            assert!(
                codes.contains(&expected),
                "Patient lacks {expected}: {codes:?}"
            );
        }
    }
}

/// The capability statement is also available as XML (`_format=xml`).
#[test]
fn metadata_in_xml() {
    for s in servers() {
        let resp = s
            .req(Method::GET, "metadata")
            .query(&[("_format", "xml")])
            .fetch()
            .expect_status(200);
        let text = resp.text();
        assert!(
            text.contains("<CapabilityStatement xmlns=\"http://hl7.org/fhir\""),
            "[{}] {text}",
            s.backend
        );
    }
}

/// capabilitystatement.html: system interactions `transaction` and `batch`, the Patient
/// `$everything` and `$validate` operations with their canonical definitions, and the
/// profiles shipped (`supportedProfile`).
#[test]
fn metadata_lists_bundles_operations_and_profiles() {
    for s in servers() {
        let cs = metadata(&s);
        let system: Vec<&str> = cs["rest"][0]["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["code"].as_str())
            .collect();
        assert!(system.contains(&"transaction") && system.contains(&"batch"));
        let patient = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Patient")
            .unwrap();
        let operations: Vec<&str> = patient["operation"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["definition"].as_str())
            .collect();
        assert!(operations.contains(&"http://hl7.org/fhir/OperationDefinition/Patient-everything"));
        assert!(operations.contains(&"http://hl7.org/fhir/OperationDefinition/Resource-validate"));
        assert_eq!(
            patient["supportedProfile"][0],
            "https://healthbook.example.org/fhir/StructureDefinition/vn-core-patient"
        );
    }
}
