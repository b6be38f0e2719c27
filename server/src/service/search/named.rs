//! Named queries (search.html#query): `[base]/[type]?_query=[name]&...`. Each is defined
//! by an OperationDefinition of kind `query` that the server ships and installs
//! (`fhir-profiles/vn/OperationDefinition-*.json`, listed in the CapabilityStatement) and
//! stands for a set of search criteria; any search parameter of the type may be added to
//! narrow it. A name the server does not define is a 400, never ignored: the results
//! would otherwise silently be something else than what was asked.

use crate::service::ErrorCode;
use crate::store::Filter;

use super::params::{self, ParseContext};
use super::ServiceError;

/// A named query: its code, the type it searches, the canonical URL of its definition,
/// and its criteria as search parameters of the type.
pub struct NamedQuery {
    pub code: &'static str,
    pub res_type: &'static str,
    pub definition: &'static str,
    criteria: fn() -> Vec<(&'static str, String)>,
}

/// The named queries this server answers.
pub const NAMED_QUERIES: &[NamedQuery] = &[NamedQuery {
    code: "covid-19-doses",
    res_type: "Immunization",
    definition: "https://healthbook.example.org/fhir/OperationDefinition/covid-19-doses",
    criteria: covid_19_doses,
}];

/// The campaign's vaccines (fhir-profiles/vn/covid-19-vaccines.json), doses given.
fn covid_19_doses() -> Vec<(&'static str, String)> {
    let codes: Vec<String> = fhir_profiles::covid_vaccines()
        .iter()
        .map(|v| format!("http://hl7.org/fhir/sid/cvx|{}", v.cvx))
        .collect();
    vec![
        ("vaccine-code", codes.join(",")),
        ("status", "completed".to_owned()),
    ]
}

/// The named queries of `res_type`.
pub fn named_queries(res_type: &str) -> impl Iterator<Item = &'static NamedQuery> + '_ {
    NAMED_QUERIES.iter().filter(move |q| q.res_type == res_type)
}

/// The criteria of the named query `name` over `types`.
///
/// # Errors
/// 400 when the search is not of one type that defines `name`.
pub fn criteria(
    ctx: &ParseContext<'_>,
    types: &[String],
    name: &str,
) -> Result<Vec<Filter>, ServiceError> {
    let query = match types {
        [t] => named_queries(t).find(|q| q.code == name),
        _ => None,
    };
    let Some(query) = query else {
        let known: Vec<String> = types
            .iter()
            .flat_map(|t| named_queries(t).map(move |q| format!("{t}?_query={}", q.code)))
            .collect();
        let known = if known.is_empty() {
            "none here".to_owned()
        } else {
            known.join(", ")
        };
        return Err(ServiceError::at(
            ErrorCode::SearchParameter,
            "_query",
            format!("'{name}' is not a named query of this search (named queries: {known})."),
        ));
    };
    let mut filters = Vec::new();
    for (param, value) in (query.criteria)() {
        filters.extend(params::filter(ctx, types, param, &value)?);
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_query_is_shipped_with_its_definition() {
        let shipped: Vec<serde_json::Value> = fhir_profiles::shipped_named_queries()
            .iter()
            .map(|text| serde_json::from_str(text).unwrap())
            .collect();
        for q in NAMED_QUERIES {
            let definition = shipped
                .iter()
                .find(|d| d["url"] == q.definition)
                .unwrap_or_else(|| panic!("no OperationDefinition for {}", q.code));
            assert_eq!(definition["kind"], "query");
            assert_eq!(definition["code"], q.code);
            assert_eq!(definition["resource"][0], q.res_type);
        }
    }
}
