//! FHIR semantics: versioning, conditional interactions, history, patch. Knows neither
//! HTTP nor SQL; `http/` calls it, it calls `store/`.

pub mod access;
pub mod audit;
mod batch;
mod bundle;
mod conditional;
mod create;
mod delete;
pub mod entry;
mod error;
pub mod error_code;
mod everything;
pub mod fhirpath;
mod history;
mod index;
mod patch;
pub mod qr;
mod read;
mod references;
mod reindex;
pub mod search;
pub mod search_parameters;
pub mod shape;
mod stored;
mod transaction;
mod update;
pub mod validate;

pub use access::Access;
pub use bundle::BundleWriter;
pub use conditional::Criteria;
pub use error::ServiceError;
pub use error_code::ErrorCode;
pub use history::{HistoryParams, HistoryScope};
pub use patch::Patch;
pub use stored::{instant, version_of_etag, StoredResource};

use std::sync::Arc;

use chrono::FixedOffset;
use serde_json::Value;

use crate::store::{Store, StoreError, Tx};
use index::IndexContext;
use search_parameters::Registry;

/// The outcome of a write: the version now current, whether a resource was created (201)
/// rather than updated or found (200), and the validation warnings it was stored with.
#[derive(Debug, Clone)]
pub struct Written {
    pub resource: StoredResource,
    pub created: bool,
    pub issues: Vec<validate::Issue>,
}

/// The FHIR service over one store. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    store: Store,
    base_url: String,
    audit: audit::AuditLog,
    index: Arc<IndexContext>,
    validator: Arc<validate::Validator>,
    /// What one search may ask for.
    limits: search::SearchLimits,
    /// The secret of personal QR tokens and the failed lookups per client.
    qr: Arc<qr::PersonalQr>,
}

impl Service {
    /// A service whose absolute links start with `base_url` (e.g. `https://x/fhir`),
    /// recording AuditEvents into `audit`, validating writes with `validator`, searching
    /// by the standard and custom search parameters of `parameters` (the registry the
    /// validator and the audit writer share), within `limits`.
    /// Dates without a zone are read in `default_offset`.
    pub fn new(
        store: Store,
        base_url: String,
        audit: audit::AuditLog,
        (default_offset, limits): (FixedOffset, search::SearchLimits),
        (validator, parameters): (validate::Validator, Registry),
    ) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            store,
            index: Arc::new(IndexContext {
                base_url: base_url.clone(),
                default_offset,
                parameters,
                check_references: validator.enforces("base", "HB-REFERENCE-UNKNOWN"),
            }),
            base_url,
            audit,
            validator: Arc::new(validator),
            limits,
            qr: Arc::default(),
        }
    }

    /// The same service with the personal QR settings of the configuration.
    #[must_use]
    pub fn with_personal_qr(mut self, qr: qr::PersonalQr) -> Self {
        self.qr = Arc::new(qr);
        self
    }

    /// Validates content about to be written (validate/), also against the
    /// StructureDefinitions of the store it names in `meta.profile`: issues of error
    /// severity refuse the write (422); warnings are returned to be reported.
    async fn validated(&self, resource: &Value) -> Result<Vec<validate::Issue>, ServiceError> {
        let urls = validate::posted_profile_urls(resource);
        let profiles = if urls.is_empty() {
            Vec::new()
        } else {
            self.read_tx(move |tx| validate::posted_profiles(tx, &urls))
                .await?
        };
        validated(&self.validator, resource, &profiles)
    }

    /// Queues the AuditEvent of one request.
    pub async fn audit(&self, entry: audit::AuditEntry) {
        self.audit.record(entry).await;
    }

    /// The search parameters of this service, standard and custom.
    pub fn search_parameters(&self) -> &Registry {
        &self.index.parameters
    }

    /// The FHIR base URL links are built from.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The state of the database pools, for metrics.
    pub fn pool_stats(&self) -> Vec<crate::store::PoolStats> {
        self.store.pool_stats()
    }

    /// How search parameters are read on this server (lenient).
    fn parse_context(&self) -> search::params::ParseContext<'_> {
        search::params::ParseContext {
            base_url: &self.base_url,
            default_offset: self.index.default_offset,
            parameters: &self.index.parameters,
            limits: self.limits,
            strict: false,
        }
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        let store = self.store.clone();
        blocking(move || store.ping().map_err(ServiceError::from)).await
    }

    async fn read_tx<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let store = self.store.clone();
        blocking(move || store.read(f).map_err(ServiceError::from)).await
    }

    async fn write_tx<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Tx<'_>) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let store = self.store.clone();
        let before = self.index.parameters.writes();
        let written = blocking(move || store.write(f)).await?;
        if self.index.parameters.writes() != before {
            // A SearchParameter was written (by this transaction or a concurrent one):
            // search by it from the next request on.
            if let Err(e) = self.load_search_parameters().await {
                tracing::warn!(error = %e, "custom search parameters not reloaded");
            }
        }
        Ok(written)
    }
}

