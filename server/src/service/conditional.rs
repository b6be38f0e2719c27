//! Search criteria of conditional interactions: http.html#ccreate (`If-None-Exist`),
//! http.html#cond-update and http.html#cdelete.
//!
//! Any search criteria of the type (search.html) are accepted, read as with
//! `Prefer: handling=strict`: an unknown parameter is a 400, because silently ignoring a
//! criterion in a conditional write could match, update or delete the wrong resource.
//!
//! Writers that test the same criteria are serialised by a lock on the criteria; writers
//! that test or add an identifier value also share that identifier's lock, so a
//! conditional create on `identifier` and a plain write adding that identifier queue.

use super::index::{identifier_lock_key, lock_key};
use super::search::params::{self, split_values, ParseContext};
use super::{Access, ServiceError};
use crate::service::ErrorCode;
use crate::store::{Filter, SearchQuery, StoreError, Tx};

/// Parameters that shape the response, never the match.
const RESULT_PARAMETERS: &[&str] = &["_format", "_pretty", "_summary", "_elements"];

/// Parsed, ANDed criteria over one resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    res_type: String,
    filters: Vec<Filter>,
    /// The identifier codes the criteria test (for their locks).
    identifier_codes: Vec<String>,
    /// The criteria as given, in a canonical order (for the criteria lock).
    canonical: String,
}

impl Criteria {
    /// Parses a query string such as `identifier=http://x|1&birthdate=1990`.
    ///
    /// # Errors
    /// 400 for unknown parameters, malformed values, and when no criterion is given.
    pub fn parse(
        ctx: &ParseContext<'_>,
        res_type: &str,
        query: &str,
    ) -> Result<Self, ServiceError> {
        let strict = ParseContext {
            strict: true,
            ..ctx.clone()
        };
        let types = [res_type.to_owned()];
        let mut filters = Vec::new();
        let mut identifier_codes = Vec::new();
        let mut pairs: Vec<(String, String)> = Vec::new();
        let criteria = params::query_pairs(query.trim_start_matches('?').as_bytes())?;
        ctx.limits.check_parameters(criteria.len())?;
        for (name, value) in criteria {
            if RESULT_PARAMETERS.contains(&name.as_str()) {
                continue;
            }
            let filter = params::filter(&strict, &types, &name, &value)?.ok_or_else(|| {
                ServiceError::at(
                    ErrorCode::ConditionalCriteria,
                    name.as_str(),
                    format!("'{name}' is not a search parameter of {res_type}."),
                )
            })?;
            if name == "identifier" {
                identifier_codes
                    .extend(split_values(&value).iter().map(|v| params::split_bar(v).1));
            }
            filters.push(filter);
            pairs.push((name, value));
        }
        if filters.is_empty() {
            return Err(ServiceError::new(ErrorCode::ConditionalCriteria,
                "A conditional interaction needs search criteria (for example identifier=system|value).",
            ));
        }
        pairs.sort();
        let canonical = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        Ok(Self {
            res_type: res_type.to_owned(),
            filters,
            identifier_codes,
            canonical,
        })
    }

    /// Ids of the live resources that match every criterion among those `access` may see
    /// (at most three: more than one is already an error for every conditional
    /// interaction). What the token may not see is never matched, so that neither the
    /// outcome nor its status hints at it.
    ///
    /// # Errors
    /// Database failures.
    pub fn matches(&self, tx: &mut Tx<'_>, access: &Access) -> Result<Vec<String>, StoreError> {
        let mut filters: Vec<Filter> = self
            .filters
            .iter()
            .map(|f| access.confine_joins(f.clone()))
            .collect();
        filters.extend(access.search_filter(&self.res_type));
        let rows = tx.search(&SearchQuery {
            types: vec![self.res_type.clone()],
            filter: Filter::And(filters),
            sort: Vec::new(),
            position: None,
            limit: 3,
        })?;
        Ok(rows.into_iter().map(|r| r.res_id).collect())
    }

    /// The resource type the criteria search.
    pub fn res_type(&self) -> &str {
        &self.res_type
    }

    /// Lock keys that serialise writers testing these criteria.
    pub fn lock_keys(&self) -> Vec<i64> {
        let mut keys: Vec<i64> = self
            .identifier_codes
            .iter()
            .map(|code| identifier_lock_key(&self.res_type, code))
            .collect();
        keys.push(lock_key(&["criteria", &self.res_type, &self.canonical]));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn ctx() -> ParseContext<'static> {
        static PARAMETERS: std::sync::LazyLock<crate::service::search_parameters::Registry> =
            std::sync::LazyLock::new(Default::default);
        ParseContext {
            base_url: "http://x/fhir",
            default_offset: FixedOffset::east_opt(0).unwrap(),
            parameters: &PARAMETERS,
            limits: Default::default(),
            strict: false,
        }
    }

    #[test]
    fn identifier_codes_lock_with_and_without_system() {
        let c = Criteria::parse(&ctx(), "Patient", "identifier=http://x|1,|2,3&_id=a").unwrap();
        assert_eq!(c.identifier_codes, vec!["1", "2", "3"]);
        let d = Criteria::parse(&ctx(), "Patient", "identifier=1").unwrap();
        assert!(d.lock_keys().contains(&identifier_lock_key("Patient", "1")));
        assert!(c.lock_keys().contains(&identifier_lock_key("Patient", "1")));
    }

    #[test]
    fn any_search_parameter_is_a_criterion() {
        let c = Criteria::parse(&ctx(), "Patient", "family=nguyen&birthdate=1990").unwrap();
        assert_eq!(c.filters.len(), 2);
        let same = Criteria::parse(&ctx(), "Patient", "birthdate=1990&family=nguyen").unwrap();
        assert_eq!(c.lock_keys(), same.lock_keys());
    }

    #[test]
    fn rejects_unknown_parameters_and_empty_criteria() {
        assert!(Criteria::parse(&ctx(), "Patient", "colour=x").is_err());
        assert!(Criteria::parse(&ctx(), "Patient", "").is_err());
        assert!(Criteria::parse(&ctx(), "Patient", "_format=json").is_err());
        assert!(Criteria::parse(&ctx(), "Patient", "identifier=").is_err());
        assert!(Criteria::parse(&ctx(), "Patient", "_count=1&identifier=1").is_err());
    }
}
