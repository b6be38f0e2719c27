//! The access decision: one place that says what a request may read, list and write —
//! SMART App Launch scopes (scopes-and-launch-context.html) and the Patient compartment
//! (compartmentdefinition-patient.html).
//!
//! - Every interaction needs a scope letter on its type: `c` create, `r` read / vread /
//!   instance history, `u` update / patch, `d` delete, `s` search / type and system history.
//! - `patient/` scopes open only the compartment of the token's `patient`: a resource is in
//!   it when one of the compartment's search parameters for its type references that
//!   Patient (or it is that Patient). Reads of other resources are 404, so that existence is
//!   not revealed; writes outside the compartment are 403.
//! - `user/` scopes: with `access.practitioner = "open"`, any record. With `"qr"` (the
//!   personal-QR rule, docs/QR.md), a practitioner sees and writes a person's compartment
//!   only under an access grant in force ([`Reach::Granted`]: a scan of the person's QR, an
//!   emergency access, or having registered the person: a new Patient may always be
//!   created); resources of types outside the Patient compartment
//!   (Organization, Practitioner, Medication...) stay open. Reads of a record without a
//!   grant are 403 `HB-QR-SCAN-REQUIRED`; searches, chains, `_has`, includes, bundles and
//!   `$everything` only ever reach the granted compartments. A user whose `fhirUser` is a
//!   Patient reaches their own compartment.
//! - `system/` scopes: the backend client's registered policy, all records.
//! - Granular scopes (`?category=...`) are honoured for token parameters: the resource must
//!   carry the token.
//!
//! With `auth.mode = none` every request is [`Access::Open`].

use std::sync::Arc;

use serde_json::Value;

use super::fhirpath;
use super::ServiceError;
use crate::auth::{Permission, Principal, ScopeContext};
use crate::store::{Cond, Filter, Table};

/// What a request may do.
#[derive(Debug, Clone)]
pub enum Access {
    /// No authentication configured (loopback development use).
    Open,
    /// A verified token, and how far its `user/` scopes reach into people's records.
    Token(Arc<Principal>, Reach),
}

/// How far `user/` scopes reach into people's records (Patient compartments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every record (`access.practitioner = "open"`).
    Everyone,
    /// Only the compartments of these Patients (`access.practitioner = "qr"`).
    Granted(Arc<Granted>),
}

/// The Patients whose compartments a user's grants in force open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Granted {
    /// Every granted Patient's id.
    pub patients: Vec<String>,
    /// Those granted by an emergency access (their audit records say so).
    pub emergency: Vec<String>,
    /// How long a grant this user gets while the request runs (registering a new Patient)
    /// lasts, in ms.
    pub grant_ms: i64,
}

impl Reach {
    /// Whether `user/` scopes reach `resource` (of `res_type`) for `permission`. A new
    /// Patient may always be registered (its registrant is granted its record as it is
    /// written: qr/grant.rs).
    fn reaches(&self, permission: Permission, resource: &Value, res_type: &str) -> bool {
        match self {
            Reach::Everyone => true,
            Reach::Granted(granted) => {
                !is_personal(res_type)
                    || (permission == Permission::Create && res_type == "Patient")
                    || granted
                        .patients
                        .iter()
                        .any(|p| in_patient_compartment(resource, res_type, p))
            }
        }
    }

    /// What a `user/` search of `res_type` must be narrowed to.
    fn filter(&self, res_type: &str) -> Option<Filter> {
        match self {
            Reach::Granted(granted) if is_personal(res_type) => {
                Some(compartments_of(&[res_type.to_owned()], &granted.patients))
            }
            _ => None,
        }
    }
}

/// Whether resources of `res_type` belong to people's records (the Patient compartment
/// has it), so that the personal-QR rule applies to them.
pub fn is_personal(res_type: &str) -> bool {
    res_type == "Patient" || fhir_profiles::patient_compartment_params(res_type).is_some()
}

