//! The search parameters this server searches, per type: the standard ones it evaluates
//! and the custom ones of the service's registry.

use super::*;

/// The search parameters of `res_type` this server searches: every standard parameter of
/// a searchable type whose expression it evaluates, the composites (`params::composite_components`,
/// `index::grouped_composites`), `_id` and `_lastUpdated` (derived once per process), and
/// the custom parameters of the store (docs/SEARCH.md, "Custom search parameters").
pub fn supported_parameters(parameters: &Registry, res_type: &str) -> Vec<Param> {
    let mut supported: Vec<Param> = standard_parameters(res_type)
        .iter()
        .map(|sp| Param::Standard(sp))
        .collect();
    supported.extend(parameters.custom_for(res_type));
    supported
}

/// The parameter `code` of `res_type` this server searches (one of
/// [`supported_parameters`], found without collecting them).
pub fn supported_parameter(parameters: &Registry, res_type: &str, code: &str) -> Option<Param> {
    standard_parameters(res_type)
        .iter()
        .find(|sp| sp.code == code)
        .map(|sp| Param::Standard(sp))
        .or_else(|| parameters.custom_one(res_type, code))
}

/// The standard part of [`supported_parameters`].
fn standard_parameters(res_type: &str) -> &'static [&'static fhir_profiles::SearchParameter] {
    static SUPPORTED: OnceLock<HashMap<String, Vec<&'static fhir_profiles::SearchParameter>>> =
        OnceLock::new();
    let all = SUPPORTED.get_or_init(|| {
        fhir_format::resource_types()
            .iter()
            .map(|t| {
                let indexed = super::index::indexed_parameters(t);
                let supported = fhir_profiles::search_parameters_for(t)
                    .iter()
                    .copied()
                    .filter(|sp| {
                        // `_text`, `_content` and Location `near` are indexed by
                        // `index::rows` itself.
                        matches!(
                            sp.code.as_str(),
                            "_id" | "_lastUpdated" | "_text" | "_content"
                        ) || (*t == "Location" && sp.code == "near")
                            || (sp.code == "_query" && named::named_queries(t).next().is_some())
                            || indexed.iter().any(|(i, _)| std::ptr::eq(*i, *sp))
                            || params::composite_components(t, sp).is_some()
                            || super::index::grouped_composites(t)
                                .iter()
                                .any(|g| std::ptr::eq(g.sp, *sp))
                    })
                    .collect();
                ((*t).to_owned(), supported)
            })
            .collect()
    });
    all.get(res_type).map(Vec::as_slice).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue "Search", done when: every standard search parameter of every R4 resource
    /// type is searchable. `_query` is a parameter of the types with named queries.
    #[test]
    fn every_standard_parameter_of_every_type_is_supported() {
        let mut missing = Vec::new();
        let mut pairs = 0;
        for t in fhir_format::resource_types() {
            for sp in fhir_profiles::search_parameters_for(t) {
                pairs += 1;
                let named = sp.code == "_query" && named::named_queries(t).next().is_none();
                if !named && supported_parameter(&Registry::default(), t, &sp.code).is_none() {
                    missing.push(format!("{t}.{}", sp.code));
                }
            }
        }
        assert!(pairs > 3000, "{pairs}");
        assert!(missing.is_empty(), "not supported: {missing:?}");
    }
}
