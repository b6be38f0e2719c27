//! The Bundle reader: a batch or transaction read into its entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let Ok(bundle) = fhir_format::parse_json(data) else {
        return;
    };
    if let Ok(entries) = healthbook::service::entry::entries(&bundle, "http://example.org/fhir") {
        for entry in &entries {
            let _ = entry.request();
            let _ = entry.body();
            let _ = entry.patch();
        }
    }
});
