//! http.html#update — https://hl7.org/fhir/R4/http.html#update
//!
//! Also covers version aware updates (http.html#concurrency) and update as create.

use conformance_tests::*;

/// "If the interaction is successful, the server SHALL return either a 200 OK HTTP status
/// code if the resource was updated, or a 201 Created status code if the resource was
/// created" — and a new version is created.
#[test]
fn update_existing_returns_200_and_increments_version() {
    for s in servers() {
        let created = s.create(&patient("Before"));
        let id = id_of(&created);
        let mut p = created.clone();
        p["name"][0]["family"] = json!("After");
        let resp = s.put(&format!("Patient/{id}"), &p).expect_status(200);
        assert_eq!(resp.must_header("etag"), weak_etag("2"), "[{}]", s.backend);
        resp.must_header("last-modified");
        let body = resp.json();
        assert_eq!(id_of(&body), id);
        assert_eq!(version_of(&body), "2");
        assert_eq!(body["name"][0]["family"], "After");
        let read = s.read("Patient", &id);
        assert_eq!(version_of(&read), "2");
        assert_eq!(read["name"][0]["family"], "After");
    }
}

/// "If the request body includes a meta, the server SHALL ignore the existing versionId
/// and lastUpdated values."
#[test]
fn update_ignores_client_meta_version() {
    for s in servers() {
        let created = s.create(&patient("Meta"));
        let id = id_of(&created);
        let mut p = created.clone();
        p["meta"] = json!({ "versionId": "77", "lastUpdated": "2001-01-01T00:00:00Z" });
        let body = s
            .put(&format!("Patient/{id}"), &p)
            .expect_status(200)
            .json();
        assert_eq!(version_of(&body), "2", "[{}] {body}", s.backend);
        let lu = body["meta"]["lastUpdated"].as_str().unwrap_or_default();
        assert!(
            !lu.starts_with("2001-"),
            "[{}] lastUpdated not replaced: {lu}",
            s.backend
        );
    }
}

/// "The request body SHALL be a Resource with an id element that has an identical value
/// to the [id] in the URL. If no id element is provided, or the id disagrees with the id
/// in the URL, the server SHALL respond with an HTTP 400 Bad Request error code"
#[test]
fn update_without_id_in_body_is_400() {
    for s in servers() {
        let id = id_of(&s.create(&patient("NoId")));
        s.put(&format!("Patient/{id}"), &patient("NoId"))
            .expect_error(400);
        assert_eq!(version_of(&s.read("Patient", &id)), "1", "[{}]", s.backend);
    }
}

/// Same SHALL as above: an id that disagrees with the URL is rejected with 400.
#[test]
fn update_with_mismatched_id_is_400() {
    for s in servers() {
        let created = s.create(&patient("Mismatch"));
        let id = id_of(&created);
        let mut p = created.clone();
        p["id"] = json!(new_id());
        s.put(&format!("Patient/{id}"), &p).expect_error(400);
        assert_eq!(version_of(&s.read("Patient", &id)), "1", "[{}]", s.backend);
    }
}

/// The body must be of the type named in the URL ("400 Bad Request - resource could not
/// be parsed or failed basic FHIR validation rules").
#[test]
fn update_with_wrong_resource_type_is_400() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Type")));
        let mut obs = observation();
        obs["id"] = json!(id);
        s.put(&format!("Patient/{id}"), &obs).expect_error(400);
    }
}

/// Update as create: "Servers MAY choose to allow clients to PUT a resource to a location
/// that does not yet exist on the server ... a 201 Created status code if the resource
/// was created". The new resource has versionId 1 and a Location header.
#[test]
fn update_as_create_returns_201() {
    for s in servers() {
        let id = new_id();
        let mut p = patient("Upsert");
        p["id"] = json!(id);
        let resp = s.put(&format!("Patient/{id}"), &p).expect_status(201);
        assert_eq!(resp.must_header("etag"), weak_etag("1"), "[{}]", s.backend);
        assert_eq!(
            resp.must_header("location"),
            format!("{}/Patient/{id}/_history/1", s.base)
        );
        let body = resp.json();
        assert_eq!(id_of(&body), id);
        assert_eq!(version_of(&body), "1");
        assert_eq!(version_of(&s.read("Patient", &id)), "1");
    }
}

/// http.html#concurrency: "If the version id given in the If-Match header does not match,
/// the server returns a 412 Precondition Failed status code instead of updating the
/// resource."
#[test]
fn update_with_stale_if_match_is_412() {
    for s in servers() {
        let created = s.create(&patient("Lock"));
        let id = id_of(&created);
        let path = format!("Patient/{id}");
        s.put(&path, &created).expect_status(200);
        s.req(Method::PUT, &path)
            .fhir_json(&created)
            .header("If-Match", weak_etag("1"))
            .fetch()
            .expect_error(412);
        assert_eq!(version_of(&s.read("Patient", &id)), "2", "[{}]", s.backend);
    }
}

/// http.html#concurrency: "Servers SHOULD support ... the If-Match header" — a matching
/// ETag lets the update through.
#[test]
fn update_with_current_if_match_succeeds() {
    for s in servers() {
        let created = s.create(&patient("Lock"));
        let id = id_of(&created);
        let resp = s
            .req(Method::PUT, &format!("Patient/{id}"))
            .fhir_json(&created)
            .header("If-Match", weak_etag("1"))
            .fetch()
            .expect_status(200);
        assert_eq!(version_of(&resp.json()), "2", "[{}]", s.backend);
    }
}

/// Updating a deleted resource re-creates it with a new version (history is kept):
/// "the server SHALL return ... 201 Created status code if the resource was created".
#[test]
fn update_after_delete_recreates_resource() {
    for s in servers() {
        let created = s.create(&patient("Phoenix"));
        let id = id_of(&created);
        let path = format!("Patient/{id}");
        s.delete(&path).expect_status_in(&[200, 204]);
        let resp = s.put(&path, &created).expect_status_in(&[200, 201]);
        let body = resp.json();
        let vid = version_of(&body);
        assert!(
            vid.parse::<u64>().is_ok_and(|v| v >= 2),
            "[{}] version must move past the deleted one: {body}",
            s.backend
        );
        assert_eq!(version_of(&s.read("Patient", &id)), vid);
        // The pre-delete version is still there.
        s.get(&format!("{path}/_history/1")).expect_status(200);
    }
}

/// Malformed JSON in an update body: "400 Bad Request - resource could not be parsed".
#[test]
fn update_with_unparseable_body_is_400() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Broken")));
        s.req(Method::PUT, &format!("Patient/{id}"))
            .header("Content-Type", FHIR_JSON)
            .body("{\"resourceType\": \"Patient\",")
            .fetch()
            .expect_error(400);
    }
}
