//! The profiles Healthbook ships (`fhir-profiles/vn/`) are StructureDefinition resources of
//! the store, so that `GET [base]/StructureDefinition/vn-core-patient` and a search by
//! `url` serve them (issue: "GET /fhir/StructureDefinition/… serves the ones we ship").
//! They are written at start when missing or different from the shipped text, as a new
//! version (their history shows each change of the rules). The OperationDefinitions of the
//! named queries (search.html#query) are installed the same way.

use std::sync::Arc;

use serde_json::Value;

use super::super::index::resource_lock_key;
use super::super::update::put;
use super::super::{validated, Access, Service, ServiceError};

impl Service {
    /// Writes each shipped StructureDefinition and OperationDefinition that is missing or
    /// changed; returns how many were written.
    ///
    /// # Errors
    /// Store failures; a shipped definition that is not a valid resource (a bug).
    pub async fn install_profiles(&self) -> Result<usize, ServiceError> {
        let mut profiles = Vec::new();
        let shipped = fhir_profiles::shipped_profiles()
            .into_iter()
            .chain(fhir_profiles::shipped_named_queries())
            .chain(fhir_profiles::shipped_operations());
        for text in shipped {
            let sd = fhir_format::parse_json(text.as_bytes())?;
            validated(&self.validator, &sd, &[])?;
            profiles.push(sd);
        }
        let ctx = Arc::clone(&self.index);
        self.write_tx(move |tx| {
            let mut written = 0;
            for sd in &profiles {
                let res_type = sd["resourceType"].as_str().unwrap_or_default();
                let id = sd["id"].as_str().unwrap_or_default();
                tx.lock(resource_lock_key(res_type, id))?;
                let current = tx
                    .current(res_type, id)?
                    .filter(|r| !r.deleted)
                    .and_then(|r| r.content)
                    .and_then(|c| serde_json::from_str::<Value>(&c).ok());
                if current.is_some_and(|c| without_meta(&c) == without_meta(sd)) {
                    continue;
                }
                put(tx, &ctx, &Access::Open, (res_type, id), sd, None, "PUT")?;
                written += 1;
            }
            Ok(written)
        })
        .await
    }
}

fn without_meta(resource: &Value) -> Value {
    let mut copy = resource.clone();
    if let Some(o) = copy.as_object_mut() {
        o.remove("meta");
    }
    copy
}
