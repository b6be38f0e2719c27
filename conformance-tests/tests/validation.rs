//! Validation on every write and by `$validate` (docs/VALIDATION.md): the base R4 checks
//! (profiling.html: cardinality, required bindings terminologies.html#required, core
//! invariants), the Vietnamese profiles, the policy, the language of the messages, and
//! resource-operation-validate.html. Each case asserts the status, the rule code and the
//! expression.

use conformance_tests::*;

const CCCD: &str = "https://healthbook.example.org/fhir/sid/cccd";
const VN_CORE_PATIENT: &str =
    "https://healthbook.example.org/fhir/StructureDefinition/vn-core-patient";

/// The rule codes and expressions of an OperationOutcome's issues.
fn issues(outcome: &Value) -> Vec<(String, String)> {
    outcome["issue"]
        .as_array()
        .unwrap_or_else(|| panic!("no issues: {outcome}"))
        .iter()
        .map(|i| {
            (
                i["details"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                i["expression"][0].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[track_caller]
fn assert_issue(outcome: &Value, rule: &str, expression: &str) {
    assert!(
        issues(outcome).contains(&(rule.to_owned(), expression.to_owned())),
        "no {rule} at {expression}: {outcome}"
    );
}

/// A VN Core Patient: a man born in 1990 in Hà Nội, with his mobile number.
fn citizen(cccd: &str, gender: &str, birth: &str, phone: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": CCCD, "value": cccd}],
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": gender,
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}]
    })
}

fn dose(date: &str, lot: Option<&str>) -> Value {
    let mut shot = json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
        "patient": {"reference": "Patient/someone"},
        "occurrenceDateTime": date,
        "location": {"display": "Trạm Y tế Phường 1"},
        "protocolApplied": [{"doseNumberPositiveInt": 1, "seriesDosesPositiveInt": 2}]
    });
    if let Some(lot) = lot {
        shot["lotNumber"] = json!(lot);
    }
    shot
}

fn vn_server() -> Server {
    Server::start_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__VALIDATION__VN_CORE", "all")],
    )
}

/// elementdefinition.html#min-max and terminologies.html#required: a missing mandatory
/// element is a 422 `HB-REQUIRED` naming the element (also from `$validate`), a code
/// outside a required value set a 422 naming it.
#[test]
fn base_cardinality_and_required_bindings() {
    for s in servers() {
        // A missing element is refused by the validator (422), located, with its rule.
        let mut shot = dose("2021-08-01", Some("FF1234"));
        shot["protocolApplied"] = json!([{"series": "primary"}]);
        let outcome = s.post("Immunization", &shot).expect_error(422);
        assert_issue(
            &outcome,
            "HB-REQUIRED",
            "Immunization.protocolApplied[0].doseNumber",
        );
        let mut no_status = dose("2021-08-01", Some("FF1234"));
        no_status.as_object_mut().unwrap().remove("status");
        let outcome = s.post("Immunization", &no_status).expect_error(422);
        assert_issue(&outcome, "HB-REQUIRED", "Immunization.status");
        // $validate reports it with its rule code.
        let outcome = s
            .post("Immunization/$validate", &shot)
            .expect_status(200)
            .json();
        assert_issue(
            &outcome,
            "HB-REQUIRED",
            "Immunization.protocolApplied[0].doseNumber",
        );

        let mut p = patient("Lê");
        p["gender"] = json!("man");
        p["telecom"] = json!([{"system": "pigeon", "value": "x"}]);
        let outcome = s.post("Patient", &p).expect_error(422);
        assert_issue(&outcome, "HB-CODE", "Patient.gender");
        assert_issue(&outcome, "HB-CODE", "Patient.telecom[0].system");
        assert_eq!(outcome["issue"][0]["severity"], "error");
        assert_eq!(outcome["issue"][0]["code"], "code-invalid");

        // A patch whose result breaks a rule writes nothing (http.html#patch: 422).
        let id = id_of(&s.create(&patient("Lê")));
        let outcome = s
            .patch(
                &format!("Patient/{id}"),
                &json!([{"op": "replace", "path": "/gender", "value": "woman"}]),
            )
            .expect_error(422);
        assert_issue(&outcome, "HB-CODE", "Patient.gender");
        assert_eq!(s.read("Patient", &id)["gender"], "male", "[{}]", s.backend);
    }
}

