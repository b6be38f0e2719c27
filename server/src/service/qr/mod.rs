//! The personal health QR (issue 15): one token per Patient, issued, rotated, revoked and
//! shown again by its owner, and resolved by a hospital's scan to the person.
//!
//! - The token (`token.rs`) is random and checked by a check character; its payload is
//!   what the code holds.
//! - The store keeps the token's keyed hash (the only thing a scan is looked up by, through
//!   a unique index) and the token sealed for its owner (`keys.rs`); the Patient resource,
//!   its history and its search index never hold it. `Patient?identifier=<QR_SYSTEM>|<token>`
//!   is answered from the same lookup.
//! - Who may do what: issue, rotate, revoke and show need the person's own `patient/` token
//!   (a Patient scope on their compartment) or a `system/` scope on Patient; a scan needs a
//!   read scope on Patient and answers the Patient under the read rule.

pub mod grant;
pub mod image;
mod keys;
mod limit;
pub mod token;

use std::sync::{Arc, Mutex};

use base64::Engine;

use super::{ensure_id, Access, ErrorCode, Service, ServiceError, StoredResource};
use crate::auth::{Permission, ScopeContext};
pub use keys::QrKeys;
use token::{Misread, Token};

/// The identifier system of the personal QR token (`Patient?identifier=<this>|<token>`).
pub const QR_SYSTEM: &str = "https://healthbook.example.org/fhir/sid/personal-qr";

/// The name of the generated secret in the database.
const SECRET_NAME: &str = "qr";

/// The personal QR state of a server: its secret (the configured one, or the one kept in
/// the database, made on first use, loaded once) and the failed lookups per client.
#[derive(Debug)]
pub struct PersonalQr {
    configured: Option<Vec<u8>>,
    keys: Mutex<Option<Arc<QrKeys>>>,
    limit: limit::LookupLimit,
    /// The personal-QR rule for practitioners.
    grants: grant::GrantRule,
}

impl Default for PersonalQr {
    fn default() -> Self {
        Self {
            configured: None,
            keys: Mutex::default(),
            limit: limit::LookupLimit::new(DEFAULT_MAX_FAILED_LOOKUPS),
            grants: grant::GrantRule::default(),
        }
    }
}

/// `qr.max_failed_lookups_per_minute` of `config/default.toml`.
const DEFAULT_MAX_FAILED_LOOKUPS: u32 = 30;

impl PersonalQr {
    /// `secret`: base64 of at least 32 bytes, or empty for one kept in the database;
    /// `max_failed`: failed lookups a client may make per minute (0: no limit).
    ///
    /// # Errors
    /// A message when the configured secret is not base64 of at least 32 bytes.
    pub fn new(secret: &str, max_failed: u32) -> Result<Self, String> {
        let secret = secret.trim();
        let configured = if secret.is_empty() {
            None
        } else {
            let secret = base64::engine::general_purpose::STANDARD
                .decode(secret)
                .map_err(|_| "qr.secret is not base64".to_owned())?;
            if secret.len() < 32 {
                return Err("qr.secret must hold at least 32 bytes".to_owned());
            }
            Some(secret)
        };
        Ok(Self {
            configured,
            keys: Mutex::default(),
            limit: limit::LookupLimit::new(max_failed),
            grants: grant::GrantRule::default(),
        })
    }

    /// The same with the personal-QR rule for practitioners (`[access]`).
    #[must_use]
    pub fn with_grants(mut self, rule: grant::GrantRule) -> Self {
        self.grants = rule;
        self
    }
}

/// Whose failed lookups are counted together: the token's client (or subject); every
/// request without a token (`auth.mode = none`, loopback only) is one client.
fn client_of(access: &Access) -> String {
    match access {
        Access::Open => "anonymous".to_owned(),
        Access::Token(p, _) => p.client().to_owned(),
    }
}

/// A Patient's current QR, as its owner sees it.
#[derive(Debug, Clone)]
pub struct IssuedQr {
    pub token: Token,
    /// Milliseconds since the epoch.
    pub issued_at: i64,
    pub expires_at: Option<i64>,
}