impl Access {
    /// Whether any scope gives `permission` on `res_type` (before looking at data).
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] naming the scope that would be needed.
    pub fn require(&self, permission: Permission, res_type: &str) -> Result<(), ServiceError> {
        match self {
            Access::Open => Ok(()),
            Access::Token(p, _) => {
                let own_user = permission == Permission::Read
                    && fhir_user(p).is_some_and(|(user_type, _)| user_type == res_type);
                if own_user
                    || p.scopes
                        .grants
                        .iter()
                        .any(|g| g.allows(permission, res_type))
                {
                    Ok(())
                } else {
                    Err(ServiceError::Forbidden {
                        scope: format!("{res_type}.{}", permission.letter()),
                    })
                }
            }
        }
    }

    /// Whether some scope gives `permission` on some type (system-level interactions).
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] when none does.
    pub fn require_any(&self, permission: Permission) -> Result<(), ServiceError> {
        match self {
            Access::Open => Ok(()),
            Access::Token(p, _)
                if p.scopes
                    .grants
                    .iter()
                    .any(|g| g.allows_anywhere(permission)) =>
            {
                Ok(())
            }
            Access::Token(..) => Err(ServiceError::Forbidden {
                scope: format!("*.{}", permission.letter()),
            }),
        }
    }

    /// Whether this request may see (for reads) or change (for writes) `resource`.
    pub fn permits(&self, permission: Permission, resource: &Value) -> bool {
        let Access::Token(principal, reach) = self else {
            return true;
        };
        let res_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = resource.get("id").and_then(Value::as_str);
        if permission == Permission::Read
            && fhir_user(principal).is_some_and(|user| Some(user) == id.map(|id| (res_type, id)))
        {
            return true;
        }
        principal.scopes.grants.iter().any(|grant| {
            grant.allows(permission, res_type)
                && satisfies_constraint(resource, res_type, &grant.constraint)
                && match grant.context {
                    ScopeContext::System => true,
                    ScopeContext::User => reach.reaches(permission, resource, res_type),
                    ScopeContext::Patient => principal
                        .patient
                        .as_deref()
                        .is_some_and(|patient| in_patient_compartment(resource, res_type, patient)),
                }
        })
    }

    /// Why [`Access::permits`] said no to `resource`, as the answer to give: a practitioner
    /// whose scopes would allow it but who has no grant for the person is told to scan
    /// their QR (403 `HB-QR-SCAN-REQUIRED`); otherwise `hidden` (a 404 for reads, so that
    /// existence is not revealed; a 403 for writes).
    pub fn refusal(
        &self,
        permission: Permission,
        resource: &Value,
        hidden: ServiceError,
    ) -> ServiceError {
        let Access::Token(principal, Reach::Granted(_)) = self else {
            return hidden;
        };
        let res_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let held_back = is_personal(res_type)
            && principal.scopes.grants.iter().any(|grant| {
                grant.context == ScopeContext::User
                    && grant.allows(permission, res_type)
                    && satisfies_constraint(resource, res_type, &grant.constraint)
            });
        if held_back {
            ServiceError::ScanRequired {
                patients: patients_of(resource),
            }
        } else {
            hidden
        }
    }

    /// The Patients whose records this request reaches by an emergency access (its audit
    /// record says so).
    pub fn emergency(&self) -> &[String] {
        match self {
            Access::Token(_, Reach::Granted(granted)) => &granted.emergency,
            _ => &[],
        }
    }

    /// Whether results must be filtered one by one (a restricted token), so that totals
    /// would reveal what is hidden.
    pub fn is_restricted(&self, res_type: Option<&str>) -> bool {
        match self {
            Access::Open => false,
            Access::Token(p, reach) => !p.scopes.grants.iter().any(|g| {
                let unconfined = match g.context {
                    ScopeContext::Patient => false,
                    ScopeContext::System => true,
                    ScopeContext::User => match reach {
                        Reach::Everyone => true,
                        Reach::Granted(_) => res_type.is_some_and(|t| !is_personal(t)),
                    },
                };
                unconfined
                    && g.constraint.is_empty()
                    && g.allows(Permission::Search, res_type.unwrap_or("*"))
                    && (res_type.is_some() || g.resource_type.is_none())
            }),
        }
    }
}

impl Access {
    /// What a search of `res_type` must be narrowed to (search with a `patient/` or
    /// granular scope), as a filter the query ANDs in, so that pages and totals only ever
    /// count what the token may see; `None` when the token may search the whole type.
    /// The caller has checked [`Access::require`] for search first.
    pub fn search_filter(&self, res_type: &str) -> Option<Filter> {
        let Access::Token(principal, reach) = self else {
            return None;
        };
        let mut alternatives = Vec::new();
        for grant in &principal.scopes.grants {
            if !grant.allows(Permission::Search, res_type) {
                continue;
            }
            let mut parts: Vec<Filter> = grant
                .constraint
                .iter()
                .map(|(param, wanted)| constraint_filter(res_type, param, wanted))
                .collect();
            match grant.context {
                ScopeContext::Patient => match principal.patient.as_deref() {
                    Some(patient) => parts.push(compartment_filter(res_type, patient)),
                    None => continue,
                },
                ScopeContext::User => parts.extend(reach.filter(res_type)),
                ScopeContext::System => {}
            }
            if parts.is_empty() {
                return None;
            }
            alternatives.push(Filter::And(parts));
        }
        Some(Filter::Or(alternatives))
    }
}

