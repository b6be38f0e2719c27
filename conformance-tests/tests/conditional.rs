//! http.html#ccreate — https://hl7.org/fhir/R4/http.html#ccreate
//!
//! Also covers conditional update (http.html#cond-update) and conditional delete
//! (http.html#cdelete), all keyed on `identifier=system|value`.

use conformance_tests::*;

fn criteria(system: &str, value: &str) -> String {
    format!("identifier={system}|{value}")
}

fn conditional_create(s: &Server, body: &Value, criteria: &str) -> Resp {
    s.req(Method::POST, "Patient")
        .fhir_json(body)
        .header("If-None-Exist", criteria)
        .fetch()
}

fn conditional_update(s: &Server, body: &Value, system: &str, value: &str) -> Resp {
    s.req(Method::PUT, "Patient")
        .query(&[("identifier", format!("{system}|{value}"))])
        .fhir_json(body)
        .fetch()
}

fn conditional_delete(s: &Server, system: &str, value: &str) -> Resp {
    s.req(Method::DELETE, "Patient")
        .query(&[("identifier", format!("{system}|{value}"))])
        .header("Accept", FHIR_JSON)
        .fetch()
}

fn type_history_len(s: &Server) -> usize {
    s.all_entries("Patient/_history").len()
}

/// ccreate: "No matches: The server processes the create as normal"
#[test]
fn conditional_create_without_match_creates() {
    for s in servers() {
        let sys = unique_system();
        let resp = conditional_create(
            &s,
            &patient_with_identifier("CC", &sys, "1"),
            &criteria(&sys, "1"),
        )
        .expect_status(201);
        let id = id_of(&resp.json());
        assert_eq!(
            resp.must_header("location"),
            format!("{}/Patient/{id}/_history/1", s.base),
            "[{}]",
            s.backend
        );
    }
}

/// ccreate: "One Match: The server ignores the post and returns 200 OK"
#[test]
fn conditional_create_with_one_match_returns_existing() {
    for s in servers() {
        let sys = unique_system();
        let body = patient_with_identifier("CC", &sys, "123");
        let first = conditional_create(&s, &body, &criteria(&sys, "123"))
            .expect_status(201)
            .json();
        let second = conditional_create(&s, &body, &criteria(&sys, "123")).expect_status(200);
        if !second.body.is_empty() {
            let existing = second.json();
            assert_eq!(id_of(&existing), id_of(&first), "[{}]", s.backend);
            assert_eq!(version_of(&existing), "1", "no new version: {existing}");
        }
        assert_eq!(
            type_history_len(&s),
            1,
            "[{}] a second resource was created",
            s.backend
        );
    }
}

/// ccreate: "Multiple matches: The server returns a 412 Precondition Failed error
/// indicating the client's criteria were not selective enough"
#[test]
fn conditional_create_with_multiple_matches_is_412() {
    for s in servers() {
        let sys = unique_system();
        let body = patient_with_identifier("CC", &sys, "dup");
        s.create(&body);
        s.create(&body);
        conditional_create(&s, &body, &criteria(&sys, "dup")).expect_error(412);
        assert_eq!(type_history_len(&s), 2, "[{}]", s.backend);
    }
}

/// cond-update: "No matches: The server performs a create interaction"
#[test]
fn conditional_update_without_match_creates() {
    for s in servers() {
        let sys = unique_system();
        let resp = conditional_update(&s, &patient_with_identifier("CU", &sys, "new"), &sys, "new")
            .expect_status(201);
        let body = resp.json();
        let id = id_of(&body);
        assert_eq!(version_of(&body), "1", "[{}]", s.backend);
        assert_eq!(s.read("Patient", &id)["identifier"][0]["value"], "new");
    }
}

/// cond-update: "One Match: The server performs the update against the matching resource"
#[test]
fn conditional_update_with_one_match_updates_it() {
    for s in servers() {
        let sys = unique_system();
        let existing = s.create(&patient_with_identifier("Before", &sys, "one"));
        let id = id_of(&existing);
        let resp = conditional_update(
            &s,
            &patient_with_identifier("After", &sys, "one"),
            &sys,
            "one",
        )
        .expect_status(200);
        let body = resp.json();
        assert_eq!(id_of(&body), id, "[{}] {body}", s.backend);
        assert_eq!(version_of(&body), "2");
        let read = s.read("Patient", &id);
        assert_eq!(read["name"][0]["family"], "After");
        assert_eq!(type_history_len(&s), 2, "no extra resource");
    }
}

/// cond-update: "Multiple matches: The server returns a 412 Precondition Failed error
/// indicating the client's criteria were not selective enough"
#[test]
fn conditional_update_with_multiple_matches_is_412() {
    for s in servers() {
        let sys = unique_system();
        let body = patient_with_identifier("CU", &sys, "many");
        s.create(&body);
        s.create(&body);
        conditional_update(&s, &body, &sys, "many").expect_error(412);
        assert_eq!(type_history_len(&s), 2, "[{}]", s.backend);
    }
}

/// cdelete: "One match: The server performs an ordinary delete on the matching resource"
#[test]
fn conditional_delete_with_one_match_deletes_it() {
    for s in servers() {
        let sys = unique_system();
        let id = id_of(&s.create(&patient_with_identifier("CD", &sys, "bye")));
        let other = id_of(&s.create(&patient_with_identifier("CD", &sys, "stay")));
        conditional_delete(&s, &sys, "bye").expect_status_in(&[200, 204]);
        s.get(&format!("Patient/{id}")).expect_error(410);
        s.read("Patient", &other);
    }
}

/// cdelete: "Multiple matches: A server may choose to delete all the matching resources,
/// or it may choose to return a 412 Precondition Failed error" — Healthbook returns 412
/// and deletes nothing.
#[test]
fn conditional_delete_with_multiple_matches_is_412() {
    for s in servers() {
        let sys = unique_system();
        let a = id_of(&s.create(&patient_with_identifier("CD", &sys, "dup")));
        let b = id_of(&s.create(&patient_with_identifier("CD", &sys, "dup")));
        conditional_delete(&s, &sys, "dup").expect_error(412);
        s.read("Patient", &a);
        s.read("Patient", &b);
    }
}
