//! The examples of README.md and docs/ run as written, under the national validation
//! policy (`validation.vn_core = "all"`, the default and production setting): each `curl`
//! of README's "Examples" and of docs/BUNDLES.md is read from the file itself, so a doc
//! that stops working fails here.

use std::collections::HashMap;
use std::path::Path;

use conformance_tests::*;

/// The text of a file of the repository.
fn doc(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The fenced blocks of `lang` in `text` after the heading or line containing `after`.
fn blocks(text: &str, lang: &str, after: &str) -> Vec<String> {
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("'{after}' not found"));
    let mut out = Vec::new();
    let mut rest = &text[start..];
    let fence = format!("```{lang}\n");
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```").expect("a closed block");
        out.push(body[..end].to_owned());
        rest = &body[end..];
    }
    out
}

/// The commands of a shell block, each as its words: quotes ('...', "...", which may span
/// lines), `\` line continuations and comment lines, which is all the examples use.
fn commands(block: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut command = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut chars = block.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if !started && command.is_empty() => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        break;
                    }
                }
            }
            '\'' | '"' => {
                started = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            c if c.is_whitespace() => {
                if started {
                    command.push(std::mem::take(&mut word));
                    started = false;
                }
                if c == '\n' && !command.is_empty() {
                    out.push(std::mem::take(&mut command));
                }
            }
            c => {
                started = true;
                word.push(c);
            }
        }
    }
    if started {
        command.push(word);
    }
    if !command.is_empty() {
        out.push(command);
    }
    out
}

/// One `curl` of an example.
#[derive(Debug)]
struct Curl {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// `-o`: the file the answer goes to.
    output: Option<String>,
}

/// The `curl` commands of a shell block (other lines, such as `B=...`, are settings).
fn curls(block: &str) -> Vec<Curl> {
    commands(block)
        .into_iter()
        .filter(|words| words[0] == "curl")
        .map(|words| {
            let mut curl = Curl {
                method: String::new(),
                url: String::new(),
                headers: Vec::new(),
                body: None,
                output: None,
            };
            let mut i = 1;
            while i < words.len() {
                match words[i].as_str() {
                    "-s" => {}
                    "-X" => {
                        i += 1;
                        curl.method = words[i].clone();
                    }
                    "-H" => {
                        i += 1;
                        let (k, v) = words[i].split_once(':').expect("a header");
                        curl.headers
                            .push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                    "-d" => {
                        i += 1;
                        curl.body = Some(words[i].clone());
                    }
                    "-o" => {
                        i += 1;
                        curl.output = Some(words[i].clone());
                    }
                    url => curl.url = url.to_owned(),
                }
                i += 1;
            }
            if curl.method.is_empty() {
                curl.method = if curl.body.is_some() { "POST" } else { "GET" }.into();
            }
            curl
        })
        .collect()
}

/// Runs the curls against `s`, with the documented base replaced by the server's and
/// `<id>` by the id the first create returned; returns each answer.
fn run(s: &Server, curls: &[Curl], ids: &mut HashMap<&'static str, String>) -> Vec<Resp> {
    curls
        .iter()
        .map(|c| {
            let mut url = c
                .url
                .replace("$B", &s.base)
                .replace("http://127.0.0.1:8080/fhir", &s.base);
            if let Some(id) = ids.get("<id>") {
                url = url.replace("<id>", id);
            }
            let method = Method::from_bytes(c.method.as_bytes()).expect("a method");
            let mut req = s.req(method, &url);
            for (k, v) in &c.headers {
                req = req.header(k, v);
            }
            if let Some(body) = &c.body {
                req = req.body(body.clone());
            }
            let resp = req.fetch();
            assert!(
                resp.status < 300,
                "[{}] {} {url} answered {}: {}",
                s.backend,
                c.method,
                resp.status,
                resp.text()
            );
            if c.method == "POST" && url.ends_with("/Patient") {
                ids.insert("<id>", id_of(&resp.json()));
            }
            resp
        })
        .collect()
}

fn national(backend: Backend) -> Server {
    Server::start_with(backend, &[("HEALTHBOOK__VALIDATION__VN_CORE", "all")])
}

/// README.md "Examples": create (conditional), read as XML, patch, history, two searches.
#[test]
fn readme_examples_work_as_written() {
    let readme = doc("README.md");
    let block = blocks(&readme, "sh", "## Examples");
    let examples = curls(&block[0]);
    assert!(
        examples.len() >= 6,
        "the README examples were not read: {examples:?}"
    );
    for backend in backends() {
        let s = national(backend);
        let mut ids = HashMap::new();
        let answers = run(&s, &examples, &mut ids);
        assert_eq!(answers[0].status, 201, "the create");
        assert!(
            answers[1]
                .text()
                .contains("<Patient xmlns=\"http://hl7.org/fhir\""),
            "the XML read: {}",
            answers[1].text()
        );
        // The search by the CCCD of the example finds the person it created.
        let found =
            s.get("Patient?identifier=https://healthbook.example.org/fhir/sid/cccd|001090012345");
        assert_eq!(found.json()["entry"].as_array().map(Vec::len), Some(1));
    }
}

/// docs/BUNDLES.md: a vaccination site's transaction (one person, one dose), safe to
/// resend: the second time nothing new is made.
#[test]
fn bundles_example_works_as_written_and_twice() {
    let bundles = doc("docs/BUNDLES.md");
    let examples = curls(&blocks(&bundles, "sh", "Example: a site's day")[0]);
    assert_eq!(examples.len(), 1);
    for backend in backends() {
        let s = national(backend);
        let first = run(&s, &examples, &mut HashMap::new()).remove(0).json();
        let statuses = |bundle: &Value| -> Vec<String> {
            bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    e["response"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        };
        assert!(
            statuses(&first).iter().all(|s| s.starts_with("201")),
            "[{}] first: {first}",
            s.backend
        );
        let again = run(&s, &examples, &mut HashMap::new()).remove(0).json();
        assert!(
            statuses(&again).iter().all(|s| s.starts_with("200")),
            "[{}] resent: {again}",
            s.backend
        );
    }
}

/// docs/SEARCH.md: the custom SearchParameter of the example is accepted, and finds what
/// it indexes.
#[test]
fn custom_search_parameter_example_works() {
    let search = doc("docs/SEARCH.md");
    let parameter: Value =
        serde_json::from_str(&blocks(&search, "json", "Custom search parameters")[0])
            .expect("the SearchParameter of docs/SEARCH.md is JSON");
    for backend in backends() {
        let s = national(backend);
        s.post("SearchParameter", &parameter).expect_status(201);
        s.get("Patient?ethnicity=kinh").expect_status(200);
    }
}

/// README.md "The hospital flow" with the real IdP of the security tests: the person's app
/// issues and shows the QR, the doctor is refused before the scan, scans, gets the whole
/// record, records a dose, breaks the glass; the person lists the grants and reads, and
/// ends one. `$ID`, `$PERSON`, `$DOCTOR`, `$CONSENT`, the payload and `@dose.json` are
/// filled in as a reader would.
#[test]
fn readme_hospital_flow_works_as_written() {
    use conformance_tests::idp::{secured_server, TokenOptions};
    let readme = doc("README.md");
    let flow = curls(&blocks(&readme, "sh", "## The hospital flow")[0]);
    assert_eq!(flow.len(), 10, "the hospital flow was not read: {flow:?}");
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let id = id_of(
            &s.req(Method::POST, "Patient")
                .bearer_auth(&admin)
                .fhir_json(&patient("Bệnh-Nhân"))
                .fetch()
                .expect_status(201)
                .json(),
        );
        let person = idp.token_with(
            "patient/*.cruds",
            &TokenOptions {
                patient: Some(&id),
                ..Default::default()
            },
        );
        let doctor = idp.token_with(
            "user/*.cruds",
            &TokenOptions {
                fhir_user: Some("Practitioner/bac-si-an"),
                ..Default::default()
            },
        );
        let dose = json!({"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
            "patient": {"reference": format!("Patient/{id}")}, "occurrenceDateTime": "2021-09-01",
            "lotNumber": "FK1234"});
        let mut payload = String::new();
        let mut consent = String::new();
        for (i, c) in flow.iter().enumerate() {
            let fill = |text: &str| {
                text.replace("\\$", "$")
                    .replace("$B", &s.base)
                    .replace("https://fhir.example.org/fhir", &s.base)
                    .replace("$ID", &id)
                    .replace("$PERSON", &person)
                    .replace("$DOCTOR", &doctor)
                    .replace("$CONSENT", &consent)
                    .replace("HB1:5MPFHC4S271KHFPAGHZPRD1HH9F", &payload)
            };
            let url = fill(&c.url);
            let mut req = s.client.request(
                Method::from_bytes(c.method.as_bytes()).expect("a method"),
                &url,
            );
            for (k, v) in &c.headers {
                req = req.header(k, fill(v));
            }
            match c.body.as_deref() {
                Some("@dose.json") => req = req.body(dose.to_string()),
                Some(body) => req = req.body(fill(body)),
                None => {}
            }
            let resp = req.fetch();
            let expected = if url.ends_with(&format!("/Patient/{id}")) {
                403
            } else {
                200
            };
            let ok = match expected {
                403 => resp.status == 403,
                _ => (200..300).contains(&resp.status),
            };
            assert!(
                ok,
                "[{}] step {i}: {} {url}: {} {}",
                s.backend,
                c.method,
                resp.status,
                resp.text()
            );
            if c.output.is_some() {
                assert_eq!(resp.header("content-type").as_deref(), Some("image/png"));
            }
            if url.ends_with("$qr-issue") {
                payload = resp.json()["parameter"][1]["valueString"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
            if url.contains("/Consent?") {
                consent = id_of(&resp.json()["entry"][0]["resource"]);
            }
        }
        assert!(
            !consent.is_empty() && !payload.is_empty(),
            "[{}]",
            s.backend
        );
    }
}