impl Service {
    /// The QR keys, loading (or making) the stored secret on first use.
    async fn qr_keys(&self) -> Result<Arc<QrKeys>, ServiceError> {
        let loaded = self
            .qr
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(keys) = loaded {
            return Ok(keys);
        }
        let secret = match &self.qr.configured {
            Some(secret) => secret.clone(),
            None => {
                let stored = self
                    .write_tx(|tx| {
                        Ok(tx.secret(SECRET_NAME, || {
                            base64::engine::general_purpose::STANDARD.encode(keys::new_secret())
                        })?)
                    })
                    .await?;
                base64::engine::general_purpose::STANDARD
                    .decode(stored)
                    .map_err(|_| ServiceError::Fault("the stored QR secret is not base64".into()))?
            }
        };
        let keys = Arc::new(QrKeys::from_secret(&secret));
        *self
            .qr
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&keys));
        Ok(keys)
    }

    /// Issues a new QR for the Patient, replacing (rotating) the one it had: the old token
    /// stops resolving when this commits. With `revoke_grants`, the access grants earlier
    /// scans made end too (grant.rs).
    ///
    /// # Errors
    /// 403 unless the request is the person's own or a backend service's, 404 for a Patient
    /// the server does not hold.
    pub async fn qr_issue(
        &self,
        access: &Access,
        patient_id: String,
        expires_at: Option<i64>,
        revoke_grants: bool,
    ) -> Result<IssuedQr, ServiceError> {
        owner_only(access, &patient_id, Permission::Update)?;
        let keys = self.qr_keys().await?;
        let token = Token::generate();
        let row = crate::store::QrRow {
            patient_id: patient_id.clone(),
            lookup: keys.lookup(&token),
            sealed: keys.seal(&token, &patient_id),
            issued_at: chrono::Utc::now().timestamp_millis(),
            expires_at,
        };
        let issued_at = row.issued_at;
        let ctx = Arc::clone(&self.index);
        self.write_tx(move |tx| {
            if tx
                .current("Patient", &row.patient_id)?
                .is_none_or(|r| r.deleted)
            {
                return Err(ServiceError::not_found("There is no such Patient."));
            }
            tx.qr_put(&row)?;
            if revoke_grants {
                grant::end_scan_grants(tx, &ctx, &row.patient_id)?;
            }
            Ok(())
        })
        .await?;
        Ok(IssuedQr {
            token,
            issued_at,
            expires_at,
        })
    }

    /// Revokes the Patient's QR (and with `revoke_grants` the grants scans made); whether
    /// there was one, and how many grants ended.
    ///
    /// # Errors
    /// 403 unless the request is the person's own or a backend service's.
    pub async fn qr_revoke(
        &self,
        access: &Access,
        patient_id: String,
        revoke_grants: bool,
    ) -> Result<(bool, usize), ServiceError> {
        owner_only(access, &patient_id, Permission::Update)?;
        let ctx = Arc::clone(&self.index);
        self.write_tx(move |tx| {
            let revoked = tx.qr_delete(&patient_id)?;
            let ended = if revoke_grants {
                grant::end_scan_grants(tx, &ctx, &patient_id)?
            } else {
                0
            };
            Ok((revoked, ended))
        })
        .await
    }

    /// The Patient's current QR, for its owner.
    ///
    /// # Errors
    /// 403 unless the request is the person's own or a backend service's, 404 when the
    /// Patient has no valid QR.
    pub async fn qr_current(
        &self,
        access: &Access,
        patient_id: String,
    ) -> Result<IssuedQr, ServiceError> {
        owner_only(access, &patient_id, Permission::Read)?;
        let keys = self.qr_keys().await?;
        let id = patient_id.clone();
        let row = self.read_tx(move |tx| tx.qr_of(&id)).await?;
        let row = row.filter(valid_now).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::QrUnknown,
                "This Patient has no valid personal QR; issue one with $qr-issue.",
            )
        })?;
        let token = keys.open(&row.sealed, &patient_id).map_err(|_| {
            ServiceError::Fault("a stored QR does not open with this server's secret".into())
        })?;
        Ok(IssuedQr {
            token,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
        })
    }

    /// The id of the Patient a scanned code names (no access decision: the caller reads
    /// the Patient under the read rule), and the access of the rest of the request: a
    /// practitioner's scan grants them the person's record (grant.rs). Failures count
    /// against the client's limit.
    ///
    /// # Errors
    /// 404 `HB-QR-MISREAD` for a code whose check character fails (scan again), 404
    /// `HB-QR-UNKNOWN` for one that is not a token, unknown, revoked or expired, 429
    /// `HB-QR-TOO-MANY` for a client past its failed lookups, 403 `HB-QR-PRACTITIONER` for
    /// a `user/` token that is not a practitioner's.
    pub async fn qr_patient(
        &self,
        access: &Access,
        scanned: &str,
    ) -> Result<(String, Access), ServiceError> {
        let grantee = Service::scan_grantee(access)?;
        let rule = self.qr.grants;
        let ctx = Arc::clone(&self.index);
        let patient = self
            .qr_counted(access, scanned, |service, lookup| async move {
                let row = match grantee {
                    None => service.read_tx(move |tx| tx.qr_find(&lookup)).await?,
                    Some(grantee) => {
                        service
                            .write_tx(move |tx| {
                                let Some(row) = tx.qr_find(&lookup)?.filter(valid_now) else {
                                    return Ok(None);
                                };
                                if tx
                                    .current("Patient", &row.patient_id)?
                                    .is_none_or(|r| r.deleted)
                                {
                                    return Ok(None);
                                }
                                grant::grant_scan(tx, &ctx, rule, &grantee, &row.patient_id)?;
                                Ok(Some(row))
                            })
                            .await?
                    }
                };
                row.filter(valid_now)
                    .map(|r| r.patient_id)
                    .ok_or_else(unknown)
            })
            .await?;
        let access = grant::with_patient(access, &patient);
        Ok((patient, access))
    }

    /// `Patient/$qr-resolve`: the Patient a scanned code names, under the read rule; the
    /// lookup and the read share one connection.
    ///
    /// # Errors
    /// As [`Service::qr_patient`], and as a read.
    pub async fn qr_resolve(
        &self,
        access: &Access,
        scanned: &str,
    ) -> Result<StoredResource, ServiceError> {
        access.require(Permission::Read, "Patient")?;
        if Service::scan_grantee(access)?.is_some() {
            // A practitioner's scan: the grant, then the Patient under it.
            let (patient, granted) = self.qr_patient(access, scanned).await?;
            return self.read(&granted, "Patient".to_owned(), patient).await;
        }
        self.qr_counted(access, scanned, |service, lookup| async move {
            let found = service
                .read_tx(move |tx| tx.qr_find_patient(&lookup))
                .await?;
            let patient = found
                .filter(|(qr, row)| valid_now(qr) && !row.deleted)
                .map(|(_, row)| StoredResource::from(row));
            // A Patient the token may not see answers as an unknown code, not as a 404
            // of a read that would tell that the code is valid.
            match patient {
                Some(p) if matches!(access, Access::Open) => Ok(p),
                Some(p) if access.permits(Permission::Read, &p.json()?) => Ok(p),
                _ => Err(unknown()),
            }
        })
        .await
    }

    /// Runs `find` with the lookup key of a scanned code, within the client's limit of
    /// failed lookups: a refusal (misread, unknown) counts.
    async fn qr_counted<'a, T, F, Fut>(
        &'a self,
        access: &Access,
        scanned: &str,
        find: F,
    ) -> Result<T, ServiceError>
    where
        F: FnOnce(&'a Service, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        let client = client_of(access);
        if let Some(retry_after) = self.qr.limit.refused(&client) {
            return Err(ServiceError::Throttled { retry_after });
        }
        let found = match Token::parse(scanned) {
            Err(Misread::CheckFailed) => Err(ServiceError::new(
                ErrorCode::QrMisread,
                "The code was misread (its check character does not match): scan it again.",
            )),
            Err(Misread::NotAToken) => Err(unknown()),
            Ok(token) => {
                let lookup = self.qr_keys().await?.lookup(&token);
                find(self, lookup).await
            }
        };
        if matches!(found, Err(ServiceError::Refused { .. })) {
            self.qr.limit.failed(&client);
        }
        found
    }
}

/// Whether a stored QR has not expired.
fn valid_now(row: &crate::store::QrRow) -> bool {
    row.expires_at
        .is_none_or(|e| e > chrono::Utc::now().timestamp_millis())
}

fn unknown() -> ServiceError {
    ServiceError::new(
        ErrorCode::QrUnknown,
        "The code is unknown or no longer valid.",
    )
}

/// Issue, revoke and show belong to the person (a `patient/` token of theirs) and to
/// backend services (`system/`); nobody else may read or change the token.
fn owner_only(
    access: &Access,
    patient_id: &str,
    permission: Permission,
) -> Result<(), ServiceError> {
    ensure_id(patient_id)?;
    let Access::Token(principal, _) = access else {
        return Ok(());
    };
    let allowed = principal.scopes.grants.iter().any(|g| {
        g.allows(permission, "Patient")
            && match g.context {
                ScopeContext::System => true,
                ScopeContext::Patient => principal.patient.as_deref() == Some(patient_id),
                ScopeContext::User => false,
            }
    });
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorCode::QrOwner,
            "Only the person (with their own patient/ token) or a backend service (system/) may issue, show or revoke a personal QR.",
        ))
    }
}
