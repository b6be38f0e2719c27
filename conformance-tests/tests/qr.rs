//! The personal health QR (issue 15, docs/QR.md): issue, rotate, revoke, show again, and
//! the hospital's lookups (`Patient/$qr-resolve`, `Patient?identifier=<qr-system>|<token>`),
//! on both backends. The token never appears in the Patient, its history, the search index,
//! the audit trail or the log.

use conformance_tests::*;

const QR_SYSTEM: &str = "https://healthbook.example.org/fhir/sid/personal-qr";

fn parameter<'a>(parameters: &'a Value, name: &str) -> &'a Value {
    parameters["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Issues (or rotates) the QR of `id`: (token, payload).
fn issue(s: &Server, id: &str) -> (String, String) {
    let resp = s
        .req(Method::POST, &format!("Patient/{id}/$qr-issue"))
        .fetch()
        .expect_status(200);
    assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));
    let p = resp.json();
    let token = parameter(&p, "token")["valueString"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = parameter(&p, "payload")["valueString"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(payload, format!("HB1:{token}"));
    assert_eq!(
        parameter(&p, "identifier")["valueIdentifier"]["system"],
        QR_SYSTEM
    );
    (token, payload)
}

fn resolve(s: &Server, code: &str) -> Resp {
    let url =
        reqwest::Url::parse_with_params(&s.url("Patient/$qr-resolve"), &[("code", code)]).unwrap();
    s.client
        .get(url)
        .header("Accept", "application/fhir+json")
        .fetch()
}

fn person(s: &Server) -> String {
    id_of(&s.create(&patient("Scanned")))
}

#[test]
fn a_scan_finds_the_person_and_only_a_valid_code_does() {
    for s in servers() {
        let id = person(&s);
        let other = person(&s);
        let (token, payload) = issue(&s, &id);
        issue(&s, &other);
        assert_eq!(token.len(), 27);
        // As scanners deliver it: surrounding whitespace, lower case, with or without prefix.
        for scanned in [
            payload.clone(),
            format!("  {}\r\n", payload.to_lowercase()),
            token.clone(),
        ] {
            let found = resolve(&s, &scanned).expect_status(200).json();
            assert_eq!(found["id"], id.as_str(), "[{}] {scanned:?}", s.backend);
        }
        // Any FHIR client: a search by identifier, whose self link does not echo the token.
        let bundle = s
            .get(&format!("Patient?identifier={QR_SYSTEM}|{token}"))
            .expect_status(200)
            .json();
        assert_eq!(bundle["total"], 1, "[{}] {bundle}", s.backend);
        assert_eq!(bundle["entry"][0]["resource"]["id"], id.as_str());
        assert!(
            !bundle.to_string().contains(&token),
            "[{}] the token is echoed",
            s.backend
        );
        // One wrong character: the check character refuses it (never someone else).
        let mut wrong = token.clone().into_bytes();
        wrong[3] = if wrong[3] == b'7' { b'8' } else { b'7' };
        let wrong = String::from_utf8(wrong).unwrap();
        let outcome = resolve(&s, &wrong).expect_error(404);
        assert_eq!(
            error_code(&outcome),
            "HB-QR-MISREAD",
            "[{}] {outcome}",
            s.backend
        );
        assert!(!outcome.to_string().contains(&id));
        let outcome = resolve(&s, "HC1:NCFOXN%TS3DH").expect_error(404);
        assert_eq!(error_code(&outcome), "HB-QR-UNKNOWN");
        let none = s
            .get(&format!("Patient?identifier={QR_SYSTEM}|{wrong}"))
            .expect_status(200)
            .json();
        assert_eq!(none["total"], 0);
        // No code at all.
        let outcome = s.get("Patient/$qr-resolve").expect_error(400);
        assert_eq!(error_code(&outcome), "HB-OPERATION-PARAM");
    }
}

#[test]
fn rotate_revoke_expire_and_show_again() {
    for s in servers() {
        let id = person(&s);
        let (first, _) = issue(&s, &id);
        let (second, _) = issue(&s, &id);
        assert_ne!(first, second);
        // The old token stops at once; the new one works; the owner sees the new one.
        assert_eq!(
            error_code(&resolve(&s, &first).expect_error(404)),
            "HB-QR-UNKNOWN"
        );
        resolve(&s, &second).expect_status(200);
        let shown = s.get(&format!("Patient/{id}/$qr")).expect_status(200);
        assert_eq!(shown.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            parameter(&shown.json(), "token")["valueString"],
            second.as_str()
        );
        // Revoked: nothing resolves and there is nothing to show.
        let revoked = s
            .req(Method::POST, &format!("Patient/{id}/$qr-revoke"))
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(parameter(&revoked, "revoked")["valueBoolean"], true);
        assert_eq!(
            error_code(&resolve(&s, &second).expect_error(404)),
            "HB-QR-UNKNOWN"
        );
        let outcome = s.get(&format!("Patient/{id}/$qr")).expect_error(404);
        assert_eq!(error_code(&outcome), "HB-QR-UNKNOWN");
        // An expiry in the past: issued, and already unknown.
        let expired = s
            .req(Method::POST, &format!("Patient/{id}/$qr-issue"))
            .fhir_json(&json!({"resourceType": "Parameters", "parameter": [
                {"name": "expires", "valueInstant": "2020-01-01T00:00:00Z"}]}))
            .fetch()
            .expect_status(200)
            .json();
        let token = parameter(&expired, "token")["valueString"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            parameter(&expired, "expires")["valueInstant"],
            "2020-01-01T00:00:00.000Z"
        );
        assert_eq!(
            error_code(&resolve(&s, &token).expect_error(404)),
            "HB-QR-UNKNOWN"
        );
        // A Patient the server does not hold has no QR.
        s.req(Method::POST, "Patient/nobody-here/$qr-issue")
            .fetch()
            .expect_error(404);
        // The code of a deleted Patient is unknown (not a 410 that would tell it was valid).
        let gone = person(&s);
        let (token, _) = issue(&s, &gone);
        s.delete(&format!("Patient/{gone}")).expect_status(204);
        assert_eq!(
            error_code(&resolve(&s, &token).expect_error(404)),
            "HB-QR-UNKNOWN",
            "[{}]",
            s.backend
        );
    }
}

#[test]
fn the_token_is_nowhere_but_in_its_owners_answers() {
    for s in servers() {
        let id = person(&s);
        let (token, _) = issue(&s, &id);
        resolve(&s, &token).expect_status(200);
        s.get(&format!("Patient?identifier={QR_SYSTEM}|{token}"))
            .expect_status(200);
        let places = [
            format!("Patient/{id}"),
            format!("Patient/{id}/_history"),
            "_history?_count=1000".to_owned(),
            format!("Patient/{id}/$everything"),
            format!("AuditEvent?patient=Patient/{id}&_count=1000"),
        ];
        for place in places {
            let body = s.get(&place).expect_status(200).text();
            assert!(
                !body.contains(&token),
                "[{}] the token is in {place}",
                s.backend
            );
        }
        // Not an identifier of the Patient: a search by the token alone finds nothing.
        let bundle = s
            .get(&format!("Patient?identifier={token}"))
            .expect_status(200)
            .json();
        assert_eq!(bundle["total"], 0);
        assert!(
            !s.log().contains(&token),
            "[{}] the token is in the log",
            s.backend
        );
    }
}

#[test]
fn the_operations_are_defined_and_announced() {
    let s = Server::start(Backend::Sqlite);
    let cs = s.get("metadata").expect_status(200).json();
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    let operations: Vec<&str> = patient["operation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for name in ["qr-issue", "qr-revoke", "qr", "qr-resolve"] {
        assert!(operations.contains(&name), "{name} not in {operations:?}");
        let definition = s
            .get(&format!("OperationDefinition/{name}"))
            .expect_status(200)
            .json();
        assert_eq!(definition["code"], name);
    }
}

/// A flood of unknown codes is someone scanning the token space: past
/// `qr.max_failed_lookups_per_minute` the client's lookups (also a valid one, also by
/// identifier) are 429 `HB-QR-TOO-MANY` with Retry-After, and audited as such.
#[test]
fn a_flood_of_misses_is_throttled() {
    for backend in backends() {
        let s = Server::start_with(
            backend,
            &[("HEALTHBOOK__QR__MAX_FAILED_LOOKUPS_PER_MINUTE", "3")],
        );
        let id = person(&s);
        let (token, _) = issue(&s, &id);
        for _ in 0..3 {
            resolve(&s, "HB1:0000000000000000000000000000").expect_error(404);
        }
        let refused = resolve(&s, &token);
        let retry_after: u32 = refused
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(error_code(&refused.expect_error(429)), "HB-QR-TOO-MANY");
        let search = s.get(&format!("Patient?identifier={QR_SYSTEM}|{token}"));
        assert_eq!(error_code(&search.expect_error(429)), "HB-QR-TOO-MANY");
        // The refusals are in the audit trail (written in the background: wait for it).
        let audited = || {
            let audit = s.get("AuditEvent?_count=1000").expect_status(200).json();
            entries(&audit)
                .iter()
                .filter(|e| {
                    e["resource"]["outcomeDesc"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("HTTP 429"))
                })
                .count()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut refusals = audited();
        while refusals < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
            refusals = audited();
        }
        assert!(refusals >= 2, "[{}] {refusals} audited refusals", s.backend);
    }
}
