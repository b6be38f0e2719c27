//! Lifecycle: graceful shutdown and database loss (Healthbook operations requirements, not
//! a FHIR section). Errors while the database is away follow http.html#2.21.0.5 ("Servers
//! SHALL return an OperationOutcome" with errors) with 503 and `Retry-After`.

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use conformance_tests::*;
use reqwest::Method;

/// A request body that arrives slowly, so that the request is in flight when the server
/// is told to stop.
struct SlowBody {
    chunks: Vec<Vec<u8>>,
}

impl Read for SlowBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunks.is_empty() {
            return Ok(0);
        }
        thread::sleep(Duration::from_millis(150));
        let chunk = self.chunks.remove(0);
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.chunks.insert(0, chunk[n..].to_vec());
        }
        Ok(n)
    }
}

/// SIGTERM lets a request that is already being received finish (it is answered 201, and
/// the process exits cleanly), instead of cutting it off.
#[test]
fn sigterm_drains_in_flight_requests() {
    for mut s in servers() {
        let body = patient("Draining").to_string().into_bytes();
        let chunks: Vec<Vec<u8>> = body
            .chunks(body.len() / 4 + 1)
            .map(<[u8]>::to_vec)
            .collect();
        let url = s.url("Patient");
        let client = s.client.clone();
        let upload = thread::spawn(move || {
            client
                .post(url)
                .header("Content-Type", FHIR_JSON)
                .body(reqwest::blocking::Body::new(SlowBody { chunks }))
                .send()
                .map(|r| r.status().as_u16())
        });
        thread::sleep(Duration::from_millis(200));
        let exited_cleanly = s.terminate(Duration::from_secs(20));
        let status = upload.join().expect("upload thread");
        assert_eq!(
            status.ok(),
            Some(201),
            "[{}] in-flight create was not completed",
            s.backend
        );
        assert!(
            exited_cleanly,
            "[{}] server did not exit cleanly after SIGTERM",
            s.backend
        );
    }
}

/// When PostgreSQL goes away, requests get 503 OperationOutcomes with Retry-After quickly
/// (no hang, no 500), readiness fails, and the server recovers by itself when the database
/// is back.
#[test]
fn database_loss_gives_503_and_recovery() {
    if !postgres_under_test("the database-loss test") {
        return;
    }
    let s = Server::start_with(
        Backend::Postgres,
        &[
            ("HEALTHBOOK__DATABASE__ACQUIRE_TIMEOUT_MS", "1000"),
            // The recovery line is at info.
            ("RUST_LOG", "info"),
        ],
    );
    let id = id_of(&s.create(&patient("Resilient")));

    s.admin_sql("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false");
    s.admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'");

    let started = Instant::now();
    let resp = s.get(&format!("Patient/{id}"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a request hung while the database was away"
    );
    assert_eq!(resp.status, 503, "read without database: {}", resp.text());
    // The outage is detected once: later requests do not each wait for a connection.
    // Twenty reads that each waited the 1 s acquire timeout would take 20 s.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(s.get(&format!("Patient/{id}")).status, 503);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "each request waited for the database: {:?} for 20",
        started.elapsed()
    );
    assert!(
        resp.header("retry-after").is_some(),
        "503 without Retry-After"
    );
    assert_outcome(&resp.json(), &["transient"]);
    let create = s.post("Patient", &patient("Lost"));
    assert_eq!(
        create.status,
        503,
        "create without database: {}",
        create.text()
    );
    assert_eq!(
        s.req(Method::GET, &format!("{}/health/ready", s.root))
            .fetch()
            .status,
        503
    );

    s.admin_sql("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = s.get(&format!("Patient/{id}"));
        if resp.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database came back: {}",
            resp.status
        );
        thread::sleep(Duration::from_millis(200));
    }
    s.create(&patient("AfterRecovery"));
    // One line per change of state, not one per request.
    let log = s.log();
    assert_eq!(
        log.matches("database unreachable").count(),
        1,
        "outage not logged exactly once:\n{log}"
    );
    assert_eq!(
        log.matches("database reachable again").count(),
        1,
        "recovery not logged exactly once:\n{log}"
    );
}

/// SIGTERM while PostgreSQL is away still stops the server within
/// `server.shutdown_timeout_secs`, and the log says how many audit events it could not
/// write (they are not silently dropped, and shutdown does not wait forever for them).
#[test]
fn sigterm_during_an_outage_exits_on_time() {
    if !postgres_under_test("the outage shutdown test") {
        return;
    }
    let mut s = Server::start_with(
        Backend::Postgres,
        &[("HEALTHBOOK__SERVER__SHUTDOWN_TIMEOUT_SECS", "3")],
    );
    let id = id_of(&s.create(&patient("Unwritten")));
    s.admin_sql("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false");
    s.admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'");
    for _ in 0..5 {
        assert_eq!(s.get(&format!("Patient/{id}")).status, 503);
    }
    let started = Instant::now();
    let exited = s.terminate(Duration::from_secs(15));
    let took = started.elapsed();
    s.admin_sql("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true");
    assert!(exited, "no clean exit after SIGTERM during an outage");
    assert!(
        took < Duration::from_secs(8),
        "SIGTERM took {took:?} with shutdown_timeout_secs = 3"
    );
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("audit events not written"))
        .unwrap_or_else(|| panic!("unwritten audit events not reported:\n{log}"));
    assert!(
        line.contains("unwritten=") && !line.contains("unwritten=0"),
        "no count of unwritten audit events: {line}"
    );
}
