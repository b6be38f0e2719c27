//! FHIR patch — https://hl7.org/fhir/R4/http.html#patch
//!
//! Two patch formats: JSON Patch (RFC 6902, `application/json-patch+json`) and FHIRPath
//! Patch (a Parameters resource, https://hl7.org/fhir/R4/fhirpatch.html). The patched
//! resource goes through the same strict checks as a created one; a patch that would
//! produce an invalid resource, change the id or the type, or whose JSON Patch `test`
//! fails is 422 and writes nothing.

mod fhirpath;

use crate::service::ErrorCode;
use std::sync::Arc;

use serde_json::Value;

use super::create::{identifier_keys, lock_all};
use super::index::resource_lock_key;
use super::index::IndexContext;
use super::update::put;
use super::validate::Validator;
use super::{
    ensure_id, ensure_mutable, ensure_type, outside_compartment, validated, Access, Service,
    ServiceError, Written,
};
use crate::auth::Permission;
use crate::store::Tx;

/// A parsed patch document.
#[derive(Debug, Clone)]
pub enum Patch {
    /// RFC 6902 operations.
    Json(json_patch::Patch),
    /// The operations of a FHIRPath Patch Parameters resource.
    FhirPath(Vec<fhirpath::Operation>),
}

impl Patch {
    /// Reads a JSON Patch document.
    ///
    /// # Errors
    /// 400 when the body is not a JSON Patch array of operations.
    pub fn json_patch(body: &[u8]) -> Result<Self, ServiceError> {
        serde_json::from_slice(body).map(Patch::Json).map_err(|e| {
            ServiceError::new(
                ErrorCode::PatchDocument,
                format!("The body is not a valid JSON Patch document: {e}."),
            )
        })
    }

    /// Reads a FHIRPath Patch from a (strictly parsed) Parameters resource.
    ///
    /// # Errors
    /// 400 when the Parameters do not describe FHIRPath Patch operations.
    pub fn fhirpath_patch(parameters: &Value) -> Result<Self, ServiceError> {
        if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(ServiceError::new(
                ErrorCode::PatchDocument,
                "A FHIRPath Patch is a Parameters resource (fhirpatch.html).",
            ));
        }
        fhirpath::parse(parameters).map(Patch::FhirPath)
    }

    /// Applies the patch to `resource`: all of it, or (on an error) none of it.
    ///
    /// # Errors
    /// 422 when an operation cannot be applied (a path that is not there, a test that
    /// fails).
    pub fn apply(&self, resource: &mut Value) -> Result<(), ServiceError> {
        match self {
            Patch::Json(patch) => {
                // json-patch's own all-or-nothing (`patch`) undoes the applied operations
                // on a failure, and its undo panics on some documents (found by fuzzing:
                // an add to `/name/0/given/-` followed by a failing move); a copy is
                // patched instead and kept only when every operation applied.
                let mut patched = resource.clone();
                json_patch::patch_unsafe(&mut patched, patch).map_err(|e| {
                    ServiceError::Refused {
                        code: ErrorCode::PatchFailed,
                        message: format!("The JSON Patch cannot be applied: {e}."),
                        path: None,
                    }
                })?;
                *resource = patched;
                Ok(())
            }
            Patch::FhirPath(operations) => {
                for (i, operation) in operations.iter().enumerate() {
                    operation
                        .apply(resource)
                        .map_err(|message| ServiceError::Refused {
                            code: ErrorCode::PatchFailed,
                            message,
                            path: Some(format!("Parameters.parameter[{i}]")),
                        })?;
                }
                Ok(())
            }
        }
    }
}

impl Service {
    /// Applies `patch` to the current version of `res_type/id` and stores the result as
    /// the next version.
    ///
    /// # Errors
    /// 404/410 for a missing or deleted resource, 412 on a stale `if_match`, 422 when the
    /// patch cannot be applied or its result is invalid.
    pub async fn patch(
        &self,
        access: &Access,
        res_type: String,
        id: String,
        patch: Patch,
        if_match: Option<i64>,
    ) -> Result<Written, ServiceError> {
        check_patch(access, &res_type, &id)?;
        let access = access.clone();
        let ctx = Arc::clone(&self.index);
        let validator = Arc::clone(&self.validator);
        self.write_tx(move |tx| {
            let ctx = (ctx.as_ref(), validator.as_ref());
            apply_patch(tx, ctx, &access, (&res_type, &id), &patch, if_match)
        })
        .await
    }
}

