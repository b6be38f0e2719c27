//! Access grants of the personal-QR rule (issue 15 item 3, docs/QR.md): with
//! `access.practitioner = "qr"` a practitioner's `user/` scopes reach a person's compartment
//! only under a grant in force, made by the server when that practitioner scans the
//! person's QR (kind `qr`, `access.grant_hours`) or declares an emergency (kind
//! `emergency`, `access.emergency_minutes`, break the glass).
//!
//! Each grant is a row of `access_grants` (what the access decision reads) and a FHIR
//! Consent in the person's compartment (what the person reads: consent.html; status
//! `active`, `provision.period`, `provision.actor` the practitioner and the organization
//! of their PractitionerRole, `provision.purpose` TREAT or ETREAT). Ending a grant ends
//! both in one transaction: the Consent's next version is `inactive` with the period ended.
//! Clients cannot write these Consents themselves (422 `HB-GRANT-MANAGED`): a Consent a
//! client wrote never opens a record.

use std::sync::Arc;

use serde_json::{json, Value};

use super::super::access::{Granted, Reach};
use super::super::create::insert_version;
use super::super::index::{resource_lock_key, IndexContext};
use super::super::stored::{instant, now_ms};
use super::super::{ensure_id, fhirpath, Access, ErrorCode, Service, ServiceError};
use crate::auth::{Permission, Principal, ScopeContext};
use crate::store::{GrantRow, Tx};

/// The code system of `Consent.policyRule` on the Consents that record grants: `qr-scan`
/// or `emergency`.
pub const GRANT_SYSTEM: &str = "https://healthbook.example.org/fhir/CodeSystem/access-grant";

/// How long grants last, and whether practitioners need them at all.
#[derive(Debug, Clone, Copy)]
pub struct GrantRule {
    /// `access.practitioner = "qr"`.
    pub gated: bool,
    /// `access.grant_hours`, in ms.
    pub scan_ms: i64,
    /// `access.emergency_minutes`, in ms.
    pub emergency_ms: i64,
}

impl Default for GrantRule {
    fn default() -> Self {
        Self {
            gated: true,
            scan_ms: 24 * 3_600_000,
            emergency_ms: 60 * 60_000,
        }
    }
}

impl GrantRule {
    /// From `access.grant_hours` and `access.emergency_minutes`.
    pub fn new(gated: bool, grant_hours: u32, emergency_minutes: u32) -> Self {
        Self {
            gated,
            scan_ms: i64::from(grant_hours) * 3_600_000,
            emergency_ms: i64::from(emergency_minutes) * 60_000,
        }
    }
}

/// What made a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// A scan of the person's QR.
    Scan,
    /// Break the glass.
    Emergency,
    /// The practitioner registered the person (created the Patient).
    Registration,
}

impl GrantKind {
    fn code(self) -> &'static str {
        match self {
            GrantKind::Scan => "qr",
            GrantKind::Emergency => "emergency",
            GrantKind::Registration => "registration",
        }
    }
}

impl Service {
    /// The [`Access`] of a verified token: with the personal-QR rule, a token with `user/`
    /// scopes reaches the compartments its user's grants in force open (one indexed
    /// lookup), or its own when its `fhirUser` is a Patient.
    ///
    /// # Errors
    /// Store failures.
    pub async fn access_of(&self, principal: Arc<Principal>) -> Result<Access, ServiceError> {
        let has_user_scopes = principal
            .scopes
            .grants
            .iter()
            .any(|g| g.context == ScopeContext::User);
        if !self.qr.grants.gated || !has_user_scopes {
            return Ok(Access::Token(principal, Reach::Everyone));
        }
        let granted = match user_of(&principal) {
            Some(("Patient", id)) => Granted {
                patients: vec![id.to_owned()],
                emergency: Vec::new(),
                grant_ms: 0,
            },
            Some((t @ ("Practitioner" | "PractitionerRole"), id)) => {
                let grantee = format!("{t}/{id}");
                let rows = self
                    .read_tx(move |tx| tx.grants_of_grantee(&grantee, now_ms()))
                    .await?;
                let mut granted = Granted {
                    grant_ms: self.qr.grants.scan_ms,
                    ..Granted::default()
                };
                for row in rows {
                    if row.kind == GrantKind::Emergency.code() {
                        granted.emergency.push(row.patient_id.clone());
                    }
                    granted.patients.push(row.patient_id);
                }
                granted.patients.sort();
                granted.patients.dedup();
                granted
            }
            _ => Granted::default(),
        };
        Ok(Access::Token(principal, Reach::Granted(Arc::new(granted))))
    }

