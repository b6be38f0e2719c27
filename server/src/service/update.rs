//! FHIR update and conditional update — https://hl7.org/fhir/R4/http.html#update,
//! https://hl7.org/fhir/R4/http.html#cond-update

use crate::service::ErrorCode;
use std::sync::Arc;

use serde_json::Value;

use super::create::{identifier_keys, insert_version, lock_all};
use super::index::{resource_lock_key, IndexContext};
use super::stored::is_valid_id;
use super::{
    ensure_body_type, ensure_mutable, ensure_type, outside_compartment, Access, Criteria, Service,
    ServiceError, StoredResource, Written,
};
use crate::auth::Permission;
use crate::store::Tx;

impl Service {
    /// Updates (or, with a new id, creates) `res_type/id`. `if_match` is the version the
    /// client last saw (http.html#concurrency): another current version is a 412.
    ///
    /// # Errors
    /// 400 when the body's id is missing or differs from the URL's (a SHALL of
    /// http.html#update), 412 on a stale `if_match`, store failures.
    pub async fn update(
        &self,
        access: &Access,
        res_type: String,
        id: String,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Written, ServiceError> {
        check_update(access, &res_type, &id, &resource)?;
        writable(access, &resource)?;
        let issues = self.validated(&resource).await?;
        let access = access.clone();
        let ctx = Arc::clone(&self.index);
        let mut written = self
            .write_tx(move |tx| {
                let mut keys = identifier_keys(&res_type, &resource);
                keys.push(resource_lock_key(&res_type, &id));
                lock_all(tx, keys)?;
                put(
                    tx,
                    &ctx,
                    &access,
                    (&res_type, &id),
                    &resource,
                    if_match,
                    "PUT",
                )
            })
            .await?;
        written.issues = issues;
        Ok(written)
    }

    /// Updates the one resource matching `criteria`, creates one when none matches, and
    /// fails with 412 when several match (http.html#cond-update).
    ///
    /// # Errors
    /// 400 for bad criteria or a body id that is not the matched one, 412 for several
    /// matches, store failures.
    pub async fn conditional_update(
        &self,
        access: &Access,
        res_type: String,
        criteria: String,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Written, ServiceError> {
        check_conditional_update(access, &res_type, &resource)?;
        let criteria = Criteria::parse(&self.parse_context(), &res_type, &criteria)?;
        writable(access, &resource)?;
        let issues = self.validated(&resource).await?;
        let access = access.clone();
        let body_id = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ctx = Arc::clone(&self.index);
        let mut written = self
            .write_tx(move |tx| {
                let mut keys = criteria.lock_keys();
                keys.extend(identifier_keys(&res_type, &resource));
                lock_all(tx, keys)?;
                let found = criteria.matches(tx, &access)?;
                let id = conditional_target(&res_type, &found, body_id.as_deref())?;
                tx.lock(resource_lock_key(&res_type, &id))?;
                put(
                    tx,
                    &ctx,
                    &access,
                    (&res_type, &id),
                    &resource,
                    if_match,
                    "PUT",
                )
            })
            .await?;
        written.issues = issues;
        Ok(written)
    }
}

/// What an update needs before any work (http.html#update): a known, changeable type, a
/// body of that type whose id is the URL's (a SHALL), and the scope letter `u`.
pub(super) fn check_update(
    access: &Access,
    res_type: &str,
    id: &str,
    resource: &Value,
) -> Result<(), ServiceError> {
    ensure_type(res_type)?;
    ensure_mutable(res_type)?;
    ensure_body_type(res_type, resource)?;
    access.require(Permission::Update, res_type)?;
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(ServiceError::at(
                ErrorCode::ResourceId,
                format!("{res_type}.id"),
                format!("The body's id '{body_id}' differs from the id in the URL '{id}'."),
            ))
        }
        None => {
            return Err(ServiceError::at(
                ErrorCode::ResourceId,
                format!("{res_type}.id"),
                "An update needs the resource's id in the body, equal to the id in the URL.",
            ))
        }
    }
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ServiceError::at(
            ErrorCode::ResourceId,
            format!("{res_type}.id"),
            "The id is not a valid FHIR id (1-64 characters A-Z a-z 0-9 - .).",
        ))
    }
}

