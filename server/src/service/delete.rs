//! FHIR delete and conditional delete — https://hl7.org/fhir/R4/http.html#delete,
//! https://hl7.org/fhir/R4/http.html#cdelete

use super::index::resource_lock_key;
use super::search_parameters::Registry;
use super::stored::now_ms;
use super::{
    ensure_id, ensure_mutable, ensure_type, outside_compartment, Access, Criteria, Service,
    ServiceError, StoredResource,
};
use crate::auth::Permission;
use crate::service::ErrorCode;
use crate::store::{IndexRows, NewResourceVersion, StoreError, Tx};

impl Service {
    /// Deletes `res_type/id`, leaving a version that records the deletion; a later read is
    /// 410 Gone. Deleting what does not exist or is already deleted succeeds and changes
    /// nothing (http.html#delete). Returns the version id of the deletion, if one was made.
    ///
    /// # Errors
    /// 404 for an unknown type, store failures.
    pub async fn delete(
        &self,
        access: &Access,
        res_type: String,
        id: String,
    ) -> Result<Option<i64>, ServiceError> {
        check_delete(access, &res_type)?;
        ensure_id(&id)?;
        let access = access.clone();
        let parameters = self.index.parameters.clone();
        self.write_tx(move |tx| remove(tx, &parameters, &access, &res_type, &id))
            .await
    }

    /// Deletes the one resource matching `criteria` (none: nothing to do; several: 412,
    /// http.html#cdelete).
    ///
    /// # Errors
    /// 400 for bad criteria, 412 for several matches, store failures.
    pub async fn conditional_delete(
        &self,
        access: &Access,
        res_type: String,
        criteria: String,
    ) -> Result<Option<i64>, ServiceError> {
        check_delete(access, &res_type)?;
        let criteria = Criteria::parse(&self.parse_context(), &res_type, &criteria)?;
        let access = access.clone();
        let parameters = self.index.parameters.clone();
        self.write_tx(move |tx| {
            super::create::lock_all(tx, criteria.lock_keys())?;
            match delete_target(&criteria.matches(tx, &access)?)? {
                None => Ok(None),
                Some(id) => remove(tx, &parameters, &access, &res_type, &id),
            }
        })
        .await
    }
}

/// What a delete needs before any work: a known, changeable type and the scope letter `d`.
pub(super) fn check_delete(access: &Access, res_type: &str) -> Result<(), ServiceError> {
    ensure_type(res_type)?;
    ensure_mutable(res_type)?;
    access.require(Permission::Delete, res_type)
}

/// The resource a conditional delete removes (http.html#cdelete): none, the one found,
/// or 412 when several match.
pub(super) fn delete_target(found: &[String]) -> Result<Option<String>, ServiceError> {
    match found {
        [] => Ok(None),
        [id] => Ok(Some(id.clone())),
        several => Err(ServiceError::new(
            ErrorCode::MultipleMatches,
            format!(
                "The criteria match {} resources; a conditional delete removes at most one.",
                several.len()
            ),
        )),
    }
}

/// Records the deletion of (type, id) when it exists and the token may delete it.
pub(super) fn remove(
    tx: &mut Tx<'_>,
    parameters: &Registry,
    access: &Access,
    res_type: &str,
    id: &str,
) -> Result<Option<i64>, ServiceError> {
    tx.lock(resource_lock_key(res_type, id))?;
    super::qr::grant::ensure_not_recorded(tx, res_type, id)?;
    let Some(current) = tx.current(res_type, id)?.filter(|r| !r.deleted) else {
        return Ok(None);
    };
    if let Access::Token(..) = access {
        let existing = StoredResource::from(current.clone()).json()?;
        if !access.permits(Permission::Delete, &existing) {
            return Err(access.refusal(Permission::Delete, &existing, outside_compartment()));
        }
    }
    if !tx.retire(res_type, id, current.version_id)? {
        return Err(StoreError::Conflict(
            "the resource was changed by a concurrent request".into(),
        )
        .into());
    }
    let version_id = current.version_id + 1;
    tx.insert(&NewResourceVersion {
        res_type: res_type.to_owned(),
        res_id: id.to_owned(),
        version_id,
        is_current: true,
        deleted: true,
        method: "DELETE".to_owned(),
        last_updated: now_ms(),
        content: None,
    })?;
    tx.replace_index(res_type, id, &IndexRows::default(), false)?;
    parameters.touched(res_type);
    Ok(Some(version_id))
}
