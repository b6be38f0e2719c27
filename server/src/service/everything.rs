//! Patient/$everything — https://hl7.org/fhir/R4/patient-operation-everything.html
//!
//! The Patient, every resource in its compartment (compartmentdefinition-patient.html),
//! and the resources those refer to outside any Patient compartment (Practitioner,
//! Organization, Location, Medication...), as a `searchset` Bundle paged like a search
//! (keyset `next` links; `_count`), narrowed by `_since` (changed at or after an instant)
//! and `_type`. An unknown patient, or one the token may not see, is 404. The type-level
//! `Patient/$everything` pages through every patient's record (for backend services).
//!
//! Access: the same decision as search — the types the token may search, each narrowed
//! by what the token may see; nothing from another person's compartment is ever included
//! by reference, since included resources are never of a compartment type.

use super::search::{SearchRequest, SearchScope};
use super::{Access, Service, ServiceError, StoredResource};

impl Service {
    /// `$everything` of `patient` (of every patient when `None`): the patient read (for
    /// the audit record) and the `searchset` Bundle (JSON).
    ///
    /// # Errors
    /// 404 for an unknown or hidden patient, 410 for a deleted one, 400 for malformed
    /// parameters, 403 without the scopes.
    pub async fn everything(
        &self,
        access: &Access,
        patient: Option<String>,
        params: Vec<(String, String)>,
        strict: bool,
    ) -> Result<(Option<StoredResource>, String), ServiceError> {
        let subject = match &patient {
            Some(id) => Some(self.read(access, "Patient".to_owned(), id.clone()).await?),
            None => None,
        };
        let request = SearchRequest {
            scope: SearchScope::Everything { patient },
            params,
            strict,
        };
        let bundle = self.search(access, request).await?;
        Ok((subject, bundle))
    }
}
