//! Settings, layered: `config/default.toml` (embedded in the binary) < the overlay
//! `config/$HEALTHBOOK_ENV.toml` < environment variables `HEALTHBOOK__SECTION__KEY`.
//! Unknown keys and invalid values stop start-up with a message naming the key.

use std::net::SocketAddr;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

use crate::service::validate::{Action, Policy, VnCore};

const DEFAULTS: &str = include_str!("../../config/default.toml");

/// All settings of a Healthbook process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub bundle: BundleSettings,
    pub validation: ValidationSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on (host:port).
    pub bind: String,
    /// Public FHIR base URL, including `/fhir`; empty means `http://<bind>/fhir`.
    pub base_url: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Origins browser apps may call the API from (CORS); `["*"]` for any, `[]` for none.
    pub cors_allowed_origins: Vec<String>,
    /// TLS termination (rustls); empty paths mean plain HTTP.
    pub tls: TlsSettings,
    /// The zone (`+07:00`) of dates and times written without one, as search reads them.
    pub timezone: String,
}

impl ServerSettings {
    /// [`Self::timezone`] as an offset (checked by `validate`).
    pub fn offset(&self) -> Option<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{}", self.timezone))
            .ok()
            .map(|t| *t.offset())
    }
}

/// `[bundle]`: limits of batch and transaction Bundles.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleSettings {
    /// Most entries a Bundle may hold.
    pub max_entries: usize,
    /// Largest Bundle body accepted, in bytes.
    pub body_limit_bytes: usize,
}

/// `[validation]` (docs/VALIDATION.md).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// `vi` or `en`: messages when `Accept-Language` names neither.
    pub language: String,
    /// Whether the VN Core profiles apply to every Patient and Immunization.
    pub vn_core: VnCore,
    /// Per rule code or profile id: `error`, `warning` or `off`.
    #[serde(default)]
    pub rules: std::collections::BTreeMap<String, Action>,
}

impl ValidationSettings {
    /// The validation policy these settings describe.
    pub fn policy(&self) -> Policy {
        Policy {
            vn_core: self.vn_core,
            actions: self
                .rules
                .iter()
                .map(|(k, v)| (crate::service::validate::rule_key(k), *v))
                .collect(),
        }
    }
}

/// `[server.tls]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the certificate chain, leaf first.
    pub cert: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl TlsSettings {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty()
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// Most connections open at once.
    pub pool_max_size: u32,
    /// Milliseconds a request waits for a connection before a 503.
    pub acquire_timeout_ms: u64,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `none` (no tokens; loopback only) or `oidc` (verify bearer tokens).
    pub mode: AuthMode,
    /// The single trusted issuer (OIDC issuer URL); more in `issuers`.
    pub issuer: String,
    /// Expected `aud` of access tokens for `issuer`; empty means the server's base URL.
    pub audience: String,
    /// Client id this server introspects opaque tokens of `issuer` with (RFC 7662); empty
    /// means opaque tokens are refused.
    pub introspection_client_id: String,
    /// Its secret: set it through the environment
    /// (`HEALTHBOOK__AUTH__INTROSPECTION_CLIENT_SECRET`), never in a file. Never printed.
    pub introspection_client_secret: SecretString,
    /// More trusted issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// Accepted JWS algorithms.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
    /// Shortest interval between two key-set fetches of one issuer, in seconds.
    pub jwks_min_refresh_secs: u64,
}

