//! Scanner robustness of the personal QR (issue 15, docs/QR.md): codes of many tokens,
//! rendered by the server as PNG and SVG at 2 to 10 pixels per module, are decoded by two
//! independent decoders (Debian `zbar-tools`' `zbarimg`, PyPI `zxing-cpp`), as rendered
//! and after a phone camera's degradations (`qr/decode.py`); every decode must give back the
//! exact payload. `.ci/run` installs the decoders; elsewhere the test is skipped (with a
//! line) when they are missing, and fails in CI.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use conformance_tests::*;

fn decoders_present() -> bool {
    let zbar = Command::new("zbarimg").arg("--version").output().is_ok();
    let python = Command::new("python3")
        .args(["-c", "import zxingcpp, PIL, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    let rsvg = Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok();
    let present = zbar && python && rsvg;
    if !present {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")),
            "the QR decoders must be installed in CI (zbar-tools, librsvg2-bin, conformance-tests/qr/requirements.txt)"
        );
        eprintln!("skipping the QR scan test: zbarimg, rsvg-convert or zxing-cpp is missing");
    }
    present
}

#[test]
fn every_code_decodes_with_both_decoders_at_every_size_and_degradation() {
    if !decoders_present() {
        return;
    }
    for s in servers() {
        let dir = std::env::temp_dir().join(format!("healthbook-qr-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut manifest = BTreeMap::new();
        for n in 0..4 {
            let id = id_of(&s.create(&patient("Scanned")));
            let issued = s
                .req(Method::POST, &format!("Patient/{id}/$qr-issue"))
                .fetch()
                .expect_status(200)
                .json();
            let payload = issued["parameter"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "payload")
                .unwrap()["valueString"]
                .as_str()
                .unwrap()
                .to_owned();
            for size in 2..=10 {
                for (accept, ext) in [("image/png", "png"), ("image/svg+xml", "svg")] {
                    let resp = s
                        .client
                        .get(s.url(&format!("Patient/{id}/$qr?size={size}")))
                        .header("Accept", accept)
                        .send()
                        .expect("GET $qr");
                    assert_eq!(resp.status(), 200, "[{}] {accept} size {size}", s.backend);
                    assert_eq!(resp.headers()["content-type"], accept);
                    let name = format!("t{n}-s{size}.{ext}");
                    std::fs::write(dir.join(&name), resp.bytes().unwrap()).unwrap();
                    manifest.insert(name, payload.clone());
                }
            }
        }
        std::fs::write(
            dir.join("manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("qr/decode.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("run qr/decode.py");
        assert!(
            out.status.success(),
            "decode.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!(
            "[{}] decode rates (ok/total; read within three frames, and in the first alone):",
            s.backend
        );
        for (degradation, decoders) in report["rates"].as_object().unwrap() {
            let single = &report["single_frame"][degradation];
            eprintln!("  {degradation}: {decoders}; first frame {single}");
        }
        let failures = report["failures"].as_array().unwrap();
        assert!(
            failures.is_empty(),
            "[{}] {} decodes failed, e.g. {:?}",
            s.backend,
            failures.len(),
            &failures[..failures.len().min(10)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The code of a token: 400 for a size outside 1..40, 404 when there is none.
#[test]
fn image_parameters_are_checked() {
    let s = Server::start(Backend::Sqlite);
    let id = id_of(&s.create(&patient("Scanned")));
    let resp = s
        .req(Method::GET, &format!("Patient/{id}/$qr"))
        .header("Accept", "image/png")
        .fetch();
    assert_eq!(error_code(&resp.expect_error(404)), "HB-QR-UNKNOWN");
    s.req(Method::POST, &format!("Patient/{id}/$qr-issue"))
        .fetch()
        .expect_status(200);
    for size in ["0", "41", "x"] {
        let resp = s
            .req(Method::GET, &format!("Patient/{id}/$qr?size={size}"))
            .header("Accept", "image/png")
            .fetch();
        assert_eq!(error_code(&resp.expect_error(400)), "HB-OPERATION-PARAM");
    }
}
