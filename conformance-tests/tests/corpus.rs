//! The bad-input corpus (issue 14): every hostile or sloppy request the issue lists, and
//! the classics (XML bombs, XXE, deep nesting, huge numbers, invalid UTF-8, header floods),
//! sent to both backends. For each: the status, a FHIR OperationOutcome as the body,
//! nothing stored, and the server still answering.
//! Requests a client library would refuse to send are written on a raw socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use conformance_tests::*;

/// One request of the corpus.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
    status: u16,
}

fn case(name: &'static str, method: Method, path: impl Into<String>, status: u16) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        status,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/fhir+json")
            .body(body)
    }

    fn xml(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/fhir+xml")
            .body(body)
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

fn nested_xml(depth: usize, open: &str, close: &str) -> String {
    format!(
        r#"<Patient xmlns="http://hl7.org/fhir">{}{}</Patient>"#,
        open.repeat(depth),
        close.repeat(depth)
    )
}

fn with(patch: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = patient("Corpus");
    patch(&mut body);
    serde_json::to_vec(&body).unwrap()
}

fn immunization(patient: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"text": "COVID-19"}, "occurrenceDateTime": "2021-07-01",
        "patient": {"reference": patient}}),
    )
    .unwrap()
}

fn narrative(div: &str) -> Vec<u8> {
    with(|p| p["text"] = json!({"status": "generated", "div": div}))
}

