//! Audit: every read, search, write, operation and denied access leaves an R4 AuditEvent
//! (https://hl7.org/fhir/R4/auditevent.html): who (client, subject, fhirUser), what
//! (the resource and the Patient whose record it is), the outcome, and this server as the
//! source. Events are queued and written in batches by one background task; on a clean
//! shutdown the queue is drained before the process exits, so none is lost while the
//! database answers. When it does not, shutdown still ends on time and the log says how
//! many events were not written ([`Backlog`]). They carry no
//! query-string values and no resource content.
//!
//! AuditEvents are ordinary resources: a patient reads "who looked at my record" with
//! `patient/AuditEvent.rs` (their compartment holds every event whose entity is their
//! Patient). They cannot be updated or deleted through the API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::index::{self, IndexContext};
use super::search_parameters::Registry;
use super::stored::{instant, now_ms, stamp};
use super::{Access, ServiceError};
use crate::store::{IndexRows, NewResourceVersion, Store};

/// Events a batch writes in one transaction at most. 256 made each batch hold the database
/// for long enough to show in the reads' p99 (GET by id at 32 connections on PostgreSQL:
/// p99 197-220 ms with 256, 129-144 ms with 64, same rate; bench/README.md).
const BATCH: usize = 64;
/// Events per INSERT: SQLite allows 32,766 bound values per statement, and an event has
/// some twenty index rows of up to 8 values.
const CHUNK: usize = 64;
/// How long a small batch waits for more events before it is written.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);
/// Events waiting to be written at most; a full queue slows requests down rather than
/// dropping events.
const QUEUE: usize = 65_536;

/// The RESTful interaction audited (http://hl7.org/fhir/restful-interaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditedInteraction {
    Read,
    Vread,
    Update,
    Patch,
    Delete,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    Create,
    SearchType,
    SearchSystem,
    Batch,
    Transaction,
    /// An operation such as `$everything`.
    Operation,
}

impl AuditedInteraction {
    fn code(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Vread => "vread",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::HistoryInstance => "history-instance",
            Self::HistoryType => "history-type",
            Self::HistorySystem => "history-system",
            Self::Create => "create",
            Self::SearchType => "search-type",
            Self::SearchSystem => "search-system",
            Self::Batch => "batch",
            Self::Transaction => "transaction",
            Self::Operation => "operation",
        }
    }

    /// AuditEvent.action (C R U D E).
    fn action(self) -> &'static str {
        match self {
            Self::Create => "C",
            Self::Update | Self::Patch => "U",
            Self::Delete => "D",
            Self::Batch | Self::Transaction | Self::Operation => "E",
            _ => "R",
        }
    }
}

/// What one request did, as the HTTP layer saw it.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub interaction: AuditedInteraction,
    /// `None` when authentication failed before a principal was known.
    pub access: Option<Access>,
    pub res_type: Option<String>,
    pub id: Option<String>,
    pub version_id: Option<i64>,
    /// Patients whose compartment holds the resource.
    pub patients: Vec<String>,
    pub status: u16,
    pub request_id: String,
    /// The stated reason, when the request was itself an emergency access (break the
    /// glass).
    pub emergency: Option<String>,
}

/// The sending side of the audit queue. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<AuditEntry>,
    backlog: Backlog,
}

/// The task that writes queued events; run it with [`AuditWriter::run`].
pub struct AuditWriter {
    store: Store,
    index: IndexContext,
    queue: mpsc::Receiver<AuditEntry>,
    backlog: Backlog,
}

