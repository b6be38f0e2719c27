//! json.html — https://hl7.org/fhir/R4/json.html
//!
//! The JSON representation rules; a server rejects bodies that break them with 400 Bad
//! Request ("resource could not be parsed or failed basic FHIR validation rules",
//! http.html#create) and an OperationOutcome that locates the problem.

use conformance_tests::*;

/// POSTs a raw JSON text as a Patient and returns the OperationOutcome of the 400.
fn reject(s: &Server, body: &str) -> Value {
    s.req(Method::POST, "Patient")
        .header("Content-Type", FHIR_JSON)
        .header("Accept", FHIR_JSON)
        .body(body.to_owned())
        .fetch()
        .expect_error(400)
}

/// Repeating elements are represented as JSON arrays that, when present, hold at least
/// one item: an empty array is not a valid representation (json.html, and ele-1 "All
/// FHIR elements must have a @value or children").
#[test]
fn empty_array_is_rejected_with_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","name":[]}"#);
        assert_issue_path(&oo, "Patient.name");
    }
}

/// json.html#primitive: "boolean — JSON boolean (true or false)"; a string is invalid.
#[test]
fn wrong_primitive_type_is_rejected_with_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","active":"true"}"#);
        assert_issue_path(&oo, "Patient.active");
    }
}

/// Only the properties defined for the resource (or `_`-prefixed primitive extensions)
/// may appear; an unknown property is an error.
#[test]
fn unknown_element_is_rejected_with_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","foo":1}"#);
        assert_issue_path(&oo, "Patient.foo");
    }
}

/// json.html (primitive values): `null` only appears inside primitive arrays to align
/// them with their `_element` extensions; a null property value is invalid.
#[test]
fn null_value_is_rejected_with_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","gender":null}"#);
        assert_issue_path(&oo, "Patient.gender");
    }
}

/// An empty object carries neither value nor children, violating ele-1 "All FHIR elements
/// must have a @value or children".
#[test]
fn empty_object_is_rejected() {
    for s in servers() {
        reject(&s, r#"{"resourceType":"Patient","name":[{}]}"#);
    }
}

/// A single value where the element is repeating (arrays are mandatory for `0..*`).
#[test]
fn object_instead_of_array_is_rejected_with_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","name":{"family":"X"}}"#);
        assert_issue_path(&oo, "Patient.name");
    }
}

/// Text that is not JSON at all: "resource could not be parsed".
#[test]
fn malformed_json_is_rejected() {
    for s in servers() {
        reject(&s, r#"{"resourceType":"Patient","#);
        reject(&s, "not json");
        reject(&s, "");
    }
}

/// A resource in JSON is an object whose `resourceType` property names its type; anything
/// else is not a resource.
#[test]
fn missing_resource_type_is_rejected() {
    for s in servers() {
        reject(&s, r#"{"active":true}"#);
        reject(&s, r#"[{"resourceType":"Patient"}]"#);
    }
}

/// Primitive lexical rules (datatypes.html#date): an impossible date is invalid.
#[test]
fn invalid_date_is_rejected_with_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","birthDate":"1990-13-45"}"#);
        assert_issue_path(&oo, "Patient.birthDate");
    }
}

/// Nested paths are reported with the FHIRPath of the offending element.
#[test]
fn nested_error_reports_nested_path() {
    for s in servers() {
        let oo = reject(&s, r#"{"resourceType":"Patient","name":[{"family":42}]}"#);
        let text = oo.to_string();
        assert!(
            text.contains("Patient.name[0].family") || text.contains("Patient.name.family"),
            "[{}] path not reported: {oo}",
            s.backend
        );
    }
}

/// Invalid bodies are rejected for update too.
#[test]
fn invalid_update_body_is_rejected_with_path() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Valid")));
        let oo = s
            .req(Method::PUT, &format!("Patient/{id}"))
            .header("Content-Type", FHIR_JSON)
            .body(format!(
                r#"{{"resourceType":"Patient","id":"{id}","active":"yes"}}"#
            ))
            .fetch()
            .expect_error(400);
        assert_issue_path(&oo, "Patient.active");
        assert_eq!(version_of(&s.read("Patient", &id)), "1", "[{}]", s.backend);
    }
}

/// Structure errors are said in the language of `Accept-Language` (Vietnamese or English;
/// otherwise `validation.language`), like validation issues (docs/VALIDATION.md), with the
/// same code and location in each, in a single resource and in a Bundle.
#[test]
fn structure_errors_follow_accept_language() {
    for s in servers() {
        let body = r#"{"resourceType": "Patient", "gender": "male", "shoeSize": 42}"#;
        let text = |language: &str| {
            let outcome = s
                .req(Method::POST, "Patient")
                .header("Content-Type", FHIR_JSON)
                .header("Accept", FHIR_JSON)
                .header("Accept-Language", language)
                .body(body.to_owned())
                .fetch()
                .expect_error(400);
            let issue = &outcome["issue"][0];
            assert_eq!(issue["details"]["coding"][0]["code"], "HB-FORMAT");
            assert_eq!(issue["expression"][0], "Patient.shoeSize", "{outcome}");
            issue["details"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let vi = text("vi");
        let en = text("en-GB, vi;q=0.5");
        assert!(
            en.contains("not a known element"),
            "[{}] en: {en}",
            s.backend
        );
        assert!(
            vi.contains("không phải là phần tử"),
            "[{}] vi: {vi}",
            s.backend
        );
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [{
            "request": {"method": "POST", "url": "Patient"},
            "resource": {"resourceType": "Patient", "birthDate": "2021-02-30"},
        }]});
        // The Bundle is read as a whole, so a malformed entry makes the whole POST a 400.
        let outcome = s
            .req(Method::POST, "")
            .fhir_json(&batch)
            .header("Accept-Language", "vi")
            .fetch()
            .expect_error(400);
        assert_eq!(
            outcome["issue"][0]["expression"][0],
            "Bundle.entry[0].resource.birthDate"
        );
        let said = outcome["issue"][0]["details"]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            said.contains("không phải là date hợp lệ"),
            "[{}] batch vi: {outcome}",
            s.backend
        );
    }
}
