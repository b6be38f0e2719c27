//! http.html#ops — https://hl7.org/fhir/R4/http.html#ops (Managing Return Content)
//!
//! "The client can indicate whether the entire resource is returned using the HTTP return
//! preference: `Prefer: return=minimal`, `Prefer: return=representation`,
//! `Prefer: return=OperationOutcome`."

use conformance_tests::*;

fn create_with_prefer(s: &Server, prefer: &str) -> Resp {
    s.req(Method::POST, "Patient")
        .fhir_json(&patient("Prefer"))
        .header("Prefer", prefer)
        .fetch()
}

/// "The first of these asks to return no body" — headers still identify the new version.
#[test]
fn create_return_minimal_has_empty_body() {
    for s in servers() {
        let resp = create_with_prefer(&s, "return=minimal").expect_status(201);
        assert!(
            resp.body.is_empty(),
            "[{}] body: {}",
            s.backend,
            resp.text()
        );
        let location = resp.must_header("location");
        assert!(
            location.starts_with(&format!("{}/Patient/", s.base)),
            "{location}"
        );
        assert_eq!(resp.must_header("etag"), weak_etag("1"));
    }
}

/// "The second asks to return the full resource" (also the default behaviour).
#[test]
fn create_return_representation_has_resource() {
    for s in servers() {
        let body = create_with_prefer(&s, "return=representation")
            .expect_status(201)
            .json();
        assert_eq!(body["resourceType"], "Patient", "[{}] {body}", s.backend);
        assert_eq!(version_of(&body), "1");
        let default = s
            .post("Patient", &patient("Default"))
            .expect_status(201)
            .json();
        assert_eq!(
            default["resourceType"], "Patient",
            "default is representation"
        );
    }
}

/// "The third asks the server to return an OperationOutcome resource containing hints and
/// warnings about the operation rather than the full resource."
#[test]
fn create_return_operation_outcome() {
    for s in servers() {
        let body = create_with_prefer(&s, "return=OperationOutcome")
            .expect_status(201)
            .json();
        assert_eq!(
            body["resourceType"], "OperationOutcome",
            "[{}] {body}",
            s.backend
        );
    }
}

/// The same preferences apply to update.
#[test]
fn update_honours_return_preference() {
    for s in servers() {
        let created = s.create(&patient("Prefer"));
        let path = format!("Patient/{}", id_of(&created));
        let minimal = s
            .req(Method::PUT, &path)
            .fhir_json(&created)
            .header("Prefer", "return=minimal")
            .fetch()
            .expect_status(200);
        assert!(
            minimal.body.is_empty(),
            "[{}] body: {}",
            s.backend,
            minimal.text()
        );
        assert_eq!(minimal.must_header("etag"), weak_etag("2"));

        let outcome = s
            .req(Method::PUT, &path)
            .fhir_json(&created)
            .header("Prefer", "return=OperationOutcome")
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");

        let full = s
            .req(Method::PUT, &path)
            .fhir_json(&created)
            .header("Prefer", "return=representation")
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(full["resourceType"], "Patient", "{full}");
        assert_eq!(version_of(&full), "4");
    }
}

/// The preference also applies to patch (a kind of update).
#[test]
fn patch_honours_return_minimal() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Prefer")));
        let resp = s
            .req(Method::PATCH, &format!("Patient/{id}"))
            .header("Content-Type", JSON_PATCH)
            .header("Prefer", "return=minimal")
            .body(json!([{ "op": "replace", "path": "/gender", "value": "female" }]).to_string())
            .fetch()
            .expect_status(200);
        assert!(
            resp.body.is_empty(),
            "[{}] body: {}",
            s.backend,
            resp.text()
        );
        assert_eq!(s.read("Patient", &id)["gender"], "female");
    }
}
