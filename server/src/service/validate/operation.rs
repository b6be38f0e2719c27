//! `$validate` — https://hl7.org/fhir/R4/resource-operation-validate.html
//!
//! `[type]/$validate` and `[type]/[id]/$validate`: the same checks as a write, without
//! writing. Invalid content is an answer, not a failure: the issues come back in a 200
//! OperationOutcome ("a 4xx or 5xx error means that the validation itself could not be
//! performed"). Modes: `create` (default), `update` (the id must be the URL's), `delete`
//! (the resource must exist and be deletable). `profile` names a profile to validate
//! against besides those that apply anyway.

use crate::service::ErrorCode;
use serde_json::Value;

use super::vn::Profile;
use super::{posted_profile_urls, posted_profiles, Issue, Severity};
use crate::auth::Permission;
use crate::service::stored::now_ms;
use crate::service::{ensure_id, ensure_type, Access, Service, ServiceError};

/// `mode` of `$validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
    Delete,
}

impl Mode {
    /// The resource-validation-mode code.
    ///
    /// # Errors
    /// 400 for another code.
    pub fn parse(code: &str) -> Result<Self, ServiceError> {
        match code {
            "create" => Ok(Mode::Create),
            "update" => Ok(Mode::Update),
            "delete" => Ok(Mode::Delete),
            _ => Err(ServiceError::at(
                ErrorCode::OperationParameter,
                "mode",
                "mode is create, update or delete (resource-validation-mode).",
            )),
        }
    }
}

/// What `$validate` was asked.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    pub res_type: String,
    /// The instance, for `[type]/[id]/$validate`.
    pub id: Option<String>,
    /// The resource to check (not needed for `delete`).
    pub resource: Option<Value>,
    pub mode: Option<Mode>,
    pub profile: Option<String>,
}

impl Service {
    /// The issues `request` raises (errors first); none means valid.
    ///
    /// # Errors
    /// 404 for an unknown type (or an unknown or hidden instance), 400 when there is
    /// nothing to validate, 403 without a read scope on the type.
    pub async fn validate(
        &self,
        access: &Access,
        request: ValidateRequest,
    ) -> Result<Vec<Issue>, ServiceError> {
        let ValidateRequest {
            res_type,
            id,
            resource,
            mode,
            profile,
        } = request;
        ensure_type(&res_type)?;
        if let Some(id) = &id {
            ensure_id(id)?;
        }
        access.require(Permission::Read, &res_type)?;
        let mode = mode.unwrap_or(if id.is_some() {
            Mode::Update
        } else {
            Mode::Create
        });
        if mode == Mode::Delete {
            let Some(id) = id else {
                return Err(ServiceError::at(
                    ErrorCode::OperationParameter,
                    "mode",
                    "mode=delete validates the deletion of an instance: [type]/[id]/$validate.",
                ));
            };
            self.read(access, res_type.clone(), id).await?;
            return Ok(if res_type == "AuditEvent" {
                vec![Issue::error(
                    "business-rule",
                    "HB-IMMUTABLE",
                    "AuditEvent",
                    "AuditEvents are a permanent record; they cannot be deleted.",
                    "AuditEvent là hồ sơ lưu vết vĩnh viễn, không thể xóa.",
                )]
            } else {
                Vec::new()
            });
        }
        let resource = resource.ok_or_else(|| {
            ServiceError::at(
                ErrorCode::OperationParameter,
                "resource",
                "There is no resource to validate.",
            )
        })?;
        let mut issues = Vec::new();
        let resource = match fhir_format::normalize(resource.clone()) {
            Ok(r) => r,
            Err(e) => {
                // The structural error, and the base issues of the JSON as sent (they
                // locate missing elements the parser names without a place).
                let mut found = vec![Issue::error(
                    "structure",
                    "HB-STRUCTURE",
                    e.path.clone().unwrap_or_else(|| res_type.clone()),
                    e.message.clone(),
                    format!("Cấu trúc không hợp lệ: {}", e.message_vi),
                )];
                super::base::check(&resource, &mut found);
                return Ok(found);
            }
        };
        if resource.get("resourceType").and_then(Value::as_str) != Some(res_type.as_str()) {
            issues.push(Issue::error(
                "invalid",
                "HB-TYPE",
                "resourceType",
                format!("The resource is not a {res_type}."),
                format!("Tài nguyên không phải là {res_type}."),
            ));
        }
        if mode == Mode::Update {
            let body_id = resource.get("id").and_then(Value::as_str);
            if body_id.is_none() || (id.is_some() && body_id != id.as_deref()) {
                issues.push(Issue::error(
                    "invalid",
                    "HB-ID",
                    format!("{res_type}.id"),
                    "An update needs the resource's id, equal to the id in the URL.",
                    "Khi cập nhật, tài nguyên phải có id trùng với id trong URL.",
                ));
            }
        }
        // A profile asked for: one implemented in code, or a StructureDefinition of the
        // store (as are those the resource names in meta.profile).
        let asked = profile
            .as_deref()
            .map(|u| u.split('|').next().unwrap_or(u).to_owned());
        let named = asked.as_deref().and_then(|url| {
            [Profile::Patient, Profile::Immunization]
                .into_iter()
                .find(|p| p.url() == url)
        });
        let mut urls = posted_profile_urls(&resource);
        if let (Some(url), None) = (&asked, named) {
            urls.push(url.clone());
        }
        let posted = if urls.is_empty() {
            Vec::new()
        } else {
            self.read_tx(move |tx| posted_profiles(tx, &urls)).await?
        };
        if let (Some(url), None) = (&asked, named) {
            if !posted
                .iter()
                .any(|sd| sd["url"].as_str() == Some(url.as_str()))
            {
                issues.push(Issue::error(
                    "not-supported",
                    "HB-PROFILE-UNKNOWN",
                    "profile",
                    format!("The profile {url} is not known to this server."),
                    format!("Máy chủ không biết hồ sơ (profile) {url}."),
                ));
            }
        }
        issues.extend(
            self.validator
                .validate_against(&resource, now_ms(), named, &posted),
        );
        issues.sort_by_key(|i| i.severity == Severity::Warning);
        Ok(issues)
    }
}
