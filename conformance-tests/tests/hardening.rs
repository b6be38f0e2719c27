//! Hostile and sloppy input (issue 14): each is a 4xx OperationOutcome on both backends,
//! nothing is stored, and the server goes on answering. Deep XML is in `formats.rs`, search
//! cost and the statement timeout in `search.rs`.

use conformance_tests::*;

/// datatypes.html#string and #date: control characters, strings over 1 MB and the year
/// 0000 are refused (they were a 500 on PostgreSQL, or stored).
#[test]
fn bad_strings_and_dates_are_400_and_not_stored() {
    for s in servers() {
        let family = "Hostile";
        let mut cases = Vec::new();
        let mut nul = patient(family);
        nul["name"][0]["given"] = json!(["a\u{0}b"]);
        cases.push(("NUL", nul));
        let mut escape = patient(family);
        escape["name"][0]["given"] = json!(["\u{1b}[31mred"]);
        cases.push(("ESC", escape));
        let mut long = patient(family);
        long["name"][0]["given"] = json!(["x".repeat(1024 * 1024 + 10)]);
        cases.push(("1 MB", long));
        let mut year0 = patient(family);
        year0["birthDate"] = json!("0000-01-01");
        cases.push(("year 0", year0));
        for (what, body) in cases {
            let outcome = s.post("Patient", &body).expect_error(400);
            assert_eq!(
                error_code(&outcome),
                "HB-FORMAT",
                "[{}] {what}: {outcome}",
                s.backend
            );
        }
        let stored = s
            .get(&format!("Patient?family={family}"))
            .expect_status(200)
            .json();
        assert_eq!(stored["total"], 0, "[{}] something was stored", s.backend);
    }
}

