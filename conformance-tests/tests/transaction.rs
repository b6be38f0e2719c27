//! http.html#transaction — transaction Bundles: all or nothing, processed in the order of
//! http.html#trules, `urn:uuid:` fullUrls and conditional references resolved; and the
//! limits of `[bundle]`. On both backends.

use std::thread;

use base64::Engine;

use conformance_tests::*;

fn immunization(patient_ref: &str, system: &str, value: &str) -> Value {
    json!({
        "resourceType": "Immunization",
        "identifier": [{"system": system, "value": value}],
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
        "patient": {"reference": patient_ref},
        "occurrenceDateTime": "2021-08-01T09:00:00+07:00",
        "lotNumber": "FF1234"
    })
}

fn post_entry(full_url: &str, resource: Value) -> Value {
    let ty = resource["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": ty}})
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn transaction(s: &Server, entries: Vec<Value>) -> Resp {
    s.post("", &bundle("transaction", entries))
}

/// How many live resources `search` finds (a type-level search with `_total=accurate`).
fn count(s: &Server, search: &str) -> i64 {
    let sep = if search.contains('?') { '&' } else { '?' };
    s.get(&format!("{search}{sep}_total=accurate"))
        .expect_status(200)
        .json()["total"]
        .as_i64()
        .unwrap()
}

/// A site's day: one Patient and three doses referring to it by `urn:uuid:`, each a
/// conditional create on its identifier, so that sending it again creates nothing.
fn site_day(system: &str, person: &str) -> Value {
    let p = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let mut patient = patient_with_identifier("Nguyễn", system, person);
    patient["id"] = json!("ignored-by-create");
    let mut entries = vec![json!({
        "fullUrl": p,
        "resource": patient,
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={system}|{person}")}
    })];
    for dose in 1..=3 {
        let value = format!("{person}-dose-{dose}");
        entries.push(json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": immunization(&p, system, &value),
            "request": {"method": "POST", "url": "Immunization", "ifNoneExist": format!("Immunization?identifier={system}|{value}")}
        }));
    }
    bundle("transaction", entries)
}

/// http.html#transaction: "references ... to a resource in the bundle SHALL be replaced by
/// the server's id"; also in extensions (uri) and narrative links. The response has one
/// entry per request entry, in order, with status, location and etag.
#[test]
fn urn_uuid_references_are_rewritten() {
    for s in servers() {
        let sys = unique_system();
        let p = "urn:uuid:6f0c2f5e-1b9a-4c55-9a39-7b8e2a0c1d11";
        let mut shot = immunization(p, &sys, "1");
        shot["text"] = json!({"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"{p}\">the patient</a></div>")});
        shot["extension"] = json!([{"url": "http://healthbook.test/ext/about", "valueUri": p}]);
        let resp = transaction(
            &s,
            vec![
                post_entry("urn:uuid:aaaaaaaa-0000-4000-8000-000000000001", shot),
                post_entry(p, patient_with_identifier("Trần", &sys, "p")),
            ],
        )
        .expect_status(200)
        .json();
        assert_eq!(resp["type"], "transaction-response", "[{}]", s.backend);
        let entries = entries(&resp);
        assert_eq!(entries.len(), 2);
        for e in &entries {
            assert_eq!(
                e["response"]["status"], "201 Created",
                "[{}] {e}",
                s.backend
            );
            assert!(e["response"]["etag"] == "W/\"1\"");
            assert!(e["response"]["location"]
                .as_str()
                .unwrap()
                .ends_with("/_history/1"));
        }
        let patient_id = id_of(&entries[1]["resource"]);
        assert_eq!(
            entries[1]["fullUrl"],
            format!("{}/Patient/{patient_id}", s.base)
        );
        let stored = s.read("Immunization", &id_of(&entries[0]["resource"]));
        let expected = format!("Patient/{patient_id}");
        assert_eq!(stored["patient"]["reference"], expected, "[{}]", s.backend);
        assert_eq!(stored["extension"][0]["valueUri"], expected);
        assert!(stored["text"]["div"]
            .as_str()
            .unwrap()
            .contains(&format!("href=\"{expected}\"")));
        assert_eq!(
            count(&s, &format!("Immunization?patient={patient_id}")),
            1,
            "[{}] the reference is indexed",
            s.backend
        );
    }
}

