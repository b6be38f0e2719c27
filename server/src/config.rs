//! Settings, layered: `config/default.toml` (embedded in the binary) < the overlay
//! `config/$HEALTHBOOK_ENV.toml` < environment variables `HEALTHBOOK__SECTION__KEY`.
//! Unknown keys and invalid values stop start-up with a message naming the key, the bad
//! value and what would be valid. List keys (`server.cors_allowed_origins`,
//! `auth.algorithms`) take comma-separated values from the environment.

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
    pub search: SearchSettings,
    pub validation: ValidationSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub qr: QrSettings,
    pub access: AccessSettings,
    pub admission: AdmissionSettings,
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

/// `[search]`: what one search may ask for (docs/SEARCH.md, "Limits").
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// Most parameters in one search or conditional criteria.
    pub max_parameters: usize,
    /// Most values ORed in one parameter (`a,b,c`).
    pub max_values: usize,
    /// Most `_include` and `_revinclude` together.
    pub max_includes: usize,
}

impl SearchSettings {
    /// The limits as the service applies them.
    pub fn limits(&self) -> crate::service::search::SearchLimits {
        crate::service::search::SearchLimits {
            max_parameters: self.max_parameters,
            max_values: self.max_values,
            max_includes: self.max_includes,
        }
    }
}

/// `[validation]` (docs/VALIDATION.md).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// `vi` or `en`: messages when `Accept-Language` names neither.
    pub language: String,
    /// Whether the VN Core profiles apply to every Patient and Immunization.
    #[serde(deserialize_with = "choice")]
    pub vn_core: VnCore,
    /// Per rule code or profile id: `error`, `warning` or `off`.
    #[serde(default, deserialize_with = "choices")]
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
    /// Milliseconds a PostgreSQL statement may run (0: no limit).
    pub statement_timeout_ms: u64,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `none` (no tokens; loopback only) or `oidc` (verify bearer tokens).
    #[serde(deserialize_with = "choice")]
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
    #[serde(deserialize_with = "choice_list")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Oidc,
}

/// `[qr]`: the personal health QR (docs/QR.md).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QrSettings {
    /// Base64 of at least 32 random bytes: the secret the tokens' lookup hashes and sealed
    /// copies are keyed with. Empty: the server makes one and keeps it in the database.
    pub secret: String,
    /// Unknown or misread codes a client may look up per minute before its lookups are
    /// refused with 429 for the rest of the minute (0: no limit).
    pub max_failed_lookups_per_minute: u32,
}

/// `[access]`: how far practitioners' `user/` scopes reach (docs/QR.md).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessSettings {
    /// `qr`: a practitioner sees and writes a person's compartment only under a grant (a
    /// scan of the person's QR, or an emergency access); `open`: every record.
    #[serde(deserialize_with = "choice")]
    pub practitioner: PractitionerAccess,
    /// Hours a scan's grant lasts.
    pub grant_hours: u32,
    /// Minutes an emergency access (break the glass) lasts.
    pub emergency_minutes: u32,
}

/// `[admission]`: how many requests are in flight at once, who is shed first when the
/// server is saturated, and each client's quota (docs/OPERATIONS.md).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdmissionSettings {
    /// FHIR requests in flight at most (0: 64 per CPU core).
    pub max_in_flight: usize,
    /// The share of `max_in_flight` (percent) citizen apps (`patient/` tokens, no token)
    /// may hold.
    pub citizen_percent: u8,
    /// The share clinical traffic (`user/` tokens) may hold; the ministry (`system/`) may
    /// hold all of it.
    pub clinical_percent: u8,
    /// How long a request may wait for room before it is answered 503 (ms).
    pub queue_wait_ms: u64,
    /// Requests per second one client may make (its token's `client_id`, else its
    /// address); past it 429 (0: no quota).
    pub client_rate: u32,
    /// Requests a client may make at once above its rate (0: as many as `client_rate`).
    pub client_burst: u32,
}

/// `access.practitioner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PractitionerAccess {
    Qr,
    Open,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(deserialize_with = "choice")]
    pub format: LogFormat,
    /// A tracing filter such as `info` or `healthbook=debug`.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting with a fixed set of values: a value outside them is refused with the list of
/// valid ones (`'everything' is not valid; use one of: all, declared`).
trait Choice: Sized + Copy + 'static {
    const VALUES: &'static [(&'static str, Self)];

    fn parse(text: &str) -> Result<Self, String> {
        Self::VALUES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::VALUES.iter().map(|(name, _)| *name).collect();
                format!("'{text}' is not valid; use one of: {}", names.join(", "))
            })
    }
}

impl Choice for VnCore {
    const VALUES: &'static [(&'static str, Self)] =
        &[("all", VnCore::All), ("declared", VnCore::Declared)];
}

impl Choice for Action {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("error", Action::Error),
        ("warning", Action::Warning),
        ("off", Action::Off),
    ];
}

impl Choice for AuthMode {
    const VALUES: &'static [(&'static str, Self)] =
        &[("none", AuthMode::None), ("oidc", AuthMode::Oidc)];
}

impl Choice for PractitionerAccess {
    const VALUES: &'static [(&'static str, Self)] = &[
        ("qr", PractitionerAccess::Qr),
        ("open", PractitionerAccess::Open),
    ];
}

impl Choice for LogFormat {
    const VALUES: &'static [(&'static str, Self)] =
        &[("text", LogFormat::Text), ("json", LogFormat::Json)];
}