impl Access {
    /// `filter` with every chain and reverse chain (`_has`) confined to what the token may
    /// search: a chain only reaches target types the token may search, and of them what
    /// [`Access::search_filter`] lets it see; `_has` only counts source resources the token
    /// may see. Otherwise a chain (`Immunization?patient.name=...` with no Patient scope) or
    /// a `_has` over hidden resources would tell what the token may not read. What is not
    /// reachable matches nothing (searches are silently restricted).
    pub fn confine_joins(&self, filter: Filter) -> Filter {
        if let Access::Open = self {
            return filter;
        }
        match filter {
            Filter::And(parts) => {
                Filter::And(parts.into_iter().map(|p| self.confine_joins(p)).collect())
            }
            Filter::Or(parts) => {
                Filter::Or(parts.into_iter().map(|p| self.confine_joins(p)).collect())
            }
            Filter::Not(inner) => Filter::Not(Box::new(self.confine_joins(*inner))),
            Filter::Chain {
                param,
                target_types,
                filter,
            } => {
                let allowed: Vec<String> = target_types
                    .into_iter()
                    .filter(|t| self.require(Permission::Search, t).is_ok())
                    .collect();
                if allowed.is_empty() {
                    return Filter::Or(Vec::new());
                }
                let mut parts = vec![self.confine_joins(*filter)];
                let narrowed: Vec<(String, Option<Filter>)> = allowed
                    .iter()
                    .map(|t| (t.clone(), self.search_filter(t)))
                    .collect();
                if narrowed.iter().any(|(_, f)| f.is_some()) {
                    parts.push(Filter::Or(
                        narrowed
                            .into_iter()
                            .map(|(t, f)| {
                                Filter::And(
                                    std::iter::once(Filter::Types(vec![t])).chain(f).collect(),
                                )
                            })
                            .collect(),
                    ));
                }
                Filter::Chain {
                    param,
                    target_types: allowed,
                    filter: Box::new(Filter::And(parts)),
                }
            }
            Filter::Contains { types, filter } => Filter::Contains {
                types,
                filter: Box::new(self.confine_joins(*filter)),
            },
            Filter::Has {
                source_type,
                param,
                filter,
            } => {
                if self.require(Permission::Search, &source_type).is_err() {
                    return Filter::Or(Vec::new());
                }
                let mut parts = vec![self.confine_joins(*filter)];
                parts.extend(self.search_filter(&source_type));
                Filter::Has {
                    source_type,
                    param,
                    filter: Box::new(Filter::And(parts)),
                }
            }
            other => other,
        }
    }
}

/// The resources of `res_type` in the compartment of `Patient/patient`, through the
/// reference index of the compartment's parameters (compartmentdefinition-patient.html).
pub fn compartment_filter(res_type: &str, patient: &str) -> Filter {
    compartment_of(&[res_type.to_owned()], patient)
}

/// The resources of any of `types` in the compartment of `Patient/patient` (the Patient
/// itself included when `types` holds Patient): one filter over every type.
pub fn compartment_of(types: &[String], patient: &str) -> Filter {
    compartments_of(types, &[patient.to_owned()])
}

/// The resources of any of `types` in the compartment of any of `patients`.
pub fn compartments_of(types: &[String], patients: &[String]) -> Filter {
    Filter::Compartment {
        target_type: "Patient".to_owned(),
        target_ids: patients.to_vec(),
        members: types
            .iter()
            .flat_map(|t| {
                fhir_profiles::patient_compartment_params(t)
                    .unwrap_or_default()
                    .iter()
                    .map(move |param| (t.clone(), param.clone()))
            })
            .collect(),
        itself: types.iter().any(|t| t == "Patient"),
    }
}

/// A granular constraint (`category=system|code`) as a token filter; a constraint on
/// anything but a token parameter grants nothing.
fn constraint_filter(res_type: &str, param: &str, wanted: &str) -> Filter {
    if fhir_profiles::standard_search_parameter(res_type, param).is_none_or(|sp| sp.kind != "token")
    {
        return Filter::Or(Vec::new());
    }
    let (system, code) = match wanted.split_once('|') {
        Some((s, c)) => (Some(s.to_owned()), c.to_owned()),
        None => (None, wanted.to_owned()),
    };
    Filter::Index {
        table: Table::Token,
        param: param.to_owned(),
        cond: Cond::Token {
            system,
            code: Some(code),
        },
    }
}