/// One entry of `auth.issuers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    pub issuer: String,
    /// Expected `aud`; the server's base URL when absent.
    pub audience: Option<String>,
    /// Client id for RFC 7662 introspection of opaque tokens.
    pub introspection_client_id: Option<String>,
    /// Its secret (from the environment). Never printed.
    pub introspection_client_secret: Option<SecretString>,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Oidc,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `healthbook=debug`.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that stops start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads settings for `HEALTHBOOK_ENV` from `config_dir` and the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key for unknown keys or invalid values.
    pub fn load(config_dir: &Path) -> Result<Self, ConfigError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Ok(env) = std::env::var("HEALTHBOOK_ENV") {
            let overlay = config_dir.join(format!("{env}.toml"));
            if !overlay.exists() {
                return Err(ConfigError(format!(
                    "HEALTHBOOK_ENV={env} but {} does not exist",
                    overlay.display()
                )));
            }
            builder = builder.add_source(File::from(overlay));
        }
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("HEALTHBOOK")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The embedded defaults alone.
    pub fn defaults() -> Self {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .expect("config/default.toml is valid")
    }

    /// Checks values the types cannot.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return fail(
                "server.bind",
                "must be host:port with an IP address, e.g. 127.0.0.1:8080",
            );
        }
        if !self.server.base_url.is_empty() {
            match url::Url::parse(&self.server.base_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
                _ => return fail("server.base_url", "must be an absolute http(s) URL without a query, e.g. https://fhir.example.org/fhir"),
            }
        }
        for origin in &self.server.cors_allowed_origins {
            let valid = origin == "*"
                || url::Url::parse(origin).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.path() == "/"
                        && !origin.ends_with('/')
                        && u.query().is_none()
                });
            if !valid {
                return fail(
                    "server.cors_allowed_origins",
                    "each entry must be \"*\" or an origin such as https://app.example.org",
                );
            }
        }
        let tls = &self.server.tls;
        if tls.cert.is_empty() != tls.key.is_empty() {
            return fail("server.tls", "set both cert and key, or neither");
        }
        for (key, path) in [("server.tls.cert", &tls.cert), ("server.tls.key", &tls.key)] {
            if !path.is_empty() && !Path::new(path).is_file() {
                return fail(key, "names no readable file");
            }
        }
        if self.server.offset().is_none() {
            return fail("server.timezone", "must be an offset such as +07:00 or Z");
        }
        if self.server.body_limit_bytes == 0 {
            return fail("server.body_limit_bytes", "must be more than 0");
        }
        if !matches!(self.validation.language.as_str(), "vi" | "en") {
            return fail("validation.language", "must be \"vi\" or \"en\"");
        }
        if self.bundle.max_entries == 0 {
            return fail("bundle.max_entries", "must be more than 0");
        }
        if self.bundle.body_limit_bytes == 0 {
            return fail("bundle.body_limit_bytes", "must be more than 0");
        }
        if !(self.database.url.starts_with("sqlite://")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return fail("database.url", "must start with sqlite:// or postgres://");
        }
        if !(1..=1000).contains(&self.database.pool_max_size) {
            return fail("database.pool_max_size", "must be between 1 and 1000");
        }
        if self.database.acquire_timeout_ms == 0 {
            return fail("database.acquire_timeout_ms", "must be more than 0");
        }
        self.validate_auth()
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        let auth = &self.auth;
        match auth.mode {
            AuthMode::None => {
                let loopback = self
                    .server
                    .bind
                    .parse::<SocketAddr>()
                    .is_ok_and(|a| a.ip().is_loopback());
                if !loopback {
                    return fail(
                        "auth.mode",
                        "\"none\" is only allowed when server.bind is a loopback address; use \"oidc\"",
                    );
                }
            }
            AuthMode::Oidc => {
                if auth.issuer.is_empty() && auth.issuers.is_empty() {
                    return fail(
                        "auth.issuer",
                        "required when auth.mode = \"oidc\" (or list auth.issuers)",
                    );
                }
                let issuers = auth
                    .issuers
                    .iter()
                    .map(|i| i.issuer.as_str())
                    .chain(Some(auth.issuer.as_str()).filter(|i| !i.is_empty()));
                for issuer in issuers {
                    if !url::Url::parse(issuer)
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                    {
                        return fail("auth.issuer", "must be an absolute http(s) URL");
                    }
                }
            }
        }
        use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
        if auth.algorithms.is_empty()
            || auth
                .algorithms
                .iter()
                .any(|a| matches!(a, HS256 | HS384 | HS512))
        {
            return fail(
                "auth.algorithms",
                "must list asymmetric algorithms (RS256, ES256, PS256...), no HS*",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let s = Settings::defaults();
        s.validate().unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.database.url, "sqlite://./data/healthbook.db");
    }

    #[test]
    fn overlays_parse() {
        for name in ["local", "production"] {
            let mut s: Settings = Config::builder()
                .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
                .add_source(File::with_name(&format!("../config/{name}.toml")))
                .build()
                .and_then(Config::try_deserialize)
                .unwrap();
            if s.auth.mode == AuthMode::Oidc {
                // Production names its issuer through the environment.
                assert!(s
                    .validate()
                    .unwrap_err()
                    .to_string()
                    .contains("auth.issuer"));
                s.auth.issuer = "https://id.example.org".into();
            }
            s.validate().unwrap();
        }
    }

    #[test]
    fn secrets_are_never_printed() {
        let s: Settings = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(
                "[auth]\nintrospection_client_secret = \"s3cr3t-value\"\n\n[[auth.issuers]]\nissuer = \"https://x\"\nintrospection_client_secret = \"other-s3cr3t\"",
                FileFormat::Toml,
            ))
            .build()
            .and_then(Config::try_deserialize)
            .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        use secrecy::ExposeSecret;
        assert_eq!(
            s.auth.introspection_client_secret.expose_secret(),
            "s3cr3t-value"
        );
    }

    #[test]
    fn auth_none_only_on_loopback() {
        let mut s = Settings::defaults();
        assert_eq!(s.auth.mode, AuthMode::None);
        s.server.bind = "0.0.0.0:8080".into();
        assert!(s.validate().unwrap_err().to_string().contains("auth.mode"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str("[server]\nbindd = \"x\"", FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize::<Settings>)
            .unwrap_err();
        assert!(e.to_string().contains("bindd"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let mut s = Settings::defaults();
        s.server.bind = "localhost".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.bind"));
        let mut s = Settings::defaults();
        s.database.url = "mysql://x".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.url"));
    }
}
