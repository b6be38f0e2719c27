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
    /// Starts the IdP on a free port, issuing tokens for the FHIR base `fhir_aud`; another
    /// port is tried when the one picked was taken in the meantime.
    pub fn start(fhir_aud: &str) -> Idp {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut idp = Idp {
                issuer: format!("http://127.0.0.1:{port}"),
                child: spawn(port, fhir_aud, &backend_key_file(port)),
                client: crate::client(),
                port,
                fhir_aud: fhir_aud.to_owned(),
            };
            match idp.wait_ready() {
                Ok(()) => return idp,
                Err(e) => last = e,
            }
        }
        panic!("the test IdP did not start: {last}");
    }

    /// Tells the IdP the FHIR server's base URL, the audience of its tokens.
    pub fn set_audience(&mut self, fhir_aud: &str) {
        self.fhir_aud = fhir_aud.to_owned();
        let status = self
            .client
            .post(format!("{}/test/audience", self.issuer))
            .query(&[("aud", fhir_aud)])
            .send()
            .expect("set the IdP audience")
            .status();
        assert!(status.is_success(), "set the IdP audience: {status}");
    }

    /// Stops the IdP and starts it again on the same port with new signing keys (new
    /// kids): a key rotation.
    pub fn rotate_keys(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.fhir_aud, &backend_key_file(self.port));
        self.wait_ready().expect("the test IdP did not restart");
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

    /// Waits for discovery to answer; an early exit (a port taken) is an error at once.
    fn wait_ready(&mut self) -> Result<(), String> {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .client
            .get(&discovery)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("node exited with {status} (port {})", self.port));
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on port {} within 30 s", self.port));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
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
    /// An access token for the backend service client `backend-jwt`, obtained as SMART
    /// Backend Services prescribe (backend-services.html): a `client_credentials` grant
    /// authenticated by a client assertion the client signs with its own ES384 key
    /// (`private_key_jwt`, `idp/backend-client.mjs`).
    pub fn backend_services_token(&self, scope: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("idp");
        let output = Command::new("node")
            .arg(dir.join("backend-client.mjs"))
            .arg(format!("{}/token", self.issuer))
            .arg(scope)
            .arg(backend_key_file(self.port))
            .output()
            .expect("run node backend-client.mjs");
        let answer = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "backend services token: {answer}");
        let response: Value = serde_json::from_str(answer.trim()).expect("token JSON");
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {response}"))
            .to_owned()
    }
}

/// The redirect URI registered for the patient-facing app `phr-app`.
const APP_REDIRECT: &str = "http://127.0.0.1:9/callback";

impl Idp {
    /// A patient's standalone launch of the app `phr-app`: the authorization code flow
    /// with PKCE (S256), the person signing in as `patient_id` (their own Patient), the
    /// audience sent as SMART's `aud`. Returns the token response.
    pub fn authorization_code(&self, patient_id: &str, scope: &str, aud: &str) -> Value {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use sha2::{Digest, Sha256};

        let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let browser = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("browser client");
        let mut url = reqwest::Url::parse(&format!("{}/auth", self.issuer)).expect("auth URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "phr-app")
            .append_pair("redirect_uri", APP_REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "test-state")
            .append_pair("aud", aud)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("login_hint", patient_id);
        // Follow the redirects (login, consent) like a browser, up to the app's callback.
        let mut next = url.to_string();
        let callback = loop {
            let response = browser.get(&next).send().expect("authorization request");
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or_else(|| panic!("no redirect from {next}: {}", response.status()))
                .to_owned();
            let location = reqwest::Url::parse(&next)
                .and_then(|base| base.join(&location))
                .expect("redirect URL");
            if location.as_str().starts_with(APP_REDIRECT) {
                break location;
            }
            next = location.to_string();
        };
        let code = callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {callback}"));
        browser
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "phr-app"),
                ("code", code.as_str()),
                ("redirect_uri", APP_REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .expect("token request")
            .json()
            .expect("token JSON")
    }

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

/// Where the IdP on `port` writes the private key of the backend service client.
fn backend_key_file(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("healthbook-test-idp-{port}-backend.jwk.json"))
}

/// Runs `node idp/idp.mjs`, installing the pinned IdP with `npm ci` first if needed.
fn spawn(port: u16, fhir_aud: &str, backend_key: &Path) -> Child {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("idp");
    install(&dir);
    Command::new("node")
        .arg(dir.join("idp.mjs"))
        .env("IDP_PORT", port.to_string())
        .env("FHIR_AUD", fhir_aud)
        .env("BACKEND_KEY_FILE", backend_key)
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
        let _ = std::fs::remove_file(backend_key_file(self.port));
    }
}

/// A server with `auth.mode = oidc` trusting a fresh test IdP (no clock leeway, so expiry
/// tests are quick).
pub fn secured_server(backend: Backend) -> (Server, Idp) {
    secured_server_with(backend, &[])
}

/// [`secured_server`] with more settings.
pub fn secured_server_with(backend: Backend, extra_env: &[(&str, &str)]) -> (Server, Idp) {
    let mut idp = Idp::start("");
    let issuer = idp.issuer.clone();
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
    idp.set_audience(&server.base);
    (server, idp)
}