/// With `openid fhirUser` granted, the user may read their own resource (the `fhirUser`
/// claim: Patient, Practitioner, RelatedPerson...), as SMART apps do to show who is signed
/// in.
fn fhir_user(principal: &Principal) -> Option<(&str, &str)> {
    principal
        .fhir_user
        .as_deref()
        .filter(|_| principal.scopes.fhir_user)
        .and_then(fhirpath::reference_target)
}

/// The Patients whose compartment holds `resource` (for audit records).
pub fn patients_of(resource: &Value) -> Vec<String> {
    let res_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut patients = Vec::new();
    if res_type == "Patient" {
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            patients.push(id.to_owned());
        }
    }
    for code in fhir_profiles::patient_compartment_params(res_type).unwrap_or_default() {
        let Some(sp) = fhir_profiles::standard_search_parameter(res_type, code) else {
            continue;
        };
        for expression in sp.expressions_for(res_type) {
            for reference in fhirpath::values(resource, expression) {
                if let Some(("Patient", id)) = reference
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(fhirpath::reference_target)
                {
                    if !patients.iter().any(|p| p == id) {
                        patients.push(id.to_owned());
                    }
                }
            }
        }
    }
    patients
}

/// Whether `resource` belongs to the compartment of `Patient/patient_id`.
pub fn in_patient_compartment(resource: &Value, res_type: &str, patient_id: &str) -> bool {
    if res_type == "Patient" && resource.get("id").and_then(Value::as_str) == Some(patient_id) {
        return true;
    }
    let Some(params) = fhir_profiles::patient_compartment_params(res_type) else {
        return false;
    };
    params.iter().any(|code| {
        let Some(sp) = fhir_profiles::standard_search_parameter(res_type, code) else {
            return false;
        };
        sp.expressions_for(res_type).iter().any(|expression| {
            fhirpath::values(resource, expression)
                .iter()
                .any(|reference| {
                    reference
                        .get("reference")
                        .and_then(Value::as_str)
                        .and_then(fhirpath::reference_target)
                        == Some(("Patient", patient_id))
                })
        })
    })
}

/// Granular scope constraints on token parameters (`category=system|code`, `code=...`).
fn satisfies_constraint(resource: &Value, res_type: &str, constraint: &[(String, String)]) -> bool {
    constraint.iter().all(|(param, wanted)| {
        let Some(sp) = fhir_profiles::standard_search_parameter(res_type, param)
            .filter(|sp| sp.kind == "token")
        else {
            return false; // a constraint we cannot evaluate grants nothing
        };
        let (system, code) = match wanted.split_once('|') {
            Some((s, c)) => (Some(s), c),
            None => (None, wanted.as_str()),
        };
        sp.expressions_for(res_type).iter().any(|expression| {
            fhirpath::values(resource, expression)
                .iter()
                .any(|value| token_matches(value, system, code))
        })
    })
}