    /// `POST Patient/{id}/$emergency-access`: break the glass. The practitioner gets the
    /// person's compartment for `access.emergency_minutes`, recorded as a Consent (purpose
    /// ETREAT) and, by the HTTP layer, an AuditEvent flagged as emergency access with the
    /// reason. Answers the Consent.
    ///
    /// # Errors
    /// 400 without a reason, 403 `HB-QR-PRACTITIONER` for a token that is not a
    /// practitioner's, 404 for a Patient the server does not hold.
    pub async fn emergency_access(
        &self,
        access: &Access,
        patient_id: String,
        reason: String,
    ) -> Result<Value, ServiceError> {
        ensure_id(&patient_id)?;
        if reason.trim().is_empty() {
            return Err(ServiceError::at(
                ErrorCode::OperationParameter,
                "reason",
                "An emergency access needs its reason (the parameter 'reason').",
            ));
        }
        let grantee = practitioner(access)?;
        let rule = self.qr.grants;
        let ctx = Arc::clone(&self.index);
        self.write_tx(move |tx| {
            if tx
                .current("Patient", &patient_id)?
                .is_none_or(|r| r.deleted)
            {
                return Err(ServiceError::not_found("There is no such Patient."));
            }
            let grant = Grant {
                patient_id: &patient_id,
                grantee: &grantee,
                kind: GrantKind::Emergency,
                reason: Some(reason.trim()),
            };
            grant.write(tx, &ctx, now_ms(), rule.emergency_ms)
        })
        .await
    }

    /// The grant a practitioner's scan of `patient_id`'s QR makes (in the lookup's
    /// transaction), and the access that reaches the person from then on; `None` when the
    /// request needs no grant (no rule, not a `user/` token, or one that reaches every
    /// record anyway).
    ///
    /// # Errors
    /// 403 `HB-QR-PRACTITIONER` for a `user/` token that is not a practitioner's.
    pub(super) fn scan_grantee(access: &Access) -> Result<Option<String>, ServiceError> {
        let Access::Token(principal, Reach::Granted(_)) = access else {
            return Ok(None);
        };
        let reads_everyone =
            principal.scopes.grants.iter().any(|g| {
                g.context == ScopeContext::System && g.allows(Permission::Read, "Patient")
            });
        if reads_everyone {
            return Ok(None);
        }
        practitioner(access).map(Some)
    }

    /// `Consent/{id}/$revoke`: ends the grant the Consent records, now. For the person
    /// (their `patient/` token with a write scope on Consent) and backend services; not for
    /// practitioners (one cannot end another's grant).
    ///
    /// # Errors
    /// 404 for a Consent that records no grant or one the token may not see, 403 for a
    /// token that may not end it.
    pub async fn grant_revoke(
        &self,
        access: &Access,
        consent_id: String,
    ) -> Result<Value, ServiceError> {
        ensure_id(&consent_id)?;
        let ctx = Arc::clone(&self.index);
        let access = access.clone();
        self.write_tx(move |tx| {
            let not_found =
                || ServiceError::not_found("No access grant is recorded by this Consent.");
            let row = tx.grant(&consent_id)?.ok_or_else(not_found)?;
            let consent = tx
                .current("Consent", &consent_id)?
                .filter(|r| !r.deleted)
                .and_then(|r| r.content)
                .and_then(|c| serde_json::from_str::<Value>(&c).ok())
                .ok_or_else(not_found)?;
            if !access.permits(Permission::Read, &consent) {
                return Err(not_found());
            }
            access.require(Permission::Update, "Consent")?;
            // The person or a backend service: not another practitioner of the record.
            let owner = match &access {
                Access::Open => true,
                Access::Token(principal, _) => principal.scopes.grants.iter().any(|g| {
                    g.context != ScopeContext::User && g.allows(Permission::Update, "Consent")
                }),
            };
            if !owner || !access.permits(Permission::Update, &consent) {
                return Err(ServiceError::Forbidden {
                    scope: String::new(),
                });
            }
            end(tx, &ctx, &row, now_ms())
        })
        .await
    }
}

