//! The JSON reader, and the XML writer and reader on what it accepts: a resource read from
//! JSON, written as XML and read again is the same resource (a round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let Ok(resource) = fhir_format::parse_json(data) else {
        return;
    };
    let xml = fhir_format::json_to_xml(&resource).expect("a resource read from JSON is written as XML");
    let again = fhir_format::parse_xml(xml.as_bytes())
        .unwrap_or_else(|e| panic!("its XML is read again: {e:?}\n{xml}"));
    assert_eq!(again, resource, "the XML round trip changed the resource\n{xml}");
});
