//! http.html#history — https://hl7.org/fhir/R4/http.html#history
//!
//! Instance, type and system history; paging with `_count` and filtering with `_since`.

use conformance_tests::*;
use std::collections::HashSet;
use std::thread::sleep;
use std::time::Duration;

/// Gap between versions in `_since` tests; over a second so the test also holds for
/// servers that keep `lastUpdated` at second precision.
const SINCE_GAP: Duration = Duration::from_millis(1100);

/// Creates a Patient and updates it `updates` times; returns its id.
fn patient_with_versions(s: &Server, family: &str, updates: usize) -> String {
    let created = s.create(&patient(family));
    let id = id_of(&created);
    for i in 0..updates {
        let mut p = created.clone();
        p["name"][0]["given"] = json!([format!("v{}", i + 2)]);
        s.put(&format!("Patient/{id}"), &p).expect_status(200);
    }
    id
}

/// "The return content is a Bundle with type set to history containing the specified
/// version history, sorted with oldest versions last, and including deleted resources."
#[test]
fn instance_history_is_history_bundle_newest_first() {
    for s in servers() {
        let id = patient_with_versions(&s, "Hist", 2);
        let resp = s.get(&format!("Patient/{id}/_history")).expect_status(200);
        resp.assert_fhir_json();
        let bundle = resp.json();
        assert_history_bundle(&bundle);
        let versions: Vec<String> = entries(&bundle)
            .iter()
            .map(|e| version_of(&e["resource"]))
            .collect();
        assert_eq!(versions, ["3", "2", "1"], "[{}] {bundle}", s.backend);
    }
}

/// Bundle invariants for history: bdl-3 "entry.request mandatory for batch/transaction/
/// history", bdl-4 "entry.response mandatory for batch-response/transaction-response/
/// history", and fullUrl "SHALL be ... an absolute URL" when the resource has an id.
#[test]
fn history_entries_have_full_url_request_and_response() {
    for s in servers() {
        let id = patient_with_versions(&s, "Entries", 1);
        let bundle = s
            .get(&format!("Patient/{id}/_history"))
            .expect_status(200)
            .json();
        let entries = entries(&bundle);
        assert_eq!(entries.len(), 2, "[{}] {bundle}", s.backend);
        for e in &entries {
            let full_url = e["fullUrl"].as_str().unwrap_or_default();
            assert!(
                full_url.starts_with(&format!("{}/Patient/{id}", s.base)),
                "[{}] fullUrl must be absolute: {e}",
                s.backend
            );
            assert!(
                e["request"]["url"]
                    .as_str()
                    .is_some_and(|u| u.contains("Patient")),
                "{e}"
            );
            assert!(
                e["response"]["status"].is_string(),
                "entry.response.status: {e}"
            );
        }
        assert_eq!(entries[0]["request"]["method"], "PUT", "{bundle}");
        assert_eq!(entries[1]["request"]["method"], "POST", "{bundle}");
        assert!(
            entries[1]["response"]["status"]
                .as_str()
                .is_some_and(|st| st.starts_with("201")),
            "create entry response.status should be 201: {bundle}"
        );
        if let Some(etag) = entries[0]["response"]["etag"].as_str() {
            assert_eq!(etag, weak_etag("2"), "{bundle}");
        }
    }
}

/// Instance history of an unknown resource: "404 Not Found".
#[test]
fn instance_history_of_unknown_resource_is_404() {
    for s in servers() {
        s.get(&format!("Patient/{}/_history", new_id()))
            .expect_error(404);
    }
}

/// Type history `GET [base]/[type]/_history` covers all versions of all resources of that
/// type — and only that type.
#[test]
fn type_history_lists_versions_of_that_type_only() {
    for s in servers() {
        let a = patient_with_versions(&s, "A", 1);
        let b = patient_with_versions(&s, "B", 0);
        s.create(&observation());
        let bundle = s.get("Patient/_history").expect_status(200).json();
        assert_history_bundle(&bundle);
        let entries = entries(&bundle);
        assert_eq!(entries.len(), 3, "[{}] {bundle}", s.backend);
        let ids: HashSet<String> = entries.iter().map(|e| id_of(&e["resource"])).collect();
        assert_eq!(ids, HashSet::from([a, b]));
        assert!(entries
            .iter()
            .all(|e| e["resource"]["resourceType"] == "Patient"));
    }
}

