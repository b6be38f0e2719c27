//! http.html#read — https://hl7.org/fhir/R4/http.html#read
//!
//! Also covers vread (http.html#vread) and conditional read (http.html#cread).

use conformance_tests::*;

/// "The server returns a 200 OK HTTP status code if the resource was found ... the
/// server SHOULD return an ETag header with the versionId of the resource (if versioning
/// is supported) and a Last-Modified header."
#[test]
fn read_returns_resource_with_etag_and_last_modified() {
    for s in servers() {
        let created = s.create(&patient("Read"));
        let id = id_of(&created);
        let resp = s.get(&format!("Patient/{id}")).expect_status(200);
        resp.assert_fhir_json();
        assert_eq!(resp.must_header("etag"), weak_etag("1"), "[{}]", s.backend);
        resp.must_header("last-modified");
        let body = resp.json();
        assert_eq!(body["resourceType"], "Patient");
        assert_eq!(id_of(&body), id);
        assert_eq!(version_of(&body), "1");
        assert_eq!(body["meta"]["lastUpdated"], created["meta"]["lastUpdated"]);
        assert_eq!(body["name"], created["name"]);
    }
}

/// "Unknown resources and deleted resources are treated differently on a read: A GET for
/// a deleted resource returns a 410 status code, whereas a GET for an unknown resource
/// returns 404."
#[test]
fn read_unknown_id_is_404_operation_outcome() {
    for s in servers() {
        let oo = s.get(&format!("Patient/{}", new_id())).expect_error(404);
        assert_outcome(&oo, &[]);
    }
}

/// "404 Not Found - resource type not supported, or not a FHIR end-point"
#[test]
fn read_unknown_type_is_404_operation_outcome() {
    for s in servers() {
        s.get("Foo/1").expect_error(404);
    }
}

/// HEAD (RFC 9110 §9.3.2, which FHIR's RESTful API rides on): same status and headers as
/// GET, without content.
#[test]
fn head_behaves_like_get_without_body() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Head")));
        let resp = s
            .req(Method::HEAD, &format!("Patient/{id}"))
            .header("Accept", FHIR_JSON)
            .fetch()
            .expect_status(200);
        assert_eq!(resp.must_header("etag"), weak_etag("1"), "[{}]", s.backend);
        assert!(resp.body.is_empty(), "HEAD response has a body");
        let missing = s
            .req(Method::HEAD, &format!("Patient/{}", new_id()))
            .fetch();
        assert_eq!(missing.status, 404, "[{}] HEAD of unknown id", s.backend);
    }
}

/// vread: "The vread interaction performs a version specific read of the resource ...
/// returns a single instance with the content specified for the resource type for that
/// version of the resource."
#[test]
fn vread_returns_each_version() {
    for s in servers() {
        let created = s.create(&patient("V1"));
        let id = id_of(&created);
        let mut p = created.clone();
        p["name"][0]["family"] = json!("V2");
        s.put(&format!("Patient/{id}"), &p).expect_status(200);

        let v1 = s
            .get(&format!("Patient/{id}/_history/1"))
            .expect_status(200);
        assert_eq!(v1.must_header("etag"), weak_etag("1"), "[{}]", s.backend);
        let v1 = v1.json();
        assert_eq!(version_of(&v1), "1");
        assert_eq!(v1["name"][0]["family"], "V1");

        let v2 = s
            .get(&format!("Patient/{id}/_history/2"))
            .expect_status(200)
            .json();
        assert_eq!(version_of(&v2), "2");
        assert_eq!(v2["name"][0]["family"], "V2");
    }
}

/// vread of a version that does not exist: "404 Not Found".
#[test]
fn vread_unknown_version_is_404() {
    for s in servers() {
        let id = id_of(&s.create(&patient("V")));
        s.get(&format!("Patient/{id}/_history/99"))
            .expect_error(404);
        s.get(&format!("Patient/{}/_history/1", new_id()))
            .expect_error(404);
    }
}

/// cread: "Clients may use the If-Modified-Since, or If-None-Match HTTP header on a read
/// request. If so, they SHALL accept either a 304 Not Modified as a valid status code on
/// the response (which means that the content is unchanged since that date) or full
/// content". Healthbook supports conditional reads, so a current ETag yields 304.
#[test]
fn conditional_read_if_none_match_current_is_304() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Cread")));
        let resp = s
            .req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", FHIR_JSON)
            .header("If-None-Match", weak_etag("1"))
            .fetch();
        assert_eq!(resp.status, 304, "[{}] body: {}", s.backend, resp.text());
        assert!(resp.body.is_empty(), "304 must not carry content");
    }
}

/// cread: a non-matching If-None-Match returns the resource normally.
#[test]
fn conditional_read_if_none_match_stale_is_200() {
    for s in servers() {
        let created = s.create(&patient("Cread"));
        let id = id_of(&created);
        s.put(&format!("Patient/{id}"), &created).expect_status(200);
        let resp = s
            .req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", FHIR_JSON)
            .header("If-None-Match", weak_etag("1"))
            .fetch()
            .expect_status(200);
        assert_eq!(version_of(&resp.json()), "2", "[{}]", s.backend);
    }
}

/// cread (see above): `If-Modified-Since` at the resource's Last-Modified yields 304 Not
/// Modified ("the content is unchanged since that date"); an older date yields 200.
#[test]
fn conditional_read_if_modified_since() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Cread")));
        let path = format!("Patient/{id}");
        let last_modified = s.get(&path).expect_status(200).must_header("last-modified");
        let unchanged = s
            .req(Method::GET, &path)
            .header("Accept", FHIR_JSON)
            .header("If-Modified-Since", &last_modified)
            .fetch();
        assert_eq!(
            unchanged.status,
            304,
            "[{}] If-Modified-Since {last_modified}: {}",
            s.backend,
            unchanged.text()
        );
        s.req(Method::GET, &path)
            .header("Accept", FHIR_JSON)
            .header("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")
            .fetch()
            .expect_status(200);
    }
}
