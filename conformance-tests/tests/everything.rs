//! patient-operation-everything.html — `Patient/[id]/$everything` and
//! `Patient/$everything`: the Patient, its compartment (compartmentdefinition-patient.html)
//! and what that refers to outside any compartment; paged, `_since`, `_type`. On both
//! backends.

use std::collections::{BTreeSet, HashMap};

use conformance_tests::*;

/// The vendored R4 Patient CompartmentDefinition: type → the parameters that put a
/// resource of that type in a patient's compartment.
fn compartment() -> HashMap<String, Vec<String>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fhir-profiles/data/compartment-patient.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One person's record: resources of several compartment types, each pointing at the
/// patient through a parameter of the CompartmentDefinition, plus a Practitioner, an
/// Organization, a Location and a Medication they refer to. Returns the references of
/// every resource `$everything` must return.
fn record(s: &Server, patient: &str, other: &str) -> BTreeSet<String> {
    let practitioner =
        id_of(&s.create(&json!({"resourceType": "Practitioner", "name": [{"family": "Trịnh"}]})));
    let organization =
        id_of(&s.create(&json!({"resourceType": "Organization", "name": "Trạm Y tế Phường 1"})));
    let location = id_of(&s.create(&json!({"resourceType": "Location", "name": "Điểm tiêm 12"})));
    let medication =
        id_of(&s.create(&json!({"resourceType": "Medication", "code": {"text": "Paracetamol"}})));
    let p = format!("Patient/{patient}");
    let resources = vec![
        (
            "patient",
            json!({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "Comirnaty"},
                   "patient": {"reference": p}, "occurrenceDateTime": "2021-08-01",
                   "performer": [{"actor": {"reference": format!("Practitioner/{practitioner}")}}],
                   "location": {"reference": format!("Location/{location}")}}),
        ),
        (
            "subject",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "SpO2"},
                   "subject": {"reference": p},
                   // Another person referred to: never included (a compartment type).
                   "focus": [{"reference": format!("Patient/{other}")}]}),
        ),
        (
            "patient",
            json!({"resourceType": "Condition", "subject": {"reference": p}, "code": {"text": "COVID-19"}}),
        ),
        (
            "subject",
            json!({"resourceType": "Encounter", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": {"reference": p},
                   "serviceProvider": {"reference": format!("Organization/{organization}")}}),
        ),
        (
            "patient",
            json!({"resourceType": "AllergyIntolerance", "patient": {"reference": p}, "code": {"text": "penicillin"}}),
        ),
        (
            "subject",
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                   "subject": {"reference": p},
                   "medicationReference": {"reference": format!("Medication/{medication}")}}),
        ),
        (
            "beneficiary",
            json!({"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": p},
                   "payor": [{"reference": format!("Organization/{organization}")}]}),
        ),
    ];
    let definition = compartment();
    let mut expected: BTreeSet<String> = [
        p.clone(),
        format!("Practitioner/{practitioner}"),
        format!("Organization/{organization}"),
        format!("Location/{location}"),
        format!("Medication/{medication}"),
    ]
    .into();
    for (param, resource) in resources {
        let ty = resource["resourceType"].as_str().unwrap().to_owned();
        assert!(
            definition[&ty].iter().any(|p| p == param),
            "{ty}.{param} is a Patient compartment parameter"
        );
        let id = id_of(&s.create(&resource));
        expected.insert(format!("{ty}/{id}"));
    }
    expected
}

/// `Type/id` of a Bundle entry's resource.
fn reference_of(entry: &Value) -> String {
    format!(
        "{}/{}",
        entry["resource"]["resourceType"].as_str().unwrap(),
        id_of(&entry["resource"])
    )
}

fn everything(s: &Server, path: &str) -> (BTreeSet<String>, Vec<Value>) {
    let all = s.all_entries(path);
    let refs = all.iter().map(reference_of).collect();
    (refs, all)
}

