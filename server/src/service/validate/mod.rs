//! Validation of resources: on every write (create, update, the result of a patch, every
//! write entry of a Bundle) and by `$validate` (resource-operation-validate.html).
//!
//! What is checked, beyond what `fhir-format` already rejects (unknown elements, wrong
//! types, malformed primitives, empty arrays):
//! - [`base`]: the R4 StructureDefinitions (`fhir-profiles/data/types.json`): minimum
//!   cardinality of every element whose parent is present, required bindings to the core
//!   value sets that can be expanded (`data/valuesets.json`), and the core invariants that
//!   matter for data quality, written out in Rust (ele-1, ext-1, dom-2..dom-5, pat-1,
//!   imm-1, obs-6, obs-7).
//! - [`vn`]: the Vietnamese profiles VN Core Patient and VN Immunization (`docs/VALIDATION.md`).
//!
//! Every rule has a stable code (`HB-REQUIRED`, `dom-3`, `VN-CCCD-SEX`), a default
//! severity, and a message in Vietnamese and English. The policy (`[validation]`) sets any
//! rule, or a whole profile, to `error` (the write is refused with 422), `warning` (the
//! write is accepted and the issues are reported) or `off`.

pub mod base;
mod install;
pub mod operation;
pub mod profile;
pub mod search_parameter;
pub mod vn;

use std::collections::HashMap;

use chrono::FixedOffset;
use serde_json::Value;

use crate::service::search_parameters::Registry;
use crate::store::{Cond, Filter, SearchQuery, StoreError, Table, Tx, UriMode};

/// How serious an issue is (OperationOutcome.issue.severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    /// The issue-severity code.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Vi,
    En,
}

impl Language {
    /// `vi` or `en`.
    pub fn parse(tag: &str) -> Option<Self> {
        match tag.split(['-', '_']).next()?.to_ascii_lowercase().as_str() {
            "vi" => Some(Language::Vi),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

/// One problem found in a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    /// The issue-type code (`required`, `code-invalid`, `invariant`, `value`...).
    pub kind: &'static str,
    /// The stable rule code (`HB-REQUIRED`, `dom-3`, `VN-CCCD-SEX`).
    pub rule: &'static str,
    /// Where, as a FHIRPath (`Patient.identifier[0].value`).
    pub expression: String,
    /// The message in English.
    pub en: String,
    /// The message in Vietnamese.
    pub vi: String,
}

impl Issue {
    /// The message in `language`.
    pub fn message(&self, language: Language) -> &str {
        match language {
            Language::Vi => &self.vi,
            Language::En => &self.en,
        }
    }

    /// An issue of `rule` at `expression` whose default severity is `warning`.
    pub fn warning(
        kind: &'static str,
        rule: &'static str,
        expression: impl Into<String>,
        en: impl Into<String>,
        vi: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(kind, rule, expression, en, vi)
        }
    }

    /// An issue of `rule` at `expression` with the rule's default severity `error`.
    pub fn error(
        kind: &'static str,
        rule: &'static str,
        expression: impl Into<String>,
        en: impl Into<String>,
        vi: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            kind,
            rule,
            expression: expression.into(),
            en: en.into(),
            vi: vi.into(),
        }
    }
}

/// What the policy does with a rule's issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Error,
    Warning,
    Off,
}

/// Which resources the VN Core profiles apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VnCore {
    /// Every Patient and Immunization.
    All,
    /// Only those that name the profile in `meta.profile`.
    Declared,
}

/// The validation policy (`[validation]`).
#[derive(Debug, Clone)]
pub struct Policy {
    pub vn_core: VnCore,
    /// By rule code or profile id (`base`, `vn-core-patient`, `vn-immunization`), keyed by
    /// [`rule_key`]; a rule's own entry wins over its profile's.
    pub actions: HashMap<String, Action>,
}

/// As `config/default.toml`: VN Core on every Patient and Immunization.
impl Default for Policy {
    fn default() -> Self {
        Self {
            vn_core: VnCore::All,
            actions: HashMap::new(),
        }
    }
}

/// Validates resources under a policy. Cheap to share.
#[derive(Debug, Clone)]
pub struct Validator {
    policy: Policy,
    /// The zone of dates written without one.
    offset: FixedOffset,
    /// The search parameters a SearchParameter's code may not take again.
    parameters: Registry,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new(
            Policy::default(),
            FixedOffset::east_opt(7 * 3600).expect("+07:00 is an offset"),
            Registry::default(),
        )
    }
}

impl Validator {
    /// A validator applying `policy`, reading dates without a zone in `offset`, refusing
    /// SearchParameters whose code `parameters` already has.
    pub fn new(policy: Policy, offset: FixedOffset, parameters: Registry) -> Self {
        Self {
            policy,
            offset,
            parameters,
        }
    }

    /// Every issue of `resource` under the policy, errors first (issues of rules that are
    /// off are left out). `now_ms` is the present, for rules about dates in the future.
    pub fn validate(&self, resource: &Value, now_ms: i64) -> Vec<Issue> {
        self.validate_against(resource, now_ms, None, &[])
    }