/// http.html#transaction: "If any resource ... fails, the entire transaction fails" —
/// nothing is written, and the OperationOutcome names the failing entry.
#[test]
fn a_bad_entry_rolls_back_everything() {
    for s in servers() {
        let sys = unique_system();
        let other = s.create(&patient("Lê"));
        let mut wrong = other.clone();
        wrong["id"] = json!("not-the-url-id");
        let outcome = transaction(
            &s,
            vec![
                post_entry(
                    "urn:uuid:aaaaaaaa-0000-4000-8000-000000000002",
                    patient_with_identifier("Phạm", &sys, "1"),
                ),
                json!({"resource": wrong, "request": {"method": "PUT", "url": format!("Patient/{}", id_of(&other))}}),
            ],
        )
        .expect_error(400);
        assert_issue_path(&outcome, "Bundle.entry[1]");
        assert_eq!(
            count(&s, &format!("Patient?identifier={sys}|1")),
            0,
            "[{}]",
            s.backend
        );
    }
}

/// http.html#concurrency in a transaction: a stale `ifMatch` fails the whole Bundle (412)
/// and the create before it is rolled back.
#[test]
fn a_stale_if_match_rolls_back_everything() {
    for s in servers() {
        let sys = unique_system();
        let existing = s.create(&patient("Hoàng"));
        let id = id_of(&existing);
        s.put(&format!("Patient/{id}"), &existing)
            .expect_status(200);
        let outcome = transaction(
            &s,
            vec![
                post_entry(
                    "urn:uuid:aaaaaaaa-0000-4000-8000-000000000003",
                    patient_with_identifier("Phan", &sys, "1"),
                ),
                json!({"resource": existing, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}),
            ],
        )
        .expect_error(412);
        assert_issue_path(&outcome, "Bundle.entry[1]");
        assert_eq!(count(&s, &format!("Patient?identifier={sys}|1")), 0);
        assert_eq!(
            version_of(&s.read("Patient", &id)),
            "2",
            "[{}] the update did not happen",
            s.backend
        );
    }
}

/// http.html#transaction (conditional references): a reference `Patient?identifier=...`
/// is replaced by the one match; several matches fail with 412, none with 404, and
/// nothing is written either way.
#[test]
fn conditional_references_resolve_to_exactly_one() {
    for s in servers() {
        let sys = unique_system();
        let one = id_of(&s.create(&patient_with_identifier("Vũ", &sys, "one")));
        s.create(&patient_with_identifier("Võ", &sys, "two"));
        s.create(&patient_with_identifier("Võ", &sys, "two"));
        let resp = transaction(
            &s,
            vec![post_entry(
                "urn:uuid:aaaaaaaa-0000-4000-8000-000000000004",
                immunization(&format!("Patient?identifier={sys}|one"), &sys, "shot-1"),
            )],
        )
        .expect_status(200)
        .json();
        let shot = s.read("Immunization", &id_of(&entries(&resp)[0]["resource"]));
        assert_eq!(shot["patient"]["reference"], format!("Patient/{one}"));

        for (value, status) in [("two", 412), ("none", 404)] {
            let outcome = transaction(
                &s,
                vec![
                    post_entry(
                        "urn:uuid:aaaaaaaa-0000-4000-8000-000000000005",
                        patient_with_identifier("Đỗ", &sys, "new"),
                    ),
                    post_entry(
                        "urn:uuid:aaaaaaaa-0000-4000-8000-000000000006",
                        immunization(&format!("Patient?identifier={sys}|{value}"), &sys, "x"),
                    ),
                ],
            )
            .expect_error(status);
            assert_issue_path(&outcome, "Bundle.entry[1]");
            assert_eq!(count(&s, &format!("Patient?identifier={sys}|new")), 0);
        }
    }
}

/// http.html#trules: DELETE, then POST, then PUT/PATCH, then GET. The GET sees the create
/// made later in the Bundle; the conditional create sees the delete made after it in the
/// Bundle's order.
#[test]
fn entries_are_processed_in_the_order_of_trules() {
    for s in servers() {
        let sys = unique_system();
        let old = id_of(&s.create(&patient_with_identifier("Bùi", &sys, "1")));
        let resp = transaction(
            &s,
            vec![
                json!({"request": {"method": "GET", "url": format!("Patient?identifier={sys}|1")}}),
                json!({
                    "fullUrl": "urn:uuid:aaaaaaaa-0000-4000-8000-000000000007",
                    "resource": patient_with_identifier("Bùi", &sys, "1"),
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={sys}|1")}
                }),
                json!({"request": {"method": "DELETE", "url": format!("Patient/{old}")}}),
            ],
        )
        .expect_status(200)
        .json();
        let e = entries(&resp);
        assert_eq!(e[2]["response"]["status"], "204 No Content");
        assert_eq!(
            e[1]["response"]["status"], "201 Created",
            "[{}] the conditional create ran after the delete",
            s.backend
        );
        let created = id_of(&e[1]["resource"]);
        assert_ne!(created, old);
        let search = &e[0]["resource"];
        assert_eq!(search["type"], "searchset");
        let found: Vec<String> = entries(search)
            .iter()
            .map(|m| id_of(&m["resource"]))
            .collect();
        assert_eq!(found, vec![created], "[{}] the GET ran last", s.backend);
        s.get(&format!("Patient/{old}")).expect_error(410);
    }
}

