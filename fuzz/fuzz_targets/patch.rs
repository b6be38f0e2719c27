//! JSON Patch and FHIRPath Patch (their readers, FHIRPath, and applying them to a Patient).
//! The first byte chooses the kind.
#![no_main]

use healthbook::service::Patch;
use libfuzzer_sys::fuzz_target;

mod common;

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p","active":true,
  "identifier":[{"system":"urn:x","value":"1"}],
  "name":[{"family":"Nguyễn","given":["An","Văn"]},{"text":"An"}],
  "birthDate":"1990-01-02","contact":[{"name":{"family":"Trần"}}]}"#;

fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let patch = if kind % 2 == 0 {
        Patch::json_patch(body)
    } else {
        let Ok(parameters) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        Patch::fhirpath_patch(&parameters)
    };
    if let Ok(patch) = patch {
        let mut patient: serde_json::Value = serde_json::from_str(PATIENT).expect("the Patient");
        if patch.apply(&mut patient).is_ok() {
            let _ = fhir_format::normalize(patient);
        }
    }
});
