//! Verification of bearer access tokens from configured OpenID providers.
//!
//! For each trusted issuer, OIDC discovery (the `openidconnect` crate) finds the JWKS and
//! the provider's endpoints. JWT access tokens (RFC 9068 `at+jwt`, and plain `JWT`) are
//! verified by signature (an algorithm allow-list), `iss` (exact), `aud` (our base URL),
//! `exp`/`nbf` with a small leeway. The key set is cached and fetched again on an unknown
//! `kid`, at most once per `jwks_min_refresh` so that a flood of made-up kids cannot hammer
//! the provider. Verified tokens are cached by their SHA-256 until they expire.

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl, ProviderMetadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use super::scopes::Scopes;
use super::{AuthError, Principal};

/// Endpoints beyond OIDC Discovery that SMART needs (RFC 8414 names).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmartEndpoints {
    pub introspection_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
}

impl AdditionalProviderMetadata for SmartEndpoints {}

/// Discovery document with the SMART extras.
pub type Metadata = ProviderMetadata<
    SmartEndpoints,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Settings of one trusted issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub issuer: String,
    pub audience: String,
    /// Client id and secret this server introspects opaque tokens with (RFC 7662).
    pub introspection: Option<(String, SecretString)>,
}

/// Verifier settings shared by all issuers.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub jwks_min_refresh: Duration,
    pub cache_capacity: usize,
}

struct IssuerState {
    config: IssuerConfig,
    metadata: RwLock<Option<Arc<Metadata>>>,
    keys: RwLock<JwkSet>,
    last_fetch: Mutex<Option<Instant>>,
    /// Held while the key set is fetched: the requests that arrive meanwhile wait for it
    /// rather than being refused by the refresh limit (a replica's first burst).
    fetching: tokio::sync::Mutex<()>,
}

/// Verifies access tokens of the configured issuers.
pub struct Verifier {
    issuers: Vec<IssuerState>,
    config: VerifierConfig,
    http: openidconnect::reqwest::Client,
    cache: Mutex<HashMap<[u8; 32], Arc<Principal>>>,
}

impl Verifier {
    /// A verifier; discovery happens on first use (or [`Verifier::discover_all`]).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(issuers: Vec<IssuerConfig>, config: VerifierConfig) -> Result<Self, AuthError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AuthError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            issuers: issuers
                .into_iter()
                .map(|config| IssuerState {
                    config,
                    metadata: RwLock::new(None),
                    keys: RwLock::new(JwkSet { keys: Vec::new() }),
                    last_fetch: Mutex::new(None),
                    fetching: tokio::sync::Mutex::new(()),
                })
                .collect(),
            config,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Runs discovery for every issuer now (at start-up); failures are logged, not fatal,
    /// and retried on first use.
    pub async fn discover_all(&self) {
        for issuer in &self.issuers {
            if let Err(e) = self.metadata(issuer).await {
                tracing::warn!(issuer = %issuer.config.issuer, error = %e, "OIDC discovery failed; will retry");
            }
        }
    }

    /// The discovery document of the first issuer (for smart-configuration).
    pub async fn primary_metadata(&self) -> Option<Arc<Metadata>> {
        let issuer = self.issuers.first()?;
        self.metadata(issuer).await.ok()
    }