/// http.html#trules: "If any resource identities (including resolved identities from
/// conditional update/delete) overlap in steps 1-3, then the transaction SHALL fail."
#[test]
fn two_entries_touching_one_resource_fail() {
    for s in servers() {
        let sys = unique_system();
        let p = s.create(&patient_with_identifier("Đặng", &sys, "1"));
        let id = id_of(&p);
        let put =
            json!({"resource": p, "request": {"method": "PUT", "url": format!("Patient/{id}")}});
        let outcome = transaction(
            &s,
            vec![
                put,
                json!({"request": {"method": "DELETE", "url": format!("Patient?identifier={sys}|1")}}),
            ],
        )
        .expect_error(400);
        assert_issue_path(&outcome, "Bundle.entry[0]");
        assert_eq!(version_of(&s.read("Patient", &id)), "1", "[{}]", s.backend);
    }
}

/// A `urn:uuid:` reference that is no entry's fullUrl cannot be resolved: 400.
#[test]
fn a_dangling_urn_reference_fails() {
    for s in servers() {
        let sys = unique_system();
        let outcome = transaction(
            &s,
            vec![post_entry(
                "urn:uuid:aaaaaaaa-0000-4000-8000-000000000008",
                immunization("urn:uuid:aaaaaaaa-0000-4000-8000-0000000000ff", &sys, "1"),
            )],
        )
        .expect_error(400);
        assert_issue_path(&outcome, "Bundle.entry[0]");
        assert_eq!(count(&s, &format!("Immunization?identifier={sys}|1")), 0);
    }
}

/// http.html#patch in a Bundle: a Binary holding a JSON Patch; conditional update by
/// criteria; `Prefer: return=minimal` leaves the resources out of the response.
#[test]
fn patch_and_conditional_update_entries() {
    for s in servers() {
        let sys = unique_system();
        let p = id_of(&s.create(&patient_with_identifier("Ngô", &sys, "1")));
        let ops = json!([{"op": "replace", "path": "/gender", "value": "female"}]).to_string();
        let data = base64::engine::general_purpose::STANDARD.encode(ops.as_bytes());
        let mut updated = patient_with_identifier("Ngô", &sys, "2");
        updated["birthDate"] = json!("1990-01-02");
        let resp = s
            .req(Method::POST, "")
            .header("Prefer", "return=minimal")
            .fhir_json(&bundle(
                "transaction",
                vec![
                    json!({"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
                           "request": {"method": "PATCH", "url": format!("Patient/{p}")}}),
                    json!({"resource": updated, "request": {"method": "PUT", "url": format!("Patient?identifier={sys}|2")}}),
                ],
            ))
            .fetch()
            .expect_status(200)
            .json();
        let e = entries(&resp);
        assert_eq!(
            e[0]["response"]["status"], "200 OK",
            "[{}] {resp}",
            s.backend
        );
        assert_eq!(e[1]["response"]["status"], "201 Created");
        assert!(e.iter().all(|x| x.get("resource").is_none()));
        assert_eq!(s.read("Patient", &p)["gender"], "female");
        assert_eq!(count(&s, &format!("Patient?identifier={sys}|2")), 1);
    }
}

/// Idempotent resubmission: a site sends the same day's transaction (conditional creates
/// on identifiers) eight times at the same moment on eight connections; the store holds
/// each person and each dose once, and every copy succeeds.
#[test]
fn concurrent_resubmission_creates_nothing_twice() {
    for s in servers() {
        let sys = unique_system();
        for round in 0..3 {
            let person = format!("0790{round}1234567");
            let day = site_day(&sys, &person);
            let statuses: Vec<u16> = thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| s.post("", &day).status))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(
                statuses.iter().all(|st| *st == 200),
                "[{}] {statuses:?}",
                s.backend
            );
            assert_eq!(
                count(&s, &format!("Patient?identifier={sys}|{person}")),
                1,
                "[{}] round {round}",
                s.backend
            );
            assert_eq!(
                count(&s, &format!("Immunization?identifier={sys}|")),
                3 * (round + 1),
                "[{}] round {round}",
                s.backend
            );
            // Every dose refers to the one Patient.
            let patient_id = id_of(
                &entries(
                    &s.get(&format!("Patient?identifier={sys}|{person}"))
                        .expect_status(200)
                        .json(),
                )[0]["resource"],
            );
            assert_eq!(
                count(&s, &format!("Immunization?patient={patient_id}")),
                3,
                "[{}]",
                s.backend
            );
        }
    }
}

