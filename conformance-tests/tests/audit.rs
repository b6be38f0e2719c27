//! Audit — https://hl7.org/fhir/R4/auditevent.html
//!
//! Every read, write and denied access leaves an AuditEvent (who, what, outcome, source);
//! the queue is drained on a clean shutdown; a patient can read who looked at their
//! record; AuditEvents cannot be changed or deleted.

use std::thread;
use std::time::{Duration, Instant};

use conformance_tests::idp::{secured_server, secured_server_with, TokenOptions};
use conformance_tests::*;

/// The AuditEvents visible to `token` (or without a token), all pages.
fn audit_events(s: &Server, token: Option<&str>) -> Vec<Value> {
    let mut events = Vec::new();
    let mut url = s.url("AuditEvent/_history?_count=500");
    loop {
        let mut req = s.req(Method::GET, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let bundle = req.fetch().expect_status(200).json();
        events.extend(entries(&bundle).into_iter().map(|e| e["resource"].clone()));
        match link(&bundle, "next") {
            Some(next) => url = next,
            None => return events,
        }
    }
}

fn about(event: &Value, reference_prefix: &str) -> bool {
    event["entity"].as_array().is_some_and(|e| {
        e.iter().any(|x| {
            x["what"]["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with(reference_prefix))
        })
    })
}

fn subtype(event: &Value) -> &str {
    event["subtype"][0]["code"].as_str().unwrap_or("")
}

/// Reads, a failed read and a create each leave an AuditEvent naming the resource and the
/// Patient; the events queued at SIGTERM are written before the process exits.
#[test]
fn requests_leave_audit_events_that_survive_shutdown() {
    for mut s in servers() {
        let id = id_of(&s.create(&patient("Audited")));
        for _ in 0..5 {
            s.read("Patient", &id);
        }
        s.get(&format!("Patient/{}", new_id())).expect_error(404);
        s.restart();
        let events = audit_events(&s, None);
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| about(e, &format!("Patient/{id}")))
            .collect();
        let reads = mine
            .iter()
            .filter(|e| subtype(e) == "read" && e["outcome"] == "0")
            .count();
        assert_eq!(reads, 5, "[{}] five reads audited: {mine:?}", s.backend);
        assert!(
            mine.iter()
                .any(|e| subtype(e) == "create" && e["action"] == "C"),
            "[{}] create audited",
            s.backend
        );
        assert!(
            events
                .iter()
                .any(|e| subtype(e) == "read" && e["outcome"] == "4"),
            "[{}] the failed read is audited too",
            s.backend
        );
    }
}

/// "Who looked at my record": a practitioner's read of a patient's Immunization is an
/// AuditEvent in that patient's compartment, naming the practitioner (fhirUser); the
/// patient sees it with `patient/AuditEvent.rs`, and sees no event about another patient.
#[test]
fn patient_sees_who_looked_at_their_record() {
    // user/ scopes reach every record here; the personal-QR rule is qr_access.rs's.
    let (s, idp) = secured_server_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__ACCESS__PRACTITIONER", "open")],
    );
    let admin = idp.token("system/*.cruds");
    let create = |resource: &Value| {
        let ty = resource["resourceType"].as_str().unwrap();
        id_of(
            &s.req(Method::POST, ty)
                .bearer_auth(&admin)
                .fhir_json(resource)
                .fetch()
                .expect_status(201)
                .json(),
        )
    };
    let me = create(&patient("Me"));
    let other = create(&patient("Other"));
    let shot = create(
        &json!({"resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"text": "COVID-19"}, "patient": {"reference": format!("Patient/{me}")},
        "occurrenceDateTime": "2021-07-01"}),
    );
    let doctor = idp.token_with(
        "user/*.rs",
        &TokenOptions {
            fhir_user: Some("Practitioner/d-42"),
            ..Default::default()
        },
    );
    s.req(Method::GET, &format!("Immunization/{shot}"))
        .bearer_auth(&doctor)
        .fetch()
        .expect_status(200);
    s.req(Method::GET, &format!("Patient/{other}"))
        .bearer_auth(&doctor)
        .fetch()
        .expect_status(200);

    let mine = idp.token_with(
        "patient/AuditEvent.rs",
        &TokenOptions {
            patient: Some(&me),
            ..Default::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = audit_events(&s, Some(&mine));
        // Wait for the read itself: the create of the shot is about it too, and its
        // event may be written before the read's.
        if events
            .iter()
            .any(|e| about(e, &format!("Immunization/{shot}")) && subtype(e) == "read")
            || Instant::now() > deadline
        {
            break events;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let look = events
        .iter()
        .find(|e| about(e, &format!("Immunization/{shot}")) && subtype(e) == "read")
        .unwrap_or_else(|| panic!("the doctor's read is not visible to the patient: {events:?}"));
    assert_eq!(look["agent"][0]["who"]["reference"], "Practitioner/d-42");
    assert!(
        events
            .iter()
            .all(|e| !about(e, &format!("Patient/{other}"))),
        "another patient's events leaked"
    );
    // AuditEvents are indexed like any resource: searches by patient and $everything find
    // the same events (docs/SECURITY.md).
    let found = |path: &str, token: &str| -> Vec<String> {
        let bundle = s
            .req(Method::GET, path)
            .bearer_auth(token)
            .header("Accept", FHIR_JSON)
            .fetch()
            .expect_status(200)
            .json();
        entries(&bundle)
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "AuditEvent")
            .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let look_id = look["id"].as_str().unwrap_or_default().to_owned();
    for (path, token) in [
        (format!("AuditEvent?patient={me}&_count=500"), &mine),
        (
            format!("AuditEvent?patient={me}&subtype=read&_count=500"),
            &admin,
        ),
        (
            format!("Patient/{me}/$everything?_type=AuditEvent&_count=500"),
            &admin,
        ),
    ] {
        assert!(
            found(&path, token).contains(&look_id),
            "{path}: the doctor's read is not found"
        );
    }
    assert!(
        found(&format!("AuditEvent?patient={other}&_count=500"), &mine).is_empty(),
        "a patient token searched another patient's events"
    );
}

/// AuditEvents are a permanent record: update and delete are 405.
#[test]
fn audit_events_cannot_be_changed() {
    for s in servers() {
        s.create(&patient("Trigger"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let event = loop {
            if let Some(e) = audit_events(&s, None).into_iter().next() {
                break e;
            }
            assert!(Instant::now() < deadline, "no AuditEvent written");
            thread::sleep(Duration::from_millis(100));
        };
        let id = id_of(&event);
        s.put(&format!("AuditEvent/{id}"), &event).expect_error(405);
        s.delete(&format!("AuditEvent/{id}")).expect_error(405);
    }
}

/// A denied access leaves an AuditEvent with a failure outcome; a search leaves one that
/// names the searched type but none of the query's values.
#[test]
fn denied_access_and_searches_are_audited_without_query_values() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let admin = idp.token("system/*.cruds");
    let mut person = patient("Audited");
    person["id"] = json!("p-1");
    s.req(Method::PUT, "Patient/p-1")
        .bearer_auth(&admin)
        .fhir_json(&person)
        .fetch()
        .expect_status(201);
    let shot = id_of(
        &s.req(Method::POST, "Immunization")
            .bearer_auth(&admin)
            .fhir_json(
                &json!({"resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"text": "COVID-19"}, "patient": {"reference": "Patient/p-1"},
                "occurrenceDateTime": "2021-07-01"}),
            )
            .fetch()
            .expect_status(201)
            .json(),
    );
    let clerk = idp.token_with(
        "user/Patient.rs",
        &TokenOptions {
            fhir_user: Some("Practitioner/clerk-7"),
            ..Default::default()
        },
    );
    s.req(Method::GET, &format!("Immunization/{shot}"))
        .bearer_auth(&clerk)
        .fetch()
        .expect_error(403);
    s.req(
        Method::GET,
        "Patient?family=BíMậtTìmKiếm&birthdate=1990-02-14",
    )
    .bearer_auth(&clerk)
    .fetch()
    .expect_status(200);

    let by_clerk = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["agent"][0]["who"]["reference"] == "Practitioner/clerk-7")
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = by_clerk(&audit_events(&s, Some(&admin)));
        if events.len() >= 2 || Instant::now() > deadline {
            break events;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let denied = events
        .iter()
        .find(|e| subtype(e) == "read")
        .unwrap_or_else(|| panic!("no event of the denied read: {events:?}"));
    assert_eq!(denied["outcome"], "4", "{denied}");
    assert!(about(denied, &format!("Immunization/{shot}")), "{denied}");
    let search = events
        .iter()
        .find(|e| subtype(e) == "search-type")
        .unwrap_or_else(|| panic!("no event of the search: {events:?}"));
    assert_eq!(search["outcome"], "0");
    let text = search.to_string();
    assert!(text.contains("Patient"), "{text}");
    for value in ["BíMật", "1990-02-14", "family="] {
        assert!(!text.contains(value), "the query's values leaked: {text}");
    }
}