/// The campaign's data-entry errors, stopped at entry (VN Core Patient, VN Immunization).
#[test]
fn vietnamese_rules_stop_the_campaigns_errors() {
    let s = vn_server();
    ensure_patient(&s, "someone");
    let cases = [
        // A man recorded with a woman's CCCD digit.
        (
            citizen("001190012345", "male", "1990-02-14", "0912345678"),
            "VN-CCCD-SEX",
            "Patient.identifier[0].value",
        ),
        // A birth year that disagrees with the CCCD.
        (
            citizen("001090012345", "male", "1991-02-14", "0912345678"),
            "VN-CCCD-YEAR",
            "Patient.identifier[0].value",
        ),
        // An unknown province code.
        (
            citizen("003090012345", "male", "1990-02-14", "0912345678"),
            "VN-CCCD-PROVINCE",
            "Patient.identifier[0].value",
        ),
        // A landline where a mobile is required.
        (
            citizen("001090012345", "male", "1990-02-14", "024 3825 1234"),
            "VN-PHONE-MOBILE",
            "Patient.telecom[0].value",
        ),
        // A future vaccination date.
        (
            dose("2099-08-01", Some("FF1234")),
            "VN-IMM-FUTURE",
            "Immunization.occurrence",
        ),
        // A missing lot number.
        (
            dose("2021-08-01", None),
            "VN-IMM-LOT",
            "Immunization.lotNumber",
        ),
    ];
    for (resource, rule, expression) in cases {
        let ty = resource["resourceType"].as_str().unwrap();
        let outcome = s.post(ty, &resource).expect_error(422);
        assert_issue(&outcome, rule, expression);
    }
    s.create(&citizen(
        "001090012345",
        "male",
        "1990-02-14",
        "+84 912 345 678",
    ));
    s.create(&dose("2021-08-01", Some("FF1234")));
}

/// By default VN Core applies to the resources that declare it in `meta.profile`.
#[test]
fn profiles_apply_when_declared() {
    for s in servers() {
        let wrong = citizen("001190012345", "male", "1990-02-14", "0912345678");
        s.create(&wrong);
        let mut declared = wrong.clone();
        declared["meta"] = json!({"profile": [VN_CORE_PATIENT]});
        let outcome = s.post("Patient", &declared).expect_error(422);
        assert_issue(&outcome, "VN-CCCD-SEX", "Patient.identifier[0].value");
    }
}