    /// [`Validator::validate`], also against `profile` (one implemented in code) when it
    /// does not apply anyway, and against StructureDefinitions of the store (`posted`,
    /// [`profile`]); their policy key is their id.
    pub fn validate_against(
        &self,
        resource: &Value,
        now_ms: i64,
        profile: Option<vn::Profile>,
        posted: &[Value],
    ) -> Vec<Issue> {
        let mut found = Vec::new();
        base::check(resource, &mut found);
        if resource["resourceType"] == "SearchParameter" {
            search_parameter::check(resource, &self.parameters, &mut found);
        }
        let mut issues = self.apply("base", found);
        let mut profiles = vn::profiles_of(resource, self.policy.vn_core);
        if let Some(p) = profile.filter(|p| !profiles.contains(p)) {
            profiles.push(p);
        }
        for profile in profiles {
            let mut found = Vec::new();
            profile.check(resource, now_ms, self.offset, &mut found);
            issues.extend(self.apply(profile.id(), found));
        }
        for sd in posted {
            let mut found = Vec::new();
            profile::check(sd, resource, &mut found);
            issues.extend(self.apply(sd["id"].as_str().unwrap_or("profile"), found));
        }
        issues.sort_by_key(|i| i.severity);
        issues
    }

    /// Whether the policy leaves `rule` of `profile` on (error or warning).
    pub fn enforces(&self, profile: &str, rule: &str) -> bool {
        let action = self
            .policy
            .actions
            .get(&rule_key(rule))
            .or_else(|| self.policy.actions.get(&rule_key(profile)));
        action != Some(&Action::Off)
    }

    fn apply(&self, profile: &str, issues: Vec<Issue>) -> Vec<Issue> {
        issues
            .into_iter()
            .filter_map(|mut issue| {
                let action = self
                    .policy
                    .actions
                    .get(&rule_key(issue.rule))
                    .or_else(|| self.policy.actions.get(&rule_key(profile)));
                match action {
                    Some(Action::Off) => return None,
                    Some(Action::Warning) => issue.severity = Severity::Warning,
                    Some(Action::Error) => issue.severity = Severity::Error,
                    None => {}
                }
                Some(issue)
            })
            .collect()
    }
}

/// The `meta.profile` URLs of `resource` that are not profiles Healthbook implements in
/// code (those are checked by [`vn`]).
pub fn posted_profile_urls(resource: &Value) -> Vec<String> {
    let ours = [vn::Profile::Patient.url(), vn::Profile::Immunization.url()];
    resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|u| u.split('|').next().unwrap_or(u).to_owned())
        .filter(|u| !ours.contains(u))
        .collect()
}

/// The current StructureDefinitions of the store with these canonical URLs (a URL the
/// store does not know is left out: a profile is checked "when the server knows it").
///
/// # Errors
/// Database failures.
pub fn posted_profiles(tx: &mut Tx<'_>, urls: &[String]) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for url in urls {
        let rows = tx.search(&SearchQuery {
            types: vec!["StructureDefinition".to_owned()],
            filter: Filter::Index {
                table: Table::Uri,
                param: "url".to_owned(),
                cond: Cond::Uri {
                    value: url.clone(),
                    mode: UriMode::Equal,
                },
            },
            sort: Vec::new(),
            position: None,
            limit: 1,
        })?;
        out.extend(
            rows.iter()
                .filter_map(|r| serde_json::from_str(&r.content).ok()),
        );
    }
    Ok(out)
}

/// Every rule code the validator reports, as the policy (`[validation.rules]`) may name it.
/// A test keeps it equal to the codes written in this module's files.
pub const RULES: &[&str] = &[
    "HB-CODE",
    "HB-ID",
    "HB-IMMUTABLE",
    "HB-PROFILE-FIXED",
    "HB-PROFILE-MAX",
    "HB-PROFILE-MIN",
    "HB-PROFILE-PATTERN",
    "HB-PROFILE-TYPE",
    "HB-PROFILE-UNKNOWN",
    "HB-REFERENCE-TYPE",
    "HB-REFERENCE-UNKNOWN",
    "HB-REQUIRED",
    "HB-SP-CODE",
    "HB-SP-EXPRESSION",
    "HB-SP-TYPE",
    "HB-STRUCTURE",
    "HB-TYPE",
    "VN-BHYT-FORMAT",
    "VN-CCCD-CENTURY",
    "VN-CCCD-FORMAT",
    "VN-CCCD-PROVINCE",
    "VN-CCCD-SEX",
    "VN-CCCD-YEAR",
    "VN-IMM-DOSE",
    "VN-IMM-DOSE-SERIES",
    "VN-IMM-FUTURE",
    "VN-IMM-LOT",
    "VN-IMM-PATIENT",
    "VN-IMM-PERFORMER",
    "VN-IMM-TOO-EARLY",
    "VN-IMM-VACCINE",
    "VN-PAT-BIRTHDATE",
    "VN-PAT-GENDER",
    "VN-PAT-NAME",
    "VN-PHONE-FORMAT",
    "VN-PHONE-MOBILE",
    "con-3",
    "con-4",
    "con-5",
    "cpt-2",
    "dom-2",
    "dom-3",
    "dom-4",
    "dom-5",
    "dom-6",
    "ele-1",
    "ext-1",
    "imm-1",
    "obs-3",
    "obs-6",
    "obs-7",
    "pat-1",
    "per-1",
    "qty-3",
    "txt-1",
    "txt-2",
];