/// http.html#history: `_since` after the last version of an existing resource is an empty
/// history (not a 404); `_at` lists the versions current at some time in its period
/// (history.html; it used to be ignored, and the whole history came back), a malformed one
/// is a 400; a `_sort` with empty keys is a 400.
#[test]
fn history_and_sort_parameters_are_not_ignored() {
    for s in servers() {
        let id = id_of(&s.create(&patient("History")));
        let future = s
            .get(&format!(
                "Patient/{id}/_history?_since=2099-01-01T00:00:00Z"
            ))
            .expect_status(200)
            .json();
        assert_eq!(future["type"], "history");
        assert!(entries(&future).is_empty(), "[{}] {future}", s.backend);
        s.get(&format!(
            "Patient/{}/_history?_since=2099-01-01T00:00:00Z",
            new_id()
        ))
        .expect_error(404);
        let first = s.read("Patient", &id);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut body = first.clone();
        body["active"] = json!(false);
        let second = s
            .put(&format!("Patient/{id}"), &body)
            .expect_status(200)
            .json();
        let versions = |at: &str| -> Vec<String> {
            let url = reqwest::Url::parse_with_params(
                &s.url(&format!("Patient/{id}/_history")),
                &[("_at", at)],
            )
            .unwrap();
            let bundle = s
                .client
                .get(url)
                .header("Accept", "application/fhir+json")
                .fetch();
            entries(&bundle.expect_status(200).json())
                .iter()
                .map(|e| {
                    e["resource"]["meta"]["versionId"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        let (t1, t2) = (
            first["meta"]["lastUpdated"].as_str().unwrap().to_owned(),
            second["meta"]["lastUpdated"].as_str().unwrap().to_owned(),
        );
        assert_eq!(versions(&t1), ["1"], "[{}] _at={t1}", s.backend);
        assert_eq!(versions(&t2), ["2"], "[{}] _at={t2}", s.backend);
        assert_eq!(versions("2099-01-01"), ["2"], "[{}]", s.backend);
        assert!(versions("2001").is_empty(), "[{}]", s.backend);
        let year = &t1[..4];
        assert_eq!(versions(year), ["2", "1"], "[{}] _at={year}", s.backend);
        for bad in ["_at=yesterday", "_at=2021&_at=2022"] {
            let at = s
                .get(&format!("Patient/{id}/_history?{bad}"))
                .expect_error(400);
            assert_eq!(at["issue"][0]["expression"][0], "_at");
        }
        let sort = s.get("Patient?_sort=,,,").expect_error(400);
        assert_eq!(sort["issue"][0]["expression"][0], "_sort");
    }
}

/// A criterion that is not UTF-8 once percent-decoded (or an If-None-Exist header that is
/// not UTF-8) is a 400: read with replacement characters it matched nothing, and a
/// conditional create made a duplicate of the person it was meant to find.
#[test]
fn criteria_that_are_not_utf8_are_400_not_duplicates() {
    for s in servers() {
        let system = unique_system();
        let mut body = patient("Once");
        body["identifier"] = json!([{"system": system, "value": "001090012345"}]);
        s.post("Patient", &body).expect_status(201);
        let create = |criteria: reqwest::header::HeaderValue| {
            s.req(Method::POST, "Patient")
                .header("If-None-Exist", criteria)
                .fhir_json(&body)
                .fetch()
        };
        let encoded = format!("identifier={system}|001090012345%FF");
        create(reqwest::header::HeaderValue::from_str(&encoded).unwrap()).expect_error(400);
        let raw = reqwest::header::HeaderValue::from_bytes(b"identifier=\xff").unwrap();
        create(raw).expect_error(400);
        s.get("Patient?name=%FF").expect_error(400);
        let found = s
            .get(&format!("Patient?identifier={system}|001090012345"))
            .expect_status(200)
            .json();
        assert_eq!(found["total"], 1, "[{}] a duplicate was made", s.backend);
    }
}

/// http.html#version-parameter: a FHIR version this server does not serve is 406 in
/// Accept and 415 in Content-Type; http.html#mime-type: a body in another charset than
/// UTF-8 is 415. `fhirVersion=4.0` is served.
#[test]
fn other_fhir_versions_and_charsets_are_refused() {
    for s in servers() {
        let post = |content_type: &str| {
            s.req(Method::POST, "Patient")
                .header("Content-Type", content_type)
                .header("Accept", FHIR_JSON)
                .body(patient("Version").to_string())
                .fetch()
        };
        post("application/fhir+json; charset=iso-8859-1").expect_error(415);
        post("application/fhir+json; fhirVersion=3.0").expect_error(415);
        post("application/fhir+json; fhirVersion=4.0; charset=UTF-8").expect_status(201);
        s.req(Method::GET, "metadata")
            .header("Accept", "application/fhir+json; fhirVersion=3.0")
            .fetch()
            .expect_error(406);
        s.req(Method::GET, "metadata")
            .header("Accept", "application/fhir+json; fhirVersion=4.0")
            .fetch()
            .expect_status(200);
    }
}

/// bundle.html: a `urn:uuid:` fullUrl holds a UUID (else the whole Bundle is a 400); in a
/// batch the entries stand alone (http.html#transaction), so an entry that refers to
/// another by its `urn:uuid:` is a 400 of its own instead of a reference that points
/// nowhere.
#[test]
fn bundle_references_are_resolvable_or_refused() {
    for s in servers() {
        for kind in ["batch", "transaction"] {
            let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [{
                "fullUrl": "urn:uuid:not-a-uuid",
                "resource": patient("Urn"),
                "request": {"method": "POST", "url": "Patient"},
            }]});
            let outcome = s.post("", &bundle).expect_error(400);
            assert_eq!(
                outcome["issue"][0]["expression"][0],
                "Bundle.entry[0].fullUrl"
            );
        }
        let person = "urn:uuid:2f3c0d5e-0000-4000-8000-0000000000aa";
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"fullUrl": person, "resource": patient("Batched"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final",
              "code": {"text": "weight"}, "subject": {"reference": person}},
             "request": {"method": "POST", "url": "Observation"}},
        ]});
        let answer = s.post("", &bundle).expect_status(200).json();
        let status = |i: usize| {
            answer["entry"][i]["response"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert!(status(0).starts_with("201"), "[{}] {answer}", s.backend);
        assert!(status(1).starts_with("400"), "[{}] {answer}", s.backend);
        let stored = s
            .get("Observation?code:text=weight")
            .expect_status(200)
            .json();
        assert_eq!(
            stored["total"], 0,
            "[{}] an Observation pointing nowhere was stored",
            s.backend
        );
    }
}

