//! http.html#general — https://hl7.org/fhir/R4/http.html#general
//!
//! Cross-cutting behaviour: OperationOutcome error bodies (http.html#errors), the system
//! endpoint, compression, request ids and the operational health endpoints.

use conformance_tests::*;

/// http.html#errors: on failure the server returns an OperationOutcome describing the
/// error; OperationOutcome.issue (1..*) has `severity` (1..1) and `code` (1..1).
#[test]
fn errors_carry_operation_outcome() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Err")));
        s.get("Foo/1").expect_error(404);
        s.get(&format!("Patient/{}", new_id())).expect_error(404);
        s.get(&format!("Patient/{id}/_history/9")).expect_error(404);
        s.put(&format!("Patient/{id}"), &patient("NoId"))
            .expect_error(400);
        s.req(Method::GET, &format!("Patient/{id}/_history/1/extra"))
            .header("Accept", FHIR_JSON)
            .fetch()
            .expect_error_in(&[400, 404, 405]);
        s.req(Method::DELETE, "metadata")
            .header("Accept", FHIR_JSON)
            .fetch()
            .expect_error_in(&[400, 404, 405]);
    }
}

/// This server's own statuses and error codes (docs/ERRORS.md), where R4 leaves a choice
/// or names none: an unknown type is 404 (http.html#2.21.0.5, "resource type not
/// supported"), a delete is 204 without a body and deleting again is 204 too
/// (http.html#delete), a read of a deleted resource is 410, and each refusal carries its
/// code under the Healthbook error code system.
#[test]
fn own_statuses_and_error_codes() {
    fn code(resp: &Resp) -> String {
        error_code(&resp.json()).to_owned()
    }
    for s in servers() {
        let created = s.post("Foo", &json!({"resourceType": "Foo"}));
        assert_eq!(
            (created.status, code(&created).as_str()),
            (404, "HB-UNKNOWN-TYPE")
        );

        let id = id_of(&s.create(&patient("Deleted")));
        let deleted = s.delete(&format!("Patient/{id}"));
        assert_eq!(deleted.status, 204, "[{}] delete", s.backend);
        assert!(deleted.text().is_empty(), "a 204 has no body");
        assert_eq!(
            s.delete(&format!("Patient/{id}")).status,
            204,
            "delete again"
        );
        let gone = s.get(&format!("Patient/{id}"));
        assert_eq!((gone.status, code(&gone).as_str()), (410, "HB-DELETED"));

        let other = id_of(&s.create(&patient("Other")));
        let mut body = patient("Other");
        body["id"] = json!(new_id());
        let put = s.put(&format!("Patient/{other}"), &body);
        assert_eq!((put.status, code(&put).as_str()), (400, "HB-RESOURCE-ID"));

        let count = s.get("Patient?_count=many");
        assert_eq!(
            (count.status, code(&count).as_str()),
            (400, "HB-SEARCH-VALUE")
        );
        let strict = s
            .req(Method::GET, "Patient?shoe-size=42")
            .header("Prefer", "handling=strict")
            .fetch();
        assert_eq!(
            (strict.status, code(&strict).as_str()),
            (400, "HB-SEARCH-PARAM")
        );
        let base = s
            .req(Method::POST, &s.base)
            .fhir_json(&patient("NotABundle"))
            .fetch();
        assert_eq!((base.status, code(&base).as_str()), (400, "HB-BUNDLE-TYPE"));
        let nowhere = s.req(Method::GET, &format!("{}/nowhere", s.root)).fetch();
        assert_eq!(
            (nowhere.status, code(&nowhere).as_str()),
            (404, "HB-NO-ROUTE")
        );
    }
}

/// http.html#transaction: `POST [base]` carries a Bundle with Bundle.type `batch` or
/// `transaction`; any other body posted to the base is a bad request (400), not a
/// routing error (404/405).
#[test]
fn post_to_base_with_non_bundle_is_400() {
    for s in servers() {
        for path in [s.base.clone(), format!("{}/", s.base)] {
            s.req(Method::POST, &path)
                .fhir_json(&patient("NotABundle"))
                .fetch()
                .expect_error(400);
        }
    }
}

