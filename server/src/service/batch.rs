//! Batch — https://hl7.org/fhir/R4/http.html#transaction (batch), bundle.html
//!
//! Each entry is processed on its own, in its own database transaction, exactly as the
//! same request sent alone would be: the same checks, the same access decision, the same
//! answer. One failing entry never affects the others; its failure is its own response.
//! Entries of a batch SHALL NOT depend on each other (http.html#transaction), so their
//! `fullUrl`s are not resolved, and up to [`PARALLEL`] of them are processed at once (each
//! commit waits for its own flush to disk; the answers keep the Bundle's order).

use crate::service::ErrorCode;
use futures_util::{stream, StreamExt};
use serde_json::Value;

use super::entry::{self, Entry, EntryOutcome, EntryResult, Method, Target};
use super::search::{SearchRequest, SearchScope};
use super::{Access, Service, ServiceError};

/// Entries of one batch processed at once at most.
const PARALLEL: usize = 4;

impl Service {
    /// Processes a batch Bundle; one result per entry, in order.
    ///
    /// # Errors
    /// 400 when an entry's request is malformed (before any entry is processed).
    pub async fn batch(
        &self,
        access: &Access,
        bundle: &Value,
    ) -> Result<Vec<EntryResult>, ServiceError> {
        let entries = entry::entries(bundle, self.base_url())?;
        Ok(stream::iter(entries)
            .map(|entry| async move {
                // http.html#transaction: a batch's entries SHALL have no interdependencies;
                // a `urn:` reference to another entry resolves only in a transaction (stored
                // as it is, it would point nowhere).
                let dangling = entry.resource.as_ref().and_then(super::transaction::unresolved);
                let result = match dangling {
                    Some(reference) => Err(ServiceError::at(
                        ErrorCode::BundleReference,
                        format!("Bundle.entry[{}].resource", entry.index),
                        format!("The reference {reference} is resolved only in a transaction; in a batch each entry stands alone (use type: transaction, or a Type/id reference)."),
                    )),
                    None => self.entry(access, entry.clone()).await,
                };
                EntryResult::of(&entry, result)
            })
            .buffered(PARALLEL)
            .collect()
            .await)
    }

    /// One entry, processed as the request it stands for (batch entries, and the reads of
    /// a transaction).
    pub(super) async fn entry(
        &self,
        access: &Access,
        entry: Entry,
    ) -> Result<EntryOutcome, ServiceError> {
        let body = || entry.body().cloned();
        match (entry.method, entry.target.clone()) {
            (Method::Get | Method::Head, Target::Instance { res_type, id }) => self
                .read(access, res_type, id)
                .await
                .map(EntryOutcome::Resource),
            (
                Method::Get | Method::Head,
                Target::Version {
                    res_type,
                    id,
                    version,
                },
            ) => self
                .vread(access, res_type, id, version)
                .await
                .map(EntryOutcome::Resource),
            (Method::Get | Method::Head, Target::Type { res_type, query }) => {
                let params =
                    super::search::params::query_pairs(query.unwrap_or_default().as_bytes())?;
                let request = SearchRequest {
                    scope: SearchScope::Type(res_type),
                    params,
                    strict: false,
                };
                self.search(access, request).await.map(EntryOutcome::Bundle)
            }
            (Method::Post, Target::Type { res_type, .. }) => self
                .create(access, res_type, body()?, entry.if_none_exist.clone())
                .await
                .map(EntryOutcome::Written),
            (Method::Put, Target::Instance { res_type, id }) => self
                .update(access, res_type, id, body()?, entry.if_match)
                .await
                .map(EntryOutcome::Written),
            (
                Method::Put,
                Target::Type {
                    res_type,
                    query: Some(criteria),
                },
            ) => self
                .conditional_update(access, res_type, criteria, body()?, entry.if_match)
                .await
                .map(EntryOutcome::Written),
            (Method::Patch, Target::Instance { res_type, id }) => self
                .patch(access, res_type, id, entry.patch()?, entry.if_match)
                .await
                .map(EntryOutcome::Written),
            (Method::Delete, Target::Instance { res_type, id }) => self
                .delete(access, res_type, id)
                .await
                .map(EntryOutcome::Deleted),
            (
                Method::Delete,
                Target::Type {
                    res_type,
                    query: Some(criteria),
                },
            ) => self
                .conditional_delete(access, res_type, criteria)
                .await
                .map(EntryOutcome::Deleted),
            _ => Err(ServiceError::at(
                ErrorCode::BundleEntry,
                format!("Bundle.entry[{}].request", entry.index),
                "This method does not take this kind of url in a bundle.",
            )),
        }
    }
}