/// Ends every grant a scan made to `patient_id`'s compartment (`revoke-grants=true` of
/// `$qr-issue` and `$qr-revoke`: they were made through the token being replaced or
/// revoked, or an older one); emergency accesses stay. How many ended.
pub(super) fn end_scan_grants(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    patient_id: &str,
) -> Result<usize, ServiceError> {
    let now = now_ms();
    let mut ended = 0;
    for row in tx.grants_of_patient(patient_id, now)? {
        if row.kind == GrantKind::Scan.code() {
            end(tx, ctx, &row, now)?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// Makes (or extends) the grant of a scan, in the lookup's transaction.
pub(super) fn grant_scan(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    rule: GrantRule,
    grantee: &str,
    patient_id: &str,
) -> Result<(), ServiceError> {
    let grant = Grant {
        patient_id,
        grantee,
        kind: GrantKind::Scan,
        reason: None,
    };
    grant.write(tx, ctx, now_ms(), rule.scan_ms).map(|_| ())
}

/// The access of a request after its scan granted `patient_id`.
pub(super) fn with_patient(access: &Access, patient_id: &str) -> Access {
    with_patients(access, std::slice::from_ref(&patient_id.to_owned()))
}

/// The access of a request that registers (creates) the Patients `patient_ids`: it reaches
/// their records for the rest of the request (a transaction's Immunizations of a new
/// person).
pub(in crate::service) fn with_patients(access: &Access, patient_ids: &[String]) -> Access {
    match access {
        Access::Token(principal, Reach::Granted(granted)) if !patient_ids.is_empty() => {
            let mut granted = Granted::clone(granted);
            for id in patient_ids {
                if !granted.patients.contains(id) {
                    granted.patients.push(id.clone());
                }
            }
            Access::Token(Arc::clone(principal), Reach::Granted(Arc::new(granted)))
        }
        other => other.clone(),
    }
}

/// The grant a practitioner gets to the record of the Patient they register (create), in
/// the create's transaction: without it they could not record the visit that follows.
/// Nothing for requests the rule does not narrow.
///
/// # Errors
/// Store failures.
pub(in crate::service) fn register(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    access: &Access,
    patient_id: &str,
) -> Result<(), ServiceError> {
    let Access::Token(_, Reach::Granted(granted)) = access else {
        return Ok(());
    };
    let Ok(grantee) = practitioner(access) else {
        return Ok(());
    };
    let grant = Grant {
        patient_id,
        grantee: &grantee,
        kind: GrantKind::Registration,
        reason: None,
    };
    grant.write(tx, ctx, now_ms(), granted.grant_ms).map(|_| ())
}

/// Refuses a client's Consent marked as a grant's ([`GRANT_SYSTEM`] in `policyRule`):
/// only the server records grants.
///
/// # Errors
/// 422 `HB-GRANT-MANAGED`.
pub(in crate::service) fn ensure_unmarked(
    res_type: &str,
    resource: &Value,
) -> Result<(), ServiceError> {
    let marked = res_type == "Consent"
        && resource
            .pointer("/policyRule/coding")
            .and_then(Value::as_array)
            .is_some_and(|codings| {
                codings
                    .iter()
                    .any(|c| c.get("system").and_then(Value::as_str) == Some(GRANT_SYSTEM))
            });
    if marked {
        Err(managed())
    } else {
        Ok(())
    }
}

/// Refuses a client's update, patch or delete of a Consent that records a grant.
///
/// # Errors
/// 422 `HB-GRANT-MANAGED`, store failures.
pub(in crate::service) fn ensure_not_recorded(
    tx: &mut Tx<'_>,
    res_type: &str,
    id: &str,
) -> Result<(), ServiceError> {
    if res_type == "Consent" && tx.grant(id)?.is_some() {
        Err(managed())
    } else {
        Ok(())
    }
}

fn managed() -> ServiceError {
    ServiceError::new(
        ErrorCode::GrantManaged,
        "This Consent records an access grant, which only the server writes; end it with Consent/{id}/$revoke.",
    )
}

/// The `Practitioner/<id>` or `PractitionerRole/<id>` a grant is made to.
fn practitioner(access: &Access) -> Result<String, ServiceError> {
    let refused = || {
        ServiceError::new(
            ErrorCode::QrPractitioner,
            "A scan or an emergency access opens a record to a practitioner: the access token needs user/ scopes and a fhirUser that is a Practitioner or PractitionerRole.",
        )
    };
    let Access::Token(principal, _) = access else {
        return Err(refused());
    };
    let has_user_scopes = principal
        .scopes
        .grants
        .iter()
        .any(|g| g.context == ScopeContext::User);
    match user_of(principal) {
        Some((t @ ("Practitioner" | "PractitionerRole"), id)) if has_user_scopes => {
            Ok(format!("{t}/{id}"))
        }
        _ => Err(refused()),
    }
}

/// The token's `fhirUser` as (type, id).
fn user_of(principal: &Principal) -> Option<(&str, &str)> {
    principal
        .fhir_user
        .as_deref()
        .and_then(fhirpath::reference_target)
}

/// A grant about to be written.
struct Grant<'a> {
    patient_id: &'a str,
    grantee: &'a str,
    kind: GrantKind,
    /// The stated reason of an emergency access.
    reason: Option<&'a str>,
}

impl Grant<'_> {
    /// Writes the grant until `now + duration_ms`: a new row and Consent, or, when the same
    /// practitioner already holds one of this kind for this person, that one extended (a
    /// second scan the same day makes no second Consent). Returns the Consent.
    fn write(
        &self,
        tx: &mut Tx<'_>,
        ctx: &IndexContext,
        now: i64,
        duration_ms: i64,
    ) -> Result<Value, ServiceError> {
        let ends_at = now.saturating_add(duration_ms);
        let held = tx
            .grants_of_patient(self.patient_id, now)?
            .into_iter()
            .find(|r| r.grantee == self.grantee && r.kind == self.kind.code());
        if let (Some(row), None) = (held, self.reason) {
            tx.lock(resource_lock_key("Consent", &row.consent_id))?;
            if ends_at - row.ends_at < EXTEND_AFTER_MS {
                // Extended within the hour: no new Consent version for every scan.
                return current_consent(tx, &row.consent_id);
            }
            tx.grant_set_end(&row.consent_id, now, ends_at)?;
            let actors = actors(tx, self.grantee)?;
            let consent = self.consent(&row.consent_id, (row.starts_at, ends_at), actors);
            return write_consent(tx, ctx, &row.consent_id, &consent);
        }
        let consent_id = uuid::Uuid::new_v4().to_string();
        tx.grant_put(&GrantRow {
            consent_id: consent_id.clone(),
            patient_id: self.patient_id.to_owned(),
            grantee: self.grantee.to_owned(),
            kind: self.kind.code().to_owned(),
            starts_at: now,
            ends_at,
        })?;
        let actors = actors(tx, self.grantee)?;
        let consent = self.consent(&consent_id, (now, ends_at), actors);
        write_consent(tx, ctx, &consent_id, &consent)
    }

    /// The Consent that records this grant, from `start` to `end` (ms), to `actors`.
    fn consent(&self, id: &str, (start, end): (i64, i64), actors: Vec<Value>) -> Value {
        let (rule, purpose, how) = match self.kind {
            GrantKind::Scan => ("qr-scan", "TREAT", "a scan of the person's personal QR"),
            GrantKind::Emergency => ("emergency", "ETREAT", "an emergency access"),
            GrantKind::Registration => ("registration", "TREAT", "registering the person"),
        };
        let mut text = format!(
            "Access to this record for {} by {how}, from {} until {}.",
            self.grantee,
            instant(start),
            instant(end)
        );
        if let Some(reason) = self.reason {
            text.push_str(" Reason: ");
            text.push_str(reason);
        }
        let mut consent = json!({
            "resourceType": "Consent",
            "id": id,
            "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p></div>", escape(&text))},
            "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment", "display": "Treatment"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
            "patient": {"reference": format!("Patient/{}", self.patient_id)},
            "dateTime": instant(start),
            "policyRule": {"coding": [{"system": GRANT_SYSTEM, "code": rule}]},
            "provision": {
                "type": "permit",
                "period": {"start": instant(start), "end": instant(end)},
                "actor": actors,
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}],
            },
        });
        if self.kind == GrantKind::Scan {
            // The person presented their code: they are the one who consents.
            consent["performer"] = json!([{"reference": format!("Patient/{}", self.patient_id)}]);
        }
        consent
    }
}