/// The Patient, its whole compartment and the resources it refers to outside any
/// compartment; nothing of another patient, even when referred to.
#[test]
fn everything_is_the_whole_record_and_nothing_else() {
    for s in servers() {
        let a = id_of(&s.create(&patient("Nguyễn")));
        let b = id_of(&s.create(&patient("Trần")));
        let expected = record(&s, &a, &b);
        let others = record(&s, &b, &a);
        let (found, listed) = everything(&s, &format!("Patient/{a}/$everything"));
        assert_eq!(found, expected, "[{}]", s.backend);
        assert!(found.is_disjoint(
            &others
                .iter()
                .filter(|r| !r.starts_with("Patient/"))
                .filter(
                    |r| !["Practitioner", "Organization", "Location", "Medication"]
                        .iter()
                        .any(|t| r.starts_with(t))
                )
                .cloned()
                .collect()
        ));
        assert!(!found.contains(&format!("Patient/{b}")));
        for e in &listed {
            let ty = e["resource"]["resourceType"].as_str().unwrap();
            let mode = e["search"]["mode"].as_str().unwrap();
            let in_compartment = ty == "Patient" || compartment().contains_key(ty);
            assert_eq!(
                mode,
                if in_compartment { "match" } else { "include" },
                "[{}] {ty}",
                s.backend
            );
        }
        // POST with a Parameters body, operations.html#request.
        let posted = s
            .post(
                &format!("Patient/{a}/$everything"),
                &json!({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Immunization,Patient"}]}),
            )
            .expect_status(200)
            .json();
        let types: BTreeSet<String> = entries(&posted)
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            types,
            ["Immunization", "Location", "Patient", "Practitioner"]
                .map(String::from)
                .into(),
            "[{}]",
            s.backend
        );
    }
}

/// Paging (http.html#paging): small pages followed by `next` give the same record, each
/// resource once.
#[test]
fn everything_pages_without_loss_or_repeat() {
    for s in servers() {
        let a = id_of(&s.create(&patient("Lê")));
        let b = id_of(&s.create(&patient("Phạm")));
        let expected = record(&s, &a, &b);
        let (whole, _) = everything(&s, &format!("Patient/{a}/$everything"));
        let paged = s.all_entries(&format!("Patient/{a}/$everything?_count=2"));
        let matches: Vec<String> = paged
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .map(reference_of)
            .collect();
        let unique: BTreeSet<String> = matches.iter().cloned().collect();
        assert_eq!(unique.len(), matches.len(), "[{}] no repeats", s.backend);
        let paged_all: BTreeSet<String> = paged.iter().map(reference_of).collect();
        assert_eq!(paged_all, whole, "[{}]", s.backend);
        assert_eq!(whole, expected);
    }
}

/// `_since`: only what changed at or after the instant; `_type`: only those types.
#[test]
fn since_and_type_narrow_the_record() {
    for s in servers() {
        let a = id_of(&s.create(&patient("Hoàng")));
        let b = id_of(&s.create(&patient("Phan")));
        record(&s, &a, &b);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let late = s.create(&json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{a}")}, "code": {"text": "late"}}));
        let since = late["meta"]["lastUpdated"].as_str().unwrap().to_owned();
        let (found, _) = everything(
            &s,
            &format!(
                "Patient/{a}/$everything?_since={}",
                since.replace('+', "%2B")
            ),
        );
        assert_eq!(
            found,
            [format!("Condition/{}", id_of(&late))].into(),
            "[{}]",
            s.backend
        );
        let (conditions, _) = everything(&s, &format!("Patient/{a}/$everything?_type=Condition"));
        assert_eq!(conditions.len(), 2, "[{}] {conditions:?}", s.backend);
        assert!(conditions.iter().all(|r| r.starts_with("Condition/")));
        s.get(&format!("Patient/{a}/$everything?_since=yesterday"))
            .expect_error(400);
        s.get(&format!("Patient/{a}/$everything?_type=Practitioner"))
            .expect_error(400);
    }
}

/// An unknown patient is 404, a deleted one 410 (operation on an instance, http.html#read).
#[test]
fn unknown_and_deleted_patients() {
    for s in servers() {
        s.get("Patient/no-such-patient/$everything")
            .expect_error(404);
        let a = id_of(&s.create(&patient("Võ")));
        s.delete(&format!("Patient/{a}")).expect_status(204);
        s.get(&format!("Patient/{a}/$everything")).expect_error(410);
    }
}

/// Type level: every patient's record, paged.
#[test]
fn type_level_everything_covers_every_patient() {
    for s in servers() {
        let a = id_of(&s.create(&patient("Đinh")));
        let b = id_of(&s.create(&patient("Lương")));
        let mut expected = record(&s, &a, &b);
        expected.extend(record(&s, &b, &a));
        let (found, _) = everything(&s, "Patient/$everything?_count=50");
        assert!(found.is_superset(&expected), "[{}]", s.backend);
    }
}