/// How many recorded events are not yet written (queued or in a batch being written).
#[derive(Clone, Default)]
pub struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// Events recorded and not written yet.
    pub fn unwritten(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// A new queue and its writer; events are indexed like any resource (so that
/// `AuditEvent?patient=` and a patient's compartment find them) with references under
/// `base_url`, dates without a zone in `default_offset`, and the custom parameters of
/// `parameters`.
pub fn channel(
    store: Store,
    base_url: &str,
    default_offset: chrono::FixedOffset,
    parameters: Registry,
) -> (AuditLog, AuditWriter) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let backlog = Backlog::default();
    (
        AuditLog {
            queue: tx,
            backlog: backlog.clone(),
        },
        AuditWriter {
            store,
            index: IndexContext {
                base_url: base_url.trim_end_matches('/').to_owned(),
                default_offset,
                parameters,
                // The record of what happened names resources that may be gone since.
                check_references: false,
            },
            queue: rx,
            backlog,
        },
    )
}

impl AuditLog {
    /// Queues an event; waits when the queue is full.
    pub async fn record(&self, entry: AuditEntry) {
        self.backlog.0.fetch_add(1, Ordering::AcqRel);
        let sent = match self.queue.try_send(entry) {
            Err(mpsc::error::TrySendError::Full(entry)) => self.queue.send(entry).await.is_ok(),
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Ok(()) => true,
        };
        if !sent {
            self.backlog.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl AuditWriter {
    /// The count of events not written yet, readable after the writer is stopped.
    pub fn backlog(&self) -> Backlog {
        self.backlog.clone()
    }

    /// Writes events until every [`AuditLog`] is dropped and the queue is empty.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        while self.queue.recv_many(&mut batch, BATCH).await > 0 {
            // Let a batch fill for a moment: one durable commit per event would take as many
            // fsyncs as the requests themselves.
            if batch.len() < BATCH {
                tokio::time::sleep(GATHER).await;
                while batch.len() < BATCH {
                    match self.queue.try_recv() {
                        Ok(entry) => batch.push(entry),
                        Err(_) => break,
                    }
                }
            }
            // New resources without locks or conditions: a batch is a few multi-row INSERTs
            // of versions and index rows.
            let last_updated = now_ms();
            let count = batch.len();
            let mut chunks: Vec<(Vec<NewResourceVersion>, IndexRows)> = Vec::new();
            for (i, e) in batch.drain(..).enumerate() {
                if i % CHUNK == 0 {
                    chunks.push((Vec::with_capacity(CHUNK), IndexRows::default()));
                }
                let (versions, rows) = chunks.last_mut().expect("a chunk was pushed");
                let id = uuid::Uuid::new_v4().to_string();
                let event = audit_event(&e);
                rows.append(index::rows(&self.index, "AuditEvent", &id, &event));
                versions.push(NewResourceVersion {
                    content: Some(stamp(&event, &id, 1, last_updated)),
                    res_type: "AuditEvent".into(),
                    res_id: id,
                    version_id: 1,
                    is_current: true,
                    deleted: false,
                    method: "POST".into(),
                    last_updated,
                });
            }
            let store = self.store.clone();
            let chunks = Arc::new(chunks);
            // A failed batch is retried until the database takes it: losing audit records
            // is not an option, and the queue's bound slows requests meanwhile. The first
            // failure and the eventual success are logged, not every retry.
            let mut failures = 0_u32;
            loop {
                let store = store.clone();
                let chunks = Arc::clone(&chunks);
                let written = tokio::task::spawn_blocking(move || {
                    store.write(|tx| -> Result<(), ServiceError> {
                        for (versions, rows) in chunks.iter() {
                            tx.insert_many(versions)?;
                            tx.insert_index(rows)?;
                        }
                        Ok(())
                    })
                })
                .await;
                match written {
                    Ok(Ok(())) => {
                        self.backlog.0.fetch_sub(count, Ordering::AcqRel);
                        if failures > 0 {
                            tracing::info!(
                                events = count,
                                attempts = failures + 1,
                                "audit batch written after retries"
                            );
                        }
                        break;
                    }
                    Ok(Err(e)) => {
                        if failures == 0 {
                            tracing::warn!(error = %e, events = count, "audit batch not written; retrying every second");
                        }
                        failures += 1;
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, events = count, "audit writer task failed");
                        break;
                    }
                }
            }
        }
    }
}