/// A scan extends its practitioner's grant only when the last extension is an hour old or
/// more: scanning the same person again and again writes no new Consent versions.
const EXTEND_AFTER_MS: i64 = 3_600_000;

/// The Consent actors of a grant: the grantee, as a literal reference when the server holds
/// the resource (a reference to one it does not hold would be refused), else in logical
/// form; and the organization of a PractitionerRole.
fn actors(tx: &mut Tx<'_>, grantee: &str) -> Result<Vec<Value>, ServiceError> {
    let (res_type, id) = fhirpath::reference_target(grantee).unwrap_or(("Practitioner", grantee));
    let held = tx
        .current(res_type, id)?
        .filter(|r| !r.deleted)
        .and_then(|r| r.content)
        .and_then(|c| serde_json::from_str::<Value>(&c).ok());
    let reference = if held.is_some() {
        json!({"reference": grantee})
    } else {
        json!({"type": res_type, "display": grantee})
    };
    let mut actors = vec![json!({"role": recipient_role(), "reference": reference})];
    let organization = held
        .filter(|_| res_type == "PractitionerRole")
        .and_then(|role| {
            role.pointer("/organization/reference")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    if let Some(organization) = organization {
        actors.push(json!({"role": recipient_role(), "reference": {"reference": organization}}));
    }
    Ok(actors)
}

/// The current content of a grant's Consent.
fn current_consent(tx: &mut Tx<'_>, id: &str) -> Result<Value, ServiceError> {
    tx.current("Consent", id)?
        .filter(|r| !r.deleted)
        .and_then(|r| r.content)
        .and_then(|c| serde_json::from_str::<Value>(&c).ok())
        .ok_or_else(|| ServiceError::Fault("a grant's Consent is missing".into()))
}

fn recipient_role() -> Value {
    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]})
}