/// narrative.html#xhtml (txt-1, txt-2): a narrative with a script, an event attribute, a
/// script URL, or that is not XHTML is a 422 naming the rule, never stored (a stored XSS for
/// every app that shows `text.div`); a plain one is stored.
#[test]
fn narratives_with_scripts_are_refused() {
    for s in servers() {
        let xhtml = r#"<div xmlns="http://www.w3.org/1999/xhtml">"#;
        for (div, rule) in [
            (format!("{xhtml}<script>alert(1)</script></div>"), "txt-1"),
            (
                format!(r#"{xhtml}<img src="x" onerror="alert(1)"/></div>"#),
                "txt-1",
            ),
            (
                format!(r#"{xhtml}<a href="javascript:alert(1)">x</a></div>"#),
                "txt-1",
            ),
            ("<div>unclosed".to_owned(), "txt-1"),
            (format!("{xhtml} </div>"), "txt-2"),
        ] {
            let mut body = patient("Narrated");
            body["text"] = json!({"status": "generated", "div": div});
            let outcome = s.post("Patient", &body).expect_error(422);
            let codes: Vec<&str> = outcome["issue"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["details"]["coding"][0]["code"].as_str())
                .collect();
            assert!(codes.contains(&rule), "[{}] {div}: {outcome}", s.backend);
        }
        let mut body = patient("Narrated");
        body["text"] =
            json!({"status": "generated", "div": format!("{xhtml}<p>Nguyễn <b>An</b></p></div>")});
        s.post("Patient", &body).expect_status(201);
    }
}

/// A reference to a type its element does not allow (Patient.managingOrganization is an
/// Organization: its targetProfile) is a 422 `HB-REFERENCE-TYPE`, not stored.
#[test]
fn references_to_the_wrong_type_are_refused() {
    for s in servers() {
        let mut body = patient("Referring");
        body["managingOrganization"] = json!({"reference": "Observation/1"});
        let outcome = s.post("Patient", &body).expect_error(422);
        assert_eq!(
            error_code(&outcome),
            "HB-REFERENCE-TYPE",
            "[{}] {outcome}",
            s.backend
        );
        assert_eq!(
            outcome["issue"][0]["expression"][0],
            "Patient.managingOrganization.reference"
        );
        let organization = id_of(
            &s.create(&json!({"resourceType": "Organization", "name": "Bệnh viện Bạch Mai"})),
        );
        body["managingOrganization"] = json!({"reference": format!("Organization/{organization}")});
        s.post("Patient", &body).expect_status(201);
    }
}

/// A write whose literal reference names a resource this server does not hold is a 422
/// `HB-REFERENCE-UNKNOWN` (an Immunization for `Patient/does-not-exist` was stored and
/// counted); resources written in the same transaction count, whatever the entry order;
/// `validation.rules.HB-REFERENCE-UNKNOWN = off` turns the check off.
#[test]
fn references_to_unknown_resources_are_refused() {
    for s in servers() {
        let shot = |patient: &str| {
            json!({"resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"text": "COVID-19"}, "occurrenceDateTime": "2021-07-01",
                "patient": {"reference": patient}})
        };
        let outcome = s
            .post("Immunization", &shot("Patient/does-not-exist"))
            .expect_error(422);
        assert_eq!(
            error_code(&outcome),
            "HB-REFERENCE-UNKNOWN",
            "[{}] {outcome}",
            s.backend
        );
        assert_eq!(
            outcome["issue"][0]["expression"][0],
            "Immunization.patient.reference"
        );
        let id = id_of(&s.create(&patient("Known")));
        s.post("Immunization", &shot(&format!("Patient/{id}")))
            .expect_status(201);
        s.post("Immunization", &shot(&format!("{}/Patient/{id}", s.base)))
            .expect_status(201);
        // A transaction's own resources count, also when the reference comes first.
        let person = "urn:uuid:2f3c0d5e-0000-4000-8000-0000000000bb";
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": shot(person), "request": {"method": "POST", "url": "Immunization"}},
            {"fullUrl": person, "resource": patient("InBundle"), "request": {"method": "POST", "url": "Patient"}},
        ]});
        s.post("", &bundle).expect_status(200);
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": shot("Patient/does-not-exist"), "request": {"method": "POST", "url": "Immunization"}},
            {"resource": patient("NotWritten"), "request": {"method": "POST", "url": "Patient"}},
        ]});
        s.post("", &bundle).expect_error(422);
        let none = s.get("Patient?family=NotWritten").expect_status(200).json();
        assert_eq!(
            none["total"], 0,
            "[{}] the failed transaction wrote",
            s.backend
        );
    }
    let relaxed = Server::start_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__VALIDATION__RULES__HB_REFERENCE_UNKNOWN", "off")],
    );
    relaxed
        .post(
            "Immunization",
            &json!({"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"text": "COVID-19"}, "occurrenceDateTime": "2021-07-01",
            "patient": {"reference": "Patient/later"}}),
        )
        .expect_status(201);
}

