//! FHIR read and vread — https://hl7.org/fhir/R4/http.html#read,
//! https://hl7.org/fhir/R4/http.html#vread
//!
//! A resource the token may not see is 404, exactly as if it did not exist; a deleted one
//! is 410 only for those who could see its last content.

use super::{ensure_id, ensure_type, Access, Service, ServiceError, StoredResource};
use crate::auth::Permission;
use crate::store::{ResourceRow, StoreError, Tx};

impl Service {
    /// The current version of a resource.
    ///
    /// # Errors
    /// 403 without a read scope for the type, 404 for an unknown (or hidden) type or id,
    /// 410 when the resource was deleted.
    pub async fn read(
        &self,
        access: &Access,
        res_type: String,
        id: String,
    ) -> Result<StoredResource, ServiceError> {
        ensure_type(&res_type)?;
        ensure_id(&id)?;
        access.require(Permission::Read, &res_type)?;
        let (t, i) = (res_type.clone(), id.clone());
        let found = self
            .read_tx(move |tx| {
                let row = tx.current(&t, &i)?;
                with_last_content(tx, row)
            })
            .await?;
        present(access, found, &res_type, &id)
    }

    /// One version of a resource (http.html#vread). A version that records a deletion is
    /// 410 Gone.
    ///
    /// # Errors
    /// 403 without a read scope, 404 for an unknown (or hidden) type, id or version, 410
    /// for a deletion.
    pub async fn vread(
        &self,
        access: &Access,
        res_type: String,
        id: String,
        version: String,
    ) -> Result<StoredResource, ServiceError> {
        ensure_type(&res_type)?;
        ensure_id(&id)?;
        access.require(Permission::Read, &res_type)?;
        let version_id: i64 =
            version.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                ServiceError::not_found(format!("There is no version '{version}'."))
            })?;
        let (t, i) = (res_type.clone(), id.clone());
        let found = self
            .read_tx(move |tx| {
                let row = tx.version(&t, &i, version_id)?;
                with_last_content(tx, row)
            })
            .await?;
        present(access, found, &res_type, &id)
    }
}

/// A version, and for a deletion the version before it, whose content decides who may
/// learn that the resource existed.
type Found = Option<(StoredResource, Option<StoredResource>)>;

fn with_last_content(tx: &mut Tx<'_>, row: Option<ResourceRow>) -> Result<Found, StoreError> {
    let Some(row) = row else { return Ok(None) };
    let previous = if row.deleted && row.version_id > 1 {
        tx.version(&row.res_type, &row.res_id, row.version_id - 1)?
            .map(Into::into)
    } else {
        None
    };
    Ok(Some((row.into(), previous)))
}

fn present(
    access: &Access,
    found: Found,
    res_type: &str,
    id: &str,
) -> Result<StoredResource, ServiceError> {
    let not_found = || ServiceError::not_found(format!("{res_type}/{id} is not known."));
    let Some((version, previous)) = found else {
        return Err(not_found());
    };
    let shown = if version.deleted {
        previous.as_ref()
    } else {
        Some(&version)
    };
    match (access, shown) {
        (Access::Open, _) => {}
        (_, Some(r)) => {
            let content = r.json()?;
            if !access.permits(Permission::Read, &content) {
                return Err(access.refusal(Permission::Read, &content, not_found()));
            }
        }
        (_, None) => return Err(not_found()),
    }
    if version.deleted {
        return Err(ServiceError::gone(res_type, id));
    }
    Ok(version)
}