/// System history `GET [base]/_history` covers every resource type.
#[test]
fn system_history_lists_all_types() {
    for s in servers() {
        patient_with_versions(&s, "Sys", 0);
        s.create(&observation());
        let bundle = s.get("_history").expect_status(200).json();
        assert_history_bundle(&bundle);
        // The server's own AuditEvents (one per request) and the StructureDefinitions and
        // OperationDefinitions it ships (written at start) are resources too; leave them out.
        let types: HashSet<String> = entries(&bundle)
            .iter()
            .map(|e| {
                e["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .filter(|t| {
                !matches!(
                    t.as_str(),
                    "AuditEvent" | "StructureDefinition" | "OperationDefinition"
                )
            })
            .collect();
        assert_eq!(
            types,
            HashSet::from(["Patient".to_owned(), "Observation".to_owned()]),
            "[{}] {bundle}",
            s.backend
        );
        // Newest first across types: the Observation was created last.
        let first = entries(&bundle)
            .into_iter()
            .find(|e| {
                !["AuditEvent", "StructureDefinition"]
                    .contains(&e["resource"]["resourceType"].as_str().unwrap_or_default())
            })
            .expect("entries besides AuditEvents");
        assert_eq!(first["resource"]["resourceType"], "Observation");
    }
}

/// "_count: The maximum number of search results on a page"; paging follows the search
/// paging rules: `next` links are absolute and pages do not repeat entries.
#[test]
fn history_count_pages_with_next_links() {
    for s in servers() {
        let id = patient_with_versions(&s, "Paged", 4);
        let first = s
            .get(&format!("Patient/{id}/_history?_count=2"))
            .expect_status(200)
            .json();
        assert_history_bundle(&first);
        assert_eq!(entries(&first).len(), 2, "[{}] {first}", s.backend);
        let next = link(&first, "next").unwrap_or_else(|| panic!("no next link: {first}"));
        assert!(
            next.starts_with("http"),
            "next link must be absolute: {next}"
        );

        let all = s.all_entries(&format!("Patient/{id}/_history?_count=2"));
        let versions: Vec<String> = all.iter().map(|e| version_of(&e["resource"])).collect();
        assert_eq!(versions, ["5", "4", "3", "2", "1"], "[{}]", s.backend);
    }
}

/// Type-level paging: every version appears exactly once across pages.
#[test]
fn type_history_paging_has_no_repeats() {
    for s in servers() {
        for i in 0..4 {
            patient_with_versions(&s, &format!("P{i}"), 1);
        }
        let all = s.all_entries("Patient/_history?_count=3");
        let keys: Vec<(String, String)> = all
            .iter()
            .map(|e| (id_of(&e["resource"]), version_of(&e["resource"])))
            .collect();
        let unique: HashSet<_> = keys.iter().cloned().collect();
        assert_eq!(keys.len(), 8, "[{}] {keys:?}", s.backend);
        assert_eq!(
            unique.len(),
            8,
            "[{}] repeated entries: {keys:?}",
            s.backend
        );
    }
}

/// "_since: Only include resource versions that were created at or after the given
/// instant in time"
#[test]
fn history_since_filters_older_versions() {
    for s in servers() {
        let old = s.create(&patient("Old"));
        sleep(SINCE_GAP);
        let new = s.create(&patient("New"));
        let since = new["meta"]["lastUpdated"]
            .as_str()
            .expect("lastUpdated")
            .to_owned();

        let bundle = s
            .req(Method::GET, "Patient/_history")
            .header("Accept", FHIR_JSON)
            .query(&[("_since", since.as_str())])
            .fetch()
            .expect_status(200)
            .json();
        let ids: Vec<String> = entries(&bundle)
            .iter()
            .map(|e| id_of(&e["resource"]))
            .collect();
        assert_eq!(
            ids,
            [id_of(&new)],
            "[{}] _since={since}: {bundle}",
            s.backend
        );
        assert!(!ids.contains(&id_of(&old)));

        let all = s
            .req(Method::GET, "Patient/_history")
            .header("Accept", FHIR_JSON)
            .query(&[("_since", "2000-01-01T00:00:00Z")])
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(entries(&all).len(), 2, "[{}] {all}", s.backend);

        let none = s
            .req(Method::GET, "_history")
            .header("Accept", FHIR_JSON)
            .query(&[("_since", "2999-01-01T00:00:00Z")])
            .fetch()
            .expect_status(200)
            .json();
        assert!(entries(&none).is_empty(), "[{}] {none}", s.backend);
    }
}

/// Instance-level `_since`.
#[test]
fn instance_history_since() {
    for s in servers() {
        let created = s.create(&patient("Since"));
        let id = id_of(&created);
        sleep(SINCE_GAP);
        let v2 = s
            .put(&format!("Patient/{id}"), &created)
            .expect_status(200)
            .json();
        let since = v2["meta"]["lastUpdated"]
            .as_str()
            .expect("lastUpdated")
            .to_owned();
        let bundle = s
            .req(Method::GET, &format!("Patient/{id}/_history"))
            .header("Accept", FHIR_JSON)
            .query(&[("_since", since.as_str())])
            .fetch()
            .expect_status(200)
            .json();
        let versions: Vec<String> = entries(&bundle)
            .iter()
            .map(|e| version_of(&e["resource"]))
            .collect();
        assert_eq!(versions, ["2"], "[{}] _since={since}: {bundle}", s.backend);
    }
}