/// json.html allows strings up to 1 MB, and an index entry on PostgreSQL holds about
/// 2,700 bytes: long values are indexed by a bounded key and still found exactly (they
/// were a 500 "index row requires … bytes" on PostgreSQL).
#[test]
fn long_values_are_stored_and_found_exactly() {
    for s in servers() {
        let long = |tail: &str| format!("{}{tail}", "Nguyễn".repeat(500));
        let mut a = patient(&long("A"));
        a["identifier"] = json!([{"system": "urn:x", "value": "9".repeat(3_000) + "a"}]);
        let mut b = patient(&long("B"));
        b["identifier"] = json!([{"system": "urn:x", "value": "9".repeat(3_000) + "b"}]);
        let a_id = s.post("Patient", &a).expect_status(201).json()["id"].clone();
        let b_id = s.post("Patient", &b).expect_status(201).json()["id"].clone();
        let ids = |query: &str| -> Vec<Value> {
            let bundle = s.get(&format!("Patient?{query}")).expect_status(200).json();
            bundle["entry"]
                .as_array()
                .map(|e| e.iter().map(|e| e["resource"]["id"].clone()).collect())
                .unwrap_or_default()
        };
        let identifier = format!("identifier=urn:x|{}a", "9".repeat(3_000));
        assert_eq!(ids(&identifier), vec![a_id.clone()], "[{}]", s.backend);
        assert_eq!(
            ids(&format!("family:exact={}", long("B"))),
            vec![b_id.clone()],
            "[{}]",
            s.backend
        );
        // A prefix finds both; the whole name only the one it names.
        let mut both = ids(&format!("family={}", "Nguyễn".repeat(40)));
        both.sort_by_key(|v| v.as_str().map(str::to_owned));
        let mut expected = vec![a_id.clone(), b_id];
        expected.sort_by_key(|v| v.as_str().map(str::to_owned));
        assert_eq!(both, expected, "[{}]", s.backend);
        assert_eq!(
            ids(&format!("family:exact={}", long("A"))),
            vec![a_id],
            "[{}]",
            s.backend
        );
    }
}

/// Nothing from outside overflows a stack (issue 14): JSON Patch and FHIRPath Patch
/// documents whose paths, expressions or values nest 10 to 100,000 deep are answered
/// (applied, or a 4xx OperationOutcome), the resource stays readable, the server lives.
#[test]
fn patches_nested_at_any_depth_are_answered() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Deep")));
        let path = format!("Patient/{id}");
        for depth in [10usize, 128, 1_000, 100_000] {
            let pointer = "/extension/0".repeat(depth);
            let value = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let documents = [
                format!(r#"[{{"op":"add","path":"{pointer}","value":1}}]"#),
                format!(r#"[{{"op":"add","path":"/extension","value":{value}}}]"#),
            ];
            for body in documents {
                let resp = s
                    .req(Method::PATCH, &path)
                    .header("Content-Type", "application/json-patch+json")
                    .body(body)
                    .fetch();
                assert!(
                    (400..500).contains(&resp.status),
                    "[{}] JSON Patch at depth {depth}: {}",
                    s.backend,
                    resp.status
                );
                assert_eq!(resp.json()["resourceType"], "OperationOutcome");
            }
            let expression = format!("{}Patient.name{}", "(".repeat(depth), ")".repeat(depth));
            let fhirpath = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
                {"name": "type", "valueCode": "delete"},
                {"name": "path", "valueString": expression}]}]});
            let resp = s.req(Method::PATCH, &path).fhir_json(&fhirpath).fetch();
            if depth <= 10 {
                assert_eq!(
                    resp.status, 200,
                    "[{}] FHIRPath at depth {depth}",
                    s.backend
                );
                // Put the name back for the next round.
                s.put(
                    &path,
                    &json!({"resourceType": "Patient", "id": id, "active": true,
                    "name": [{"family": "Deep", "given": ["Test"]}], "gender": "male"}),
                )
                .expect_status(200);
            } else {
                assert!(
                    (400..500).contains(&resp.status),
                    "[{}] FHIRPath at depth {depth}: {}",
                    s.backend,
                    resp.status
                );
            }
            s.get(&path).expect_status(200);
        }
    }
}
