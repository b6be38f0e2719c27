//! Custom search parameters (search.html, docs/SEARCH.md "Custom search parameters"): the
//! `active` SearchParameter resources of the store are searched by and indexed like the
//! standard ones. [`Service::load_search_parameters`] installs them in the service's
//! [`Registry`]: at start, after every committed write on this server that wrote a
//! SearchParameter, and periodically (what other servers on the same database wrote).
//! Resources written before a parameter existed get its rows with `$reindex`.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use fhir_profiles::SearchParameter;
use serde_json::Value;

use super::{validate, Service, ServiceError};
use crate::store::{Filter, Position, SearchQuery};

/// The search parameters of one service: R4's (static tables of `fhir_profiles`) and the
/// custom ones of its store. Owned by the service, not the process: two differently
/// configured services can run side by side, and a replaced definition is freed once no
/// request holds it. Cheap to clone (the clones share the registry).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    custom: Arc<RwLock<Arc<[Arc<SearchParameter>]>>>,
    /// Writes of SearchParameter resources through this service (committed or not): a
    /// write transaction that sees the count change reloads the registry once committed.
    writes: Arc<AtomicU64>,
}

/// A search parameter of a [`Registry`]: a standard one, or a custom one held for as
/// long as this handle lives.
#[derive(Debug, Clone)]
pub enum Param {
    Standard(&'static SearchParameter),
    Custom(Arc<SearchParameter>),
}

impl Deref for Param {
    type Target = SearchParameter;

    fn deref(&self) -> &SearchParameter {
        match self {
            Param::Standard(sp) => sp,
            Param::Custom(sp) => sp,
        }
    }
}

impl Registry {
    /// The parameter `code` of `res_type`: a standard one (also those of Resource and
    /// DomainResource, such as `_id`), else a custom one.
    pub fn get(&self, res_type: &str, code: &str) -> Option<Param> {
        fhir_profiles::standard_search_parameter(res_type, code)
            .map(Param::Standard)
            .or_else(|| self.custom_one(res_type, code))
    }

    /// The custom parameter `code` of `res_type`, if there is one.
    pub fn custom_one(&self, res_type: &str, code: &str) -> Option<Param> {
        self.custom()
            .iter()
            .find(|sp| sp.code == code && applies_to(sp, res_type))
            .map(|sp| Param::Custom(Arc::clone(sp)))
    }

    /// The custom parameters that apply to `res_type`.
    pub fn custom_for(&self, res_type: &str) -> Vec<Param> {
        self.custom()
            .iter()
            .filter(|sp| applies_to(sp, res_type))
            .map(|sp| Param::Custom(Arc::clone(sp)))
            .collect()
    }

    /// Replaces the custom parameters.
    pub fn set(&self, list: Vec<SearchParameter>) {
        let list: Arc<[Arc<SearchParameter>]> = list.into_iter().map(Arc::new).collect();
        *self.custom.write().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Notes the write of a `res_type` resource (called by every in-transaction write
    /// step).
    pub fn touched(&self, res_type: &str) {
        if res_type == "SearchParameter" {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The number of SearchParameter writes so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn custom(&self) -> Arc<[Arc<SearchParameter>]> {
        Arc::clone(&self.custom.read().unwrap_or_else(|e| e.into_inner()))
    }
}

fn applies_to(sp: &SearchParameter, res_type: &str) -> bool {
    sp.base
        .iter()
        .any(|b| b == res_type || b == "Resource" || b == "DomainResource")
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
                validate::search_parameter::check(&resource, &self.index.parameters, &mut unusable);
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
        self.index.parameters.set(found);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(code: &str) -> SearchParameter {
        SearchParameter {
            code: code.into(),
            base: vec!["Patient".into()],
            kind: "token".into(),
            url: format!("https://x.example/SearchParameter/{code}"),
            expression: Some("Patient.extension.value".into()),
            target: Vec::new(),
            component: Vec::new(),
        }
    }

    /// Two services in one process keep their own custom parameters, and a replaced
    /// definition is freed (nothing is leaked per definition).
    #[test]
    fn registries_are_separate_and_free_what_they_replace() {
        let (one, two) = (Registry::default(), Registry::default());
        one.set(vec![custom("ethnicity")]);
        assert!(one.get("Patient", "ethnicity").is_some());
        assert!(two.get("Patient", "ethnicity").is_none());
        assert!(
            one.get("Patient", "gender").is_some(),
            "standard ones are there too"
        );
        let held = match one.get("Patient", "ethnicity") {
            Some(Param::Custom(sp)) => Arc::downgrade(&sp),
            other => panic!("{other:?}"),
        };
        one.set(vec![custom("religion")]);
        assert!(
            held.upgrade().is_none(),
            "the replaced definition is still held"
        );
        assert!(one.get("Patient", "ethnicity").is_none());
    }
}