/// [`Service::validated`] with the posted `profiles` at hand (inside a transaction).
fn validated(
    validator: &validate::Validator,
    resource: &Value,
    profiles: &[Value],
) -> Result<Vec<validate::Issue>, ServiceError> {
    let issues = validator.validate_against(resource, stored::now_ms(), None, profiles);
    if issues
        .iter()
        .any(|i| i.severity == validate::Severity::Error)
    {
        Err(ServiceError::Rejected(issues))
    } else {
        Ok(issues)
    }
}

/// Runs blocking database work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| ServiceError::Fault(e.to_string()))?
}

/// Checks that `res_type` is an R4 resource type (404 otherwise, http.html#read).
/// `_count` of a search or history (search.html#count): a whole number, 0 or more, capped
/// at `max`.
fn parse_count(value: &str, max: i64) -> Result<i64, ServiceError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|c| *c >= 0)
        .map(|c| c.min(max))
        .ok_or_else(|| {
            ServiceError::at(
                ErrorCode::SearchValue,
                "_count",
                "_count must be a whole number, 0 or more.",
            )
        })
}

/// A parameter name or value as written into a link's query string.
fn query_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `HB-UNKNOWN-TYPE` for a type R4 does not have.
///
/// # Errors
/// That one.
pub fn ensure_type(res_type: &str) -> Result<(), ServiceError> {
    if fhir_format::is_resource_type(res_type) {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorCode::UnknownType,
            format!("'{res_type}' is not a FHIR R4 resource type."),
        ))
    }
}

/// Checks that a body's resourceType is the type the URL names (http.html#create: 400).
fn ensure_body_type(res_type: &str, resource: &Value) -> Result<(), ServiceError> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == res_type => Ok(()),
        Some(t) => Err(ServiceError::at(
            ErrorCode::ResourceType,
            "resourceType",
            format!("The body is a {t}, but the URL is for {res_type}."),
        )),
        None => Err(ServiceError::new(
            ErrorCode::ResourceType,
            "The body has no resourceType.",
        )),
    }
}

/// AuditEvents are a record of what happened: no update, patch or delete through the API
/// (405).
fn ensure_mutable(res_type: &str) -> Result<(), ServiceError> {
    if res_type == "AuditEvent" {
        Err(ServiceError::new(
            ErrorCode::NotAllowed,
            "AuditEvents are a permanent record; they cannot be changed or deleted.",
        ))
    } else {
        Ok(())
    }
}

/// 403 for a write or match outside what the token may touch; says no more than that.
fn outside_compartment() -> ServiceError {
    ServiceError::Forbidden {
        scope: String::new(),
    }
}

fn ensure_id(id: &str) -> Result<(), ServiceError> {
    if stored::is_valid_id(id) {
        Ok(())
    } else {
        Err(ServiceError::not_found(
            "The id is not a valid FHIR id (1-64 characters A-Z a-z 0-9 - .).",
        ))
    }
}