/// The profiles whose rules the policy can set as a group.
pub const SHIPPED_PROFILES: &[&str] = &["base", "vn-core-patient", "vn-immunization"];

/// Whether a `[validation.rules]` key can mean something: a rule code, a shipped profile,
/// or (any other name not shaped like a rule code) the id of a profile posted to the
/// server. A misspelled rule code (`VN-CCCD-SEXX`, `dom-66`) is refused.
pub fn is_rule_or_profile(name: &str) -> bool {
    let key = rule_key(name);
    if RULES
        .iter()
        .chain(SHIPPED_PROFILES)
        .any(|known| rule_key(known) == key)
    {
        return true;
    }
    !(key.starts_with("hb-") || key.starts_with("vn-") || is_invariant_key(&key))
}

/// Shaped like the key of a core invariant (`dom-6`, `ele-1`, `qty-3`).
fn is_invariant_key(key: &str) -> bool {
    key.split_once('-').is_some_and(|(head, tail)| {
        (2..=4).contains(&head.len())
            && head.bytes().all(|b| b.is_ascii_lowercase())
            && !tail.is_empty()
            && tail.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A rule code or profile id as the policy keys it: lower case, `_` as `-` (so that
/// `HEALTHBOOK__VALIDATION__RULES__VN_PHONE_FORMAT` names `VN-PHONE-FORMAT`).
pub fn rule_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// The canonical base of the profiles Healthbook ships.
pub const PROFILE_BASE: &str = "https://healthbook.example.org/fhir/StructureDefinition/";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_lists_every_code_the_validator_reports() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("base.rs"),
            include_str!("vn.rs"),
            include_str!("profile.rs"),
            include_str!("search_parameter.rs"),
            include_str!("operation.rs"),
            include_str!("install.rs"),
        ];
        let mut written = std::collections::BTreeSet::new();
        for source in sources {
            for quoted in source.split('"').skip(1).step_by(2) {
                let code_like = quoted.starts_with("HB-") || quoted.starts_with("VN-");
                let upper = quoted
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
                if (code_like && upper) || is_invariant_key(quoted) {
                    written.insert(quoted);
                }
            }
        }
        let listed: std::collections::BTreeSet<&str> = RULES.iter().copied().collect();
        let missing: Vec<_> = written.difference(&listed).collect();
        assert!(missing.is_empty(), "codes not in RULES: {missing:?}");
        assert!(is_rule_or_profile("VN_PHONE_FORMAT"));
        assert!(is_rule_or_profile("vn-core-patient"));
        assert!(is_rule_or_profile("my-posted-profile"));
        assert!(!is_rule_or_profile("VN-CCCD-SEXX"));
        assert!(!is_rule_or_profile("dom-66"));
    }

    #[test]
    fn shipped_profiles_are_valid_structure_definitions() {
        for text in fhir_profiles::shipped_profiles() {
            let sd = fhir_format::parse_json(text.as_bytes()).expect("valid R4 JSON");
            let issues = Validator::default().validate(&sd, 0);
            assert!(issues.is_empty(), "{issues:?}");
            let url = sd["url"].as_str().unwrap();
            assert!(url.starts_with(PROFILE_BASE));
            let id = &url[PROFILE_BASE.len()..];
            assert!(
                [vn::Profile::Patient, vn::Profile::Immunization]
                    .iter()
                    .any(|p| p.id() == id && sd["id"] == id),
                "{url}"
            );
        }
    }

    #[test]
    fn policy_turns_rules_and_profiles_down() {
        let patient = json!({"resourceType": "Patient", "gender": "unknown-gender", "link": [{"type": "seealso"}]});
        let strict = Validator::default().validate(&patient, 0);
        assert!(strict
            .iter()
            .any(|i| i.rule == "HB-CODE" && i.severity == Severity::Error));
        assert!(strict.iter().any(|i| i.rule == "HB-REQUIRED"));
        let relaxed = Validator::new(
            Policy {
                vn_core: VnCore::Declared,
                actions: [
                    (rule_key("HB_CODE"), Action::Warning),
                    (rule_key("base"), Action::Off),
                ]
                .into(),
            },
            FixedOffset::east_opt(0).unwrap(),
            Registry::default(),
        )
        .validate(&patient, 0);
        assert_eq!(relaxed.len(), 1, "{relaxed:?}");
        assert_eq!(relaxed[0].severity, Severity::Warning);
    }
}
