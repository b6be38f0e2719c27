//! http.html#transaction (batch) — each entry of a batch Bundle is processed on its own
//! and has its own response; one failing entry never affects the others. On both
//! backends.

use conformance_tests::*;

fn batch(s: &Server, entries: Vec<Value>) -> Value {
    let resp = s
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
        )
        .expect_status(200)
        .json();
    assert_eq!(resp["type"], "batch-response", "[{}] {resp}", s.backend);
    resp
}

/// "For a batch ... each entry is treated as if it were an individual interaction": a
/// failing entry gets its own status and OperationOutcome, the others are done.
#[test]
fn a_failing_entry_does_not_affect_the_others() {
    for s in servers() {
        let sys = unique_system();
        let doomed = s.create(&patient("Cao"));
        let doomed_id = id_of(&doomed);
        let mut mismatched = doomed.clone();
        mismatched["id"] = json!("another-id");
        let resp = batch(
            &s,
            vec![
                json!({"resource": patient_with_identifier("Mai", &sys, "1"), "request": {"method": "POST", "url": "Patient"}}),
                json!({"resource": mismatched, "request": {"method": "PUT", "url": format!("Patient/{doomed_id}")}}),
                json!({"request": {"method": "GET", "url": "Patient/does-not-exist"}}),
                json!({"request": {"method": "DELETE", "url": format!("Patient/{doomed_id}")}}),
                json!({"request": {"method": "GET", "url": format!("Patient?identifier={sys}|1")}}),
                json!({"resource": observation(), "request": {"method": "POST", "url": "Observation"}}),
            ],
        );
        let e = entries(&resp);
        assert_eq!(e.len(), 6, "[{}] one response per entry", s.backend);
        let status = |i: usize| e[i]["response"]["status"].as_str().unwrap().to_owned();
        assert_eq!(status(0), "201 Created", "[{}] {resp}", s.backend);
        assert!(status(1).starts_with("400"), "[{}] {resp}", s.backend);
        assert_outcome(&e[1]["response"]["outcome"], &["invalid"]);
        assert!(status(2).starts_with("404"));
        assert_outcome(&e[2]["response"]["outcome"], &["not-found"]);
        assert_eq!(status(3), "204 No Content");
        assert_eq!(status(4), "200 OK");
        assert_eq!(e[4]["resource"]["type"], "searchset");
        assert_eq!(status(5), "201 Created");

        let created = id_of(&e[0]["resource"]);
        assert_eq!(e[0]["fullUrl"], format!("{}/Patient/{created}", s.base));
        assert_eq!(
            e[0]["response"]["location"],
            format!("Patient/{created}/_history/1")
        );
        s.read("Patient", &created);
        s.read("Observation", &id_of(&e[5]["resource"]));
        s.get(&format!("Patient/{doomed_id}")).expect_error(410);
    }
}

/// Reads in a batch: read, vread and a conditional create that finds its match (200 and
/// the existing resource, http.html#ccreate).
#[test]
fn reads_and_conditional_creates() {
    for s in servers() {
        let sys = unique_system();
        let p = s.create(&patient_with_identifier("Lâm", &sys, "1"));
        let id = id_of(&p);
        let resp = batch(
            &s,
            vec![
                json!({"request": {"method": "GET", "url": format!("Patient/{id}")}}),
                json!({"request": {"method": "GET", "url": format!("{}/Patient/{id}/_history/1", s.base)}}),
                json!({"resource": patient_with_identifier("Lâm", &sys, "1"),
                       "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={sys}|1")}}),
            ],
        );
        let e = entries(&resp);
        for entry in &e {
            assert_eq!(
                entry["response"]["status"], "200 OK",
                "[{}] {resp}",
                s.backend
            );
            assert_eq!(id_of(&entry["resource"]), id);
            assert_eq!(entry["response"]["etag"], "W/\"1\"");
        }
    }
}

/// A Bundle of another type, or a batch entry without a request, is a 400 that says
/// where.
#[test]
fn malformed_bundles_are_400() {
    for s in servers() {
        let outcome = s
            .post("", &json!({"resourceType": "Bundle", "type": "collection"}))
            .expect_error(400);
        assert_issue_path(&outcome, "Bundle.type");
        let outcome = s
            .post(
                "",
                &json!({"resourceType": "Bundle", "type": "batch", "entry": [{"resource": patient("X")}]}),
            )
            .expect_error(400);
        assert_issue_path(&outcome, "Bundle.entry[0].request");
    }
}
