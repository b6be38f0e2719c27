//! The personal-QR rule (issue 15 item 3, docs/QR.md): with `access.practitioner = "qr"`
//! (the default) a practitioner reaches a person's record only after scanning the person's
//! QR, by an emergency access, or by registering the person; the person sees and ends the
//! grants and sees who read their record. On both backends, with the real OpenID provider
//! of the security tests (consent.html for the Consents that record the grants).

use std::thread;
use std::time::{Duration, Instant};

use conformance_tests::idp::{secured_server, secured_server_with, Idp, TokenOptions};
use conformance_tests::*;

const QR_SYSTEM: &str = "https://healthbook.example.org/fhir/sid/personal-qr";
const GRANT_SYSTEM: &str = "https://healthbook.example.org/fhir/CodeSystem/access-grant";

fn bearer(s: &Server, method: Method, path: &str, token: &str) -> RequestBuilder {
    s.req(method, path).bearer_auth(token)
}

fn create_with(s: &Server, token: &str, resource: &Value) -> String {
    let ty = resource["resourceType"].as_str().unwrap();
    id_of(
        &bearer(s, Method::POST, ty, token)
            .fhir_json(resource)
            .fetch()
            .expect_status(201)
            .json(),
    )
}

fn shot_for(patient_id: &str, lot: &str) -> Value {
    json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
        "patient": {"reference": format!("Patient/{patient_id}")},
        "occurrenceDateTime": "2021-07-01",
        "lotNumber": lot
    })
}