/// The R4 AuditEvent of one request.
fn audit_event(entry: &AuditEntry) -> Value {
    let outcome = match entry.status {
        200..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let mut agent = json!({"requestor": true});
    match &entry.access {
        Some(Access::Token(p, _)) => {
            agent["who"] = match &p.fhir_user {
                Some(user) => json!({"reference": user}),
                None => json!({"identifier": {"system": p.issuer, "value": p.subject}}),
            };
            if let Some(client) = &p.client_id {
                agent["altId"] = json!(client);
            }
            agent["name"] = json!(p.subject);
        }
        Some(Access::Open) => agent["who"] = json!({"display": "anonymous (auth.mode = none)"}),
        None => agent["who"] = json!({"display": "unauthenticated request"}),
    }
    let mut entities = Vec::new();
    if let (Some(t), Some(id)) = (&entry.res_type, &entry.id) {
        let reference = match entry.version_id {
            Some(v) => format!("{t}/{id}/_history/{v}"),
            None => format!("{t}/{id}"),
        };
        entities.push(json!({
            "what": {"reference": reference},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        }));
    } else if let Some(t) = &entry.res_type {
        entities.push(json!({
            "what": {"display": t},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        }));
    }
    for patient in &entry.patients {
        entities.push(json!({
            "what": {"reference": format!("Patient/{patient}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": entry.interaction.code()}],
        "action": entry.interaction.action(),
        "recorded": instant(now_ms()),
        "outcome": outcome,
        "outcomeDesc": format!("HTTP {} (request id {})", entry.status, entry.request_id),
        "agent": [agent],
        "source": {
            "site": "Healthbook",
            "observer": {"display": "Healthbook FHIR server"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
    });
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    // Break the glass (docs/QR.md): the emergency access itself, with its reason, and every
    // request that reaches a person's record through one, carry the purpose ETREAT.
    let under_emergency = entry.access.as_ref().is_some_and(|a| {
        a.emergency()
            .iter()
            .any(|p| entry.patients.iter().any(|q| q == p))
    });
    if entry.emergency.is_some() || under_emergency {
        let mut purpose = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT", "display": "Emergency Treatment"}]});
        if let Some(reason) = &entry.emergency {
            purpose["text"] = json!(format!("Emergency access: {reason}"));
        }
        event["purposeOfEvent"] = json!([purpose]);
        event["agent"][0]["purposeOfUse"] = json!([{"coding": purpose["coding"].clone()}]);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Scopes};

    #[test]
    fn audit_events_are_valid_r4_and_name_the_patient() {
        let principal = Principal {
            issuer: "https://id.example".into(),
            subject: "u1".into(),
            client_id: Some("app".into()),
            scopes: Scopes::parse("user/*.rs"),
            patient: None,
            fhir_user: Some("Practitioner/d1".into()),
            expires_at: i64::MAX,
        };
        for (access, status) in [
            (
                Some(Access::Token(
                    Arc::new(principal),
                    crate::service::access::Reach::Everyone,
                )),
                200,
            ),
            (None, 401),
            (Some(Access::Open), 404),
        ] {
            let event = audit_event(&AuditEntry {
                interaction: AuditedInteraction::Read,
                access,
                res_type: Some("Immunization".into()),
                id: Some("i1".into()),
                version_id: Some(2),
                patients: vec!["p1".into()],
                status,
                request_id: "r1".into(),
                emergency: (status == 200).then(|| "unconscious, no relatives".to_owned()),
            });
            let parsed =
                fhir_format::parse_json(event.to_string().as_bytes()).expect("valid R4 AuditEvent");
            assert!(super::super::access::in_patient_compartment(
                &parsed,
                "AuditEvent",
                "p1"
            ));
        }
    }
}
