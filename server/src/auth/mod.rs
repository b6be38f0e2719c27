//! Authentication: turns a bearer token into a [`Principal`] (issuer, subject, client,
//! SMART scopes, patient context, fhirUser). What a principal may do is decided in one
//! place, `service::access`.
//!
//! Modes: `none` (no tokens; only allowed on a loopback address, for the zero-setup start)
//! and `oidc` (an OAuth 2.0 resource server trusting configured OpenID providers).

mod oidc;
pub mod scopes;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{AuthMode, AuthSettings};
pub use oidc::Metadata;
use oidc::{IssuerConfig, Verifier, VerifierConfig};
pub use scopes::{Permission, ScopeContext, Scopes};

/// Who a request speaks for, from a verified access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    pub client_id: Option<String>,
    pub scopes: Scopes,
    /// Launch context: the patient whose compartment `patient/` scopes open.
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

impl Principal {
    /// The client the token was issued to (its `client_id`, else its subject): the key of
    /// per-client limits (QR lookups, admission quotas).
    pub fn client(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.subject)
    }
}

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (401 without an error code, RFC 6750 §3).
    #[error("authentication is required")]
    Missing,
    /// The token does not verify (401 `invalid_token`).
    #[error("{0}")]
    Invalid(String),
    /// The provider could not be asked (503: do not log users out on a provider hiccup).
    #[error("{0}")]
    Unavailable(String),
}

/// Authenticates requests according to `auth.mode`.
pub struct Authenticator {
    verifier: Option<Verifier>,
}

impl Authenticator {
    /// Builds the authenticator; `audience` defaults to the server's base URL.
    ///
    /// # Errors
    /// When the HTTP client for the providers cannot be made.
    pub fn new(settings: &AuthSettings, base_url: &str) -> Result<Self, AuthError> {
        let verifier = match settings.mode {
            AuthMode::None => None,
            AuthMode::Oidc => {
                let mut issuers: Vec<IssuerConfig> = settings
                    .issuers
                    .iter()
                    .map(|i| IssuerConfig {
                        issuer: i.issuer.clone(),
                        audience: i.audience.clone().unwrap_or_else(|| base_url.to_owned()),
                        introspection: i.introspection_client_id.clone().map(|id| {
                            (
                                id,
                                i.introspection_client_secret
                                    .clone()
                                    .unwrap_or_else(|| secrecy::SecretString::from("")),
                            )
                        }),
                    })
                    .collect();
                if !settings.issuer.is_empty() {
                    issuers.push(IssuerConfig {
                        introspection: (!settings.introspection_client_id.is_empty()).then(|| {
                            (
                                settings.introspection_client_id.clone(),
                                settings.introspection_client_secret.clone(),
                            )
                        }),
                        issuer: settings.issuer.clone(),
                        audience: if settings.audience.is_empty() {
                            base_url.to_owned()
                        } else {
                            settings.audience.clone()
                        },
                    });
                }
                Some(Verifier::new(
                    issuers,
                    VerifierConfig {
                        algorithms: settings.algorithms.clone(),
                        leeway: Duration::from_secs(settings.leeway_secs),
                        jwks_min_refresh: Duration::from_secs(settings.jwks_min_refresh_secs),
                        cache_capacity: 100_000,
                    },
                )?)
            }
        };
        Ok(Self { verifier })
    }

    /// Whether requests need a token.
    pub fn enabled(&self) -> bool {
        self.verifier.is_some()
    }

    /// Discovers the providers now, so the first request does not wait.
    pub async fn warm_up(&self) {
        if let Some(v) = &self.verifier {
            v.discover_all().await;
        }
    }

    /// The principal of a request's `Authorization` header; `None` when auth is off.
    ///
    /// # Errors
    /// [`AuthError`] for a missing or bad token.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::Missing);
        }
        verifier.verify(token.trim()).await.map(Some)
    }

    /// The SMART configuration document (SMART App Launch 2.x, conformance.html), from the
    /// primary issuer's discovery; `None` when auth is off.
    pub async fn smart_configuration(&self) -> Option<Result<Value, AuthError>> {
        let verifier = self.verifier.as_ref()?;
        let Some(m) = verifier.primary_metadata().await else {
            return Some(Err(AuthError::Unavailable(
                "the OpenID provider cannot be reached".into(),
            )));
        };
        let extra = m.additional_metadata();
        let methods: Vec<String> = m
            .token_endpoint_auth_methods_supported()
            .map(|v| {
                v.iter()
                    .map(|x| {
                        serde_json::to_value(x)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut document = json!({
            "issuer": m.issuer().as_str(),
            "jwks_uri": m.jwks_uri().url().as_str(),
            "authorization_endpoint": m.authorization_endpoint().url().as_str(),
            "token_endpoint": m.token_endpoint().map(|t| t.url().as_str()),
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": extra.token_endpoint_auth_signing_alg_values_supported.clone().unwrap_or_else(|| vec!["RS384".into(), "ES384".into()]),
            "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs", "user/*.rs", "system/*.rs", "patient/*.cruds", "user/*.cruds", "system/*.cruds"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "sso-openid-connect", "context-standalone-patient",
                "permission-offline", "permission-patient", "permission-user", "permission-v1", "permission-v2"
            ],
        });
        if let Some(url) = &extra.introspection_endpoint {
            document["introspection_endpoint"] = json!(url);
        }
        if let Some(url) = &extra.revocation_endpoint {
            document["revocation_endpoint"] = json!(url);
        }
        Some(Ok(document))
    }
}
