//! Black-box FHIR R4 (4.0.1) conformance test harness for the `healthbook` binary.
//!
//! Every test starts one fresh server per storage backend (see [`servers`]) and talks
//! to it over HTTP only, exactly like an external FHIR client would.
//!
//! * SQLite is always tested (a throw-away database in a temp directory).
//! * PostgreSQL is tested when `TEST_DATABASE_URL` is set; a fresh database
//!   `hb_ct_<uuid>` is created with `psql` and dropped again afterwards. When `CI=true`
//!   and `TEST_DATABASE_URL` is missing the harness panics instead of skipping.
//!
//! The binary is taken from `HEALTHBOOK_BIN`, else `<workspace>/target/debug/healthbook`.

use std::fs::{self, File};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub mod idp;

pub use reqwest::blocking::{Client, RequestBuilder};
pub use reqwest::header::HeaderMap;
pub use reqwest::Method;
pub use serde_json::{json, Value};

/// `application/fhir+json`, the FHIR JSON mime type (http.html#mime).
pub const FHIR_JSON: &str = "application/fhir+json";
/// `application/fhir+xml`, the FHIR XML mime type (http.html#mime).
pub const FHIR_XML: &str = "application/fhir+xml";
/// `application/json-patch+json`, the JSON Patch mime type (http.html#patch).
pub const JSON_PATCH: &str = "application/json-patch+json";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;

/// Which storage backend a [`Server`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A running `healthbook serve` process with its own, empty database.
///
/// Dropping it kills the process, drops the PostgreSQL database (if any) and removes the
/// temp directory. When dropped during a panic, the server log is printed to stderr.
pub struct Server {
    /// FHIR base URL, e.g. `http://127.0.0.1:40000/fhir` (no trailing slash).
    pub base: String,
    /// Scheme + authority, e.g. `http://127.0.0.1:40000`.
    pub root: String,
    /// Backend name (`"sqlite"` / `"postgres"`), for assertion messages.
    pub backend: &'static str,
    /// Shared HTTP client (30 s timeout, transparent gzip).
    pub client: Client,
    child: Child,
    dir: PathBuf,
    pg: Option<PgDatabase>,
    env: Vec<(String, String)>,
}

/// Whether PostgreSQL is under test (`TEST_DATABASE_URL` set). Without it, a test that
/// needs PostgreSQL is skipped with a line on stderr, except in CI, where that is a failure.
pub fn postgres_under_test(test: &str) -> bool {
    let set = std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.trim().is_empty());
    if !set {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")),
            "PostgreSQL tests must not be skipped in CI: set TEST_DATABASE_URL"
        );
        eprintln!("TEST_DATABASE_URL not set: {test} needs PostgreSQL");
    }
    set
}

/// The backends under test: SQLite, plus PostgreSQL when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if postgres_under_test("part of this test") {
        backends.push(Backend::Postgres);
    }
    backends
}

