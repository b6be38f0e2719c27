//! The query-string decoder and the search-parameter parser (every parameter type,
//! modifiers, prefixes, chains, `_has`, composites), on two resource types.
#![no_main]

use healthbook::service::search::params::{filter, query_pairs, ParseContext};
use healthbook::service::search::SearchLimits;
use healthbook::service::search_parameters::Registry;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let Ok(pairs) = query_pairs(data) else {
        return;
    };
    let registry = Registry::default();
    let ctx = ParseContext {
        base_url: "http://example.org/fhir",
        parameters: &registry,
        limits: SearchLimits::default(),
        default_offset: chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7"),
        strict: data.first().is_some_and(|b| b % 2 == 0),
    };
    for types in [&["Patient".to_owned()][..], &["Observation".to_owned(), "Immunization".to_owned()]] {
        for (name, value) in &pairs {
            let _ = filter(&ctx, types, name, value);
        }
    }
});