/// `[bundle]` limits: more entries than `max_entries`, or a body over `body_limit_bytes`,
/// is a 413 OperationOutcome and nothing is processed.
#[test]
fn bundle_limits_are_413() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("HEALTHBOOK__BUNDLE__MAX_ENTRIES", "2"),
            ("HEALTHBOOK__BUNDLE__BODY_LIMIT_BYTES", "4096"),
        ],
    );
    let sys = unique_system();
    let three: Vec<Value> = (0..3)
        .map(|i| {
            post_entry(
                &format!("urn:uuid:aaaaaaaa-0000-4000-8000-00000000010{i}"),
                patient_with_identifier("Lý", &sys, &i.to_string()),
            )
        })
        .collect();
    for kind in ["transaction", "batch"] {
        let outcome = s.post("", &bundle(kind, three.clone())).expect_error(413);
        assert_outcome(&outcome, &["too-costly"]);
    }
    let mut big = patient_with_identifier("Lý", &sys, "big");
    big["name"][0]["text"] = json!("x".repeat(5000));
    s.post(
        "",
        &bundle(
            "transaction",
            vec![post_entry(
                "urn:uuid:aaaaaaaa-0000-4000-8000-000000000110",
                big,
            )],
        ),
    )
    .expect_error(413);
    assert_eq!(count(&s, &format!("Patient?identifier={sys}|")), 0);
}

/// PUT entries to ids chosen by the client (http.html#upsert, update as create): a new id
/// is created (201, version 1), an existing one updated (200), a deleted one brought back
/// (201, its next version); references between the entries need no fullUrl.
#[test]
fn put_entries_create_update_and_revive() {
    for s in servers() {
        let sys = unique_system();
        let (fresh, existing, deleted) = (new_id(), new_id(), new_id());
        s.put(
            &format!("Patient/{existing}"),
            &json!({"resourceType": "Patient", "id": existing, "name": [{"family": "Cũ"}]}),
        )
        .expect_status(201);
        s.put(
            &format!("Patient/{deleted}"),
            &json!({"resourceType": "Patient", "id": deleted, "name": [{"family": "Xoá"}]}),
        )
        .expect_status(201);
        s.delete(&format!("Patient/{deleted}"))
            .expect_status_in(&[200, 204]);
        let put = |id: &str, resource: Value| json!({"resource": resource, "request": {"method": "PUT", "url": format!("{}/{id}", resource["resourceType"].as_str().unwrap())}});
        let shot = new_id();
        let mut dose = immunization(&format!("Patient/{fresh}"), &sys, "1");
        dose["id"] = json!(shot);
        let resp = transaction(
            &s,
            vec![
                put(
                    &fresh,
                    json!({"resourceType": "Patient", "id": fresh, "name": [{"family": "Mới"}]}),
                ),
                put(
                    &existing,
                    json!({"resourceType": "Patient", "id": existing, "name": [{"family": "Sửa"}]}),
                ),
                put(
                    &deleted,
                    json!({"resourceType": "Patient", "id": deleted, "name": [{"family": "Lại"}]}),
                ),
                put(&shot, dose),
            ],
        )
        .expect_status(200)
        .json();
        let statuses: Vec<String> = entries(&resp)
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap()[..3].to_owned())
            .collect();
        assert_eq!(
            statuses,
            ["201", "200", "201", "201"],
            "[{}] {resp}",
            s.backend
        );
        assert_eq!(version_of(&s.read("Patient", &fresh)), "1");
        assert_eq!(version_of(&s.read("Patient", &existing)), "2");
        let revived = s.read("Patient", &deleted);
        assert_eq!(version_of(&revived), "3");
        assert_eq!(revived["name"][0]["family"], "Lại");
        assert_eq!(
            count(&s, &format!("Immunization?patient=Patient/{fresh}")),
            1,
            "the new resources are indexed"
        );
        let history = s
            .get(&format!("Patient/{fresh}/_history"))
            .expect_status(200)
            .json();
        assert_eq!(entries(&history)[0]["request"]["method"], "PUT");
    }
}