/// Messages in Vietnamese or English by Accept-Language; Vietnamese by default.
#[test]
fn messages_follow_accept_language() {
    let s = vn_server();
    let wrong = citizen("001190012345", "male", "1990-02-14", "0912345678");
    let text = |accept: Option<&str>| {
        let mut req = s.req(Method::POST, "Patient").fhir_json(&wrong);
        if let Some(a) = accept {
            req = req.header("Accept-Language", a);
        }
        req.fetch().expect_error(422)["issue"][0]["details"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(text(Some("en-US,en;q=0.9")).contains("Digit 4 of the CCCD"));
    assert!(text(Some("vi")).contains("Chữ số thứ 4 của CCCD"));
    assert!(text(Some("fr, en;q=0.5, vi;q=0.8")).contains("Chữ số thứ 4"));
    assert!(text(None).contains("Chữ số thứ 4"));
}

/// Core invariants of data types (datatypes.html: per-1, cpt-2, qty-3) and of Condition
/// (condition.html#invs), wherever they occur; dom-6 (narrative) is a warning, off by
/// default and reported when the policy turns it on.
#[test]
fn core_invariants_of_data_types_and_resources() {
    for s in servers() {
        let mut no_system = patient("Trần");
        no_system["telecom"] = json!([{"value": "0912345678"}]);
        no_system["address"] =
            json!([{"city": "Huế", "period": {"start": "2022-03-01", "end": "2021-03-01"}}]);
        let outcome = s.post("Patient", &no_system).expect_error(422);
        assert_issue(&outcome, "cpt-2", "Patient.telecom[0].system");
        assert_issue(&outcome, "per-1", "Patient.address[0].period.start");
        let condition = json!({"resourceType": "Condition", "subject": {"reference": "Patient/x"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "abatementDateTime": "2022-01-01"});
        let outcome = s.post("Condition", &condition).expect_error(422);
        assert_issue(&outcome, "con-4", "Condition.clinicalStatus");
        let mut weight = observation();
        weight["valueQuantity"] = json!({"value": 60, "code": "kg"});
        let outcome = s.post("Observation", &weight).expect_error(422);
        assert_issue(&outcome, "qty-3", "Observation.valueQuantity.system");
        // dom-6 is off by default: nothing rides on the answer.
        let outcome = created_outcome(&s, &patient("Lê"));
        assert!(!outcome.to_string().contains("dom-6"), "{outcome}");
    }
    let s = Server::start_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__VALIDATION__RULES__DOM_6", "warning")],
    );
    assert_issue(
        &created_outcome(&s, &patient("Lê")),
        "dom-6",
        "Patient.text",
    );
}

/// The OperationOutcome of a create that must succeed (`Prefer: return=OperationOutcome`).
fn created_outcome(s: &Server, resource: &Value) -> Value {
    s.req(Method::POST, resource["resourceType"].as_str().unwrap())
        .header("Prefer", "return=OperationOutcome")
        .fhir_json(resource)
        .fetch()
        .expect_status(201)
        .json()
}

/// Policy: a rule set to `warning` stores the resource and reports the issue (with
/// `Prefer: return=OperationOutcome`); `off` says nothing.
#[test]
fn policy_switches() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("HEALTHBOOK__VALIDATION__VN_CORE", "all"),
            ("HEALTHBOOK__VALIDATION__RULES__VN_PHONE_MOBILE", "warning"),
            ("HEALTHBOOK__VALIDATION__RULES__VN_IMMUNIZATION", "off"),
        ],
    );
    ensure_patient(&s, "someone");
    let landline = citizen("001090012345", "male", "1990-02-14", "024 3825 1234");
    let outcome = created_outcome(&s, &landline);
    assert_issue(&outcome, "VN-PHONE-MOBILE", "Patient.telecom[0].value");
    let warning = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["details"]["coding"][0]["code"] == "VN-PHONE-MOBILE")
        .unwrap();
    assert_eq!(warning["severity"], "warning");
    // The whole VN Immunization profile is off: a lot number is not required.
    s.create(&dose("2021-08-01", None));
    // Other rules still refuse.
    s.post(
        "Patient",
        &citizen("001190012345", "male", "1990-02-14", "0912345678"),
    )
    .expect_error(422);
}

/// resource-operation-validate.html at type and instance level: 200 with the issues (or
/// an information issue when there are none), modes create, update and delete, a profile
/// asked for.
#[test]
fn validate_operation() {
    for s in servers() {
        let wrong = citizen("001190012345", "male", "1990-02-14", "0912345678");
        let params = |resource: &Value, extra: Vec<Value>| {
            let mut parameter = vec![json!({"name": "resource", "resource": resource})];
            parameter.extend(extra);
            json!({"resourceType": "Parameters", "parameter": parameter})
        };
        let outcome = s
            .post(
                "Patient/$validate",
                &params(
                    &wrong,
                    vec![json!({"name": "profile", "valueUri": VN_CORE_PATIENT})],
                ),
            )
            .expect_status(200)
            .json();
        assert_issue(&outcome, "VN-CCCD-SEX", "Patient.identifier[0].value");
        // Without the profile (VN Core applies to declared resources only) it is valid.
        let ok = s
            .post("Patient/$validate", &params(&wrong, vec![]))
            .expect_status(200)
            .json();
        assert_eq!(
            ok["issue"][0]["severity"], "information",
            "[{}] {ok}",
            s.backend
        );
        // A bare resource as the body; a structural error is reported, not refused.
        let mut broken = patient("X");
        broken["birthDate"] = json!("14/02/1990");
        let outcome = s
            .post("Patient/$validate", &broken)
            .expect_status(200)
            .json();
        assert_eq!(outcome["issue"][0]["severity"], "error");
        assert_eq!(issues(&outcome)[0].0, "HB-STRUCTURE");
        // Instance level, mode update: the id must be the URL's.
        let existing = s.create(&patient("Y"));
        let id = id_of(&existing);
        let mut other = existing.clone();
        other["id"] = json!("not-this-one");
        let outcome = s
            .post(&format!("Patient/{id}/$validate"), &params(&other, vec![]))
            .expect_status(200)
            .json();
        assert_issue(&outcome, "HB-ID", "Patient.id");
        // mode=delete: the instance must exist.
        let delete = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]});
        s.post(&format!("Patient/{id}/$validate"), &delete)
            .expect_status(200);
        s.post("Patient/missing/$validate", &delete)
            .expect_error(404);
        // Nothing was written.
        assert_eq!(version_of(&s.read("Patient", &id)), "1");
    }
}

