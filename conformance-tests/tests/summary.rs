//! search.html#summary and search.html#elements on read —
//! https://hl7.org/fhir/R4/search.html#summary, https://hl7.org/fhir/R4/search.html#elements
//!
//! `_summary` and `_elements` apply to reads as well as searches; a subset returned to the
//! client is marked with the `SUBSETTED` tag so it is not mistaken for the whole resource.

use conformance_tests::*;

fn rich_patient() -> Value {
    json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Nguyễn Văn An</div>"},
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1990-02-14",
        "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}]
    })
}

fn is_subsetted(body: &Value) -> bool {
    body["meta"]["tag"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED"))
}

/// `_summary=true`: "Return a limited subset of elements from the resource" — the elements
/// marked as summary (photo and text are not).
#[test]
fn summary_true_returns_summary_elements() {
    for s in servers() {
        let id = id_of(&s.create(&rich_patient()));
        let body = s
            .get(&format!("Patient/{id}?_summary=true"))
            .expect_status(200)
            .json();
        assert_eq!(body["birthDate"], "1990-02-14", "[{}] {body}", s.backend);
        assert!(
            body.get("photo").is_none() && body.get("text").is_none(),
            "{body}"
        );
        assert!(is_subsetted(&body), "{body}");
    }
}

/// `_summary=text` keeps text, id, meta and mandatory elements; `_summary=data` removes
/// the text element.
#[test]
fn summary_text_and_data() {
    for s in servers() {
        let id = id_of(&s.create(&rich_patient()));
        let text = s
            .get(&format!("Patient/{id}?_summary=text"))
            .expect_status(200)
            .json();
        assert!(
            text.get("text").is_some() && text.get("name").is_none(),
            "{text}"
        );
        let data = s
            .get(&format!("Patient/{id}?_summary=data"))
            .expect_status(200)
            .json();
        assert!(
            data.get("text").is_none() && data.get("photo").is_some(),
            "{data}"
        );
    }
}

/// `_elements=birthDate`: only the named elements (plus id, meta and mandatory ones).
#[test]
fn elements_returns_named_elements() {
    for s in servers() {
        let id = id_of(&s.create(&rich_patient()));
        let body = s
            .get(&format!("Patient/{id}?_elements=birthDate,gender"))
            .expect_status(200)
            .json();
        assert_eq!(body["id"], id);
        assert_eq!(body["gender"], "male");
        assert!(
            body.get("name").is_none() && body.get("photo").is_none(),
            "{body}"
        );
        assert!(is_subsetted(&body), "{body}");
    }
}

/// An unknown `_summary` value is a 400 naming the parameter.
#[test]
fn bad_summary_value_is_400() {
    for s in servers() {
        let id = id_of(&s.create(&rich_patient()));
        let outcome = s
            .get(&format!("Patient/{id}?_summary=maybe"))
            .expect_error(400);
        assert_issue_path(&outcome, "_summary");
    }
}