/// The payload of the person's QR, issued by a backend service.
fn issue(s: &Server, admin: &str, patient_id: &str) -> String {
    let p = bearer(
        s,
        Method::POST,
        &format!("Patient/{patient_id}/$qr-issue"),
        admin,
    )
    .fetch()
    .expect_status(200)
    .json();
    p["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["name"] == "payload"))
        .and_then(|x| x["valueString"].as_str())
        .unwrap()
        .to_owned()
}

fn scan(s: &Server, token: &str, payload: &str) -> Resp {
    let url = reqwest::Url::parse_with_params(&s.url("Patient/$qr-resolve"), &[("code", payload)])
        .unwrap();
    s.client
        .get(url)
        .bearer_auth(token)
        .header("Accept", "application/fhir+json")
        .fetch()
}

fn doctor(idp: &Idp, scope: &str, fhir_user: &str) -> String {
    idp.token_with(
        scope,
        &TokenOptions {
            fhir_user: Some(fhir_user),
            ..Default::default()
        },
    )
}

fn ids(s: &Server, token: &str, path: &str) -> Vec<String> {
    let bundle = bearer(s, Method::GET, path, token)
        .fetch()
        .expect_status(200)
        .json();
    let mut ids: Vec<String> = entries(&bundle)
        .iter()
        .map(|e| id_of(&e["resource"]))
        .collect();
    ids.sort();
    ids
}

/// The resources a search finds.
fn found(s: &Server, token: &str, path: &str) -> Vec<Value> {
    let bundle = bearer(s, Method::GET, path, token)
        .fetch()
        .expect_status(200)
        .json();
    entries(&bundle)
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

/// The grant Consents of a person, as a backend service sees them.
fn consents(s: &Server, admin: &str, patient_id: &str) -> Vec<Value> {
    found(s, admin, &format!("Consent?patient={patient_id}"))
}

fn actor_reference(consent: &Value) -> String {
    consent["provision"]["actor"][0]["reference"]["reference"]
        .as_str()
        .or_else(|| consent["provision"]["actor"][0]["reference"]["display"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The hospital flow: a practitioner who did not scan gets 403 `HB-QR-SCAN-REQUIRED` for
/// the person's record (read, `$everything`, writes) and finds nothing of it by search;
/// after the scan they read, search, get `$everything` and record a shot; the grant is a
/// Consent in the person's compartment, and a second scan extends it instead of making
/// another. Records outside people's compartments stay open.
#[test]
fn a_practitioner_reaches_a_record_only_after_scanning_the_qr() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let me = create_with(&s, &admin, &patient("Quét-Mã"));
        let other = create_with(&s, &admin, &patient("Người-Khác"));
        let my_shot = create_with(&s, &admin, &shot_for(&me, "MINE-1"));
        let their_shot = create_with(&s, &admin, &shot_for(&other, "THEIRS-1"));
        let practitioner = create_with(
            &s,
            &admin,
            &json!({"resourceType": "Practitioner", "name": [{"family": "Bác Sĩ"}]}),
        );
        let organization = create_with(
            &s,
            &admin,
            &json!({"resourceType": "Organization", "name": "Bệnh viện Bạch Mai"}),
        );
        let payload = issue(&s, &admin, &me);
        let who = format!("Practitioner/{practitioner}");
        let doc = doctor(&idp, "user/*.cruds", &who);
        let b = s.backend;

        // Before the scan.
        for path in [
            format!("Patient/{me}"),
            format!("Immunization/{my_shot}"),
            format!("Patient/{me}/$everything"),
        ] {
            let outcome = bearer(&s, Method::GET, &path, &doc)
                .fetch()
                .expect_error(403);
            assert_eq!(error_code(&outcome), "HB-QR-SCAN-REQUIRED", "[{b}] {path}");
            assert!(!outcome.to_string().contains("Quét-Mã"), "[{b}] {outcome}");
        }
        assert!(ids(&s, &doc, &format!("Immunization?patient={me}")).is_empty());
        assert!(ids(&s, &doc, "Patient?name=quet").is_empty());
        let refused = bearer(&s, Method::POST, "Immunization", &doc)
            .fhir_json(&shot_for(&me, "NEW-1"))
            .fetch()
            .expect_error(403);
        assert_eq!(error_code(&refused), "HB-QR-SCAN-REQUIRED", "[{b}]");
        bearer(
            &s,
            Method::GET,
            &format!("Organization/{organization}"),
            &doc,
        )
        .fetch()
        .expect_status(200);

        // The scan.
        let scanned = scan(&s, &doc, &payload).expect_status(200).json();
        assert_eq!(scanned["id"], me.as_str(), "[{b}]");

        bearer(&s, Method::GET, &format!("Patient/{me}"), &doc)
            .fetch()
            .expect_status(200);
        let everything = ids(&s, &doc, &format!("Patient/{me}/$everything"));
        assert!(
            everything.contains(&me) && everything.contains(&my_shot),
            "[{b}] {everything:?}"
        );
        assert_eq!(ids(&s, &doc, "Patient?name=quet"), vec![me.clone()]);
        assert_eq!(
            ids(&s, &doc, &format!("Patient?_id={me},{other}")),
            vec![me.clone()]
        );
        assert_eq!(
            ids(
                &s,
                &doc,
                &format!("Immunization?_id={my_shot},{their_shot}")
            ),
            vec![my_shot.clone()]
        );
        create_with(&s, &doc, &shot_for(&me, "NEW-2"));
        // Still nobody else's.
        let outcome = bearer(&s, Method::GET, &format!("Patient/{other}"), &doc)
            .fetch()
            .expect_error(403);
        assert_eq!(error_code(&outcome), "HB-QR-SCAN-REQUIRED");
        bearer(&s, Method::POST, "Immunization", &doc)
            .fhir_json(&shot_for(&other, "NEW-3"))
            .fetch()
            .expect_error(403);

        // The grant is a Consent in my compartment.
        let grants = consents(&s, &admin, &me);
        assert_eq!(grants.len(), 1, "[{b}] {grants:?}");
        let consent = &grants[0];
        assert_eq!(consent["status"], "active");
        assert_eq!(consent["patient"]["reference"], format!("Patient/{me}"));
        assert_eq!(actor_reference(consent), who);
        assert_eq!(consent["policyRule"]["coding"][0]["system"], GRANT_SYSTEM);
        assert_eq!(consent["provision"]["purpose"][0]["code"], "TREAT");
        let start = consent["provision"]["period"]["start"].as_str().unwrap();
        let end = consent["provision"]["period"]["end"].as_str().unwrap();
        let hours = (chrono::DateTime::parse_from_rfc3339(end).unwrap()
            - chrono::DateTime::parse_from_rfc3339(start).unwrap())
        .num_minutes();
        assert!(
            (24 * 60 - 1..=24 * 60 + 1).contains(&hours),
            "[{b}] {start} .. {end}"
        );
        // Scanning again within the hour changes nothing; later, it extends the grant:
        // still one Consent, a newer version.
        scan(&s, &doc, &payload).expect_status(200);
        assert_eq!(
            consents(&s, &admin, &me)[0]["meta"]["versionId"],
            "1",
            "[{b}]"
        );
        s.db_exec("UPDATE access_grants SET ends_at = ends_at - 7200000");
        scan(&s, &doc, &payload).expect_status(200);
        let again = consents(&s, &admin, &me);
        assert_eq!(again.len(), 1, "[{b}]");
        assert_eq!(again[0]["meta"]["versionId"], "2");
        assert_eq!(again[0]["provision"]["period"]["start"], start);
        assert_ne!(again[0]["provision"]["period"]["end"], end);

        // By identifier, as any FHIR client would: a second practitioner, a PractitionerRole
        // of the hospital (the Consent names the organization too).
        let role = create_with(
            &s,
            &admin,
            &json!({"resourceType": "PractitionerRole", "active": true,
                "practitioner": {"reference": format!("Practitioner/{practitioner}")},
                "organization": {"reference": format!("Organization/{organization}")}}),
        );
        let nurse = doctor(&idp, "user/*.rs", &format!("PractitionerRole/{role}"));
        bearer(&s, Method::GET, &format!("Patient/{me}"), &nurse)
            .fetch()
            .expect_error(403);
        let token = payload.trim_start_matches("HB1:");
        let bundle = bearer(
            &s,
            Method::GET,
            &format!("Patient?identifier={QR_SYSTEM}|{token}"),
            &nurse,
        )
        .fetch()
        .expect_status(200)
        .json();
        assert_eq!(
            bundle["entry"][0]["resource"]["id"],
            me.as_str(),
            "[{b}] {bundle}"
        );
        bearer(&s, Method::GET, &format!("Immunization/{my_shot}"), &nurse)
            .fetch()
            .expect_status(200);
        let by_role = consents(&s, &admin, &me)
            .into_iter()
            .find(|c| actor_reference(c) == format!("PractitionerRole/{role}"))
            .unwrap_or_else(|| panic!("[{b}] no Consent for the PractitionerRole"));
        assert_eq!(
            by_role["provision"]["actor"][1]["reference"]["reference"],
            format!("Organization/{organization}"),
            "[{b}] {by_role}"
        );

        // The person's access log has both: the refused reads before the scan and the reads
        // after it, by the same practitioner.
        let mine = idp.token_with(
            "patient/AuditEvent.rs",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = found(&s, &mine, &format!("AuditEvent?patient={me}&_count=200"));
            let by_doctor: Vec<&Value> = events
                .iter()
                .filter(|e| e["agent"][0]["who"]["reference"] == who.as_str())
                .collect();
            let refused = by_doctor.iter().any(|e| e["outcome"] == "4");
            let read = by_doctor
                .iter()
                .any(|e| e["outcome"] == "0" && e["subtype"][0]["code"] == "read");
            if refused && read {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "[{b}] the access log lacks the refusal or the read: {by_doctor:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }

        // A user token that names no practitioner cannot be granted anything.
        let anonymous = idp.token("user/*.rs");
        let outcome = scan(&s, &anonymous, &payload).expect_error(403);
        assert_eq!(error_code(&outcome), "HB-QR-PRACTITIONER", "[{b}]");
        // A misread or unknown code grants nothing.
        let stranger = doctor(&idp, "user/*.rs", "Practitioner/stranger");
        scan(&s, &stranger, "HB1:0000000000000000000000000").expect_error(404);
        bearer(&s, Method::GET, &format!("Patient/{me}"), &stranger)
            .fetch()
            .expect_error(403);
    }
}

/// Searches, includes, chains, `_has`, batches and transactions of a practitioner reach
/// only the people they were granted (search.html: what the token may not see is silently
/// left out).
#[test]
fn searches_and_bundles_reach_only_granted_people() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let me = create_with(&s, &admin, &patient("Được-Quét"));
        let other = create_with(&s, &admin, &patient("Kín-Đáo"));
        let my_shot = create_with(&s, &admin, &shot_for(&me, "LOT-MINE"));
        let their_shot = create_with(&s, &admin, &shot_for(&other, "LOT-THEIRS"));
        let payload = issue(&s, &admin, &me);
        let doc = doctor(&idp, "user/*.cruds", "Practitioner/searcher");
        scan(&s, &doc, &payload).expect_status(200);
        let b = s.backend;

        let both = format!("Immunization?_id={my_shot},{their_shot}&_include=Immunization:patient");
        assert_eq!(
            ids(&s, &doc, &both),
            {
                let mut v = vec![me.clone(), my_shot.clone()];
                v.sort();
                v
            },
            "[{b}]"
        );
        assert!(
            ids(&s, &doc, "Immunization?patient.name=kin").is_empty(),
            "[{b}] chain"
        );
        assert_eq!(
            ids(&s, &doc, "Immunization?patient.name=duoc"),
            vec![my_shot.clone()]
        );
        assert!(
            ids(
                &s,
                &doc,
                "Patient?_has:Immunization:patient:lot-number=LOT-THEIRS"
            )
            .is_empty(),
            "[{b}] _has"
        );
        assert_eq!(
            ids(
                &s,
                &doc,
                &format!("Patient?_id={me},{other}&_revinclude=Immunization:patient")
            ),
            {
                let mut v = vec![me.clone(), my_shot.clone()];
                v.sort();
                v
            }
        );
        let all = bearer(&s, Method::GET, "Immunization?_total=accurate", &doc)
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(all["total"], 1, "[{b}] totals count only what is reachable");
        assert!(!all.to_string().contains("LOT-THEIRS"));
        let system_search = bearer(&s, Method::GET, "?_type=Patient,Immunization", &doc)
            .fetch()
            .expect_status(200)
            .json();
        assert!(!system_search.to_string().contains(&other), "[{b}]");

        let batch = bearer(&s, Method::POST, "", &doc)
            .fhir_json(&json!({"resourceType": "Bundle", "type": "batch", "entry": [
                {"request": {"method": "GET", "url": format!("Patient/{other}")}},
                {"request": {"method": "GET", "url": format!("Patient/{me}")}},
                {"resource": shot_for(&other, "B-1"), "request": {"method": "POST", "url": "Immunization"}},
                {"resource": shot_for(&me, "B-2"), "request": {"method": "POST", "url": "Immunization"}},
            ]}))
            .fetch()
            .expect_status(200)
            .json();
        let status = |i: usize| {
            batch["entry"][i]["response"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert!(status(0).starts_with("403"), "[{b}] {batch}");
        assert!(status(1).starts_with("200"));
        assert!(status(2).starts_with("403"));
        assert!(status(3).starts_with("201"));
        assert!(!batch.to_string().contains("Kín-Đáo"));

        bearer(&s, Method::POST, "", &doc)
            .fhir_json(&json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": shot_for(&me, "T-1"), "request": {"method": "POST", "url": "Immunization"}},
                {"resource": shot_for(&other, "T-2"), "request": {"method": "POST", "url": "Immunization"}},
            ]}))
            .fetch()
            .expect_error(403);
        assert!(
            ids(&s, &admin, "Immunization?lot-number=T-1").is_empty(),
            "[{b}] all or nothing"
        );
    }
}

/// A vaccination site registers a new person and records the dose in one transaction: the
/// practitioner who registers a person gets a grant to their record (a Consent, policy
/// `registration`), without which the dose could not be written; reading an existing
/// person still needs a scan.
#[test]
fn registering_a_person_opens_their_record_to_the_registrant() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let nurse = doctor(&idp, "user/*.cruds", "Practitioner/site-nurse");
        let b = s.backend;
        let person = "urn:uuid:5b1f0a3e-8d9c-4c1e-9f70-0a4f3c2b1d11";
        let answer = bearer(&s, Method::POST, "", &nurse)
            .fhir_json(&json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": person, "resource": patient("Mới-Đăng-Ký"), "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Immunization", "status": "completed",
                    "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
                    "patient": {"reference": person}, "occurrenceDateTime": "2021-08-01"},
                 "request": {"method": "POST", "url": "Immunization"}},
            ]}))
            .fetch()
            .expect_status(200)
            .json();
        let location = answer["entry"][0]["response"]["location"]
            .as_str()
            .unwrap_or_else(|| panic!("[{b}] {answer}"));
        let new_id = location.split('/').nth(1).unwrap().to_owned();
        bearer(&s, Method::GET, &format!("Patient/{new_id}"), &nurse)
            .fetch()
            .expect_status(200);
        // A single POST registers too.
        let single = create_with(&s, &nurse, &patient("Đăng-Ký-Lẻ"));
        bearer(
            &s,
            Method::GET,
            &format!("Patient/{single}/$everything"),
            &nurse,
        )
        .fetch()
        .expect_status(200);
        let grants = consents(&s, &admin, &new_id);
        assert_eq!(grants.len(), 1, "[{b}]");
        assert_eq!(grants[0]["policyRule"]["coding"][0]["code"], "registration");
        // Someone registered by others is not reachable.
        let other = create_with(&s, &admin, &patient("Đã-Có"));
        bearer(&s, Method::GET, &format!("Patient/{other}"), &nurse)
            .fetch()
            .expect_error(403);
        bearer(&s, Method::PUT, &format!("Patient/{other}"), &nurse)
            .fhir_json(&{
                let mut p = patient("Đổi-Tên");
                p["id"] = json!(other);
                p
            })
            .fetch()
            .expect_error(403);
    }
}