/// The corpus. `existing` is the id of a Patient the server holds.
fn corpus(existing: &str) -> Vec<Case> {
    use Method as M;
    let many = |n: usize, pair: &str| vec![pair; n].join("&");
    let values = (0..1000)
        .map(|i| format!("n{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let xhtml = r#"<div xmlns="http://www.w3.org/1999/xhtml">"#;
    vec![
        // The process died (a stack overflow in the XML reader).
        case("700 nested extensions", M::POST, "Patient", 400).xml(nested_xml(
            700,
            r#"<extension url="http://x">"#,
            "</extension>",
        )),
        case("10,000 nested unknown elements", M::POST, "Patient", 400)
            .xml(nested_xml(10_000, "<x>", "</x>")),
        case("100,000 nested elements", M::POST, "Patient", 400)
            .xml(nested_xml(100_000, "<x>", "</x>")),
        case("100,000 nested JSON arrays", M::POST, "Patient", 400).json(format!(
            r#"{{"resourceType":"Patient","extension":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        )),
        case("100,000 nested JSON objects", M::POST, "Patient", 400).json(format!(
            r#"{{"resourceType":"Patient","x":{}1{}}}"#,
            r#"{"a":"#.repeat(100_000),
            "}".repeat(100_000)
        )),
        // One request held the database.
        case("name=a × 1,000", M::GET, format!("Patient?{}", many(1000, "name=a")), 400),
        case("_id × 1,000", M::GET, format!("Patient?{}", many(1000, "_id=a")), 400),
        case("1,000 ORed names", M::GET, format!("Patient?name={values}"), 400),
        case(
            "11 _revinclude",
            M::GET,
            format!("Patient?{}", many(11, "_revinclude=Immunization:patient")),
            400,
        ),
        case(
            "a chain 6 deep",
            M::GET,
            "Patient?general-practitioner.organization.partof.partof.partof.partof.name=x",
            400,
        ),
        // 5xx for bad input.
        case("a NUL in a string", M::POST, "Patient", 400)
            .json(with(|p| p["name"][0]["given"] = json!(["a\u{0}b"]))),
        case("a string over 1 MB", M::POST, "Patient", 400)
            .json(with(|p| p["name"][0]["given"] = json!(["x".repeat(1024 * 1024 + 1)]))),
        // Accepted, and should not have been.
        case("an escape character", M::POST, "Patient", 400)
            .json(with(|p| p["name"][0]["given"] = json!(["\u{1b}[31m"]))),
        case("year 0000", M::POST, "Patient", 400)
            .json(with(|p| p["birthDate"] = json!("0000-01-01"))),
        case("February 30", M::POST, "Patient", 400)
            .json(with(|p| p["birthDate"] = json!("2021-02-30"))),
        case("a script in the narrative", M::POST, "Patient", 422)
            .json(narrative(&format!("{xhtml}<script>alert(1)</script></div>"))),
        case("an event handler in the narrative", M::POST, "Patient", 422).json(narrative(
            &format!(r#"{xhtml}<img src="x" onerror="alert(1)"/></div>"#),
        )),
        case("a narrative that is not XHTML", M::POST, "Patient", 422)
            .json(narrative("<div>unclosed")),
        case("a reference to the wrong type", M::POST, "Patient", 422)
            .json(with(|p| p["managingOrganization"] = json!({"reference": "Observation/1"}))),
        case("a reference to nothing", M::POST, "Immunization", 422)
            .json(immunization("Patient/does-not-exist")),
        case("two XML roots", M::POST, "Patient", 400).xml(
            r#"<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>"#,
        ),
        case("an unknown XML attribute", M::POST, "Patient", 400)
            .xml(r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male" secret="1"/></Patient>"#),
        case("XML elements out of order", M::POST, "Patient", 400).xml(
            r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><active value="true"/></Patient>"#,
        ),
        case("charset iso-8859-1", M::POST, "Patient", 415)
            .header("Content-Type", "application/fhir+json; charset=iso-8859-1")
            .body(with(|_| {})),
        case("fhirVersion 3.0 in Content-Type", M::POST, "Patient", 415)
            .header("Content-Type", "application/fhir+json; fhirVersion=3.0")
            .body(with(|_| {})),
        case("fhirVersion 3.0 in Accept", M::GET, format!("Patient/{existing}"), 406)
            .header("Accept", "application/fhir+json; fhirVersion=3.0"),
        case("If-None-Exist that is not UTF-8", M::POST, "Patient", 400)
            .header("If-None-Exist", b"identifier=\xff".to_vec())
            .json(with(|_| {})),
        case("_history?_at that is no date", M::GET, format!("Patient/{existing}/_history?_at=yesterday"), 400),
        case("_sort=,,,", M::GET, "Patient?_sort=,,,", 400),
        case("a urn:uuid fullUrl that is no UUID", M::POST, "", 400).json(
            serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "transaction",
                "entry": [{"fullUrl": "urn:uuid:not-a-uuid", "resource": patient("Corpus"),
                    "request": {"method": "POST", "url": "Patient"}}]}))
            .unwrap(),
        ),
        case("a query that is not UTF-8", M::GET, "Patient?name=%FF", 400),
        // The classics.
        case("billion laughs", M::POST, "Patient", 400).xml(
            r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&c;"/></name></Patient>"#,
        ),
        case("XXE", M::POST, "Patient", 400).xml(
            r#"<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>"#,
        ),
        case("a processing instruction", M::POST, "Patient", 400)
            .xml(r#"<?xml-stylesheet href="x.xsl"?><Patient xmlns="http://hl7.org/fhir"/>"#),
        case("XML that is not UTF-8", M::POST, "Patient", 400)
            .xml(b"<Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"Tr\xe2n\"/></name></Patient>".to_vec()),
        case("JSON that is not UTF-8", M::POST, "Patient", 400)
            .json(b"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Tr\xe2n\"}]}".to_vec()),
        case("a decimal of 1e400", M::POST, "Observation", 400).json(
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e400}}"#,
        ),
        case("an integer past 32 bits", M::POST, "Observation", 400).json(
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":99999999999999999999}"#,
        ),
        case("a decimal of 10,000 digits", M::POST, "Observation", 400).json(format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}},"valueQuantity":{{"value":{}}}}}"#,
            "9".repeat(10_000)
        )),
        case("duplicate JSON keys", M::POST, "Patient", 400)
            .json(r#"{"resourceType":"Patient","active":true,"active":false}"#),
        case("not JSON at all", M::POST, "Patient", 400).json("<Patient/>"),
        case("an empty body", M::POST, "Patient", 400).json(""),
        case("Content-Type text/plain", M::POST, "Patient", 415)
            .header("Content-Type", "text/plain")
            .body(with(|_| {})),
        case("a body of 20 MB", M::POST, "Patient", 413).json(with(|p| {
            p["text"] = json!({"status": "generated", "div": format!("{xhtml}{}</div>", "x".repeat(20 << 20))})
        })),
        case("an id of 65 characters", M::PUT, format!("Patient/{}", "a".repeat(65)), 400)
            .json(with(|p| p["id"] = json!("a".repeat(65)))),
        case("an unknown resource type", M::POST, "Patientx", 404).json(with(|_| {})),
        case("a JSON Patch json-patch could not undo", M::PATCH, format!("Patient/{existing}"), 422)
            .header("Content-Type", "application/json-patch+json")
            .body(r#"[{"op":"add","path":"/name/0/given/-","value":"B"},{"op":"move","from":"/name/0","path":"/name/5"}]"#),
        case("a contained resource of no known type", M::POST, "Patient", 400)
            .json(r#"{"resourceType":"Patient","contained":[{"resourceType":"OrganV"}],"active":true}"#),
        case("a contained resource with nothing but its type", M::POST, "Patient", 400)
            .json(r#"{"resourceType":"Patient","contained":[{"resourceType":"Organization"}],"active":true}"#),
        case("a path that climbs out", M::GET, "Patient/..%2F..%2Fetc%2Fpasswd", 404),
    ]
}

/// What the corpus could have written: the resources of the types it sends (the audit
/// trail grows with every request, so not the system history), and the versions of the
/// Patient it names.
fn stored(s: &Server, existing: &str) -> Vec<Value> {
    ["Patient", "Observation", "Immunization"]
        .iter()
        .map(|t| format!("{t}?_summary=count"))
        .chain([format!("Patient/{existing}/_history")])
        .map(|path| s.get(&path).expect_status(200).json()["total"].clone())
        .collect()
}

#[test]
fn every_bad_request_is_a_4xx_outcome_stores_nothing_and_the_server_lives() {
    for s in servers() {
        let existing = id_of(&s.create(&patient("Existing")));
        let before = stored(&s, &existing);
        for c in corpus(&existing) {
            let mut req = s.req(c.method.clone(), &c.path);
            for (name, value) in &c.headers {
                req = req.header(
                    *name,
                    reqwest::header::HeaderValue::from_bytes(value).unwrap(),
                );
            }
            if let Some(body) = c.body {
                req = req.body(body);
            }
            let resp = req.fetch();
            let what = format!("[{}] {}", s.backend, c.name);
            assert_eq!(resp.status, c.status, "{what}: {}", resp.text());
            let body = resp.json();
            assert_eq!(body["resourceType"], "OperationOutcome", "{what}: {body}");
            assert!(
                [
                    &body["issue"][0]["details"]["text"],
                    &body["issue"][0]["diagnostics"]
                ]
                .iter()
                .any(|t| t.as_str().is_some_and(|t| !t.is_empty())),
                "{what}: says nothing: {body}"
            );
            assert_eq!(
                stored(&s, &existing),
                before,
                "{what}: something was stored"
            );
            s.get("metadata").expect_status(200);
        }
    }
}

/// Requests that no client library sends, on a raw socket: the status the HTTP parser
/// gives, with an OperationOutcome (they had empty bodies: `http/wire.rs`), and the server
/// goes on answering.
#[test]
fn malformed_http_is_refused_and_the_server_lives() {
    let head = |extra: &str| format!("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let headers: String = (0..300).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("300 headers", head(&headers).into_bytes(), 431),
        (
            "a URL of 100 KB",
            format!(
                "GET /fhir/Patient?name={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(100_000)
            )
            .into_bytes(),
            400,
        ),
        (
            "a garbage Content-Length",
            head("Content-Length: ten\r\n").into_bytes(),
            400,
        ),
        (
            "Content-Length with Transfer-Encoding",
            head("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n").into_bytes(),
            400,
        ),
        ("a garbage request line", b"HELLO\r\n\r\n".to_vec(), 400),
        (
            "HTTP/9.9",
            b"GET /fhir/metadata HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a header without a colon",
            head("NoColon\r\n").into_bytes(),
            400,
        ),
        (
            "a head that never ends (5 s)",
            b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n".to_vec(),
            408,
        ),
        (
            "unencoded UTF-8 in the request line",
            "GET /fhir/Patient?name=Trần HTTP/1.1\r\nHost: x\r\n\r\n"
                .as_bytes()
                .to_vec(),
            400,
        ),
    ];
    for s in servers() {
        let address = s.root.trim_start_matches("http://").to_owned();
        for (name, request, status) in &cases {
            let mut stream = TcpStream::connect(&address).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            // The server may answer and close before it has read everything.
            let _ = stream.write_all(request);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            let line = answer.lines().next().unwrap_or_default();
            assert!(
                line.starts_with(&format!("HTTP/1.1 {status}")),
                "[{}] {name}: {line:?}",
                s.backend
            );
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/fhir+json"),
                "[{}] {name}: {head}",
                s.backend
            );
            let outcome: Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("[{}] {name}: {e}: {body:?}", s.backend));
            let code = match status {
                431 => "HB-HEAD-TOO-LARGE",
                408 => "HB-HEAD-TIMEOUT",
                _ => "HB-HTTP",
            };
            assert_eq!(
                error_code(&outcome),
                code,
                "[{}] {name}: {outcome}",
                s.backend
            );
            s.get("metadata").expect_status(200);
        }
    }
}