/// Starts one fresh server per backend under test ([`backends`]), in parallel.
pub fn servers() -> Vec<Server> {
    let backends = backends();
    thread::scope(|s| {
        let handles: Vec<_> = backends
            .iter()
            .map(|&b| s.spawn(move || Server::start(b)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Path of the `healthbook` binary under test.
pub fn binary() -> PathBuf {
    let path = match std::env::var_os("HEALTHBOOK_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("debug")
            .join(format!("healthbook{}", std::env::consts::EXE_SUFFIX)),
    };
    assert!(
        path.is_file(),
        "healthbook binary not found at {}: build it with `cargo build -p healthbook` \
         (or point HEALTHBOOK_BIN at it)",
        path.display()
    );
    path
}

/// A fresh HTTP client with the harness defaults. Idle connections are dropped after 2 s,
/// before the server's 5 s keep-alive closes them: a request sent on a connection the
/// server is closing fails.
pub fn client() -> Client {
    Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("build reqwest client")
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

impl Server {
    /// Starts a server on `backend`, retrying with another port if the one picked was
    /// taken in the meantime.
    pub fn start(backend: Backend) -> Server {
        Server::start_with(backend, &[])
    }

    /// Like [`Server::start`], with extra environment variables (settings overrides).
    pub fn start_with(backend: Backend, extra_env: &[(&str, &str)]) -> Server {
        let bin = binary();
        let dir = std::env::temp_dir().join(format!("healthbook-ct-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).expect("create temp dir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create(
                &std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL"),
            )),
        };
        let db_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}", dir.join("hb.db").display()),
        };

        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let root = format!("http://127.0.0.1:{port}");
            let base = format!("{root}/fhir");
            let env = [
                ("HEALTHBOOK__SERVER__BIND", format!("127.0.0.1:{port}")),
                ("HEALTHBOOK__SERVER__BASE_URL", base.clone()),
                ("HEALTHBOOK__DATABASE__URL", db_url.clone()),
                ("RUST_LOG", "warn".to_owned()),
                // These tests exercise R4 with resources of every shape; the national
                // profiles (the default, `all`) are tested where a test asks for them.
                ("HEALTHBOOK__VALIDATION__VN_CORE", "declared".to_owned()),
            ];
            let extra = extra_env.iter().map(|(k, v)| (*k, (*v).to_owned()));
            let env: Vec<(&str, String)> = env.into_iter().chain(extra).collect();
            if pg.is_some() && attempt == 1 {
                let log = dir.join("migrate.log");
                let out = File::create(&log).expect("create migrate log");
                let status = Command::new(&bin)
                    .arg("migrate")
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdout(out.try_clone().expect("clone log handle"))
                    .stderr(out)
                    .status()
                    .expect("run `healthbook migrate`");
                assert!(
                    status.success(),
                    "`healthbook migrate` failed ({status}):\n{}",
                    read_log(&log)
                );
            }
            let log = dir.join(format!("server-{attempt}.log"));
            let out = File::create(&log).expect("create server log");
            let child = Command::new(&bin)
                .arg("serve")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone log handle"))
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut server = Server {
                base,
                root,
                backend: backend.name(),
                client: client(),
                child,
                dir: dir.clone(),
                pg: None,
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            };
            match server.wait_ready(&log) {
                Ok(()) => {
                    server.pg = pg;
                    return server;
                }
                Err(msg) => {
                    last_log = format!("{msg}\n{}", read_log(&log));
                    // Only a lost port race is worth another attempt.
                    let lower = last_log.to_ascii_lowercase();
                    let port_race = lower.contains("in use") || lower.contains("addrinuse");
                    server.dir = PathBuf::new(); // keep the dir for the next attempt
                    drop(server);
                    if !port_race {
                        break;
                    }
                }
            }
        }
        drop(pg);
        let _ = fs::remove_dir_all(&dir);
        panic!(
            "healthbook ({}) did not become ready:\n{last_log}",
            backend.name()
        );
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), String> {
        let url = format!("{}/health/ready", self.root);
        let probe = Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build probe client");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return Err(format!("server exited early with {status}"));
            }
            if let Ok(resp) = probe.get(&url).send() {
                if resp.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "GET {url} not 200 after {READY_TIMEOUT:?} (log: {})",
                    log.display()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Absolute URL for `path`: paths are relative to the FHIR base (a leading `/` is
    /// ignored); absolute `http(s)://` URLs are returned unchanged.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    /// A request builder for `method` on `path` (see [`Server::url`]).
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET path` with `Accept: application/fhir+json`.
    pub fn get(&self, path: &str) -> Resp {
        self.req(Method::GET, path)
            .header("Accept", FHIR_JSON)
            .fetch()
    }

    /// `POST path` with a FHIR JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.req(Method::POST, path).fhir_json(body).fetch()
    }

    /// `PUT path` with a FHIR JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.req(Method::PUT, path).fhir_json(body).fetch()
    }

    /// `PATCH path` with a JSON Patch body.
    pub fn patch(&self, path: &str, ops: &Value) -> Resp {
        self.req(Method::PATCH, path)
            .header("Content-Type", JSON_PATCH)
            .header("Accept", FHIR_JSON)
            .body(ops.to_string())
            .fetch()
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Resp {
        self.req(Method::DELETE, path)
            .header("Accept", FHIR_JSON)
            .fetch()
    }

    /// Creates `resource` (must succeed with 201) and returns the stored resource.
    pub fn create(&self, resource: &Value) -> Value {
        let ty = resource["resourceType"]
            .as_str()
            .expect("resource has resourceType");
        self.post(ty, resource).expect_status(201).json()
    }

    /// Reads `type/id` (must succeed with 200) and returns the resource.
    pub fn read(&self, ty: &str, id: &str) -> Value {
        self.get(&format!("{ty}/{id}")).expect_status(200).json()
    }

    /// Fetches a history (or any paged) Bundle at `path` and follows `next` links,
    /// returning all entries in order. Panics on a `next` loop.
    pub fn all_entries(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = self.url(path);
        let mut seen = std::collections::HashSet::new();
        loop {
            assert!(seen.insert(url.clone()), "next link loops back to {url}");
            let bundle = self.get(&url).expect_status(200).json();
            out.extend(entries(&bundle));
            match link(&bundle, "next") {
                Some(next) => url = next,
                None => return out,
            }
        }
    }

    /// Runs SQL as the PostgreSQL administrator on the maintenance database, with this
    /// server's database name substituted for `{db}`. Panics on a SQLite server.
    pub fn admin_sql(&self, sql: &str) {
        let pg = self
            .pg
            .as_ref()
            .expect("admin_sql needs a PostgreSQL server");
        psql(&pg.admin_url, &sql.replace("{db}", &pg.name));
    }

    /// Runs SQL on this server's own PostgreSQL database (as the administrator) and returns
    /// what it prints, unaligned, tuples only (`{db}` is the database's name). Panics on a
    /// SQLite server.
    pub fn db_sql(&self, sql: &str) -> String {
        let pg = self.pg.as_ref().expect("db_sql needs a PostgreSQL server");
        psql(
            &with_database(&pg.admin_url, &pg.name),
            &sql.replace("{db}", &pg.name),
        )
    }

    /// Runs statements on the database under test beside the server, on either backend
    /// (data shapes a test cannot make quickly through the API).
    pub fn db_exec(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        match &self.pg {
            Some(_) => {
                self.db_sql(sql);
            }
            None => {
                let path = self.dir.join("hb.db");
                let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
                    .expect("open the SQLite database under test");
                conn.batch_execute(&format!("PRAGMA busy_timeout = 5000; {sql}"))
                    .unwrap_or_else(|e| panic!("SQLite: {e}\n{sql}"));
            }
        }
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit; returns whether it
    /// exited successfully.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return status.success();
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM (waiting for a clean exit) and starts it again on the
    /// same port and database.
    pub fn restart(&mut self) {
        assert!(
            self.terminate(Duration::from_secs(60)),
            "[{}] no clean exit on SIGTERM",
            self.backend
        );
        let log = self.dir.join(format!(
            "server-restart-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = File::create(&log).expect("create server log");
        self.child = Command::new(binary())
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log handle"))
            .stderr(out)
            .spawn()
            .expect("restart healthbook");
        if let Err(msg) = self.wait_ready(&log) {
            panic!(
                "[{}] restart failed: {msg}\n{}",
                self.backend,
                read_log(&log)
            );
        }
    }

    /// Server log output so far (all start attempts).
    pub fn log(&self) -> String {
        let mut files: Vec<_> = fs::read_dir(&self.dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .map(|p| format!("--- {} ---\n{}", p.display(), read_log(p)))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() && !self.dir.as_os_str().is_empty() {
            eprintln!(
                "=== healthbook ({}) at {} log ===\n{}",
                self.backend,
                self.base,
                tail(&self.log(), 200)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.pg.take());
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn read_log(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        s = String::from_utf8_lossy(&bytes).into_owned();
    }
    s
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A PostgreSQL database created for one server and dropped afterwards.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin_url: &str) -> PgDatabase {
        let name = format!("hb_ct_{}", uuid::Uuid::new_v4().simple());
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        PgDatabase {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = Command::new("psql")
            .args([self.admin_url.as_str(), "-X", "-q", "-c", sql.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `sql` with psql on `url`; returns what it prints, unaligned, tuples only.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("run psql (is it installed?)");
    assert!(
        out.status.success(),
        "psql `{sql}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The Healthbook error code of an OperationOutcome's first issue (docs/ERRORS.md), or
/// `""` when it has none.
pub fn error_code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

/// Replaces the database name (URL path) of a `postgres://` URL, keeping any query.
fn with_database(url: &str, db: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let end = main[authority_start..]
        .find('/')
        .map_or(main.len(), |i| authority_start + i);
    format!("{}/{db}{query}", &main[..end])
}

/// A fully read HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends a request and reads the whole response into a [`Resp`].
pub trait Fetch {
    fn fetch(self) -> Resp;
    /// Sets `Content-Type: application/fhir+json`, `Accept: application/fhir+json` and
    /// the JSON body.
    fn fhir_json(self, body: &Value) -> Self;
}

impl Fetch for RequestBuilder {
    fn fetch(self) -> Resp {
        let (client, request) = self.build_split();
        let request = request.expect("build request");
        let method = request.method().to_string();
        let url = request.url().to_string();
        let resp = client
            .execute(request)
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .unwrap_or_else(|e| panic!("{method} {url}: reading body failed: {e}"))
            .to_vec();
        Resp {
            method,
            url,
            status,
            headers,
            body,
        }
    }

    fn fhir_json(self, body: &Value) -> Self {
        self.header("Content-Type", FHIR_JSON)
            .header("Accept", FHIR_JSON)
            .body(body.to_string())
    }
}

impl Resp {
    /// Body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body parsed as JSON (panics with the body text otherwise).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} -> {}: body is not JSON ({e}): {}",
                self.method,
                self.url,
                self.status,
                self.text()
            )
        })
    }

    /// A header value as string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// A header that must be present.
    pub fn must_header(&self, name: &str) -> String {
        self.header(name).unwrap_or_else(|| {
            panic!(
                "{} {} -> {}: missing {name} header; headers: {:?}",
                self.method, self.url, self.status, self.headers
            )
        })
    }

    /// Panics (showing the body) unless the status is `expected`.
    #[track_caller]
    pub fn expect_status(self, expected: u16) -> Resp {
        self.expect_status_in(&[expected])
    }

    /// Panics (showing the body) unless the status is one of `expected`.
    #[track_caller]
    pub fn expect_status_in(self, expected: &[u16]) -> Resp {
        assert!(
            expected.contains(&self.status),
            "{} {}: expected status {:?}, got {}; body: {}",
            self.method,
            self.url,
            expected,
            self.status,
            self.text()
        );
        self
    }

    /// Asserts the status and that the body is an OperationOutcome (any issue codes);
    /// returns the OperationOutcome.
    #[track_caller]
    pub fn expect_error(self, status: u16) -> Value {
        self.expect_error_in(&[status])
    }

    /// Like [`Resp::expect_error`] with a set of acceptable statuses.
    #[track_caller]
    pub fn expect_error_in(self, statuses: &[u16]) -> Value {
        let resp = self.expect_status_in(statuses);
        let body = resp.json();
        assert_outcome(&body, &[]);
        body
    }

    /// Asserts the response Content-Type is FHIR JSON (`application/fhir+json`,
    /// optionally followed by parameters such as `charset`).
    #[track_caller]
    pub fn assert_fhir_json(&self) {
        let ct = self.must_header("content-type");
        assert!(
            ct.trim().to_ascii_lowercase().starts_with(FHIR_JSON),
            "{} {}: Content-Type {ct:?} is not {FHIR_JSON}",
            self.method,
            self.url
        );
    }
}

/// Asserts that `body` is an OperationOutcome with at least one issue, and that every
/// issue has `severity` and `code` (both 1..1 in OperationOutcome.issue). When `codes`
/// is non-empty, at least one issue must carry one of those codes.
#[track_caller]
pub fn assert_outcome(body: &Value, codes: &[&str]) {
    assert_eq!(
        body["resourceType"], "OperationOutcome",
        "expected an OperationOutcome, got {body}"
    );
    let issues = body["issue"]
        .as_array()
        .unwrap_or_else(|| panic!("OperationOutcome without issue array: {body}"));
    assert!(
        !issues.is_empty(),
        "OperationOutcome with no issues: {body}"
    );
    for issue in issues {
        assert!(
            issue["severity"].as_str().is_some_and(|s| !s.is_empty()),
            "issue without severity: {body}"
        );
        assert!(
            issue["code"].as_str().is_some_and(|s| !s.is_empty()),
            "issue without code: {body}"
        );
    }
    if !codes.is_empty() {
        assert!(
            issues
                .iter()
                .any(|i| i["code"].as_str().is_some_and(|c| codes.contains(&c))),
            "no issue with code in {codes:?}: {body}"
        );
    }
}

/// Asserts that some issue of the OperationOutcome names `path` in `expression` or
/// (deprecated) `location`.
#[track_caller]
pub fn assert_issue_path(body: &Value, path: &str) {
    let issues = body["issue"].as_array().cloned().unwrap_or_default();
    let found = issues.iter().any(|issue| {
        ["expression", "location"].iter().any(|k| {
            issue[*k]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e.as_str() == Some(path)))
        })
    });
    assert!(
        found,
        "no issue names {path:?} in expression/location: {body}"
    );
}

