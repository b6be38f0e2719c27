//! SMART on FHIR scopes, v1 and v2 —
//! https://build.fhir.org/ig/HL7/smart-app-launch/scopes-and-launch-context.html
//!
//! `( patient | user | system ) / ( Type | * ) . ( v2: c r u d s in order | v1: read write * )
//! [ ? param=value & ... ]`. v1 maps to v2 (`read` → `rs`, `write` → `cud`, `*` → `cruds`).
//! Scopes combine as a union. Malformed resource scopes grant nothing. `openid`,
//! `fhirUser`, `launch...`, `offline_access`, `online_access`, `profile` carry no data access.

/// Who the access is on behalf of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeContext {
    /// `patient/`: only the compartment of the patient in context.
    Patient,
    /// `user/`: what the signed-in user may see.
    User,
    /// `system/`: a backend service, by its registered policy.
    System,
}

/// One permission letter of SMART v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }

    /// The v2 letter.
    pub fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Delete => 'd',
            Permission::Search => 's',
        }
    }
}

/// One resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub context: ScopeContext,
    /// `None` for `*`.
    pub resource_type: Option<String>,
    permissions: u8,
    /// Granular constraint (`?category=...|laboratory`), as (parameter, value) pairs.
    pub constraint: Vec<(String, String)>,
}

impl Grant {
    /// Whether this grant gives `permission` on some type.
    pub fn allows_anywhere(&self, permission: Permission) -> bool {
        self.permissions & permission.bit() != 0
    }

    /// Whether this grant gives `permission` on `resource_type`.
    pub fn allows(&self, permission: Permission, resource_type: &str) -> bool {
        self.permissions & permission.bit() != 0
            && self
                .resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
    }
}

/// The scopes of one token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    pub grants: Vec<Grant>,
    /// `openid fhirUser` were granted.
    pub fhir_user: bool,
}

impl Scopes {
    /// Parses a space-separated scope string; what is not a valid scope grants nothing.
    pub fn parse(scope: &str) -> Self {
        let mut scopes = Scopes::default();
        for token in scope.split_whitespace() {
            if token == "fhirUser" {
                scopes.fhir_user = true;
            } else if let Some(grant) = parse_grant(token) {
                scopes.grants.push(grant);
            }
        }
        scopes
    }
}

fn parse_grant(token: &str) -> Option<Grant> {
    let (context, rest) = token.split_once('/')?;
    let context = match context {
        "patient" => ScopeContext::Patient,
        "user" => ScopeContext::User,
        "system" => ScopeContext::System,
        _ => return None,
    };
    let (resource, rest) = rest.split_once('.')?;
    let (permissions, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    let permissions = match permissions {
        "read" => 2 | 16,
        "write" => 1 | 4 | 8,
        "*" => 31,
        letters => v2_letters(letters)?,
    };
    let resource_type = match resource {
        "*" => None,
        t if t.starts_with(|c: char| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(t.to_owned())
        }
        _ => return None,
    };
    let constraint = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    Some(Grant {
        context,
        resource_type,
        permissions,
        constraint,
    })
}

/// `cruds` letters, at least one, each at most once, in that order.
fn v2_letters(letters: &str) -> Option<u8> {
    let order = "cruds";
    let mut last = None;
    let mut bits = 0;
    for c in letters.chars() {
        let at = order.find(c)?;
        if last.is_some_and(|l| at <= l) {
            return None;
        }
        last = Some(at);
        bits |= 1 << at;
    }
    (bits != 0).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_scopes_map_to_v2() {
        let s = Scopes::parse("patient/*.read user/Observation.write system/*.*");
        assert!(s.grants[0].allows(Permission::Read, "Immunization"));
        assert!(s.grants[0].allows(Permission::Search, "Immunization"));
        assert!(!s.grants[0].allows(Permission::Create, "Immunization"));
        assert!(s.grants[1].allows(Permission::Update, "Observation"));
        assert!(
            !s.grants[1].allows(Permission::Read, "Observation"),
            "write does not imply read"
        );
        assert!(!s.grants[1].allows(Permission::Update, "Patient"));
        assert!(s.grants[2].allows(Permission::Delete, "Patient"));
    }

    #[test]
    fn v2_letters_in_order_only() {
        let s = Scopes::parse("patient/Immunization.rs patient/Patient.dus user/Observation.rc patient/Condition.cruds");
        assert_eq!(s.grants.len(), 2);
        assert!(s.grants[0].allows(Permission::Search, "Immunization"));
        assert!(s.grants[1].allows(Permission::Create, "Condition"));
    }

    #[test]
    fn granular_constraints_and_non_resource_scopes() {
        let s = Scopes::parse("openid fhirUser launch/patient offline_access user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory");
        assert!(s.fhir_user);
        assert_eq!(s.grants.len(), 1);
        assert_eq!(
            s.grants[0].constraint,
            [(
                "category".to_owned(),
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_owned()
            )]
        );
    }

    #[test]
    fn malformed_scopes_grant_nothing() {
        for bad in [
            "patient/observation.read",
            "admin/*.read",
            "patient/*",
            "patient/*.x",
            "patient/*.",
            "",
        ] {
            assert!(Scopes::parse(bad).grants.is_empty(), "{bad}");
        }
    }
}
