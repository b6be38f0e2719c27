//! TLS termination with rustls (`server.tls.cert`/`key`): a small site can serve FHIR over
//! https without a proxy (http.html#security: "Production exchange of patient or other
//! sensitive data will always occur over … TLS").

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use conformance_tests::{binary, free_port};

#[test]
fn serves_fhir_over_https() {
    let dir = std::env::temp_dir().join(format!("healthbook-tls-{}", uuid::Uuid::new_v4()));
    fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    // A test CA and a server certificate for 127.0.0.1 signed by it.
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        vec![
            "req",
            "-x509",
            ec[0],
            ec[1],
            ec[2],
            ec[3],
            ec[4],
            "-days",
            "1",
            "-subj",
            "/CN=healthbook-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        vec![
            "req",
            ec[0],
            ec[1],
            ec[2],
            ec[3],
            ec[4],
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    ] {
        let made = Command::new("openssl")
            .args(&args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(made.success(), "openssl {args:?} failed");
    }

    let port = free_port();
    let mut server = Command::new(binary())
        .arg("serve")
        .env("HEALTHBOOK__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "HEALTHBOOK__DATABASE__URL",
            format!("sqlite://{}", dir.join("hb.db").display()),
        )
        .env("HEALTHBOOK__SERVER__TLS__CERT", &cert)
        .env("HEALTHBOOK__SERVER__TLS__KEY", &key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start healthbook");

    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&fs::read(&ca).unwrap()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.get(format!("{base}/health/ready")).send() {
            Ok(r) if r.status().is_success() => break,
            other => assert!(
                Instant::now() < deadline,
                "no https answer: {:?}",
                other.map(|r| r.status()).map_err(|e| format!("{e:?}"))
            ),
        }
        thread::sleep(Duration::from_millis(50));
    }
    let statement: serde_json::Value = client
        .get(format!("{base}/fhir/metadata"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        statement["implementation"]["url"],
        format!("{base}/fhir"),
        "links are https"
    );
    let plain = conformance_tests::client()
        .get(format!("http://127.0.0.1:{port}/health/live"))
        .send();
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain http must not be served"
    );

    let _ = server.kill();
    let _ = server.wait();
    let _ = fs::remove_dir_all(&dir);
}