    /// Verifies a bearer token and returns who it speaks for.
    ///
    /// # Errors
    /// [`AuthError::Invalid`] for any token that does not verify; [`AuthError::Unavailable`]
    /// when the provider cannot be reached to fetch its keys.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&digest).cloned()) {
            if hit.expires_at > now {
                return Ok(hit);
            }
        }
        if token.split('.').count() != 3 {
            let principal = Arc::new(self.introspect(token).await?);
            self.remember(digest, &principal, now);
            return Ok(principal);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token".into()))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(
                "token signed with an algorithm that is not allowed".into(),
            ));
        }
        if let Some(typ) = header.typ.as_deref() {
            if !matches!(
                typ.to_ascii_lowercase().as_str(),
                "at+jwt" | "application/at+jwt" | "jwt"
            ) {
                return Err(AuthError::Invalid(
                    "the token is not an access token".into(),
                ));
            }
        }
        let claimed_issuer = unverified_issuer(token)
            .ok_or_else(|| AuthError::Invalid("token without issuer".into()))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == claimed_issuer)
            .ok_or_else(|| {
                AuthError::Invalid("token from an issuer this server does not trust".into())
            })?;
        let key = self.key(issuer, header.kid.as_deref(), header.alg).await?;

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
            AuthError::Invalid(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired".into(),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    "the token is for another audience".into()
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    "the token is from another issuer".into()
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "the token signature is invalid".into()
                }
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    "the token is not valid yet".into()
                }
                _ => "the token is invalid".into(),
            })
        })?;
        let principal = Arc::new(principal_from_claims(&data.claims, &issuer.config.issuer)?);
        self.remember(digest, &principal, now);
        Ok(principal)
    }

    /// Caches a verified principal until its token expires (bounded: expired entries are
    /// dropped when the cache is full, and everything if that is not enough).
    fn remember(&self, digest: [u8; 32], principal: &Arc<Principal>, now: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= self.config.cache_capacity {
                cache.retain(|_, p| p.expires_at > now);
                if cache.len() >= self.config.cache_capacity {
                    cache.clear();
                }
            }
            cache.insert(digest, Arc::clone(principal));
        }
    }

    /// RFC 7662: asks the issuers that have an introspection client about an opaque token.
    /// Only `active: true` with our audience, an unexpired `exp` and (when given) the
    /// issuer's own `iss` is accepted.
    async fn introspect(&self, token: &str) -> Result<Principal, AuthError> {
        for issuer in self
            .issuers
            .iter()
            .filter(|i| i.config.introspection.is_some())
        {
            let Some((client_id, secret)) = &issuer.config.introspection else {
                continue;
            };
            let metadata = self.metadata(issuer).await?;
            let Some(endpoint) = &metadata.additional_metadata().introspection_endpoint else {
                continue;
            };
            let answer: Value = self
                .http
                .post(endpoint)
                .basic_auth(client_id, Some(secret.expose_secret()))
                .form(&[("token", token), ("token_type_hint", "access_token")])
                .send()
                .await
                .and_then(openidconnect::reqwest::Response::error_for_status)
                .map_err(|e| AuthError::Unavailable(format!("introspection: {e}")))?
                .json()
                .await
                .map_err(|e| AuthError::Unavailable(format!("introspection answer: {e}")))?;
            if answer.get("active") != Some(&Value::Bool(true)) {
                continue;
            }
            let audience_ok = match answer.get("aud") {
                Some(Value::String(a)) => *a == issuer.config.audience,
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|a| a.as_str() == Some(&issuer.config.audience)),
                _ => false,
            };
            let issuer_ok = answer
                .get("iss")
                .and_then(Value::as_str)
                .is_none_or(|iss| iss == issuer.config.issuer);
            if !audience_ok || !issuer_ok {
                return Err(AuthError::Invalid(
                    "the token is for another audience".into(),
                ));
            }
            let principal = principal_from_claims(&answer, &issuer.config.issuer)?;
            if principal.expires_at <= chrono::Utc::now().timestamp() {
                return Err(AuthError::Invalid("the token has expired".into()));
            }
            return Ok(principal);
        }
        Err(AuthError::Invalid("the access token is not active".into()))
    }

    async fn metadata(&self, issuer: &IssuerState) -> Result<Arc<Metadata>, AuthError> {
        if let Some(m) = issuer.metadata.read().await.as_ref() {
            return Ok(Arc::clone(m));
        }
        let mut slot = issuer.metadata.write().await;
        if let Some(m) = slot.as_ref() {
            return Ok(Arc::clone(m));
        }
        let url = IssuerUrl::new(issuer.config.issuer.clone())
            .map_err(|e| AuthError::Unavailable(format!("issuer URL: {e}")))?;
        let metadata = Metadata::discover_async(url, &self.http)
            .await
            .map_err(|e| AuthError::Unavailable(format!("OIDC discovery: {e}")))?;
        let metadata = Arc::new(metadata);
        *slot = Some(Arc::clone(&metadata));
        Ok(metadata)
    }

    /// The verification key for `kid`, fetching the key set when it is unknown (rate
    /// limited).
    async fn key(
        &self,
        issuer: &IssuerState,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        if let Some(key) = find_key(&*issuer.keys.read().await, kid, alg)? {
            return Ok(key);
        }
        let _fetching = issuer.fetching.lock().await;
        // A fetch that ended while this request waited may have brought the key.
        if let Some(key) = find_key(&*issuer.keys.read().await, kid, alg)? {
            return Ok(key);
        }
        let may_fetch = {
            let mut last = issuer
                .last_fetch
                .lock()
                .map_err(|_| AuthError::Unavailable("lock".into()))?;
            let allowed = last.is_none_or(|t| t.elapsed() >= self.config.jwks_min_refresh);
            if allowed {
                *last = Some(Instant::now());
            }
            allowed
        };
        if !may_fetch {
            return Err(AuthError::Invalid(
                "the token's signing key is unknown".into(),
            ));
        }
        let metadata = self.metadata(issuer).await?;
        let keys: JwkSet = self
            .http
            .get(metadata.jwks_uri().url().as_str())
            .header("Accept", "application/json")
            .send()
            .await
            .and_then(openidconnect::reqwest::Response::error_for_status)
            .map_err(|e| AuthError::Unavailable(format!("JWKS fetch: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("JWKS parse: {e}")))?;
        let found = find_key(&keys, kid, alg)?;
        *issuer.keys.write().await = keys;
        found.ok_or_else(|| AuthError::Invalid("the token's signing key is unknown".into()))
    }
}

fn find_key(
    keys: &JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Option<DecodingKey>, AuthError> {
    let family = |k: &jsonwebtoken::jwk::Jwk| {
        use jsonwebtoken::jwk::AlgorithmParameters as P;
        matches!(
            (&k.algorithm, alg),
            (
                P::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (P::EllipticCurve(_), Algorithm::ES256 | Algorithm::ES384)
                | (P::OctetKeyPair(_), Algorithm::EdDSA)
        )
    };
    let candidate = match kid {
        Some(kid) => keys
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None if keys.keys.iter().filter(|k| family(k)).count() == 1 => {
            keys.keys.iter().find(|k| family(k))
        }
        None => None,
    };
    match candidate {
        Some(jwk) if family(jwk) => DecodingKey::from_jwk(jwk)
            .map(Some)
            .map_err(|_| AuthError::Invalid("the token's signing key is unusable".into())),
        Some(_) => Err(AuthError::Invalid(
            "the token's algorithm does not match its key".into(),
        )),
        None => Ok(None),
    }
}

/// The `iss` of a JWT before verification, to choose which issuer's keys verify it.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Reads the SMART claims: `scope` (space-separated string, or `scp` array), `client_id`,
/// `patient` (launch context), `fhirUser`.
fn principal_from_claims(claims: &Value, issuer: &str) -> Result<Principal, AuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let scope = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.clone(),
        (_, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let expires_at = claims
        .get("exp")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .ok_or_else(|| AuthError::Invalid("token without expiry".into()))?;
    Ok(Principal {
        issuer: issuer.to_owned(),
        subject: text("sub").unwrap_or_default(),
        client_id: text("client_id").or_else(|| text("azp")),
        scopes: Scopes::parse(&scope),
        patient: text("patient"),
        fhir_user: text("fhirUser"),
        expires_at,
    })
}