/// A minimal valid Patient with the given family name (and `gender: male`).
pub fn patient(family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "active": true,
        "gender": "male",
        "name": [{ "family": family, "given": ["Test"] }]
    })
}

/// A Patient carrying `identifier` `system|value`.
pub fn patient_with_identifier(family: &str, system: &str, value: &str) -> Value {
    let mut p = patient(family);
    p["identifier"] = json!([{ "system": system, "value": value }]);
    p
}

/// Makes `Patient/{id}` exist (update as create) on a server without authorization, for
/// tests whose resources refer to a patient without being about one: writes refuse
/// references to resources that do not exist (`HB-REFERENCE-UNKNOWN`).
pub fn ensure_patient(s: &Server, id: &str) {
    let mut p = patient("Referenced");
    p["id"] = json!(id);
    p["birthDate"] = json!("1990-02-14");
    s.put(&format!("Patient/{id}"), &p)
        .expect_status_in(&[200, 201]);
}

/// A minimal valid Observation.
pub fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "text": "conformance test" }
    })
}

/// A unique identifier system URI, so tests never collide on identifiers.
pub fn unique_system() -> String {
    format!(
        "http://healthbook.test/id/{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// A fresh, valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`).
pub fn new_id() -> String {
    format!("ct-{}", uuid::Uuid::new_v4().simple())
}

/// `resource.id` as string.
#[track_caller]
pub fn id_of(resource: &Value) -> String {
    resource["id"]
        .as_str()
        .unwrap_or_else(|| panic!("resource without id: {resource}"))
        .to_owned()
}

/// `resource.meta.versionId` as string.
#[track_caller]
pub fn version_of(resource: &Value) -> String {
    resource["meta"]["versionId"]
        .as_str()
        .unwrap_or_else(|| panic!("resource without meta.versionId: {resource}"))
        .to_owned()
}

/// The weak ETag for a version id: `W/"<vid>"`.
pub fn weak_etag(vid: &str) -> String {
    format!("W/\"{vid}\"")
}

/// `Bundle.entry` (empty when absent).
pub fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

/// The URL of the Bundle link with `relation`, if any.
pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array().and_then(|links| {
        links
            .iter()
            .find(|l| l["relation"] == relation)
            .and_then(|l| l["url"].as_str().map(str::to_owned))
    })
}

/// Asserts `bundle` is a Bundle of type `history`.
#[track_caller]
pub fn assert_history_bundle(bundle: &Value) {
    assert_eq!(bundle["resourceType"], "Bundle", "not a Bundle: {bundle}");
    assert_eq!(
        bundle["type"], "history",
        "Bundle.type is not history: {bundle}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_rewrite() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
