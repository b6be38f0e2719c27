//! http.html#create — https://hl7.org/fhir/R4/http.html#create
//!
//! `POST [base]/[type]`: the server assigns the logical id and version, and reports the
//! new version in `Location`, `ETag` and `Last-Modified`.

use conformance_tests::*;

/// "The server returns a 201 Created HTTP status code, and SHALL also return a Location
/// header which contains the new Logical Id and Version Id of the created resource
/// version: Location: [base]/[type]/[id]/_history/[vid]"
#[test]
fn create_returns_201_with_absolute_location() {
    for s in servers() {
        let resp = s.post("Patient", &patient("Create")).expect_status(201);
        let body = resp.json();
        let id = id_of(&body);
        assert_eq!(
            resp.must_header("location"),
            format!("{}/Patient/{id}/_history/1", s.base),
            "[{}] Location must be absolute [base]/[type]/[id]/_history/[vid]",
            s.backend
        );
    }
}

/// "Servers SHOULD return an ETag header with the versionId (if versioning is supported)
/// and a Last-Modified header."
#[test]
fn create_returns_etag_and_last_modified() {
    for s in servers() {
        let resp = s.post("Patient", &patient("Create")).expect_status(201);
        assert_eq!(resp.must_header("etag"), weak_etag("1"), "[{}]", s.backend);
        let lm = resp.must_header("last-modified");
        assert!(
            lm.ends_with("GMT"),
            "[{}] Last-Modified is not an HTTP-date: {lm}",
            s.backend
        );
        resp.assert_fhir_json();
    }
}

/// "The server SHALL populate the id, meta.versionId and meta.lastUpdated with the new
/// correct values."
#[test]
fn create_populates_id_version_and_last_updated() {
    for s in servers() {
        let body = s.create(&patient("Create"));
        assert_eq!(body["resourceType"], "Patient");
        assert!(!id_of(&body).is_empty());
        assert_eq!(version_of(&body), "1", "[{}] {body}", s.backend);
        let lu = body["meta"]["lastUpdated"]
            .as_str()
            .expect("meta.lastUpdated");
        assert!(
            lu.contains('T'),
            "[{}] lastUpdated is not an instant: {lu}",
            s.backend
        );
        assert_eq!(
            body["name"][0]["family"], "Create",
            "content preserved: {body}"
        );
        // The created resource can be read back at the reported id.
        let read = s.read("Patient", &id_of(&body));
        assert_eq!(read["name"][0]["family"], "Create");
        assert_eq!(version_of(&read), "1");
    }
}

/// "The resource does not need to have an id element ... If an id is provided, the server
/// SHALL ignore it."
#[test]
fn create_ignores_client_supplied_id() {
    for s in servers() {
        let mut p = patient("ClientId");
        p["id"] = json!("client-chosen-id");
        let body = s.create(&p);
        assert_ne!(id_of(&body), "client-chosen-id", "[{}] {body}", s.backend);
        s.get("Patient/client-chosen-id").expect_error(404);
    }
}

/// "If the request body includes a meta, the server SHALL ignore the existing versionId
/// and lastUpdated values."
#[test]
fn create_ignores_client_supplied_meta_version_and_last_updated() {
    for s in servers() {
        let mut p = patient("ClientMeta");
        p["meta"] = json!({ "versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z" });
        let body = s.create(&p);
        assert_eq!(version_of(&body), "1", "[{}] {body}", s.backend);
        assert_ne!(
            body["meta"]["lastUpdated"], "2001-01-01T00:00:00Z",
            "{body}"
        );
        let lu = body["meta"]["lastUpdated"].as_str().unwrap_or_default();
        assert!(
            !lu.starts_with("2001-"),
            "[{}] lastUpdated not replaced: {lu}",
            s.backend
        );
    }
}

/// Each create produces a new logical id: "The server ... assigns a new id".
#[test]
fn create_assigns_distinct_ids() {
    for s in servers() {
        let a = s.create(&patient("A"));
        let b = s.create(&patient("B"));
        assert_ne!(id_of(&a), id_of(&b), "[{}]", s.backend);
    }
}

/// "The request body SHALL be a FHIR Resource" of the type in the URL; "400 Bad Request -
/// resource could not be parsed or failed basic FHIR validation rules".
#[test]
fn create_with_mismatched_resource_type_is_400() {
    for s in servers() {
        s.post("Patient", &observation()).expect_error(400);
    }
}

/// "404 Not Found - resource type not supported, or not a FHIR end-point"
#[test]
fn create_of_unknown_type_is_404() {
    for s in servers() {
        s.post("Foo", &json!({ "resourceType": "Foo" }))
            .expect_error_in(&[400, 404]);
    }
}

/// Creating a resource of another type works the same way (Observation).
#[test]
fn create_observation() {
    for s in servers() {
        let resp = s.post("Observation", &observation()).expect_status(201);
        let id = id_of(&resp.json());
        assert_eq!(
            resp.must_header("location"),
            format!("{}/Observation/{id}/_history/1", s.base)
        );
    }
}
