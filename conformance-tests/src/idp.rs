//! A real OpenID provider for the security tests: `oidc-provider` (npm, pinned in
//! `idp/package.json`) run by Node.js on 127.0.0.1. See `idp/idp.mjs` for what it issues.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::{free_port, Backend, Server};

/// A running test IdP; killed on drop.
pub struct Idp {
    /// The issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    child: Child,
    client: Client,
    port: u16,
    fhir_aud: String,
}

/// Extras of a test token.
#[derive(Debug, Default, Clone)]
pub struct TokenOptions<'a> {
    /// SMART launch context `patient` claim.
    pub patient: Option<&'a str>,
    /// `fhirUser` claim.
    pub fhir_user: Option<&'a str>,
    /// Lifetime in seconds.
    pub ttl: Option<u32>,
    /// `RS256` instead of the default `ES256`.
    pub alg: Option<&'a str>,
    /// Audience other than the FHIR server.
    pub resource: Option<&'a str>,
    /// An opaque token (verified by RFC 7662 introspection) instead of a JWT.
    pub opaque: bool,
}

impl Idp {
    /// Starts the IdP on `port`, issuing tokens for the FHIR base `fhir_aud`.
    pub fn start(port: u16, fhir_aud: &str) -> Idp {
        let mut idp = Idp {
            issuer: format!("http://127.0.0.1:{port}"),
            child: spawn(port, fhir_aud),
            client: crate::client(),
            port,
            fhir_aud: fhir_aud.to_owned(),
        };
        idp.wait_ready();
        idp
    }

    /// Stops the IdP and starts it again on the same port with new signing keys (new
    /// kids): a key rotation.
    pub fn rotate_keys(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.fhir_aud);
        self.wait_ready();
    }

    /// How many times the key set has been fetched from this IdP.
    pub fn jwks_fetches(&self) -> u64 {
        let answer: Value = self
            .client
            .get(format!("{}/test/jwks-fetches", self.issuer))
            .send()
            .expect("jwks counter")
            .json()
            .expect("jwks counter JSON");
        answer["count"].as_u64().unwrap_or(0)
    }

    fn wait_ready(&mut self) {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .client
            .get(&discovery)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the test IdP did not start");
            thread::sleep(Duration::from_millis(50));
        }
    }
    /// An access token with `scope` for the FHIR server.
    pub fn token(&self, scope: &str) -> String {
        self.token_with(scope, &TokenOptions::default())
    }

    /// An access token with `scope` and extras.
    pub fn token_with(&self, scope: &str, options: &TokenOptions<'_>) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(resource) = options.resource {
            form.push(("resource", resource));
        }
        let mut request = self
            .client
            .post(format!("{}/token", self.issuer))
            .basic_auth("tester", Some("tester-secret"))
            .form(&form);
        for (header, value) in [
            ("X-Test-Patient", options.patient.map(str::to_owned)),
            ("X-Test-FhirUser", options.fhir_user.map(str::to_owned)),
            ("X-Test-Ttl", options.ttl.map(|t| t.to_string())),
            ("X-Test-Alg", options.alg.map(str::to_owned)),
            ("X-Test-Format", options.opaque.then(|| "opaque".to_owned())),
        ] {
            if let Some(value) = value {
                request = request.header(header, value);
            }
        }
        let response: Value = request
            .send()
            .expect("token request")
            .json()
            .expect("token JSON");
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {response}"))
            .to_owned()
    }
}

impl Idp {
    /// Revokes a token (RFC 7009).
    pub fn revoke(&self, token: &str) {
        let status = self
            .client
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth("tester", Some("tester-secret"))
            .form(&[("token", token)])
            .send()
            .expect("revocation request")
            .status();
        assert!(status.is_success(), "revocation failed: {status}");
    }
}

/// Runs `node idp/idp.mjs`, installing the pinned IdP with `npm ci` first if needed.
fn spawn(port: u16, fhir_aud: &str) -> Child {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("idp");
    install(&dir);
    Command::new("node")
        .arg(dir.join("idp.mjs"))
        .env("IDP_PORT", port.to_string())
        .env("FHIR_AUD", fhir_aud)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node (is Node.js installed?)")
}

/// `npm ci` in `idp/` once per test process, when `node_modules` is missing.
fn install(dir: &Path) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if dir.join("node_modules").join("oidc-provider").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .status()
            .expect("run npm (is Node.js installed?)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with `auth.mode = oidc` trusting a fresh test IdP (no clock leeway, so expiry
/// tests are quick).
pub fn secured_server(backend: Backend) -> (Server, Idp) {
    secured_server_with(backend, &[])
}

/// [`secured_server`] with more settings.
pub fn secured_server_with(backend: Backend, extra_env: &[(&str, &str)]) -> (Server, Idp) {
    let idp_port = free_port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let mut env = vec![
        ("HEALTHBOOK__AUTH__MODE", "oidc"),
        ("HEALTHBOOK__AUTH__ISSUER", issuer.as_str()),
        ("HEALTHBOOK__AUTH__LEEWAY_SECS", "0"),
        ("HEALTHBOOK__AUTH__INTROSPECTION_CLIENT_ID", "fhir-server"),
        (
            "HEALTHBOOK__AUTH__INTROSPECTION_CLIENT_SECRET",
            "fhir-server-secret",
        ),
    ];
    env.extend_from_slice(extra_env);
    let server = Server::start_with(backend, &env);
    let idp = Idp::start(idp_port, &server.base);
    (server, idp)
}
