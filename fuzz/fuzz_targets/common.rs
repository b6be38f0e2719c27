//! What every target shares.

/// libFuzzer's panic hook aborts on every panic, also one the code under test catches on
/// purpose (`fhir-format` runs fhirbolt under `catch_unwind`): a panic that escapes is still
/// a crash, because libfuzzer-sys aborts when the target unwinds.
pub fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