/// Break the glass: an emergency access with a stated reason opens the record for a short
/// time; it is a Consent with purpose ETREAT, and the AuditEvents of the access and of the
/// reads under it carry purposeOfEvent ETREAT (the first with the reason). Without a
/// reason it is a 400.
#[test]
fn break_the_glass_is_granted_briefly_and_flagged() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let me = create_with(&s, &admin, &patient("Cấp-Cứu"));
        let shot = create_with(&s, &admin, &shot_for(&me, "ER-1"));
        let doc = doctor(&idp, "user/*.rs", "Practitioner/er-doctor");
        let b = s.backend;
        let path = format!("Patient/{me}/$emergency-access");
        let missing = bearer(&s, Method::POST, &path, &doc)
            .fhir_json(&json!({"resourceType": "Parameters"}))
            .fetch()
            .expect_error(400);
        assert_eq!(error_code(&missing), "HB-OPERATION-PARAM", "[{b}]");
        // Not for a token that is no practitioner's.
        let app = idp.token_with(
            "patient/*.rs",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        bearer(&s, Method::POST, &path, &app)
            .fhir_json(&json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "x"}]}))
            .fetch()
            .expect_error(403);

        let reason = "Unconscious after a road accident, no card";
        let consent = bearer(&s, Method::POST, &path, &doc)
            .fhir_json(&json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": reason}]}))
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(consent["resourceType"], "Consent", "[{b}] {consent}");
        assert_eq!(consent["provision"]["purpose"][0]["code"], "ETREAT");
        let start = consent["provision"]["period"]["start"].as_str().unwrap();
        let end = consent["provision"]["period"]["end"].as_str().unwrap();
        let minutes = (chrono::DateTime::parse_from_rfc3339(end).unwrap()
            - chrono::DateTime::parse_from_rfc3339(start).unwrap())
        .num_minutes();
        assert_eq!(minutes, 60, "[{b}] access.emergency_minutes");
        bearer(&s, Method::GET, &format!("Immunization/{shot}"), &doc)
            .fetch()
            .expect_status(200);

        // The person sees the emergency access and the read under it, both flagged.
        let mine = idp.token_with(
            "patient/*.rs",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let flagged = loop {
            let bundle = bearer(
                &s,
                Method::GET,
                &format!("AuditEvent?patient={me}&_count=100"),
                &mine,
            )
            .fetch()
            .expect_status(200)
            .json();
            let flagged: Vec<Value> = entries(&bundle)
                .iter()
                .map(|e| e["resource"].clone())
                .filter(|e| e["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT")
                .collect();
            if flagged.len() >= 2 || Instant::now() > deadline {
                break flagged;
            }
            thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(flagged.len(), 2, "[{b}] {flagged:?}");
        assert!(flagged
            .iter()
            .all(|e| e["agent"][0]["who"]["reference"] == "Practitioner/er-doctor"));
        assert!(
            flagged.iter().any(|e| e["purposeOfEvent"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains(reason))),
            "[{b}] the reason is recorded: {flagged:?}"
        );
        let grants = ids(&s, &mine, "Consent?status=active");
        assert_eq!(grants, vec![id_of(&consent)], "[{b}]");
    }
}

/// The person's view (docs/QR.md): with their own app (authorization code + PKCE at the
/// real provider) they list the grants to their record and who read it, end a grant
/// (`Consent/{id}/$revoke`), and rotate their QR with `revoke-grants=true`, which ends the
/// grants earlier scans made. Grant Consents cannot be written by clients.
#[test]
fn the_person_sees_and_ends_the_grants() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let me = create_with(&s, &admin, &patient("Chủ-Hồ-Sơ"));
        let other = create_with(&s, &admin, &patient("Hàng-Xóm"));
        let payload = issue(&s, &admin, &me);
        let issue_other = issue(&s, &admin, &other);
        let first = doctor(&idp, "user/*.rs", "Practitioner/first");
        let second = doctor(&idp, "user/*.rs", "Practitioner/second");
        scan(&s, &first, &payload).expect_status(200);
        scan(&s, &second, &payload).expect_status(200);
        scan(&s, &second, &issue_other).expect_status(200);
        bearer(&s, Method::GET, &format!("Patient/{me}"), &first)
            .fetch()
            .expect_status(200);
        let b = s.backend;

        let answer = idp.authorization_code(
            &me,
            "openid fhirUser launch/patient patient/*.cruds",
            &s.base,
        );
        let app = answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_owned();
        // Who was granted access: two Consents, both mine.
        let bundle = bearer(&s, Method::GET, "Consent?status=active", &app)
            .fetch()
            .expect_status(200)
            .json();
        let grants: Vec<Value> = entries(&bundle)
            .iter()
            .map(|e| e["resource"].clone())
            .collect();
        let mut grantees: Vec<String> = grants.iter().map(actor_reference).collect();
        grantees.sort();
        assert_eq!(
            grantees,
            vec!["Practitioner/first", "Practitioner/second"],
            "[{b}]"
        );
        assert!(!bundle.to_string().contains("Hàng-Xóm"));
        // Who read it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = bearer(
                &s,
                Method::GET,
                &format!("AuditEvent?patient={me}&_count=100"),
                &app,
            )
            .fetch()
            .expect_status(200)
            .json();
            let read_by_first = entries(&events).iter().any(|e| {
                e["resource"]["agent"][0]["who"]["reference"] == "Practitioner/first"
                    && e["resource"]["subtype"][0]["code"] == "read"
            });
            if read_by_first {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "[{b}] the read is not in the person's access log"
            );
            thread::sleep(Duration::from_millis(100));
        }

        // End the first doctor's grant.
        let first_grant = grants
            .iter()
            .find(|g| actor_reference(g) == "Practitioner/first")
            .unwrap();
        let ended = bearer(
            &s,
            Method::POST,
            &format!("Consent/{}/$revoke", id_of(first_grant)),
            &app,
        )
        .fetch()
        .expect_status(200)
        .json();
        assert_eq!(ended["status"], "inactive", "[{b}] {ended}");
        let outcome = bearer(&s, Method::GET, &format!("Patient/{me}"), &first)
            .fetch()
            .expect_error(403);
        assert_eq!(error_code(&outcome), "HB-QR-SCAN-REQUIRED");
        bearer(&s, Method::GET, &format!("Patient/{me}"), &second)
            .fetch()
            .expect_status(200);
        // Nobody else ends my grants: the neighbour's app cannot see them.
        let neighbour = idp.token_with(
            "patient/*.cruds",
            &TokenOptions {
                patient: Some(&other),
                ..Default::default()
            },
        );
        let second_grant = grants
            .iter()
            .find(|g| actor_reference(g) == "Practitioner/second")
            .unwrap();
        bearer(
            &s,
            Method::POST,
            &format!("Consent/{}/$revoke", id_of(second_grant)),
            &neighbour,
        )
        .fetch()
        .expect_error(404);
        // Nor does a practitioner who reaches the record.
        let second_user = doctor(&idp, "user/*.cruds", "Practitioner/second");
        bearer(
            &s,
            Method::POST,
            &format!("Consent/{}/$revoke", id_of(second_grant)),
            &second_user,
        )
        .fetch()
        .expect_error(403);
        // Grant Consents are the server's: not even a backend service writes them, nor
        // makes a Consent into one by a patch.
        for (method, body) in [
            (Method::PUT, Some(second_grant.clone())),
            (Method::DELETE, None),
        ] {
            let mut request = bearer(
                &s,
                method,
                &format!("Consent/{}", id_of(second_grant)),
                &admin,
            );
            if let Some(body) = body {
                request = request.fhir_json(&body);
            }
            assert_eq!(
                error_code(&request.fetch().expect_error(422)),
                "HB-GRANT-MANAGED",
                "[{b}]"
            );
        }
        let mut forged = second_grant.clone();
        forged.as_object_mut().unwrap().remove("id");
        forged.as_object_mut().unwrap().remove("meta");
        let outcome = bearer(&s, Method::POST, "Consent", &admin)
            .fhir_json(&forged)
            .fetch()
            .expect_error(422);
        assert_eq!(error_code(&outcome), "HB-GRANT-MANAGED");
        let mut plain = forged.clone();
        plain.as_object_mut().unwrap().remove("policyRule");
        plain["policy"] = json!([{"uri": "https://example.org/policy"}]);
        let plain_id = create_with(&s, &admin, &plain);
        let outcome = bearer(&s, Method::PATCH, &format!("Consent/{plain_id}"), &admin)
            .header("Content-Type", "application/json-patch+json")
            .body(
                json!([{"op": "add", "path": "/policyRule", "value": forged["policyRule"]}])
                    .to_string(),
            )
            .fetch()
            .expect_error(422);
        assert_eq!(error_code(&outcome), "HB-GRANT-MANAGED", "[{b}]");

        // Rotate without revoke-grants: the second doctor keeps access; with it, not.
        let rotate = |params: Value| {
            bearer(&s, Method::POST, &format!("Patient/{me}/$qr-issue"), &app)
                .fhir_json(&params)
                .fetch()
                .expect_status(200)
        };
        rotate(json!({"resourceType": "Parameters"}));
        bearer(&s, Method::GET, &format!("Patient/{me}"), &second)
            .fetch()
            .expect_status(200);
        rotate(
            json!({"resourceType": "Parameters", "parameter": [{"name": "revoke-grants", "valueBoolean": true}]}),
        );
        bearer(&s, Method::GET, &format!("Patient/{me}"), &second)
            .fetch()
            .expect_error(403);
        // The neighbour's grant to the second doctor is untouched.
        bearer(&s, Method::GET, &format!("Patient/{other}"), &second)
            .fetch()
            .expect_status(200);
        // No grant is active any more; the plain Consent written above is not a grant.
        assert_eq!(
            ids(&s, &app, "Consent?status=active"),
            vec![plain_id.clone()],
            "[{b}]"
        );
        // Revoking with revoke-grants counts what ended.
        scan(&s, &first, &issue(&s, &admin, &other)).expect_status(200);
        let revoked = bearer(&s, Method::POST, &format!("Patient/{other}/$qr-revoke"), &admin)
            .fhir_json(&json!({"resourceType": "Parameters", "parameter": [{"name": "revoke-grants", "valueBoolean": true}]}))
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(
            revoked["parameter"][1]["valueInteger"], 2,
            "[{b}] {revoked}"
        );
        bearer(&s, Method::GET, &format!("Patient/{other}"), &second)
            .fetch()
            .expect_error(403);
    }
}

/// `access.practitioner = "open"`: user/ scopes reach every record, as before the rule.
#[test]
fn the_open_setting_reaches_every_record() {
    let (s, idp) = secured_server_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__ACCESS__PRACTITIONER", "open")],
    );
    let admin = idp.token("system/*.cruds");
    let someone = create_with(&s, &admin, &patient("Ai-Đó"));
    let doc = doctor(&idp, "user/*.rs", "Practitioner/open-doc");
    bearer(&s, Method::GET, &format!("Patient/{someone}"), &doc)
        .fetch()
        .expect_status(200);
}