/// What a patch needs before any work: a known, changeable type, a valid id and the scope
/// letter `u`.
pub(super) fn check_patch(access: &Access, res_type: &str, id: &str) -> Result<(), ServiceError> {
    ensure_type(res_type)?;
    ensure_mutable(res_type)?;
    ensure_id(id)?;
    access.require(Permission::Update, res_type)
}

/// Applies `patch` to the current version of (type, id) and writes the result as the next
/// version, in `tx`.
pub(super) fn apply_patch(
    tx: &mut Tx<'_>,
    (ctx, validator): (&IndexContext, &Validator),
    access: &Access,
    (res_type, id): (&str, &str),
    patch: &Patch,
    if_match: Option<i64>,
) -> Result<Written, ServiceError> {
    tx.lock(resource_lock_key(res_type, id))?;
    super::qr::grant::ensure_not_recorded(tx, res_type, id)?;
    let content = match tx.current(res_type, id)? {
        None => {
            return Err(ServiceError::not_found(format!(
                "{res_type}/{id} is not known."
            )))
        }
        Some(row) if row.deleted => return Err(ServiceError::gone(res_type, id)),
        Some(row) => row.content.unwrap_or_default(),
    };
    let mut resource: Value = serde_json::from_str(&content)
        .map_err(|e| ServiceError::Fault(format!("stored JSON unreadable: {e}")))?;
    patch.apply(&mut resource)?;
    if resource.get("id").and_then(Value::as_str) != Some(id)
        || resource.get("resourceType").and_then(Value::as_str) != Some(res_type)
    {
        return Err(ServiceError::Refused {
            code: ErrorCode::PatchFailed,
            message: "A patch cannot change the resource's id or type.".into(),
            path: Some(format!("{res_type}.id")),
        });
    }
    let patched = fhir_format::normalize(resource).map_err(|e| ServiceError::Refused {
        code: ErrorCode::PatchFailed,
        message: format!("The patched resource is not valid: {}", e.message),
        path: e.path,
    })?;
    // The patch may add identifiers: take their locks too (after the resource's, in the
    // same order every writer uses, so no two writers deadlock for long).
    lock_all(tx, identifier_keys(res_type, &patched))?;
    super::qr::grant::ensure_unmarked(res_type, &patched)?;
    if !access.permits(Permission::Update, &patched) {
        return Err(access.refusal(Permission::Update, &patched, outside_compartment()));
    }
    let profiles =
        super::validate::posted_profiles(tx, &super::validate::posted_profile_urls(&patched))?;
    let issues = validated(validator, &patched, &profiles)?;
    let mut written = put(tx, ctx, access, (res_type, id), &patched, if_match, "PATCH")?;
    written.issues = issues;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Value {
        serde_json::json!({"resourceType": "Patient", "id": "p", "active": true,
            "name": [{"family": "Nguyễn", "given": ["An", "Văn"]}, {"text": "An"}],
            "birthDate": "1990-01-02", "contact": [{"name": {"family": "Trần"}}]})
    }

    /// Found by the `patch` fuzz target (fuzz/README.md).
    #[test]
    fn json_patches_found_by_fuzzing_are_answered() {
        let documents = [
            r#"[{"op":"move","from":"/name/0","path":"/name/5"}]"#,
            r#"[{"op":"replace","path":"/active","value":false},{"op":"add","path":"/name/0/given/-","value":"B"},{"op":"remove","path":"/contact"},{"op":"test","path":"/id","value":"p"},{"op":"move","from":"/name/0","path":"/name/5"},{"op":"copy","from":"/b,irthDate","path":"/deceasedDateTime"}]"#,
        ];
        for body in documents {
            let patch = Patch::json_patch(body.as_bytes()).expect("a JSON Patch");
            let mut resource = patient();
            assert!(patch.apply(&mut resource).is_err(), "{body}");
            assert_eq!(resource, patient(), "a failed patch changed nothing");
        }
    }
}