impl Choice for jsonwebtoken::Algorithm {
    const VALUES: &'static [(&'static str, Self)] = {
        use jsonwebtoken::Algorithm::*;
        &[
            ("RS256", RS256),
            ("RS384", RS384),
            ("RS512", RS512),
            ("PS256", PS256),
            ("PS384", PS384),
            ("PS512", PS512),
            ("ES256", ES256),
            ("ES384", ES384),
            ("EdDSA", EdDSA),
        ]
    };
}

fn choice<'de, D: serde::Deserializer<'de>, T: Choice>(d: D) -> Result<T, D::Error> {
    T::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn choices<'de, D: serde::Deserializer<'de>, T: Choice>(
    d: D,
) -> Result<std::collections::BTreeMap<String, T>, D::Error> {
    std::collections::BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(key, text)| match T::parse(&text) {
            Ok(value) => Ok((key, value)),
            Err(e) => Err(serde::de::Error::custom(format!("{key}: {e}"))),
        })
        .collect()
}

fn choice_list<'de, D: serde::Deserializer<'de>, T: Choice>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| T::parse(text.trim()).map_err(serde::de::Error::custom))
        .collect()
}

/// A setting that stops start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// The config crate ends its messages with "for key `a.b`"; ours start with the key, as
/// every other configuration message does.
fn key_first(message: &str) -> String {
    match message.rsplit_once(" for key `") {
        Some((what, key)) if key.ends_with('`') => {
            format!("{}: {what}", key.trim_end_matches('`'))
        }
        _ => message.to_owned(),
    }
}

/// `HEALTHBOOK__SECTION__KEY` variables; the list keys take comma-separated values.
fn environment() -> Environment {
    Environment::with_prefix("HEALTHBOOK")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("server.cors_allowed_origins")
        .with_list_parse_key("auth.algorithms")
}

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
        Self::from_sources(builder.add_source(environment()))
    }

    /// Deserialises and validates what the layered sources hold.
    fn from_sources(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Self, ConfigError> {
        let settings: Settings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError(key_first(&e.to_string())))?;
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
        for (key, value) in [
            ("search.max_parameters", self.search.max_parameters),
            ("search.max_values", self.search.max_values),
            ("search.max_includes", self.search.max_includes),
            ("access.grant_hours", self.access.grant_hours as usize),
            (
                "access.emergency_minutes",
                self.access.emergency_minutes as usize,
            ),
        ] {
            if value == 0 {
                return fail(key, "must be more than 0");
            }
        }
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
        for name in self.validation.rules.keys() {
            if !crate::service::validate::is_rule_or_profile(name) {
                return Err(ConfigError(format!(
                    "validation.rules.{name}: no rule or profile has this name; use a rule code \
                     (docs/VALIDATION.md lists them, e.g. VN-CCCD-SEX, HB-CODE, dom-6) or a \
                     profile (base, vn-core-patient, vn-immunization)"
                )));
            }
        }
        if let Err(why) = crate::telemetry::check_filter(&self.log.level) {
            return Err(ConfigError(format!("log.level: {why}")));
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
        // Shared-secret algorithms (HS*) are not among the choices: a resource server must
        // not hold the key that signs tokens.
        if auth.algorithms.is_empty() {
            return fail(
                "auth.algorithms",
                "must list asymmetric algorithms (RS256, ES256, PS256...)",
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

    /// Settings from the defaults and these environment variables (not the process's).
    fn with_env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_sources(
            Config::builder()
                .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
                .add_source(environment().source(Some(map))),
        )
    }

    #[test]
    fn fixed_choices_name_the_key_the_value_and_the_valid_values() {
        let e = with_env(&[("HEALTHBOOK__VALIDATION__VN_CORE", "everything")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration: validation.vn_core: 'everything' is not valid; use one of: all, declared"
        );
        let e = with_env(&[("HEALTHBOOK__VALIDATION__RULES__VN_PHONE_FORMAT", "loud")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vn_phone_format") && e.contains("error, warning, off"),
            "{e}"
        );
        let e = with_env(&[("HEALTHBOOK__AUTH__ALGORITHMS", "ES256,HS256")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("configuration: auth.algorithms: 'HS256'"),
            "{e}"
        );
        let e = with_env(&[("HEALTHBOOK__LOG__FORMAT", "xml")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.format") && e.contains("text, json"), "{e}");
    }

    #[test]
    fn misspelled_rules_and_log_levels_are_refused() {
        let e = with_env(&[("HEALTHBOOK__VALIDATION__RULES__VN_CCCD_SEXX", "error")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("validation.rules.vn_cccd_sexx"), "{e}");
        assert!(with_env(&[("HEALTHBOOK__VALIDATION__RULES__VN_CCCD_SEX", "warning")]).is_ok());
        let e = with_env(&[("HEALTHBOOK__LOG__LEVEL", "loud")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.level: 'loud' is not a level"), "{e}");
    }

    #[test]
    fn list_keys_come_from_the_environment() {
        let s = with_env(&[
            (
                "HEALTHBOOK__SERVER__CORS_ALLOWED_ORIGINS",
                "https://a.example.org,https://b.example.org",
            ),
            ("HEALTHBOOK__AUTH__ALGORITHMS", "ES256"),
        ])
        .unwrap();
        assert_eq!(
            s.server.cors_allowed_origins,
            ["https://a.example.org", "https://b.example.org"]
        );
        assert_eq!(s.auth.algorithms, [jsonwebtoken::Algorithm::ES256]);
        // A string key keeps its commas.
        let s = with_env(&[("HEALTHBOOK__LOG__LEVEL", "healthbook=debug,actix_web=warn")]).unwrap();
        assert_eq!(s.log.level, "healthbook=debug,actix_web=warn");
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
