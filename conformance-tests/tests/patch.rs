//! http.html#patch — https://hl7.org/fhir/R4/http.html#patch
//!
//! JSON Patch (`application/json-patch+json`) against a resource instance.

use conformance_tests::*;

/// `PATCH [base]/[type]/[id]` with a JSON Patch document (content type
/// `application/json-patch+json`) applies the operations to the current version and,
/// like update, stores the result as a new version.
#[test]
fn json_patch_updates_resource_and_increments_version() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Patch")));
        let resp = s
            .patch(
                &format!("Patient/{id}"),
                &json!([{ "op": "replace", "path": "/gender", "value": "female" }]),
            )
            .expect_status(200);
        assert_eq!(resp.must_header("etag"), weak_etag("2"), "[{}]", s.backend);
        let body = resp.json();
        assert_eq!(body["gender"], "female", "{body}");
        assert_eq!(version_of(&body), "2");
        assert_eq!(body["name"][0]["family"], "Patch", "untouched content kept");
        let read = s.read("Patient", &id);
        assert_eq!(read["gender"], "female");
        assert_eq!(version_of(&read), "2");
    }
}

/// The patched resource is subject to the same validation as an update body ("400 Bad
/// Request - resource could not be parsed or failed basic FHIR validation rules", or 422
/// Unprocessable Entity): an invalid result is rejected and no version is created.
#[test]
fn json_patch_producing_invalid_resource_is_rejected() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Invalid")));
        let path = format!("Patient/{id}");
        s.patch(
            &path,
            &json!([{ "op": "replace", "path": "/active", "value": "yes" }]),
        )
        .expect_error_in(&[400, 422]);
        s.patch(&path, &json!([{ "op": "add", "path": "/foo", "value": 1 }]))
            .expect_error_in(&[400, 422]);
        assert_eq!(version_of(&s.read("Patient", &id)), "1", "[{}]", s.backend);
    }
}

/// A patch that changes the resource id or type would not be a valid update of this
/// resource ("The request body SHALL be a Resource with an id element that has an
/// identical value to the [id] in the URL", http.html#update).
#[test]
fn json_patch_changing_id_is_rejected() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Id")));
        s.patch(
            &format!("Patient/{id}"),
            &json!([{ "op": "replace", "path": "/id", "value": new_id() }]),
        )
        .expect_error_in(&[400, 422]);
        assert_eq!(version_of(&s.read("Patient", &id)), "1", "[{}]", s.backend);
    }
}

/// Version-aware patch (http.html#concurrency applies to patch as to update): "If the
/// version id given in the If-Match header does not match, the server returns a 412
/// Precondition Failed status code instead of updating the resource."
#[test]
fn json_patch_honours_if_match() {
    for s in servers() {
        let created = s.create(&patient("Lock"));
        let id = id_of(&created);
        let path = format!("Patient/{id}");
        s.put(&path, &created).expect_status(200);
        let ops = json!([{ "op": "replace", "path": "/gender", "value": "female" }]);
        s.req(Method::PATCH, &path)
            .header("Content-Type", JSON_PATCH)
            .header("Accept", FHIR_JSON)
            .header("If-Match", weak_etag("1"))
            .body(ops.to_string())
            .fetch()
            .expect_error(412);
        let ok = s
            .req(Method::PATCH, &path)
            .header("Content-Type", JSON_PATCH)
            .header("Accept", FHIR_JSON)
            .header("If-Match", weak_etag("2"))
            .body(ops.to_string())
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(version_of(&ok), "3", "[{}]", s.backend);
    }
}

/// Patching a resource that does not exist: "404 Not Found".
#[test]
fn json_patch_of_unknown_resource_is_404() {
    for s in servers() {
        s.patch(
            &format!("Patient/{}", new_id()),
            &json!([{ "op": "replace", "path": "/gender", "value": "female" }]),
        )
        .expect_error(404);
    }
}

/// A JSON Patch whose `test` operation fails must not be applied (RFC 6902 §5: "If a
/// normative requirement is violated ... the entire PATCH document SHALL NOT be
/// applied").
#[test]
fn json_patch_failing_test_op_is_not_applied() {
    for s in servers() {
        let id = id_of(&s.create(&patient("TestOp")));
        s.patch(
            &format!("Patient/{id}"),
            &json!([
                { "op": "test", "path": "/gender", "value": "female" },
                { "op": "replace", "path": "/gender", "value": "other" }
            ]),
        )
        .expect_error_in(&[400, 409, 412, 422]);
        let read = s.read("Patient", &id);
        assert_eq!(read["gender"], "male", "[{}]", s.backend);
        assert_eq!(version_of(&read), "1");
    }
}

/// FHIRPath Patch (fhirpatch.html): a Parameters resource whose `operation` parameters
/// add, insert, replace, move and delete elements located by FHIRPath.
#[test]
fn fhirpath_patch_applies_operations_in_order() {
    for s in servers() {
        let mut p = patient_with_identifier("Fhirpath", "urn:sys:a", "1");
        p["identifier"]
            .as_array_mut()
            .unwrap()
            .push(json!({"system": "urn:sys:b", "value": "2"}));
        let id = id_of(&s.create(&p));
        let op = |parts: Value| json!({"name": "operation", "part": parts});
        let params = json!({"resourceType": "Parameters", "parameter": [
            op(json!([{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.identifier.where(system = 'urn:sys:b').value"},{"name":"value","valueString":"20"}])),
            op(json!([{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"birthDate"},{"name":"value","valueDate":"1990-02-14"}])),
            op(json!([{"name":"type","valueCode":"insert"},{"name":"path","valueString":"Patient.identifier"},{"name":"index","valueInteger":0},{"name":"value","valueIdentifier":{"system":"urn:sys:c","value":"0"}}])),
            op(json!([{"name":"type","valueCode":"move"},{"name":"path","valueString":"Patient.identifier"},{"name":"source","valueInteger":0},{"name":"destination","valueInteger":2}])),
            op(json!([{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.gender"}])),
        ]});
        let body = s
            .req(reqwest::Method::PATCH, &format!("Patient/{id}"))
            .fhir_json(&params)
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(
            body["identifier"][1]["value"], "20",
            "[{}] {body}",
            s.backend
        );
        assert_eq!(
            body["identifier"][2]["system"], "urn:sys:c",
            "[{}] {body}",
            s.backend
        );
        assert_eq!(body["birthDate"], "1990-02-14");
        assert!(body.get("gender").is_none(), "gender deleted: {body}");
        assert_eq!(version_of(&body), "2");
    }
}

/// A FHIRPath Patch whose path matches several elements where one is required cannot be
/// applied (422), and nothing is written.
#[test]
fn fhirpath_patch_with_ambiguous_path_is_422() {
    for s in servers() {
        let mut p = patient_with_identifier("Ambiguous", "urn:sys:a", "1");
        p["identifier"]
            .as_array_mut()
            .unwrap()
            .push(json!({"system": "urn:sys:b", "value": "2"}));
        let id = id_of(&s.create(&p));
        let params = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.identifier.value"},{"name":"value","valueString":"x"}
        ]}]});
        let outcome = s
            .req(reqwest::Method::PATCH, &format!("Patient/{id}"))
            .fhir_json(&params)
            .fetch()
            .expect_error(422);
        assert_outcome(&outcome, &[]);
        assert_eq!(
            version_of(&s.read("Patient", &id)),
            "1",
            "[{}] nothing written",
            s.backend
        );
    }
}
