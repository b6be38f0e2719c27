//! http.html#mime — https://hl7.org/fhir/R4/http.html#mime
//!
//! Content negotiation: `Accept`, `Content-Type`, the `_format` and `_pretty` parameters.

use conformance_tests::*;

const XML_PATIENT: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<Patient xmlns="http://hl7.org/fhir">"#,
    r#"<active value="true"/>"#,
    r#"<name><family value="Xml"/><given value="Body"/></name>"#,
    r#"<gender value="female"/>"#,
    r#"</Patient>"#
);

fn assert_xml_patient(resp: &Resp, backend: &str) {
    let ct = resp.must_header("content-type").to_ascii_lowercase();
    assert!(ct.starts_with(FHIR_XML), "[{backend}] Content-Type {ct:?}");
    let text = resp.text();
    assert!(
        text.contains(r#"<Patient xmlns="http://hl7.org/fhir">"#),
        "[{backend}] not a FHIR XML Patient: {text}"
    );
}

/// "The formal MIME-type for FHIR resources is application/fhir+xml or
/// application/fhir+json. The correct mime type SHALL be used by clients and servers"
#[test]
fn json_responses_use_fhir_json_mime_type() {
    for s in servers() {
        let resp = s.post("Patient", &patient("Mime")).expect_status(201);
        resp.assert_fhir_json();
        let id = id_of(&resp.json());
        s.get(&format!("Patient/{id}"))
            .expect_status(200)
            .assert_fhir_json();
        // Error bodies too.
        s.get(&format!("Patient/{}", new_id()))
            .expect_status(404)
            .assert_fhir_json();
    }
}

/// Server-driven content negotiation with `Accept: application/fhir+xml` returns XML.
#[test]
fn accept_fhir_xml_returns_xml() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Xml")));
        let resp = s
            .req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", FHIR_XML)
            .fetch()
            .expect_status(200);
        assert_xml_patient(&resp, s.backend);
        assert!(
            resp.text().contains(r#"<family value="Xml"/>"#),
            "{}",
            resp.text()
        );
    }
}

/// "_format ... the values xml, text/xml, application/xml, and application/fhir+xml
/// SHALL be interpreted to mean the XML format"
#[test]
fn format_parameter_selects_xml() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Xml")));
        for value in ["xml", "text/xml", "application/xml", "application/fhir+xml"] {
            let resp = s
                .req(Method::GET, &format!("Patient/{id}"))
                .query(&[("_format", value)])
                .fetch()
                .expect_status(200);
            assert_xml_patient(&resp, s.backend);
        }
    }
}

/// "_format ... the values json, application/json and application/fhir+json SHALL be
/// interpreted to mean the JSON format" — and `_format` overrides the Accept header.
#[test]
fn format_parameter_selects_json() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Json")));
        for value in ["json", "application/json", "application/fhir+json"] {
            let resp = s
                .req(Method::GET, &format!("Patient/{id}"))
                .header("Accept", FHIR_XML)
                .query(&[("_format", value)])
                .fetch()
                .expect_status(200);
            let ct = resp.must_header("content-type");
            assert!(ct.contains("json"), "[{}] _format={value}: {ct}", s.backend);
            assert_eq!(id_of(&resp.json()), id);
        }
    }
}

/// An XML request body (`Content-Type: application/fhir+xml`) is accepted for create.
#[test]
fn create_from_xml_body() {
    for s in servers() {
        let resp = s
            .req(Method::POST, "Patient")
            .header("Content-Type", FHIR_XML)
            .header("Accept", FHIR_JSON)
            .body(XML_PATIENT)
            .fetch()
            .expect_status(201);
        let body = resp.json();
        assert_eq!(body["name"][0]["family"], "Xml", "[{}] {body}", s.backend);
        assert_eq!(body["gender"], "female");
        assert_eq!(body["active"], true);
        assert_eq!(version_of(&body), "1");
    }
}

