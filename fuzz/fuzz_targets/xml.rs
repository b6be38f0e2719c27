//! The XML reader (shape pre-scan, fhirbolt, the JSON rules on its result).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let _ = fhir_format::parse_xml(data);
});