/// Ends a grant at `now`: the row and the Consent's next version (`inactive`, the period
/// ended). Returns the Consent.
fn end(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    row: &GrantRow,
    now: i64,
) -> Result<Value, ServiceError> {
    tx.lock(resource_lock_key("Consent", &row.consent_id))?;
    tx.grant_set_end(&row.consent_id, now, now)?;
    let mut consent = current_consent(tx, &row.consent_id)?;
    if row.ends_at <= now {
        return Ok(consent); // it had ended already
    }
    if let Some(o) = consent.as_object_mut() {
        o.remove("meta");
    }
    consent["status"] = json!("inactive");
    consent["provision"]["period"]["end"] = json!(instant(now));
    write_consent(tx, ctx, &row.consent_id, &consent)
}

/// Writes the next version of a grant's Consent (the caller holds its lock, or made its
/// id); client writes go through `update::put`, which refuses these Consents.
fn write_consent(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    id: &str,
    consent: &Value,
) -> Result<Value, ServiceError> {
    let (version_id, method) = match tx.current("Consent", id)? {
        None => (1, "POST"),
        Some(row) => {
            if !tx.retire("Consent", id, row.version_id)? {
                return Err(crate::store::StoreError::Conflict(
                    "the grant's Consent was changed by a concurrent request".into(),
                )
                .into());
            }
            (row.version_id + 1, "PUT")
        }
    };
    insert_version(tx, ctx, "Consent", id, version_id, method, consent)?.json()
}

/// Text as XHTML character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::validate::{Severity, Validator};

    /// Every kind of grant is recorded as a Consent that is valid R4 (the model reads it,
    /// the base rules pass) with a safe narrative, whatever the stated reason holds.
    #[test]
    fn grant_consents_are_valid_r4() {
        for (kind, reason) in [
            (GrantKind::Scan, None),
            (GrantKind::Registration, None),
            (
                GrantKind::Emergency,
                Some("<script>alert(1)</script> & no card"),
            ),
        ] {
            let grant = Grant {
                patient_id: "p1",
                grantee: "PractitionerRole/r1",
                kind,
                reason,
            };
            let actors = vec![
                json!({"role": recipient_role(), "reference": {"reference": "PractitionerRole/r1"}}),
                json!({"role": recipient_role(), "reference": {"type": "Organization", "display": "x"}}),
            ];
            let consent = grant.consent("c1", (0, 3_600_000), actors);
            fhir_format::parse_json(consent.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            let issues = Validator::default().validate_against(&consent, now_ms(), None, &[]);
            assert!(
                issues.iter().all(|i| i.severity != Severity::Error),
                "{kind:?}: {issues:?}"
            );
            assert!(!consent.to_string().contains("<script>"));
        }
    }
}
