//! FHIR read and vread — https://hl7.org/fhir/R4/http.html#read,
//! https://hl7.org/fhir/R4/http.html#vread

use super::{ensure_id, ensure_type, Service, ServiceError, StoredResource};

impl Service {
    /// The current version of a resource.
    ///
    /// # Errors
    /// 404 for an unknown type or id, 410 when the resource was deleted.
    pub async fn read(&self, res_type: String, id: String) -> Result<StoredResource, ServiceError> {
        ensure_type(&res_type)?;
        ensure_id(&id)?;
        let row = self
            .read_tx({
                let (t, i) = (res_type.clone(), id.clone());
                move |tx| tx.current(&t, &i)
            })
            .await?;
        present(row.map(Into::into), &res_type, &id)
    }

    /// One version of a resource (http.html#vread). A version that records a deletion is
    /// 410 Gone.
    ///
    /// # Errors
    /// 404 for an unknown type, id or version, 410 for a deletion.
    pub async fn vread(
        &self,
        res_type: String,
        id: String,
        version: String,
    ) -> Result<StoredResource, ServiceError> {
        ensure_type(&res_type)?;
        ensure_id(&id)?;
        let version_id: i64 =
            version.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                ServiceError::NotFound(format!("There is no version '{version}'."))
            })?;
        let row = self
            .read_tx({
                let (t, i) = (res_type.clone(), id.clone());
                move |tx| tx.version(&t, &i, version_id)
            })
            .await?;
        present(row.map(Into::into), &res_type, &id)
    }
}

fn present(
    found: Option<StoredResource>,
    res_type: &str,
    id: &str,
) -> Result<StoredResource, ServiceError> {
    match found {
        None => Err(ServiceError::NotFound(format!(
            "{res_type}/{id} is not known."
        ))),
        Some(r) if r.deleted => Err(ServiceError::Gone {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
        }),
        Some(r) => Ok(r),
    }
}
