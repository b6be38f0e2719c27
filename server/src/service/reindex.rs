//! `$reindex` — rebuilds the search index rows of stored resources from their current
//! content (Healthbook's operation, as HAPI FHIR and others offer one): after an upgrade
//! that indexes more (composite parameters, new expressions), the rows of resources
//! written before it are filled in. Resources are taken in pages of [`PAGE`], each page in
//! its own database transaction, under the same resource locks writers take, so a
//! concurrent update is never overwritten with older rows.

use std::sync::Arc;

use super::index::{self, resource_lock_key};
use super::{ensure_type, Access, Service, ServiceError};
use crate::auth::Permission;
use crate::store::{Filter, Position, ResourceKey, SearchQuery};

/// Resources reindexed per database transaction.
const PAGE: i64 = 200;

impl Service {
    /// Rebuilds the index rows of every current resource of `res_type` (of every type but
    /// AuditEvent, which has none, when `None`); returns how many resources.
    ///
    /// # Errors
    /// 404 for an unknown type, 403 without the scope letter `u` on the types, store
    /// failures.
    pub async fn reindex(
        &self,
        access: &Access,
        res_type: Option<String>,
    ) -> Result<usize, ServiceError> {
        let types: Vec<String> = match res_type {
            Some(t) => {
                ensure_type(&t)?;
                vec![t]
            }
            None => fhir_format::resource_types()
                .iter()
                .filter(|t| **t != "AuditEvent")
                .map(|t| (*t).to_owned())
                .collect(),
        };
        for t in &types {
            access.require(Permission::Update, t)?;
        }
        let mut done = 0;
        let mut after: Option<Position> = None;
        loop {
            let ctx = Arc::clone(&self.index);
            let (types, from) = (types.clone(), after.clone());
            let (count, last) = self
                .write_tx(move |tx| {
                    let page = tx.search(&SearchQuery {
                        types: types.clone(),
                        filter: Filter::And(Vec::new()),
                        sort: Vec::new(),
                        position: from.clone(),
                        limit: PAGE,
                    })?;
                    let keys: Vec<i64> = page
                        .iter()
                        .map(|r| resource_lock_key(&r.res_type, &r.res_id))
                        .collect();
                    super::create::lock_all(tx, keys)?;
                    // Read again under the locks: the content a concurrent writer committed.
                    let current = tx.current_many(
                        &page
                            .iter()
                            .map(|r| ResourceKey {
                                res_type: r.res_type.clone(),
                                res_id: r.res_id.clone(),
                            })
                            .collect::<Vec<_>>(),
                    )?;
                    for row in &current {
                        let resource: serde_json::Value = serde_json::from_str(&row.content)
                            .map_err(|e| {
                                ServiceError::Fault(format!("stored JSON unreadable: {e}"))
                            })?;
                        let rows = index::rows(&ctx, &row.res_type, &row.res_id, &resource);
                        tx.replace_index(&row.res_type, &row.res_id, &rows, false)?;
                    }
                    Ok((page.len(), page.last().map(Position::after)))
                })
                .await?;
            done += count;
            match last {
                Some(position) if count as i64 == PAGE => after = Some(position),
                _ => return Ok(done),
            }
        }
    }
}
