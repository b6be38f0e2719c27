//! Admission control and metrics (issue 16, docs/OPERATIONS.md): past its share of the
//! in-flight bound a class of traffic is answered at once with 503 `HB-OVERLOADED`,
//! `Retry-After` and an OperationOutcome (citizen apps first, practitioners next, the
//! ministry last); a client over its quota gets 429 `HB-RATE-LIMITED` (RFC 6585 §4);
//! the health endpoints and `/metrics` always answer; `/metrics` counts by route template
//! and class, never by id.
//!
//! Requests are held in flight by POSTs whose body does not come: admission happens when
//! the request head is read, and the room is given back when the connection closes.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use conformance_tests::idp::{secured_server_with, TokenOptions};
use conformance_tests::*;
use reqwest::blocking::RequestBuilder;

/// A POST /fhir/Patient whose body never comes, with `token` if given.
fn hold(s: &Server, token: Option<&str>) -> TcpStream {
    let address = s.root.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).expect("connect");
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST /fhir/Patient HTTP/1.1\r\nHost: test\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n{auth}\r\n{{"
    )
    .expect("write the head");
    stream
}

fn metrics(s: &Server) -> String {
    s.client
        .get(format!("{}/metrics", s.root))
        .send()
        .expect("GET /metrics")
        .text()
        .unwrap()
}

/// Waits until `/metrics` shows `n` requests in flight.
fn in_flight(s: &Server, n: usize) {
    let line = format!("healthbook_http_requests_in_flight {n}\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics(s).contains(&line) {
        assert!(
            Instant::now() < deadline,
            "never {n} in flight:\n{}",
            metrics(s)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn metadata(s: &Server, token: Option<&str>) -> RequestBuilder {
    let request = s.req(Method::GET, "metadata");
    match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    }
}

/// Without tokens (`auth.mode = none`) every request is a citizen's: past half the bound
/// they are shed with 503, Retry-After and an OperationOutcome, at once; health and
/// metrics still answer; once room is given back requests are admitted again; shedding is
/// counted and logged, and shed requests are not audited.
#[test]
fn past_its_share_a_class_is_shed_with_retry_after() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("HEALTHBOOK__ADMISSION__MAX_IN_FLIGHT", "4"),
            ("HEALTHBOOK__ADMISSION__QUEUE_WAIT_MS", "0"),
        ],
    );
    let held: Vec<TcpStream> = (0..2).map(|_| hold(&s, None)).collect();
    in_flight(&s, 2);
    let started = Instant::now();
    let response = metadata(&s, None).fetch();
    let shed_in = started.elapsed();
    assert_eq!(response.header("retry-after").as_deref(), Some("2"));
    assert!(response.header("x-request-id").is_some());
    let outcome = response.expect_error(503);
    assert_eq!(error_code(&outcome), "HB-OVERLOADED");
    assert!(
        shed_in < Duration::from_secs(1),
        "answered at once, not queued: {shed_in:?}"
    );
    s.client
        .get(format!("{}/health/ready", s.root))
        .send()
        .map(|r| assert_eq!(r.status(), 200))
        .expect("ready");
    let text = metrics(&s);
    assert!(
        text.contains("healthbook_admission_shed_total{class=\"citizen\"} 1\n"),
        "{text}"
    );
    drop(held);
    in_flight(&s, 0);
    metadata(&s, None).fetch().expect_status(200);
    let created = s.create(&patient("Admitted"));
    assert_eq!(created["resourceType"], "Patient");
    let log = s.log();
    assert!(log.contains("admission: shedding started"), "{log}");
    // The shed request touched nothing: it is not in the audit trail (metadata is not
    // audited anyway; a shed read of a Patient would name it).
    let id = created["id"].as_str().unwrap().to_owned();
    let held: Vec<TcpStream> = (0..2).map(|_| hold(&s, None)).collect();
    in_flight(&s, 2);
    s.req(Method::GET, &format!("Patient/{id}"))
        .fetch()
        .expect_error(503);
    drop(held);
    in_flight(&s, 0);
    thread::sleep(Duration::from_millis(300));
    let events = s.all_entries(&format!("AuditEvent?entity=Patient/{id}&_count=100"));
    assert!(
        events
            .iter()
            .all(|e| e["resource"]["outcome"] == "0"
                && e["resource"]["subtype"][0]["code"] != "read"),
        "a shed read was audited: {events:?}"
    );
}