/// What a conditional update needs before any work (http.html#cond-update).
pub(super) fn check_conditional_update(
    access: &Access,
    res_type: &str,
    resource: &Value,
) -> Result<(), ServiceError> {
    ensure_type(res_type)?;
    ensure_mutable(res_type)?;
    ensure_body_type(res_type, resource)?;
    access.require(Permission::Update, res_type)?;
    match resource.get("id").and_then(Value::as_str) {
        Some(id) if !is_valid_id(id) => Err(ServiceError::at(
            ErrorCode::ResourceId,
            format!("{res_type}.id"),
            format!("'{id}' is not a valid FHIR id."),
        )),
        _ => Ok(()),
    }
}

/// The id a conditional update writes (http.html#cond-update): none found, the body's id
/// or a new one; one found, that one (a different body id is a 400); several, 412.
pub(super) fn conditional_target(
    res_type: &str,
    found: &[String],
    body_id: Option<&str>,
) -> Result<String, ServiceError> {
    match (found, body_id) {
        ([], Some(id)) => Ok(id.to_owned()),
        ([], None) => Ok(uuid::Uuid::new_v4().to_string()),
        ([matched], Some(id)) if matched != id => Err(ServiceError::at(
            ErrorCode::ResourceId,
            format!("{res_type}.id"),
            "The body's id is not the id of the resource the criteria match.",
        )),
        ([matched], _) => Ok(matched.clone()),
        (several, _) => Err(ServiceError::new(
            ErrorCode::MultipleMatches,
            format!(
                "The criteria match {} resources; a conditional update needs at most one.",
                several.len()
            ),
        )),
    }
}

/// Writes the next version of (type, id), or version 1 when it does not exist.
pub(super) fn put(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    access: &Access,
    (res_type, id): (&str, &str),
    resource: &Value,
    if_match: Option<i64>,
    method: &str,
) -> Result<Written, ServiceError> {
    super::qr::grant::ensure_unmarked(res_type, resource)?;
    super::qr::grant::ensure_not_recorded(tx, res_type, id)?;
    let current = tx.current(res_type, id)?;
    if let (Access::Token(..), Some(row)) = (access, current.as_ref().filter(|r| !r.deleted)) {
        let existing = StoredResource::from(row.clone()).json()?;
        if !access.permits(Permission::Update, &existing) {
            return Err(access.refusal(Permission::Update, &existing, outside_compartment()));
        }
    }
    if let Some(expected) = if_match {
        let actual = current
            .as_ref()
            .filter(|r| !r.deleted)
            .map(|r| r.version_id);
        if actual != Some(expected) {
            return Err(ServiceError::new(
                ErrorCode::VersionConflict,
                match actual {
                    Some(v) => {
                        format!(
                            "If-Match names version {expected}, but the current version is {v}."
                        )
                    }
                    None => format!(
                        "If-Match names version {expected}, but {res_type}/{id} does not exist."
                    ),
                },
            ));
        }
    }
    let (version_id, created) = match &current {
        None => (1, true),
        Some(row) => {
            if !tx.retire(res_type, id, row.version_id)? {
                return Err(crate::store::StoreError::Conflict(
                    "the resource was changed by a concurrent request".into(),
                )
                .into());
            }
            (row.version_id + 1, row.deleted)
        }
    };
    let stored = insert_version(tx, ctx, res_type, id, version_id, method, resource)?;
    Ok(Written {
        resource: stored,
        created,
        issues: Vec::new(),
    })
}

/// The scope letter `u` on the type, and the new content inside what the token may write.
pub(super) fn writable(access: &Access, resource: &Value) -> Result<(), ServiceError> {
    let res_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    access.require(Permission::Update, res_type)?;
    if access.permits(Permission::Update, resource) {
        Ok(())
    } else {
        Err(access.refusal(Permission::Update, resource, outside_compartment()))
    }
}
