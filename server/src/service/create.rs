//! FHIR create and conditional create — https://hl7.org/fhir/R4/http.html#create,
//! https://hl7.org/fhir/R4/http.html#ccreate

use crate::service::ErrorCode;
use std::sync::Arc;

use serde_json::Value;

use super::index::{self, identifier_lock_key, IndexContext};
use super::stored::{now_ms, stamp};
use super::{
    ensure_body_type, ensure_type, outside_compartment, Access, Criteria, Service, ServiceError,
    StoredResource, Written,
};
use crate::auth::Permission;
use crate::store::{IndexRows, NewResourceVersion, Tx};

impl Service {
    /// Creates a resource with a server-assigned id. With `if_none_exist` criteria: no
    /// match creates, one match returns that resource unchanged (200), several fail (412).
    ///
    /// # Errors
    /// 404 for an unknown type, 400 for a body of another type or bad criteria, 412 for
    /// several matches, store failures.
    pub async fn create(
        &self,
        access: &Access,
        res_type: String,
        resource: Value,
        if_none_exist: Option<String>,
    ) -> Result<Written, ServiceError> {
        check_create(access, &res_type, &resource)?;
        let issues = self.validated(&resource).await?;
        let criteria = if_none_exist
            .as_deref()
            .map(|q| Criteria::parse(&self.parse_context(), &res_type, q))
            .transpose()?;
        if !access.permits(Permission::Create, &resource) {
            return Err(access.refusal(Permission::Create, &resource, outside_compartment()));
        }
        let access = access.clone();
        let ctx = Arc::clone(&self.index);
        self.write_tx(move |tx| {
            let mut keys = criteria
                .as_ref()
                .map(Criteria::lock_keys)
                .unwrap_or_default();
            keys.extend(identifier_keys(&res_type, &resource));
            lock_all(tx, keys)?;
            if let Some(existing) = criteria
                .as_ref()
                .map(|c| matched(tx, &access, c))
                .transpose()?
                .flatten()
            {
                return Ok(Written {
                    resource: existing,
                    created: false,
                    issues: Vec::new(),
                });
            }
            // http.html#create: an id in the body SHALL be ignored; the server assigns one.
            let id = uuid::Uuid::new_v4().to_string();
            let stored = insert_version(tx, &ctx, &res_type, &id, 1, "POST", &resource)?;
            if res_type == "Patient" {
                super::qr::grant::register(tx, &ctx, &access, &id)?;
            }
            Ok(Written {
                resource: stored,
                created: true,
                issues: issues.clone(),
            })
        })
        .await
    }
}

/// What a create needs before any work: a known type, a body of that type, and the scope
/// letter `c` (whether the content lies inside what the token may write is checked on the
/// final content).
pub(super) fn check_create(
    access: &Access,
    res_type: &str,
    resource: &Value,
) -> Result<(), ServiceError> {
    ensure_type(res_type)?;
    ensure_body_type(res_type, resource)?;
    super::qr::grant::ensure_unmarked(res_type, resource)?;
    access.require(Permission::Create, res_type)
}

/// The resource a conditional create's criteria find (http.html#ccreate): none, the one
/// (which the token must be allowed to read), or 412 when several match.
pub(super) fn matched(
    tx: &mut Tx<'_>,
    access: &Access,
    criteria: &Criteria,
) -> Result<Option<StoredResource>, ServiceError> {
    let found = criteria.matches(tx, access)?;
    match found.as_slice() {
        [] => Ok(None),
        [id] => {
            let row = tx.current(criteria.res_type(), id)?.ok_or_else(|| {
                ServiceError::Fault("a matched resource has no current version".into())
            })?;
            let existing = StoredResource::from(row);
            if !access.permits(Permission::Read, &existing.json()?) {
                return Err(outside_compartment());
            }
            Ok(Some(existing))
        }
        _ => Err(ServiceError::new(
            ErrorCode::MultipleMatches,
            format!(
                "The If-None-Exist criteria match {} resources; a conditional create needs at \
             most one.",
                found.len()
            ),
        )),
    }
}

/// The identifier lock keys of a resource about to be written.
pub(super) fn identifier_keys(res_type: &str, resource: &Value) -> Vec<i64> {
    index::identifier_values(resource)
        .into_iter()
        .map(|code| identifier_lock_key(res_type, code))
        .collect()
}

/// Takes every lock in a fixed order, so that two writers never wait on each other.
pub(super) fn lock_all(tx: &mut Tx<'_>, mut keys: Vec<i64>) -> Result<(), ServiceError> {
    keys.sort_unstable();
    keys.dedup();
    Ok(tx.lock_many(&keys)?)
}

/// Writes `resource` as version `version_id` of (type, id), current, with its index rows.
pub(super) fn insert_version(
    tx: &mut Tx<'_>,
    ctx: &IndexContext,
    res_type: &str,
    id: &str,
    version_id: i64,
    method: &str,
    resource: &Value,
) -> Result<StoredResource, ServiceError> {
    let (version, rows, stored) = new_version(ctx, (res_type, id, version_id), method, resource);
    super::references::require(tx, ctx, res_type, resource);
    tx.insert(&version)?;
    tx.replace_index(res_type, id, &rows, version_id == 1)?;
    Ok(stored)
}

/// Version `version_id` of (type, id) with `resource` as its content, as it will be stored:
/// the row, its index rows, and the stored resource.
pub(super) fn new_version(
    ctx: &IndexContext,
    (res_type, id, version_id): (&str, &str, i64),
    method: &str,
    resource: &Value,
) -> (NewResourceVersion, IndexRows, StoredResource) {
    let last_updated = now_ms();
    let content = stamp(resource, id, version_id, last_updated);
    let version = NewResourceVersion {
        res_type: res_type.to_owned(),
        res_id: id.to_owned(),
        version_id,
        is_current: true,
        deleted: false,
        method: method.to_owned(),
        last_updated,
        content: Some(content.clone()),
    };
    let rows = index::rows(ctx, res_type, id, resource);
    ctx.parameters.touched(res_type);
    let stored = StoredResource {
        res_type: version.res_type.clone(),
        id: version.res_id.clone(),
        version_id,
        last_updated,
        deleted: false,
        method: version.method.clone(),
        content: Some(content),
    };
    (version, rows, stored)
}
