//! http.html#concurrency — https://hl7.org/fhir/R4/http.html#concurrency
//!
//! Concurrent writers must never lose versions (every update creates exactly one new
//! version, http.html#update) nor create duplicates behind a conditional create
//! (http.html#ccreate: "One Match: The server ignores the post and returns 200 OK").

use conformance_tests::*;
use std::collections::HashSet;
use std::sync::Barrier;
use std::thread;

const THREADS: usize = 16;
const UPDATES_PER_THREAD: usize = 5;

/// http.html#ccreate: with 16 simultaneous conditional creates for one identifier,
/// exactly one resource is created; everyone else is told about it with 200 OK.
#[test]
fn concurrent_conditional_creates_create_exactly_one_resource() {
    for s in servers() {
        let sys = unique_system();
        let body = patient_with_identifier("Race", &sys, "same");
        let criteria = format!("identifier={sys}|same");
        let barrier = Barrier::new(THREADS);
        let results: Vec<(u16, String)> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let resp = s
                            .req(Method::POST, "Patient")
                            .fhir_json(&body)
                            .header("If-None-Exist", &criteria)
                            .fetch()
                            .expect_status_in(&[200, 201]);
                        let id = if resp.body.is_empty() {
                            String::new()
                        } else {
                            id_of(&resp.json())
                        };
                        (resp.status, id)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker thread"))
                .collect()
        });
        let created = results.iter().filter(|(st, _)| *st == 201).count();
        assert_eq!(created, 1, "[{}] statuses: {results:?}", s.backend);
        let ids: HashSet<&str> = results
            .iter()
            .map(|(_, id)| id.as_str())
            .filter(|id| !id.is_empty())
            .collect();
        assert_eq!(ids.len(), 1, "[{}] different ids: {results:?}", s.backend);

        let history = s.all_entries("Patient/_history");
        assert_eq!(
            history.len(),
            1,
            "[{}] type history: {history:?}",
            s.backend
        );
        assert_eq!(history[0]["request"]["method"], "POST");
    }
}

/// http.html#update: each successful update creates a new version; concurrent updates
/// without If-Match are serialised, so no version is lost.
#[test]
fn concurrent_updates_lose_no_versions() {
    for s in servers() {
        let created = s.create(&patient("Counter"));
        let id = id_of(&created);
        let path = format!("Patient/{id}");
        let barrier = Barrier::new(THREADS);
        thread::scope(|scope| {
            for t in 0..THREADS {
                let (s, created, path, barrier) = (&s, &created, &path, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    for i in 0..UPDATES_PER_THREAD {
                        let mut p = created.clone();
                        p["name"][0]["given"] = json!([format!("t{t}-u{i}")]);
                        s.put(path, &p).expect_status(200);
                    }
                });
            }
        });
        let expected = 1 + THREADS * UPDATES_PER_THREAD;
        let current = s.read("Patient", &id);
        assert_eq!(
            version_of(&current),
            expected.to_string(),
            "[{}] lost updates",
            s.backend
        );
        let history = s.all_entries(&format!("{path}/_history"));
        assert_eq!(history.len(), expected, "[{}]", s.backend);
        let versions: HashSet<String> =
            history.iter().map(|e| version_of(&e["resource"])).collect();
        let all: HashSet<String> = (1..=expected).map(|v| v.to_string()).collect();
        assert_eq!(
            versions, all,
            "[{}] version ids must be 1..={expected}",
            s.backend
        );
    }
}
