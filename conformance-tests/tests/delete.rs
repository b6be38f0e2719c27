//! http.html#delete — https://hl7.org/fhir/R4/http.html#delete
//!
//! `DELETE [base]/[type]/[id]` removes the current version; history stays available.

use conformance_tests::*;

/// "Upon successful deletion, or if the resource does not exist at all, the server should
/// return either a 200 OK if the response contains a payload, or a 204 No Content with no
/// response payload"
#[test]
fn delete_returns_200_or_204() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Delete")));
        let resp = s.delete(&format!("Patient/{id}"));
        match resp.status {
            204 => assert!(resp.body.is_empty(), "[{}] 204 with a body", s.backend),
            200 => {}
            other => panic!("[{}] DELETE returned {other}: {}", s.backend, resp.text()),
        }
    }
}

/// http.html#read: "A GET for a deleted resource returns a 410 status code"; after a
/// delete, non-version specific reads of the resource return 410 Gone.
#[test]
fn read_after_delete_is_410_gone() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Gone")));
        s.delete(&format!("Patient/{id}"))
            .expect_status_in(&[200, 204]);
        s.get(&format!("Patient/{id}")).expect_error(410);
    }
}

/// "Performing this interaction on a resource that is already deleted has no effect, and
/// the server should return either a 200 OK or 204 No Content"
#[test]
fn deleting_twice_is_idempotent() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Twice")));
        let path = format!("Patient/{id}");
        s.delete(&path).expect_status_in(&[200, 204]);
        s.delete(&path).expect_status_in(&[200, 204]);
        s.get(&path).expect_error(410);
    }
}

/// "Upon successful deletion, or if the resource does not exist at all, the server should
/// return either a 200 OK ... or a 204 No Content"
#[test]
fn deleting_unknown_resource_is_200_or_204() {
    for s in servers() {
        s.delete(&format!("Patient/{}", new_id()))
            .expect_status_in(&[200, 204, 404]);
    }
}

/// Delete removes only the current version: the version history is retained, so a vread
/// of an earlier version still succeeds.
#[test]
fn vread_of_old_version_after_delete_is_200() {
    for s in servers() {
        let created = s.create(&patient("Kept"));
        let id = id_of(&created);
        s.delete(&format!("Patient/{id}"))
            .expect_status_in(&[200, 204]);
        let v1 = s
            .get(&format!("Patient/{id}/_history/1"))
            .expect_status(200)
            .json();
        assert_eq!(v1["name"], created["name"], "[{}]", s.backend);
    }
}

/// http.html#history: the history "includ[es] deleted resources"; a delete entry has
/// `request.method` DELETE and no resource.
#[test]
fn history_records_the_delete() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Hist")));
        s.delete(&format!("Patient/{id}"))
            .expect_status_in(&[200, 204]);
        let bundle = s
            .get(&format!("Patient/{id}/_history"))
            .expect_status(200)
            .json();
        assert_history_bundle(&bundle);
        let entries = entries(&bundle);
        assert_eq!(entries.len(), 2, "[{}] {bundle}", s.backend);
        assert_eq!(entries[0]["request"]["method"], "DELETE", "{bundle}");
        assert!(
            entries[0]["resource"].is_null(),
            "delete entry has a resource: {bundle}"
        );
        assert_eq!(entries[1]["request"]["method"], "POST", "{bundle}");
    }
}

/// Delete of an unknown type: "404 Not Found - resource type not supported".
#[test]
fn delete_of_unknown_type_is_404() {
    for s in servers() {
        s.delete("Foo/1").expect_error(404);
    }
}