/// A transaction entry that breaks a rule fails the Bundle; the issue is located in it.
#[test]
fn bundle_entries_are_validated() {
    for s in servers() {
        let mut p = patient("Đỗ");
        p["gender"] = json!("man");
        let outcome = s
            .post(
                "",
                &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": patient("Ok"), "request": {"method": "POST", "url": "Patient"}},
                    {"resource": p, "request": {"method": "POST", "url": "Patient"}}
                ]}),
            )
            .expect_error(422);
        assert_issue(&outcome, "HB-CODE", "Bundle.entry[1].resource.gender");
    }
}

/// The shipped profiles are served (`GET [base]/StructureDefinition/[id]`, and a search by
/// `url`), as StructureDefinitions of the store written at start.
#[test]
fn shipped_profiles_are_served() {
    for s in servers() {
        let mut served = None;
        for _ in 0..100 {
            let resp = s.get("StructureDefinition/vn-core-patient");
            if resp.status == 200 {
                served = Some(resp.json());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let sd = served.unwrap_or_else(|| panic!("[{}] vn-core-patient is not served", s.backend));
        assert_eq!(sd["url"], VN_CORE_PATIENT);
        assert_eq!(sd["type"], "Patient");
        let found = s
            .get(&format!("StructureDefinition?url={VN_CORE_PATIENT}"))
            .expect_status(200)
            .json();
        assert_eq!(entries(&found).len(), 1, "[{}]", s.backend);
        s.read("StructureDefinition", "vn-immunization");
    }
}

/// profiling.html: a StructureDefinition posted to the server is used for the resources
/// that name it in `meta.profile` (cardinality, fixed and pattern values of its
/// differential), and by `$validate` with `profile`.
#[test]
fn posted_profiles_are_used() {
    for s in servers() {
        let url = format!("https://site.example/fhir/StructureDefinition/{}", new_id());
        s.create(&json!({
            "resourceType": "StructureDefinition",
            "url": url,
            "name": "SitePatient",
            "title": "Site Patient",
            "status": "active",
            "kind": "resource",
            "abstract": false,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {"element": [
                {"id": "Patient", "path": "Patient"},
                {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1},
                {"id": "Patient.identifier.system", "path": "Patient.identifier.system", "min": 1, "fixedUri": "https://site.example/mrn"},
                {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}
            ]}
        }));
        let mut p = patient_with_identifier("Hồ", "https://elsewhere.example/id", "7");
        p["meta"] = json!({"profile": [url]});
        let outcome = s.post("Patient", &p).expect_error(422);
        assert_issue(&outcome, "HB-PROFILE-FIXED", "Patient.identifier[0].system");
        assert_issue(&outcome, "HB-PROFILE-MIN", "Patient.birthDate");

        let mut ok = patient_with_identifier("Hồ", "https://site.example/mrn", "7");
        ok["birthDate"] = json!("1990-02-14");
        ok["meta"] = json!({"profile": [url]});
        s.create(&ok);

        // $validate against the posted profile, the resource not naming it.
        let plain = patient("Hồ");
        let outcome = s
            .post(
                "Patient/$validate",
                &json!({"resourceType": "Parameters", "parameter": [
                    {"name": "resource", "resource": plain},
                    {"name": "profile", "valueUri": url}
                ]}),
            )
            .expect_status(200)
            .json();
        assert_issue(&outcome, "HB-PROFILE-MIN", "Patient.identifier");
        let unknown = s
            .post(
                "Patient/$validate?profile=https://nowhere.example/sd",
                &patient("Hồ"),
            )
            .expect_status(200)
            .json();
        assert_issue(&unknown, "HB-PROFILE-UNKNOWN", "profile");
    }
}