/// HTTP content coding (RFC 9110 §8.4.1 and §12.5.3 Accept-Encoding), which FHIR's
/// RESTful API rides on: with `Accept-Encoding: gzip` the response is gzip-encoded.
#[test]
fn gzip_content_encoding() {
    for s in servers() {
        let raw = Client::builder()
            .gzip(false)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client");
        let resp = raw
            .get(s.url("metadata"))
            .header("Accept", FHIR_JSON)
            .header("Accept-Encoding", "gzip")
            .fetch()
            .expect_status(200);
        assert_eq!(
            resp.header("content-encoding").as_deref(),
            Some("gzip"),
            "[{}] headers: {:?}",
            s.backend,
            resp.headers
        );
        assert!(
            resp.body.starts_with(&[0x1f, 0x8b]),
            "[{}] body is not gzip data",
            s.backend
        );
        let plain = raw
            .get(s.url("metadata"))
            .header("Accept", FHIR_JSON)
            .header("Accept-Encoding", "identity")
            .fetch()
            .expect_status(200);
        assert_ne!(plain.header("content-encoding").as_deref(), Some("gzip"));
        assert_eq!(plain.json()["resourceType"], "CapabilityStatement");
    }
}

/// http.html#custom: "X-Request-Id: A unique id to for the request/response assigned by
/// either client or server. Request: assigned by the client. Response: is returned by the
/// server" (echoed when supplied).
#[test]
fn request_id_is_echoed() {
    for s in servers() {
        let rid = format!("ct-{}", uuid::Uuid::new_v4().simple());
        let resp = s
            .req(Method::GET, "metadata")
            .header("X-Request-Id", &rid)
            .fetch()
            .expect_status(200);
        assert_eq!(resp.header("x-request-id"), Some(rid), "[{}]", s.backend);
        // Also on errors.
        let rid = format!("ct-{}", uuid::Uuid::new_v4().simple());
        let resp = s
            .req(Method::GET, "Foo/1")
            .header("X-Request-Id", &rid)
            .fetch();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.header("x-request-id"), Some(rid), "[{}]", s.backend);
    }
}

/// Operational endpoints (not FHIR): liveness and readiness probes answer 200.
#[test]
fn health_endpoints() {
    for s in servers() {
        let live = s.client.get(format!("{}/health/live", s.root)).fetch();
        assert_eq!(live.status, 200, "[{}] {}", s.backend, live.text());
        let ready = s.client.get(format!("{}/health/ready", s.root)).fetch();
        assert_eq!(ready.status, 200, "[{}] {}", s.backend, ready.text());
    }
}

/// Logical ids are case sensitive and limited to `[A-Za-z0-9\-\.]{1,64}`
/// (datatypes.html#id): an invalid id in the URL of an update is rejected.
#[test]
fn invalid_logical_id_in_update_is_400() {
    for s in servers() {
        let bad = "x".repeat(65);
        let mut p = patient("LongId");
        p["id"] = json!(bad);
        s.put(&format!("Patient/{bad}"), &p).expect_error(400);
    }
}

/// A body larger than the configured limit is refused with 413 and an OperationOutcome
/// before it is processed.
#[test]
fn oversized_body_is_413() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__SERVER__BODY_LIMIT_BYTES", "2048")],
    );
    let mut p = patient("Large");
    p["name"][0]["given"] = json!(["x".repeat(4096)]);
    let outcome = s.post("Patient", &p).expect_error(413);
    assert_outcome(&outcome, &["too-costly"]);
}

/// An HTTP method the address does not support is 405 with an OperationOutcome.
#[test]
fn unsupported_method_is_405() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Method")));
        let outcome = s
            .req(reqwest::Method::POST, &format!("Patient/{id}"))
            .fhir_json(&patient("Method"))
            .fetch()
            .expect_error(405);
        assert_outcome(&outcome, &["not-supported"]);
    }
}

/// CORS for browser apps (SMART App Launch): a preflight for an authorised FHIR request is
/// answered, and responses expose the headers clients read (ETag, Location).
#[test]
fn cors_preflight_and_exposed_headers() {
    let s = Server::start(Backend::Sqlite);
    let preflight = s
        .req(Method::OPTIONS, "Patient")
        .header("Origin", "https://app.example.org")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, if-none-exist",
        )
        .fetch();
    assert!(preflight.status < 300, "preflight: {}", preflight.status);
    assert_eq!(
        preflight.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let created = s
        .req(Method::POST, "Patient")
        .header("Origin", "https://app.example.org")
        .fhir_json(&patient("Cors"))
        .fetch()
        .expect_status(201);
    let exposed = created
        .must_header("access-control-expose-headers")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("location"),
        "{exposed}"
    );
}
