//! The JSON reader, and the XML writer and reader on what the server stores: a resource
//! read from JSON whose narratives pass txt-1/txt-2 (the validation refuses the others),
//! written as XML and read again is the same resource (a round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let Ok(resource) = fhir_format::parse_json(data) else {
        return;
    };
    if !narratives_valid(&resource) {
        return;
    }
    let xml = fhir_format::json_to_xml(&resource).expect("a resource read from JSON is written as XML");
    let again = fhir_format::parse_xml(xml.as_bytes())
        .unwrap_or_else(|e| panic!("its XML is read again: {e:?}\n{xml}"));
    // A narrative is XHTML: XML writes it in its own form (`</div >` comes back `</div>`),
    // so the narratives are compared as what the validation accepts, the rest exactly.
    assert!(narratives_valid(&again), "its narrative reads back invalid\n{xml}");
    assert_eq!(
        without_narratives(again),
        without_narratives(resource),
        "the XML round trip changed the resource\n{xml}"
    );
});

/// Whether every narrative in `value` (contained resources too) passes txt-1 and txt-2.
fn narratives_valid(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map.iter().all(|(key, v)| {
            let div = (key == "text").then(|| v.get("div").and_then(|d| d.as_str())).flatten();
            div.is_none_or(|d| fhir_format::check_narrative(d).is_ok()) && narratives_valid(v)
        }),
        serde_json::Value::Array(items) => items.iter().all(narratives_valid),
        _ => true,
    }
}

/// `value` with every narrative's `div` left out.
fn without_narratives(mut value: serde_json::Value) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(text) = map.get_mut("text").and_then(|t| t.as_object_mut()) {
                    text.remove("div");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}