/// With tokens, the mission decides: at a bound of 4 (citizen 50%, clinical 75%), two
/// citizen requests in flight shed the next citizen's but admit a practitioner's and the
/// ministry's; with a third in flight the practitioner is shed and the ministry is not.
#[test]
fn citizens_are_shed_before_practitioners_and_the_ministry() {
    let (s, idp) = secured_server_with(
        Backend::Sqlite,
        &[
            ("HEALTHBOOK__ADMISSION__MAX_IN_FLIGHT", "4"),
            ("HEALTHBOOK__ADMISSION__CLINICAL_PERCENT", "75"),
            ("HEALTHBOOK__ADMISSION__QUEUE_WAIT_MS", "0"),
        ],
    );
    let citizen = idp.token_with(
        "patient/*.rs",
        &TokenOptions {
            patient: Some("someone"),
            ..Default::default()
        },
    );
    let practitioner = idp.token_with(
        "user/*.rs",
        &TokenOptions {
            fhir_user: Some("Practitioner/nurse"),
            ..Default::default()
        },
    );
    let ministry = idp.token("system/*.rs");
    // (A request without a token is answered 401 before its body is read: not held.)
    let mut held = vec![hold(&s, Some(&citizen)), hold(&s, Some(&citizen))];
    in_flight(&s, 2);
    let outcome = metadata(&s, Some(&citizen)).fetch().expect_error(503);
    assert_eq!(error_code(&outcome), "HB-OVERLOADED");
    metadata(&s, None).fetch().expect_error(503);
    metadata(&s, Some(&practitioner)).fetch().expect_status(200);
    metadata(&s, Some(&ministry)).fetch().expect_status(200);
    held.push(hold(&s, Some(&practitioner)));
    in_flight(&s, 3);
    metadata(&s, Some(&practitioner)).fetch().expect_error(503);
    metadata(&s, Some(&ministry)).fetch().expect_status(200);
    let text = metrics(&s);
    for line in [
        "healthbook_admission_shed_total{class=\"citizen\"} 2\n",
        "healthbook_admission_shed_total{class=\"clinical\"} 1\n",
        "healthbook_admission_shed_total{class=\"ministry\"} 0\n",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    drop(held);
    in_flight(&s, 0);
    metadata(&s, Some(&citizen)).fetch().expect_status(200);
}

/// A client over its quota (`client_rate` per second, `client_burst` at once) gets 429
/// with Retry-After; another client is not affected.
#[test]
fn a_client_over_its_quota_gets_429() {
    let (s, idp) = secured_server_with(
        Backend::Sqlite,
        &[
            ("HEALTHBOOK__ADMISSION__CLIENT_RATE", "1"),
            ("HEALTHBOOK__ADMISSION__CLIENT_BURST", "3"),
        ],
    );
    let token = idp.token("system/*.rs");
    for _ in 0..3 {
        metadata(&s, Some(&token)).fetch().expect_status(200);
    }
    let response = metadata(&s, Some(&token)).fetch();
    let wait: u64 = response
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let outcome = response.expect_error(429);
    assert_eq!(error_code(&outcome), "HB-RATE-LIMITED");
    // Another client (the backend service of private_key_jwt) goes on.
    let other = idp.backend_services_token("system/*.rs");
    metadata(&s, Some(&other)).fetch().expect_status(200);
    assert!(metrics(&s).contains("healthbook_admission_rate_limited_total 1\n"));
}

/// `/metrics` counts requests by route template, method and status; no id, no query value
/// and no name appears in it. On both backends (PostgreSQL has one pool, SQLite a read and
/// a write pool).
#[test]
fn metrics_name_route_templates_not_values() {
    for s in servers() {
        let created = s.create(&patient("Nguyễn-Metrics"));
        let id = created["id"].as_str().unwrap();
        s.get(&format!("Patient/{id}")).expect_status(200);
        s.get("Patient?family=Nguyễn-Metrics").expect_status(200);
        s.get("Patient/no-such-id").expect_error(404);
        let text = metrics(&s);
        let pools: &[&str] = if s.backend == "postgres" {
            &[r#"healthbook_db_pool_acquired_total{pool="shared"}"#]
        } else {
            &[
                r#"healthbook_db_pool_connections{pool="read"}"#,
                r#"healthbook_db_pool_acquired_total{pool="write"}"#,
            ]
        };
        for line in [
            r#"healthbook_http_request_duration_seconds_count{method="GET",route="/fhir/{type}/{id}",status="200"} 1"#,
            r#"healthbook_http_request_duration_seconds_count{method="GET",route="/fhir/{type}/{id}",status="404"} 1"#,
            r#"healthbook_http_request_duration_seconds_count{method="GET",route="/fhir/{type}",status="200"} 1"#,
            r#"healthbook_http_request_duration_seconds_count{method="POST",route="/fhir/{type}",status="201"} 1"#,
            "healthbook_audit_queue_depth ",
        ]
        .iter()
        .chain(pools)
        {
            assert!(text.contains(line), "[{}] {line} missing:\n{text}", s.backend);
        }
        for value in [id, "Nguy", "no-such-id", "family"] {
            assert!(
                !text.contains(value),
                "[{}] {value} in the metrics",
                s.backend
            );
        }
    }
}
