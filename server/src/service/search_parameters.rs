//! Custom search parameters (search.html, docs/SEARCH.md "Custom search parameters"): the
//! `active` SearchParameter resources of the store are searched by and indexed like the
//! standard ones. [`Service::load_search_parameters`] installs them in the registry of
//! `fhir_profiles`: at start, after every committed write on this server that wrote a
//! SearchParameter, and periodically (what other servers on the same database wrote).
//! Resources written before a parameter existed get its rows with `$reindex`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::{validate, Service, ServiceError};
use crate::store::{Filter, Position, SearchQuery};

/// Writes of SearchParameter resources by this process (committed or not): a write
/// transaction that sees the count change reloads the registry once it has committed.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Notes the write of a `res_type` resource (called by every in-transaction write step).
pub(super) fn touched(res_type: &str) {
    if res_type == "SearchParameter" {
        WRITES.fetch_add(1, Ordering::SeqCst);
    }
}

/// The number of SearchParameter writes so far.
pub(super) fn writes() -> u64 {
    WRITES.load(Ordering::SeqCst)
}

/// SearchParameters read per page.
const PAGE: i64 = 500;

impl Service {
    /// Installs the active SearchParameter resources of the store as custom search
    /// parameters; returns how many. Those the server cannot use (written before the
    /// checks of `validate/search_parameter.rs`, or of a type it does not index) are left
    /// out.
    ///
    /// # Errors
    /// Store failures.
    pub async fn load_search_parameters(&self) -> Result<usize, ServiceError> {
        let mut found = Vec::new();
        let mut after: Option<Position> = None;
        loop {
            let from = after.clone();
            let page = self
                .read_tx(move |tx| {
                    tx.search(&SearchQuery {
                        types: vec!["SearchParameter".to_owned()],
                        filter: Filter::And(Vec::new()),
                        sort: Vec::new(),
                        position: from,
                        limit: PAGE,
                    })
                })
                .await?;
            for row in &page {
                let Ok(resource) = serde_json::from_str::<Value>(&row.content) else {
                    continue;
                };
                if resource["status"] != "active" {
                    continue;
                }
                let mut unusable = Vec::new();
                validate::search_parameter::check(&resource, &mut unusable);
                let usable = unusable.is_empty();
                match serde_json::from_value::<fhir_profiles::SearchParameter>(resource) {
                    Ok(sp) if usable => found.push(sp),
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = Some(Position::after(last)),
                _ => break,
            }
        }
        let count = found.len();
        fhir_profiles::set_custom_search_parameters(found);
        Ok(count)
    }
}