fn token_matches(value: &Value, system: Option<&str>, code: &str) -> bool {
    let coding_matches = |coding: &Value| {
        coding.get("code").and_then(Value::as_str) == Some(code)
            && system
                .is_none_or(|s| coding.get("system").and_then(Value::as_str).unwrap_or("") == s)
    };
    match value {
        Value::String(s) => s == code && system.is_none_or(str::is_empty),
        Value::Object(o) if o.contains_key("coding") => o["coding"]
            .as_array()
            .is_some_and(|c| c.iter().any(coding_matches)),
        Value::Object(o) if o.contains_key("value") => {
            o["value"].as_str() == Some(code)
                && system.is_none_or(|s| o.get("system").and_then(Value::as_str).unwrap_or("") == s)
        }
        other => coding_matches(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;
    use serde_json::json;

    fn token(scope: &str, patient: Option<&str>) -> Access {
        token_reaching(scope, patient, Reach::Everyone)
    }

    fn token_reaching(scope: &str, patient: Option<&str>, reach: Reach) -> Access {
        Access::Token(
            Arc::new(Principal {
                issuer: "i".into(),
                subject: "s".into(),
                client_id: None,
                scopes: Scopes::parse(scope),
                patient: patient.map(str::to_owned),
                fhir_user: None,
                expires_at: i64::MAX,
            }),
            reach,
        )
    }

    fn immunization(patient: &str) -> Value {
        json!({"resourceType":"Immunization","patient":{"reference":format!("Patient/{patient}")}})
    }

    #[test]
    fn patient_scope_sees_only_own_compartment() {
        let a = token("patient/*.rs", Some("p1"));
        assert!(a.permits(Permission::Read, &immunization("p1")));
        assert!(!a.permits(Permission::Read, &immunization("p2")));
        assert!(a.permits(
            Permission::Read,
            &json!({"resourceType":"Patient","id":"p1"})
        ));
        assert!(!a.permits(
            Permission::Read,
            &json!({"resourceType":"Patient","id":"p2"})
        ));
        let obs = json!({"resourceType":"Observation","subject":{"reference":"http://x/fhir/Patient/p1"}});
        assert!(a.permits(Permission::Read, &obs));
        assert!(!a.permits(Permission::Read, &json!({"resourceType":"Organization"})));
        assert!(!token("patient/*.rs", None).permits(Permission::Read, &immunization("p1")));
    }

    #[test]
    fn letters_are_required_per_type() {
        let a = token("user/Immunization.rs", None);
        assert!(a.require(Permission::Read, "Immunization").is_ok());
        assert!(a.require(Permission::Create, "Immunization").is_err());
        assert!(a.require(Permission::Read, "Observation").is_err());
        assert!(Access::Open.require(Permission::Delete, "Patient").is_ok());
    }

    #[test]
    fn fhir_user_reads_own_resource_only() {
        let a = Access::Token(
            Arc::new(Principal {
                issuer: "i".into(),
                subject: "s".into(),
                client_id: None,
                scopes: Scopes::parse("openid fhirUser"),
                patient: None,
                fhir_user: Some("https://x/fhir/Practitioner/d1".into()),
                expires_at: i64::MAX,
            }),
            Reach::Everyone,
        );
        assert!(a.require(Permission::Read, "Practitioner").is_ok());
        assert!(a.permits(
            Permission::Read,
            &json!({"resourceType":"Practitioner","id":"d1"})
        ));
        assert!(!a.permits(
            Permission::Read,
            &json!({"resourceType":"Practitioner","id":"d2"})
        ));
        assert!(a.require(Permission::Update, "Practitioner").is_err());
        assert!(a.require(Permission::Read, "Patient").is_err());
    }

    #[test]
    fn user_scopes_under_the_qr_rule_reach_granted_compartments_only() {
        let granted = Reach::Granted(Arc::new(Granted {
            patients: vec!["p1".into()],
            emergency: Vec::new(),
            grant_ms: 1000,
        }));
        let a = token_reaching("user/*.cruds", None, granted);
        assert!(a.permits(Permission::Read, &immunization("p1")));
        assert!(a.permits(Permission::Create, &immunization("p1")));
        assert!(!a.permits(Permission::Read, &immunization("p2")));
        assert!(!a.permits(Permission::Update, &immunization("p2")));
        // A new person may be registered; changing another is held back.
        assert!(a.permits(Permission::Create, &json!({"resourceType":"Patient"})));
        assert!(!a.permits(
            Permission::Update,
            &json!({"resourceType":"Patient","id":"p2"})
        ));
        assert!(a.permits(
            Permission::Read,
            &json!({"resourceType":"Patient","id":"p1"})
        ));
        assert!(!a.permits(
            Permission::Read,
            &json!({"resourceType":"Patient","id":"p2"})
        ));
        // Outside people's records the user scopes reach as before.
        assert!(a.permits(
            Permission::Read,
            &json!({"resourceType":"Organization","id":"o"})
        ));
        // A personal resource that names nobody is in no granted compartment.
        assert!(!a.permits(Permission::Read, &json!({"resourceType":"Immunization"})));
        assert!(a.is_restricted(Some("Immunization")));
        assert!(a.is_restricted(None));
        assert!(!a.is_restricted(Some("Organization")));
        assert!(a.search_filter("Organization").is_none());
        assert!(a.search_filter("Immunization").is_some());
        let nobody = token_reaching("user/*.rs", None, Reach::Granted(Arc::default()));
        assert!(!nobody.permits(
            Permission::Read,
            &json!({"resourceType":"Patient","id":"p1"})
        ));
        // System scopes are not narrowed.
        let system = token_reaching("system/*.rs", None, Reach::Granted(Arc::default()));
        assert!(system.permits(Permission::Read, &immunization("p2")));
        assert!(!system.is_restricted(Some("Immunization")));
    }

    #[test]
    fn granular_token_constraints() {
        let a = token("user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", None);
        let lab = json!({"resourceType":"Observation","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}]});
        let vitals = json!({"resourceType":"Observation","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}]});
        assert!(a.permits(Permission::Read, &lab));
        assert!(!a.permits(Permission::Read, &vitals));
    }
}
