//! Behaviour of the strict reader on the inputs json.html forbids.

use super::*;

fn reject(body: &str) -> FormatError {
    parse_json(body.as_bytes()).expect_err("must be rejected")
}

#[test]
fn accepts_and_orders_a_valid_patient() {
    let body = r#"{"gender":"male","resourceType":"Patient","name":[{"given":["Văn","An"],"family":"Nguyễn"}],"birthDate":"1990-02-14"}"#;
    let value = parse_json(body.as_bytes()).unwrap();
    let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["resourceType", "name", "gender", "birthDate"]);
    assert_eq!(value["name"][0]["family"], "Nguyễn");
}

#[test]
fn keeps_decimal_text() {
    let body = r#"{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"x"},"patient":{"reference":"Patient/1"},"occurrenceDateTime":"2021-07-01","doseQuantity":{"value":0.30}}"#;
    let value = parse_json(body.as_bytes()).unwrap();
    assert_eq!(value["doseQuantity"]["value"].to_string(), "0.30");
}

#[test]
fn empty_array_is_located_not_a_panic() {
    let e = reject(r#"{"resourceType":"Patient","name":[{"given":[]}]}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.name[0].given"));
}

#[test]
fn empty_object_and_string_and_null() {
    assert_eq!(
        reject(r#"{"resourceType":"Patient","maritalStatus":{}}"#)
            .path
            .as_deref(),
        Some("Patient.maritalStatus")
    );
    assert_eq!(
        reject(r#"{"resourceType":"Patient","gender":""}"#)
            .path
            .as_deref(),
        Some("Patient.gender")
    );
    assert_eq!(
        reject(r#"{"resourceType":"Patient","gender":null}"#)
            .path
            .as_deref(),
        Some("Patient.gender")
    );
}

#[test]
fn nulls_allowed_in_paired_primitive_arrays() {
    let body = r#"{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"http://x","valueString":"y"}]}]}]}"#;
    parse_json(body.as_bytes()).unwrap();
}

#[test]
fn strings_for_booleans_and_numbers() {
    assert_eq!(
        reject(r#"{"resourceType":"Patient","active":"true"}"#)
            .path
            .as_deref(),
        Some("Patient.active")
    );
    let e = reject(r#"{"resourceType":"Patient","multipleBirthInteger":"2"}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.multipleBirthInteger"));
}

#[test]
fn arrays_for_single_values_and_single_for_arrays() {
    assert_eq!(
        reject(r#"{"resourceType":"Patient","birthDate":["1990-01-01"]}"#)
            .path
            .as_deref(),
        Some("Patient.birthDate")
    );
    assert_eq!(
        reject(r#"{"resourceType":"Patient","name":{"family":"X"}}"#)
            .path
            .as_deref(),
        Some("Patient.name")
    );
}

#[test]
fn unknown_element_is_located() {
    let e = reject(r#"{"resourceType":"Patient","name":[{"family":"X","nickname":"Y"}]}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.name[0].nickname"));
}

#[test]
fn wrong_resource_type() {
    assert_eq!(
        reject(r#"{"resourceType":"Patientt"}"#).path.as_deref(),
        Some("resourceType")
    );
    assert!(reject(r#"{"id":"x"}"#).message.contains("resourceType"));
}

#[test]
fn modifier_extensions_are_rejected() {
    let e = reject(
        r#"{"resourceType":"Patient","modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}]}"#,
    );
    assert_eq!(e.path.as_deref(), Some("Patient.modifierExtension"));
}

#[test]
fn duplicate_keys_are_rejected() {
    assert!(
        reject(r#"{"resourceType":"Patient","gender":"male","gender":"female"}"#)
            .message
            .contains("twice")
    );
}

#[test]
fn xml_round_trip() {
    let body = r#"{"resourceType":"Patient","id":"a1","name":[{"family":"Nguyễn"}]}"#;
    let value = parse_json(body.as_bytes()).unwrap();
    let xml = json_to_xml(&value).unwrap();
    assert!(xml.contains("<family value=\"Nguyễn\"/>"), "{xml}");
    assert_eq!(parse_xml(xml.as_bytes()).unwrap(), value);
}

#[test]
fn unlocated_fhirbolt_errors_are_located_by_elimination() {
    let e = reject(r#"{"resourceType":"Patient","gender":"male","active":"yes"}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.active"), "{e:?}");
    let e = reject(r#"{"resourceType":"Patient","name":[{"family":"A"},{"family":42}]}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.name[1].family"), "{e:?}");
    let e = reject(r#"{"resourceType":"Patient","name":[{"given":["A", 7]}]}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.name[0].given[1]"), "{e:?}");
}

#[test]
fn primitive_formats_are_checked_with_paths() {
    let e = reject(r#"{"resourceType":"Patient","birthDate":"1990-13-45"}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.birthDate"));
    let e = reject(
        r#"{"resourceType":"Patient","contact":[{"period":{"start":"2020-01-01T10:00:00"}}]}"#,
    );
    assert_eq!(e.path.as_deref(), Some("Patient.contact[0].period.start"));
    let e = reject(
        r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueDateTime":"14/02/1990"}"#,
    );
    assert_eq!(e.path.as_deref(), Some("Observation.valueDateTime"));
    let e = reject(
        r#"{"resourceType":"Patient","contained":[{"resourceType":"Practitioner","id":"p 1"}]}"#,
    );
    assert_eq!(e.path.as_deref(), Some("Patient.contained[0].id"));
    let e = reject(
        r#"{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"a","type":"group","item":[{"linkId":"b","type":"integer","initial":[{"valueDate":"2020-02-30"}]}]}]}"#,
    );
    assert_eq!(
        e.path.as_deref(),
        Some("Questionnaire.item[0].item[0].initial[0].valueDate")
    );
    let e = reject(
        r#"{"resourceType":"Patient","extension":[{"url":"http://x","valueDate":"2020-02-30"}]}"#,
    );
    assert_eq!(e.path.as_deref(), Some("Patient.extension[0].valueDate"));
}

#[test]
fn one_type_per_choice_element() {
    let error = reject(
        r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},
            "valueString":"a","valueInteger":2}"#,
    );
    assert_eq!(error.path.as_deref(), Some("Observation.valueInteger"));
    assert!(error.message.contains("value[x]"), "{}", error.message);
}

/// datatypes.html#string: no control characters but tab, CR and LF; at most 1 MB
/// (base64Binary may be larger); a date's year is 0001 to 9999 (issue 14: `\u0000` was a
/// 500 on PostgreSQL, 1 MB names failed its index, `0000-01-01` was stored).
#[test]
fn strings_and_years_as_r4_defines_them() {
    for bad in ["\\u0000", "\\u001b[31m", "a\\u0007b"] {
        let e = reject(&format!(
            r#"{{"resourceType":"Patient","name":[{{"family":"{bad}"}}]}}"#
        ));
        assert!(
            e.message.contains("control character"),
            "{bad}: {}",
            e.message
        );
        assert_eq!(e.path.as_deref(), Some("Patient.name[0].family"));
    }
    assert!(parse_json(br#"{"resourceType":"Patient","name":[{"text":"a\tb\r\nc"}]}"#).is_ok());
    let long = "a".repeat(1024 * 1024 + 1);
    let e = reject(&format!(
        r#"{{"resourceType":"Patient","name":[{{"text":"{long}"}}]}}"#
    ));
    assert!(e.message.contains("1 MB"), "{}", e.message);
    let attachment = format!(
        r#"{{"resourceType":"DocumentReference","status":"current","content":[{{"attachment":{{"data":"{}"}}}}]}}"#,
        "QUFB".repeat(300_000)
    );
    assert!(
        parse_json(attachment.as_bytes()).is_ok(),
        "base64Binary may exceed 1 MB"
    );
    let e = reject(r#"{"resourceType":"Patient","birthDate":"0000-01-01"}"#);
    assert_eq!(e.path.as_deref(), Some("Patient.birthDate"));
    assert!(parse_json(br#"{"resourceType":"Patient","birthDate":"0001-01-01"}"#).is_ok());
}

/// A resource a patch made may nest no deeper than a body may, so that what is stored reads
/// back.
#[test]
fn normalize_bounds_the_depth_of_assembled_resources() {
    let nested = |depth: usize| {
        let mut value = serde_json::json!("x");
        for _ in 0..depth {
            value = serde_json::json!([value]);
        }
        value
    };
    // A patch adds at most a body's depth to a stored resource's, so 1,000 is past any.
    for depth in [10usize, 126, 127, 128, 1_000] {
        let resource = serde_json::json!({
            "resourceType": "Basic", "code": {"text": "x"},
            "extension": [{"url": "http://x", "valueString": "y"}],
            "x": nested(depth.saturating_sub(1)),
        });
        let total = check::depth(&resource);
        assert_eq!(total, depth.max(1), "{depth}");
        if total <= check::MAX_DEPTH {
            // It reads back.
            let text = serde_json::to_string(&resource).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).expect("reads back");
        } else {
            let e = normalize(resource).expect_err("too deep");
            assert!(e.message.contains("at most 127"), "{depth}: {}", e.message);
        }
    }
}

/// Found by the `xml` fuzz target (fuzz/README.md): a NUL after `<` and a control
/// character inside the root's name aborted the process.
#[test]
fn xml_with_control_characters_in_names_is_refused() {
    let body = b"<\0<Pati\x03ent xmlns=\"http://hl7.org/fhir\"><";
    assert!(parse_xml(body).is_err());
}

mod round_trip {
    //! Property tests: any Patient or Observation of the shapes generated here, read from
    //! JSON, written as XML and read again is the same resource; and written as JSON again
    //! it reads back unchanged (the canonical form is a fixed point).
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use crate::{json_to_xml, parse_json, parse_xml};

    /// Text FHIR strings may hold: no control characters but tab/CR/LF, not blank, and no
    /// leading or trailing whitespace (json.html: such whitespace is not significant).
    fn text() -> impl Strategy<Value = String> {
        "[\\PC&&[^\\s]]([\\PC\t]{0,20}[\\PC&&[^\\s]])?"
    }

    fn date() -> impl Strategy<Value = String> {
        (1900u32..2100, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
    }

    fn patient() -> impl Strategy<Value = Value> {
        (
            proptest::collection::vec((text(), proptest::collection::vec(text(), 1..3)), 1..3),
            prop_oneof![Just("male"), Just("female"), Just("other"), Just("unknown")],
            date(),
            proptest::option::of(any::<bool>()),
            proptest::collection::vec(("[0-9]{1,12}", text()), 0..3),
        )
            .prop_map(|(names, gender, birth, active, ids)| {
                let mut p = json!({
                    "resourceType": "Patient",
                    "name": names.into_iter().map(|(family, given)| json!({"family": family, "given": given})).collect::<Vec<_>>(),
                    "gender": gender,
                    "birthDate": birth,
                });
                if let Some(active) = active {
                    p["active"] = json!(active);
                }
                if !ids.is_empty() {
                    p["identifier"] = ids
                        .into_iter()
                        .map(|(value, ext)| json!({"system": "urn:x", "value": value,
                            "extension": [{"url": "http://x", "valueString": ext}]}))
                        .collect();
                }
                p
            })
    }

    fn observation() -> impl Strategy<Value = Value> {
        (
            text(),
            -1_000_000i64..1_000_000,
            0u32..4,
            -2_000_000_000i64..2_000_000_000,
        )
            .prop_map(|(code, mantissa, scale, integer)| {
                // A decimal as written, with its precision (`72.50` stays `72.50`).
                let decimal: Value = serde_json::from_str(&format!(
                    "{}{}",
                    mantissa,
                    if scale > 0 {
                        format!(".{}", "0".repeat(scale as usize))
                    } else {
                        String::new()
                    }
                ))
                .unwrap();
                json!({
                    "resourceType": "Observation", "status": "final",
                    "code": {"text": code},
                    "valueQuantity": {"value": decimal, "unit": "mg"},
                    "component": [{"code": {"text": "n"}, "valueInteger": integer}],
                })
            })
    }

    proptest! {
        #[test]
        fn json_xml_json(resource in prop_oneof![patient(), observation()]) {
            let canonical = parse_json(&serde_json::to_vec(&resource).unwrap()).expect("valid");
            let xml = json_to_xml(&canonical).expect("written as XML");
            let again = parse_xml(xml.as_bytes()).expect("its XML reads back");
            prop_assert_eq!(&again, &canonical, "{}", xml);
            let rewritten = parse_json(&serde_json::to_vec(&canonical).unwrap()).expect("reads back");
            prop_assert_eq!(rewritten, canonical);
        }
    }
}

/// Found by the `json` fuzz target: a contained resource of an unknown type was accepted
/// and written to XML as an unknown element.
#[test]
fn contained_resources_of_unknown_types_are_refused() {
    let body =
        r#"{"resourceType":"Patient","contained":[{"resourceType":"OrganV"}],"active":true}"#;
    let e = reject(body);
    assert!(
        e.message
            .contains("'OrganV' is not a FHIR R4 resource type"),
        "{}",
        e.message
    );
    let empty =
        reject(r#"{"resourceType":"Patient","contained":[{"resourceType":"Organization"}]}"#);
    assert!(empty.message.contains("needs content"), "{}", empty.message);
    let ok = r##"{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","name":"BV"}],"managingOrganization":{"reference":"#o"}}"##;
    parse_json(ok.as_bytes()).expect("a known contained type");
}