/// XML in, XML out: the response follows `Accept`.
#[test]
fn create_xml_with_xml_response() {
    for s in servers() {
        let resp = s
            .req(Method::POST, "Patient")
            .header("Content-Type", FHIR_XML)
            .header("Accept", FHIR_XML)
            .body(XML_PATIENT)
            .fetch()
            .expect_status(201);
        assert_xml_patient(&resp, s.backend);
        assert!(
            resp.text().contains(r#"<versionId value="1"/>"#),
            "{}",
            resp.text()
        );
    }
}

/// `application/json` is accepted as FHIR JSON in both directions (http.html#mime: the
/// generic mime types are interpreted as the FHIR formats).
#[test]
fn plain_application_json_is_accepted() {
    for s in servers() {
        let resp = s
            .req(Method::POST, "Patient")
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(patient("PlainJson").to_string())
            .fetch()
            .expect_status(201);
        let id = id_of(&resp.json());
        let read = s
            .req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", "application/json")
            .fetch()
            .expect_status(200);
        assert!(
            read.must_header("content-type").contains("json"),
            "[{}]",
            s.backend
        );
        assert_eq!(read.json()["name"][0]["family"], "PlainJson");
    }
}

/// A charset parameter on the request Content-Type is fine.
#[test]
fn content_type_with_charset_is_accepted() {
    for s in servers() {
        s.req(Method::POST, "Patient")
            .header("Content-Type", "application/fhir+json; charset=utf-8")
            .body(patient("Charset").to_string())
            .fetch()
            .expect_status(201);
    }
}

/// `_pretty=true`: "Clients that wish to request for pretty-printed resources (either in
/// JSON or XML) can use the _pretty parameter".
#[test]
fn pretty_parameter_indents_json() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Pretty")));
        let resp = s
            .req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", FHIR_JSON)
            .query(&[("_pretty", "true")])
            .fetch()
            .expect_status(200);
        let text = resp.text();
        assert!(
            text.lines().count() > 3 && text.lines().any(|l| l.starts_with("  ")),
            "[{}] not indented: {text}",
            s.backend
        );
        assert_eq!(id_of(&resp.json()), id);
    }
}

/// An Accept header naming only unsupported types: RFC 9110 §15.5.7 "406 Not Acceptable".
#[test]
fn unsupported_accept_is_406() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Csv")));
        s.req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", "text/csv")
            .fetch()
            .expect_error(406);
    }
}

/// A request body in an unsupported format: RFC 9110 §15.5.16 "415 Unsupported Media
/// Type".
#[test]
fn unsupported_content_type_is_415() {
    for s in servers() {
        s.req(Method::POST, "Patient")
            .header("Content-Type", "text/plain")
            .header("Accept", FHIR_JSON)
            .body(patient("Plain").to_string())
            .fetch()
            .expect_error(415);
    }
}

/// `Accept: */*` gets FHIR JSON (any format is acceptable; JSON is the server default).
#[test]
fn wildcard_accept_gets_json() {
    for s in servers() {
        let id = id_of(&s.create(&patient("Star")));
        let resp = s
            .req(Method::GET, &format!("Patient/{id}"))
            .header("Accept", "*/*")
            .fetch()
            .expect_status(200);
        resp.assert_fhir_json();
    }
}

/// Hostile XML (issue 14): elements nested deeper than the server reads (700 nested
/// extensions once overflowed the stack and aborted the process with every request in
/// flight) and two root elements are 400 OperationOutcomes, and the server goes on
/// answering.
#[test]
fn deep_or_rootless_xml_is_a_400_and_the_server_stays_up() {
    for s in servers() {
        for (depth, tag) in [(700, r#"extension url="http://x""#), (10_000, "foo")] {
            let name = tag.split(' ').next().unwrap_or(tag);
            let body = format!(
                r#"<Patient xmlns="http://hl7.org/fhir">{}{}</Patient>"#,
                format!("<{tag}>").repeat(depth),
                format!("</{name}>").repeat(depth)
            );
            let outcome = s
                .req(Method::POST, "Patient")
                .header("Content-Type", FHIR_XML)
                .header("Accept", FHIR_JSON)
                .header("Accept-Language", "en")
                .body(body)
                .fetch()
                .expect_error(400);
            let text = outcome["issue"][0]["details"]["text"].to_string();
            assert!(
                text.contains("128 deep"),
                "[{}] {depth}: {outcome}",
                s.backend
            );
        }
        let two = r#"<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>"#;
        s.req(Method::POST, "Patient")
            .header("Content-Type", FHIR_XML)
            .header("Accept", FHIR_JSON)
            .body(two)
            .fetch()
            .expect_error(400);
        s.get("metadata").expect_status(200);
    }
}

/// xml.html: FHIR XML elements carry `value`, `url` and `id` attributes only (outside the
/// narrative's XHTML); another attribute is a 400, not dropped silently.
#[test]
fn unknown_xml_attributes_are_a_400() {
    for s in servers() {
        let post = |xml: &str| {
            s.req(Method::POST, "Patient")
                .header("Content-Type", FHIR_XML)
                .header("Accept", FHIR_JSON)
                .body(xml.to_owned())
                .fetch()
        };
        post(r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male" secret="1"/></Patient>"#)
            .expect_error(400);
        post(r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p class="note">An</p></div></text><name><family value="An"/><given value="Văn"/></name><gender value="male"/></Patient>"#)
            .expect_status(201);
    }
}
