//! Security: Healthbook as an OAuth 2.0 resource server for SMART on FHIR, against a real
//! OpenID provider (oidc-provider). RFC 6750 §3 (Bearer errors), RFC 9068 (JWT access
//! tokens), SMART App Launch 2.x scopes-and-launch-context.html and conformance.html.

use std::thread;
use std::time::Duration;

use conformance_tests::idp::{secured_server, secured_server_with, Idp, TokenOptions};
use conformance_tests::*;

fn bearer(s: &Server, method: Method, path: &str, token: &str) -> RequestBuilder {
    s.req(method, path).bearer_auth(token)
}

fn immunization_for(patient_id: &str) -> Value {
    json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
        "patient": {"reference": format!("Patient/{patient_id}")},
        "occurrenceDateTime": "2021-07-01",
        "lotNumber": "FF1234"
    })
}

fn create_with(s: &Server, token: &str, resource: &Value) -> String {
    let ty = resource["resourceType"].as_str().unwrap();
    id_of(
        &bearer(s, Method::POST, ty, token)
            .fhir_json(resource)
            .fetch()
            .expect_status(201)
            .json(),
    )
}

/// RFC 6750 §3.1: a request without a token gets 401 and a `Bearer` challenge without an
/// error code; the CapabilityStatement and SMART configuration stay public.
#[test]
fn requests_without_a_token_are_401() {
    let (s, _idp) = secured_server(Backend::Sqlite);
    let resp = s.get("Patient/abc");
    assert_eq!(resp.status, 401, "{}", resp.text());
    let challenge = resp.must_header("www-authenticate");
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "{challenge}"
    );
    assert_outcome(&resp.json(), &["login"]);
    s.get("metadata").expect_status(200);
    s.get(".well-known/smart-configuration").expect_status(200);
}

/// RFC 6750 §3.1 `invalid_token`: malformed, tampered, expired, wrong-audience and
/// untrusted-issuer tokens are all 401.
#[test]
fn tokens_that_do_not_verify_are_401_invalid_token() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let good = idp.token("system/*.rs");
    bearer(&s, Method::GET, "Patient/_history", &good)
        .fetch()
        .expect_status(200);

    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let wrong_audience = idp.token_with(
        "system/*.rs",
        &TokenOptions {
            resource: Some("http://other.example/fhir"),
            ..Default::default()
        },
    );
    let stranger = Idp::start(&s.base);
    let untrusted = stranger.token("system/*.rs");
    let expiring = idp.token_with(
        "system/*.rs",
        &TokenOptions {
            ttl: Some(1),
            ..Default::default()
        },
    );
    thread::sleep(Duration::from_millis(2100));

    for (what, token) in [
        ("garbage", "not-a-token".to_owned()),
        ("tampered signature", tampered),
        ("wrong audience", wrong_audience),
        ("untrusted issuer", untrusted),
        ("expired", expiring),
    ] {
        let resp = bearer(&s, Method::GET, "Patient/_history", &token).fetch();
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
        assert!(
            resp.must_header("www-authenticate")
                .contains(r#"error="invalid_token""#),
            "{what}"
        );
    }
}

/// Allowed algorithms: ES256 and RS256 tokens both verify (keys found by `kid`).
#[test]
fn es256_and_rs256_tokens_verify() {
    let (s, idp) = secured_server(Backend::Sqlite);
    for alg in ["ES256", "RS256"] {
        let token = idp.token_with(
            "system/Patient.rs",
            &TokenOptions {
                alg: Some(alg),
                ..Default::default()
            },
        );
        bearer(&s, Method::GET, "Patient/_history", &token)
            .fetch()
            .expect_status(200);
    }
}

/// `access.practitioner = "open"`: user/ scopes reach every record (the rule of the
/// personal QR is tested in qr_access.rs).
const OPEN: &[(&str, &str)] = &[("HEALTHBOOK__ACCESS__PRACTITIONER", "open")];

/// Scope letters per interaction (c r u d s); v1 `write` does not imply read; a missing
/// scope is 403 `insufficient_scope` naming the scope needed.
#[test]
fn scopes_limit_interactions() {
    let (s, idp) = secured_server_with(Backend::Sqlite, OPEN);
    let admin = idp.token("system/*.cruds");
    let id = create_with(&s, &admin, &patient("Scoped"));

    let reader = idp.token("user/Patient.rs");
    bearer(&s, Method::GET, &format!("Patient/{id}"), &reader)
        .fetch()
        .expect_status(200);
    let denied = bearer(&s, Method::POST, "Patient", &reader)
        .fhir_json(&patient("X"))
        .fetch();
    assert_eq!(denied.status, 403, "{}", denied.text());
    let challenge = denied.must_header("www-authenticate");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains("Patient.c"),
        "{challenge}"
    );
    assert_outcome(&denied.json(), &["forbidden"]);
    bearer(&s, Method::DELETE, &format!("Patient/{id}"), &reader)
        .fetch()
        .expect_error(403);
    bearer(
        &s,
        Method::GET,
        &format!("Immunization/{}", new_id()),
        &reader,
    )
    .fetch()
    .expect_error(403);

    let writer = idp.token("user/Patient.write");
    create_with(&s, &writer, &patient("Written"));
    bearer(&s, Method::GET, &format!("Patient/{id}"), &writer)
        .fetch()
        .expect_error(403);
}

/// Patient context: a `patient/` token sees its own compartment only. Other patients'
/// resources are 404 (existence is not revealed), history lists only its own, and writes
/// outside the compartment are 403.
#[test]
fn patient_scope_is_confined_to_its_compartment() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let admin = idp.token("system/*.cruds");
    let me = create_with(&s, &admin, &patient("Me"));
    let other = create_with(&s, &admin, &patient("Kín-Đáo"));
    let my_shot = create_with(&s, &admin, &immunization_for(&me));
    let their_shot = create_with(&s, &admin, &immunization_for(&other));

    let token = idp.token_with(
        "patient/*.cruds",
        &TokenOptions {
            patient: Some(&me),
            ..Default::default()
        },
    );
    bearer(&s, Method::GET, &format!("Patient/{me}"), &token)
        .fetch()
        .expect_status(200);
    bearer(&s, Method::GET, &format!("Immunization/{my_shot}"), &token)
        .fetch()
        .expect_status(200);
    for hidden in [
        format!("Patient/{other}"),
        format!("Immunization/{their_shot}"),
        format!("Immunization/{their_shot}/_history/1"),
        format!("Immunization/{their_shot}/_history"),
    ] {
        let resp = bearer(&s, Method::GET, &hidden, &token).fetch();
        assert_eq!(
            resp.status,
            404,
            "{hidden} must look absent: {}",
            resp.text()
        );
        assert!(
            !resp.text().contains("Kín-Đáo"),
            "the error must not carry the other patient's data"
        );
    }

    let history = bearer(&s, Method::GET, "Immunization/_history", &token)
        .fetch()
        .expect_status(200)
        .json();
    let ids: Vec<String> = entries(&history)
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        ids,
        vec![my_shot.clone()],
        "history shows only the patient's own resources"
    );
    assert!(
        history.get("total").is_none(),
        "a total would count hidden resources: {history}"
    );

    create_with(&s, &token, &immunization_for(&me));
    let outside = bearer(&s, Method::POST, "Immunization", &token)
        .fhir_json(&immunization_for(&other))
        .fetch();
    assert_eq!(
        outside.status,
        403,
        "creating in another compartment: {}",
        outside.text()
    );
    let mut moved = bearer(&s, Method::GET, &format!("Immunization/{my_shot}"), &admin)
        .fetch()
        .expect_status(200)
        .json();
    moved["patient"]["reference"] = json!(format!("Patient/{other}"));
    bearer(&s, Method::PUT, &format!("Immunization/{my_shot}"), &token)
        .fhir_json(&moved)
        .fetch()
        .expect_error(403);
    bearer(
        &s,
        Method::DELETE,
        &format!("Immunization/{their_shot}"),
        &token,
    )
    .fetch()
    .expect_error(403);

    let no_context = idp.token("patient/*.rs");
    bearer(&s, Method::GET, &format!("Patient/{me}"), &no_context)
        .fetch()
        .expect_error(404);
}

/// SMART App Launch conformance.html: the configuration is JSON whatever the Accept
/// header, with absolute endpoints, `S256` (never `plain`), the grant types and
/// capabilities, and CORS for browser apps. The CapabilityStatement names the same
/// endpoints in the `oauth-uris` extension.
#[test]
fn smart_configuration_and_capability_statement() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let resp = s
        .req(Method::GET, ".well-known/smart-configuration")
        .header("Accept", "application/fhir+xml")
        .fetch()
        .expect_status(200);
    assert!(resp
        .must_header("content-type")
        .starts_with("application/json"));
    assert_eq!(
        resp.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let config = resp.json();
    assert_eq!(config["token_endpoint"], format!("{}/token", idp.issuer));
    assert!(config["authorization_endpoint"]
        .as_str()
        .unwrap()
        .starts_with(&idp.issuer));
    assert_eq!(config["issuer"], idp.issuer);
    let methods = config["code_challenge_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("S256")) && !methods.contains(&json!("plain")));
    assert!(config["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("authorization_code")));
    let capabilities = config["capabilities"].as_array().unwrap();
    for c in [
        "launch-standalone",
        "permission-v2",
        "permission-patient",
        "sso-openid-connect",
    ] {
        assert!(capabilities.contains(&json!(c)), "capability {c}");
    }
    // Inferno Bulk Data discovery (bulk_data_smart_discovery_v101_contents): Backend
    // Services clients authenticate with private_key_jwt, signed RS384 or ES384.
    assert!(config["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("private_key_jwt")));
    let algs = config["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES384")) || algs.contains(&json!("RS384")));
    assert!(config["scopes_supported"].is_array());
    assert!(config["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
    // Inferno smart_cors_well_known_endpoint and smart_cors_metadata_request.
    for path in [".well-known/smart-configuration", "metadata"] {
        let resp = s
            .req(Method::GET, path)
            .header("Origin", "https://app.example.org")
            .fetch()
            .expect_status(200);
        let allowed = resp.must_header("access-control-allow-origin");
        assert!(
            allowed == "*" || allowed == "https://app.example.org",
            "{path}: {allowed}"
        );
    }

    let statement = s.get("metadata").expect_status(200).json();
    let security = &statement["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = security["extension"][0]["extension"].as_array().unwrap();
    assert!(uris
        .iter()
        .any(|u| u["url"] == "token" && u["valueUri"] == config["token_endpoint"]));
}

/// RFC 7662: opaque tokens are verified by introspection at the issuer; an active token
/// works with its scopes and launch context, a revoked or unknown one is 401.
#[test]
fn opaque_tokens_are_introspected() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let admin = idp.token("system/*.cruds");
    let me = create_with(&s, &admin, &patient("Opaque"));
    let opaque = TokenOptions {
        opaque: true,
        patient: Some(&me),
        ..Default::default()
    };
    let token = idp.token_with("patient/*.rs", &opaque);
    assert_eq!(token.split('.').count(), 1, "an opaque token: {token}");
    bearer(&s, Method::GET, &format!("Patient/{me}"), &token)
        .fetch()
        .expect_status(200);
    bearer(&s, Method::POST, "Patient", &token)
        .fhir_json(&patient("No"))
        .fetch()
        .expect_error(403);

    let revoked = idp.token_with("patient/*.rs", &opaque);
    idp.revoke(&revoked);
    for (what, t) in [
        ("revoked", revoked),
        ("unknown", "made-up-opaque-token".to_owned()),
    ] {
        let resp = bearer(&s, Method::GET, &format!("Patient/{me}"), &t).fetch();
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
        assert!(
            resp.must_header("www-authenticate")
                .contains("invalid_token"),
            "{what}"
        );
    }
}

/// Key rotation: a token signed with a new key (a kid the server has not seen) makes the
/// server fetch the issuer's key set again. A flood of tokens with made-up kids fetches it
/// at most once per `auth.jwks_min_refresh_secs`, so it cannot hammer the provider.
#[test]
fn key_rotation_and_unknown_kid_flood() {
    let (s, mut idp) = secured_server_with(
        Backend::Sqlite,
        &[("HEALTHBOOK__AUTH__JWKS_MIN_REFRESH_SECS", "2")],
    );
    let before = idp.token("system/*.rs");
    bearer(&s, Method::GET, "Patient/_history", &before)
        .fetch()
        .expect_status(200);
    idp.rotate_keys();
    thread::sleep(Duration::from_millis(2100));
    let after = idp.token("system/*.rs");
    bearer(&s, Method::GET, "Patient/_history", &after)
        .fetch()
        .expect_status(200);

    let fetches = idp.jwks_fetches();
    let payload = after.split('.').nth(1).unwrap().to_owned();
    for i in 0..30 {
        let header = base64url(
            format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"made-up-{i}"}}"#).as_bytes(),
        );
        let forged = format!("{header}.{payload}.c2lnbmF0dXJl");
        let resp = bearer(&s, Method::GET, "Patient/_history", &forged).fetch();
        assert_eq!(resp.status, 401, "forged kid {i}: {}", resp.text());
    }
    let extra = idp.jwks_fetches() - fetches;
    assert!(extra <= 1, "{extra} key-set fetches for 30 unknown kids");
}

/// A replica's first burst: requests that arrive together while the key set is first
/// fetched all verify (they wait for the one fetch; none is refused by the refresh limit),
/// and the key set is fetched once.
#[test]
fn a_cold_replica_verifies_a_burst_of_tokens() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let token = idp.token("system/*.rs");
    let fetches = idp.jwks_fetches();
    let statuses: Vec<u16> = thread::scope(|scope| {
        let requests: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    bearer(&s, Method::GET, "Patient/_history", &token)
                        .fetch()
                        .status
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|&st| st == 200), "{statuses:?}");
    assert_eq!(idp.jwks_fetches() - fetches, 1);
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// SMART `openid fhirUser`: the signed-in user may read their own resource (the `fhirUser`
/// claim) without a resource scope; nobody else's.
#[test]
fn fhir_user_reads_own_resource() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let admin = idp.token("system/*.cruds");
    let practitioner = json!({"resourceType": "Practitioner", "name": [{"family": "Trần"}]});
    let me = create_with(&s, &admin, &practitioner);
    let colleague = create_with(&s, &admin, &practitioner);
    let user = format!("{}/Practitioner/{me}", s.base);
    let token = idp.token_with(
        "openid fhirUser",
        &TokenOptions {
            fhir_user: Some(&user),
            ..Default::default()
        },
    );
    bearer(&s, Method::GET, &format!("Practitioner/{me}"), &token)
        .fetch()
        .expect_status(200);
    bearer(
        &s,
        Method::GET,
        &format!("Practitioner/{colleague}"),
        &token,
    )
    .fetch()
    .expect_error(404);
    bearer(&s, Method::GET, "Patient/_history", &token)
        .fetch()
        .expect_error(403);
}

/// SMART standalone launch of a patient-facing app: authorization code with PKCE (S256) at
/// a real provider, the FHIR base sent as `aud`; the access token carries the launch
/// context, and the app sees that patient's record and nobody else's.
#[test]
fn patient_app_with_authorization_code_and_pkce() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let admin = idp.token("system/*.cruds");
    let me = create_with(&s, &admin, &patient("App"));
    let other = create_with(&s, &admin, &patient("Stranger"));
    let answer =
        idp.authorization_code(&me, "openid fhirUser launch/patient patient/*.rs", &s.base);
    let token = answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"));
    bearer(&s, Method::GET, &format!("Patient/{me}"), token)
        .fetch()
        .expect_status(200);
    bearer(&s, Method::GET, &format!("Patient/{other}"), token)
        .fetch()
        .expect_error(404);
    bearer(&s, Method::POST, "Patient", token)
        .fhir_json(&patient("Nope"))
        .fetch()
        .expect_error(403);
}

/// Search under access control (scopes-and-launch-context.html): a `patient/` token's
/// search, chains, `_has`, includes, compartment search and totals see only its own
/// compartment; a granular scope narrows search to its category; `s` is needed to search.
#[test]
fn search_is_confined_to_what_the_token_may_see() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let sys = unique_system();
        let me = create_with(&s, &admin, &patient_with_identifier("Me", &sys, "ME"));
        let other = create_with(
            &s,
            &admin,
            &patient_with_identifier("Kín-Đáo", &sys, "OTHER"),
        );
        let my_shot = create_with(&s, &admin, &immunization_for(&me));
        let their_shot = create_with(&s, &admin, &immunization_for(&other));
        let lab = |patient: &str, category: &str| {
            json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": {"text": "t"}, "subject": {"reference": format!("Patient/{patient}")}})
        };
        let my_lab = create_with(&s, &admin, &lab(&me, "laboratory"));
        let my_vitals = create_with(&s, &admin, &lab(&me, "vital-signs"));
        create_with(&s, &admin, &lab(&other, "laboratory"));

        let token = idp.token_with(
            "patient/*.rs",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        let ids = |path: &str| -> Vec<String> {
            let bundle = bearer(&s, Method::GET, path, &token)
                .fetch()
                .expect_status(200)
                .json();
            assert!(
                !bundle.to_string().contains("Kín-Đáo"),
                "{path} leaked another patient"
            );
            entries(&bundle)
                .iter()
                .map(|e| id_of(&e["resource"]))
                .collect()
        };
        assert_eq!(
            ids("Immunization"),
            vec![my_shot.clone()],
            "[{}]",
            s.backend
        );
        assert_eq!(ids(&format!("Patient?identifier={sys}|")), vec![me.clone()]);
        assert_eq!(
            ids(&format!("Immunization?patient.identifier={sys}|OTHER")),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&format!(
                "Patient?_has:Immunization:patient:_id={their_shot}"
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&format!(
                "Immunization?_id={my_shot},{their_shot}&_include=Immunization:patient"
            ))
            .len(),
            2
        );
        assert_eq!(
            ids(&format!(
                "Patient?_id={me}&_revinclude=Immunization:patient"
            ))
            .len(),
            2
        );
        assert_eq!(
            ids(&format!("Patient/{other}/Immunization")),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&format!(
                "?_type=Patient,Immunization&_id={me},{other},{my_shot},{their_shot}"
            ))
            .len(),
            2
        );
        let counted = bearer(&s, Method::GET, "Observation?_summary=count", &token)
            .fetch()
            .expect_status(200)
            .json();
        assert_eq!(counted["total"], 2, "the total counts only the compartment");

        // Granular scope: laboratory observations only.
        let granular = idp.token_with(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            &TokenOptions { patient: Some(&me), ..Default::default() },
        );
        let bundle = bearer(&s, Method::GET, "Observation?_total=accurate", &granular)
            .fetch()
            .expect_status(200)
            .json();
        let got: Vec<String> = entries(&bundle)
            .iter()
            .map(|e| id_of(&e["resource"]))
            .collect();
        assert_eq!(
            got,
            vec![my_lab.clone()],
            "[{}] vital signs {my_vitals} are outside the scope",
            s.backend
        );
        assert_eq!(bundle["total"], 1);

        // A system search without _type looks only in the types the token may search.
        let imm_only = idp.token_with(
            "patient/Immunization.rs",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        let bundle = bearer(
            &s,
            Method::GET,
            &format!("?_id={me},{my_shot},{their_shot}"),
            &imm_only,
        )
        .fetch()
        .expect_status(200)
        .json();
        let got: Vec<String> = entries(&bundle)
            .iter()
            .map(|e| id_of(&e["resource"]))
            .collect();
        assert_eq!(got, vec![my_shot.clone()], "[{}]", s.backend);
        bearer(&s, Method::GET, "?_type=Patient", &imm_only)
            .fetch()
            .expect_status(403);

        // Read without search scope: 403 on search.
        let read_only = idp.token_with(
            "patient/*.r",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        bearer(&s, Method::GET, "Immunization", &read_only)
            .fetch()
            .expect_status(403);
    }
}

/// Every entry of a batch or transaction passes the same access decision as the request
/// alone (SMART scopes, patient compartment); `$everything` shows a patient token its own
/// record and hides everyone else's (404, as a read would).
#[test]
fn bundles_and_everything_pass_the_access_decision() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let me = create_with(&s, &admin, &patient("Me"));
        let other = create_with(&s, &admin, &patient("Kín-Đáo"));
        let my_shot = create_with(&s, &admin, &immunization_for(&me));
        let their_shot = create_with(&s, &admin, &immunization_for(&other));
        let token = idp.token_with(
            "patient/*.cruds",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        let post_bundle = |kind: &str, entries: Value| {
            bearer(&s, Method::POST, "", &token)
                .fhir_json(&json!({"resourceType": "Bundle", "type": kind, "entry": entries}))
                .fetch()
        };

        // Batch: reads of another patient's resources are 404 in their entries; a write
        // into another compartment is 403; my own entries succeed.
        let resp = post_bundle(
            "batch",
            json!([
                {"request": {"method": "GET", "url": format!("Immunization/{their_shot}")}},
                {"request": {"method": "GET", "url": format!("Immunization/{my_shot}")}},
                {"resource": immunization_for(&other), "request": {"method": "POST", "url": "Immunization"}},
                {"request": {"method": "GET", "url": "Immunization"}},
            ]),
        )
        .expect_status(200)
        .json();
        let e = entries(&resp);
        let status = |i: usize| e[i]["response"]["status"].as_str().unwrap().to_owned();
        assert!(status(0).starts_with("404"), "[{}] {resp}", s.backend);
        assert_eq!(status(1), "200 OK");
        assert!(status(2).starts_with("403"));
        let found: Vec<String> = entries(&e[3]["resource"])
            .iter()
            .map(|x| id_of(&x["resource"]))
            .collect();
        assert_eq!(found, vec![my_shot.clone()]);
        assert!(!resp.to_string().contains("Kín-Đáo"));

        // Transaction: one entry outside the compartment fails the whole Bundle.
        let sys = unique_system();
        let mut mine = immunization_for(&me);
        mine["identifier"] = json!([{"system": sys, "value": "1"}]);
        post_bundle(
            "transaction",
            json!([
                {"resource": mine, "request": {"method": "POST", "url": "Immunization"}},
                {"request": {"method": "DELETE", "url": format!("Immunization/{their_shot}")}},
            ]),
        )
        .expect_error(403);
        bearer(
            &s,
            Method::GET,
            &format!("Immunization/{their_shot}"),
            &admin,
        )
        .fetch()
        .expect_status(200);
        let none = bearer(
            &s,
            Method::GET,
            &format!("Immunization?identifier={sys}|1&_total=accurate"),
            &admin,
        )
        .fetch()
        .expect_status(200)
        .json();
        assert_eq!(none["total"], 0, "[{}] nothing was written", s.backend);

        // $everything: my record; another patient's is hidden.
        let mine = bearer(
            &s,
            Method::GET,
            &format!("Patient/{me}/$everything"),
            &token,
        )
        .fetch()
        .expect_status(200)
        .json();
        let ids: Vec<String> = entries(&mine)
            .iter()
            .map(|x| id_of(&x["resource"]))
            .collect();
        assert!(
            ids.contains(&me) && ids.contains(&my_shot),
            "[{}]",
            s.backend
        );
        assert!(!mine.to_string().contains("Kín-Đáo"));
        bearer(
            &s,
            Method::GET,
            &format!("Patient/{other}/$everything"),
            &token,
        )
        .fetch()
        .expect_error(404);
        let all = bearer(&s, Method::GET, "Patient/$everything", &token)
            .fetch()
            .expect_status(200)
            .json();
        assert!(!all.to_string().contains(&their_shot), "[{}]", s.backend);
    }
}

/// Conditional criteria (If-None-Exist, conditional update and delete, conditional
/// references in a transaction) only ever match what the token may see: another
/// patient's resource is neither found, counted nor hinted at by the status.
#[test]
fn conditional_criteria_match_only_what_the_token_may_see() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let sys = unique_system();
        let me = create_with(&s, &admin, &patient("Me"));
        let other = create_with(
            &s,
            &admin,
            &patient_with_identifier("Kín-Đáo", &sys, "OTHER"),
        );
        let mut their_shot = immunization_for(&other);
        their_shot["identifier"] = json!([{"system": sys, "value": "SHOT"}]);
        create_with(&s, &admin, &their_shot);
        let token = idp.token_with(
            "patient/*.cruds",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        // If-None-Exist on the other patient's shot: no match, so a create of my own.
        let mut mine = immunization_for(&me);
        mine["identifier"] = json!([{"system": sys, "value": "SHOT"}]);
        bearer(&s, Method::POST, "Immunization", &token)
            .header("If-None-Exist", format!("identifier={sys}|SHOT"))
            .fhir_json(&mine)
            .fetch()
            .expect_status(201);
        // A conditional delete of it: nothing of theirs to delete.
        bearer(
            &s,
            Method::DELETE,
            &format!("Patient?identifier={sys}|OTHER"),
            &token,
        )
        .fetch()
        .expect_status(204);
        bearer(&s, Method::GET, &format!("Patient/{other}"), &admin)
            .fetch()
            .expect_status(200);
        // A conditional reference to the other patient resolves to nothing: 404, as for a
        // patient that does not exist.
        bearer(&s, Method::POST, "", &token)
            .fhir_json(&json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                              "subject": {"reference": format!("Patient?identifier={sys}|OTHER")}},
                 "request": {"method": "POST", "url": "Observation"}}]}))
            .fetch()
            .expect_error(404);
    }
}

/// SMART Backend Services (backend-services.html): the ministry's PHR system gets a token
/// with a `private_key_jwt` client assertion (ES384) and its `system/` scopes apply: it
/// reads and searches every patient's record, and may not write with read scopes only.
#[test]
fn backend_services_client_reads_with_system_scopes() {
    let (s, idp) = secured_server(Backend::Sqlite);
    let admin = idp.token("system/*.cruds");
    let a = create_with(&s, &admin, &patient("Một"));
    let b = create_with(&s, &admin, &patient("Hai"));
    create_with(&s, &admin, &immunization_for(&a));
    let token = idp.backend_services_token("system/*.rs");
    bearer(&s, Method::GET, &format!("Patient/{b}"), &token)
        .fetch()
        .expect_status(200);
    let shots = bearer(
        &s,
        Method::GET,
        &format!("Immunization?patient={a}"),
        &token,
    )
    .fetch()
    .expect_status(200)
    .json();
    assert_eq!(entries(&shots).len(), 1);
    let everything = bearer(&s, Method::GET, &format!("Patient/{a}/$everything"), &token)
        .fetch()
        .expect_status(200)
        .json();
    assert_eq!(entries(&everything).len(), 2);
    bearer(&s, Method::POST, "Patient", &token)
        .fhir_json(&patient("Ba"))
        .fetch()
        .expect_error(403);
}

/// What one request of the access matrix must answer.
enum Expect {
    /// This status, with a body that names nothing of the other patient.
    Status(u16),
    /// A searchset with exactly these resources (by id), in any order.
    Ids(Vec<String>),
}

/// The access matrix of issue 6 (SMART App Launch scopes-and-launch-context.html, v1 and
/// v2 scopes, granular scopes; patient context): for each token, every interaction on
/// the own patient's and on another patient's data answers exactly as the scope allows.
/// Reads of what a patient token may not see are 404 (existence is not revealed), reads
/// of a type the token has no scope for are 403, writes outside the compartment are 403,
/// and no answer, not even an error, carries the other patient's data. Practitioners
/// (`user/`, under the personal-QR rule) reach only the record of the person whose QR they
/// scanned: every other record is 403 and absent from their searches.
#[test]
fn access_matrix_shows_no_leaks() {
    use Expect::{Ids, Status};
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let secret = "Bí-Mật-Người-Khác";
        let me = create_with(&s, &admin, &patient("Me"));
        let other = create_with(&s, &admin, &patient(secret));
        let my_shot = create_with(&s, &admin, &immunization_for(&me));
        let mut their_shot_body = immunization_for(&other);
        their_shot_body["lotNumber"] = json!(secret);
        let their_shot = create_with(&s, &admin, &their_shot_body);
        let lab = |patient: &str, category: &str| {
            json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": {"text": secret}, "subject": {"reference": format!("Patient/{patient}")}})
        };
        let mut my_lab_body = lab(&me, "laboratory");
        my_lab_body["code"]["text"] = json!("mine");
        let my_lab = create_with(&s, &admin, &my_lab_body);
        let mut my_vitals_body = lab(&me, "vital-signs");
        my_vitals_body["code"]["text"] = json!("mine");
        let my_vitals = create_with(&s, &admin, &my_vitals_body);
        let their_lab = create_with(&s, &admin, &lab(&other, "laboratory"));
        // A doctor scans my personal QR (docs/QR.md); another never scanned anything.
        let scanned = "Practitioner/doc-who-scanned";
        let issued = bearer(&s, Method::POST, &format!("Patient/{me}/$qr-issue"), &admin)
            .fetch()
            .expect_status(200)
            .json();
        let payload = issued["parameter"][1]["valueString"].as_str().unwrap();
        let scanner = idp.token_with(
            "user/Patient.rs",
            &TokenOptions {
                fhir_user: Some(scanned),
                ..Default::default()
            },
        );
        let url =
            reqwest::Url::parse_with_params(&s.url("Patient/$qr-resolve"), &[("code", payload)])
                .unwrap();
        let found = s.client.get(url).bearer_auth(&scanner).fetch();
        assert_eq!(found.status, 200, "[{}] scan: {}", s.backend, found.text());
        assert_eq!(found.json()["id"], me.as_str());

        let shots = format!("Immunization?_id={my_shot},{their_shot}");
        let labs = format!("Observation?_id={my_lab},{my_vitals},{their_lab}");
        let patients = format!("Patient?_id={me},{other}");
        // The rows: the requests every token makes. A write of the own patient's
        // Immunization is a create; one of the other's is a create and an update.
        let reads = [
            format!("Patient/{me}"),
            format!("Patient/{other}"),
            format!("Immunization/{my_shot}"),
            format!("Immunization/{their_shot}"),
            format!("Immunization/{their_shot}/_history/1"),
            format!("Observation/{my_lab}"),
            format!("Observation/{my_vitals}"),
            format!("Observation/{their_lab}"),
        ];
        let searches = [shots.clone(), labs.clone(), patients.clone()];
        let ids = |list: &[&String]| Ids(list.iter().map(|s| s.to_string()).collect());
        let all = |n: usize| vec![200u16; n];

        struct Row<'a> {
            scope: &'a str,
            patient: Option<&'a str>,
            fhir_user: Option<&'a str>,
            reads: Vec<u16>,
            searches: Vec<Expect>,
            /// create own, create other's, update other's
            writes: [u16; 3],
        }
        let rows = vec![
            Row {
                scope: "patient/*.read",
                patient: Some(&me),
                fhir_user: None,
                reads: vec![200, 404, 200, 404, 404, 200, 200, 404],
                searches: vec![
                    ids(&[&my_shot]),
                    ids(&[&my_lab, &my_vitals]),
                    ids(&[&me]),
                ],
                writes: [403, 403, 403],
            },
            Row {
                scope: "patient/*.rs",
                patient: Some(&me),
                fhir_user: None,
                reads: vec![200, 404, 200, 404, 404, 200, 200, 404],
                searches: vec![
                    ids(&[&my_shot]),
                    ids(&[&my_lab, &my_vitals]),
                    ids(&[&me]),
                ],
                writes: [403, 403, 403],
            },
            Row {
                scope: "patient/*.cruds",
                patient: Some(&me),
                fhir_user: None,
                reads: vec![200, 404, 200, 404, 404, 200, 200, 404],
                searches: vec![
                    ids(&[&my_shot]),
                    ids(&[&my_lab, &my_vitals]),
                    ids(&[&me]),
                ],
                writes: [201, 403, 403],
            },
            Row {
                scope: "patient/Immunization.rs",
                patient: Some(&me),
                fhir_user: None,
                reads: vec![403, 403, 200, 404, 404, 403, 403, 403],
                searches: vec![ids(&[&my_shot]), Status(403), Status(403)],
                writes: [403, 403, 403],
            },
            Row {
                scope: "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
                patient: Some(&me),
                fhir_user: None,
                reads: vec![403, 403, 403, 403, 403, 200, 404, 404],
                searches: vec![Status(403), ids(&[&my_lab]), Status(403)],
                writes: [403, 403, 403],
            },
            Row {
                // A patient scope without a patient in context opens nothing.
                scope: "patient/*.rs",
                patient: None,
                fhir_user: None,
                reads: vec![404; 8],
                searches: vec![ids(&[]), ids(&[]), ids(&[])],
                writes: [403, 403, 403],
            },
            Row {
                // The practitioner who scanned my QR: my record, nobody else's.
                scope: "user/*.read",
                patient: None,
                fhir_user: Some(scanned),
                reads: vec![200, 403, 200, 403, 403, 200, 200, 403],
                searches: vec![
                    ids(&[&my_shot]),
                    ids(&[&my_lab, &my_vitals]),
                    ids(&[&me]),
                ],
                writes: [403, 403, 403],
            },
            Row {
                scope: "user/*.cruds",
                patient: None,
                fhir_user: Some(scanned),
                reads: vec![200, 403, 200, 403, 403, 200, 200, 403],
                searches: vec![
                    ids(&[&my_shot]),
                    ids(&[&my_lab, &my_vitals]),
                    ids(&[&me]),
                ],
                writes: [201, 403, 403],
            },
            Row {
                // A practitioner who scanned nothing reaches no record.
                scope: "user/*.cruds",
                patient: None,
                fhir_user: Some("Practitioner/doc-without-scan"),
                reads: vec![403; 8],
                searches: vec![ids(&[]), ids(&[]), ids(&[])],
                writes: [403, 403, 403],
            },
            Row {
                // Nor does a user token that names no practitioner.
                scope: "user/*.read",
                patient: None,
                fhir_user: None,
                reads: vec![403; 8],
                searches: vec![ids(&[]), ids(&[]), ids(&[])],
                writes: [403, 403, 403],
            },
            Row {
                scope: "user/Immunization.rs",
                patient: None,
                fhir_user: Some(scanned),
                reads: vec![403, 403, 200, 403, 403, 403, 403, 403],
                searches: vec![ids(&[&my_shot]), Status(403), Status(403)],
                writes: [403, 403, 403],
            },
            Row {
                // v1 `write` does not imply read (scopes-and-launch-context.html#scopes-for-requesting-clinical-data).
                scope: "user/*.write",
                patient: None,
                fhir_user: Some(scanned),
                reads: vec![403; 8],
                searches: vec![Status(403), Status(403), Status(403)],
                writes: [201, 403, 403],
            },
            Row {
                // `r` without `s`: read by id, but no search.
                scope: "system/Patient.r",
                patient: None,
                fhir_user: None,
                reads: vec![200, 200, 403, 403, 403, 403, 403, 403],
                searches: vec![Status(403), Status(403), Status(403)],
                writes: [403, 403, 403],
            },
            Row {
                scope: "system/*.cruds",
                patient: None,
                fhir_user: None,
                reads: all(8),
                searches: vec![
                    ids(&[&my_shot, &their_shot]),
                    ids(&[&my_lab, &my_vitals, &their_lab]),
                    ids(&[&me, &other]),
                ],
                writes: [201, 201, 200],
            },
        ];

        for row in &rows {
            let token = idp.token_with(
                row.scope,
                &TokenOptions {
                    patient: row.patient,
                    fhir_user: row.fhir_user,
                    ..Default::default()
                },
            );
            let confined = !row.scope.starts_with("system/");
            let who = format!(
                "[{}] {} (patient {:?}, fhirUser {:?})",
                s.backend, row.scope, row.patient, row.fhir_user
            );
            let check_body = |what: &str, resp: &Resp| {
                if confined {
                    assert!(
                        !resp.text().contains(secret),
                        "{who}: {what} leaked the other patient's data: {}",
                        resp.text()
                    );
                }
            };
            for (path, expected) in reads.iter().zip(&row.reads) {
                let resp = bearer(&s, Method::GET, path, &token).fetch();
                assert_eq!(resp.status, *expected, "{who}: GET {path}: {}", resp.text());
                check_body(path, &resp);
            }
            for (path, expected) in searches.iter().zip(&row.searches) {
                let resp = bearer(&s, Method::GET, path, &token).fetch();
                check_body(path, &resp);
                match expected {
                    Status(status) => {
                        assert_eq!(resp.status, *status, "{who}: GET {path}: {}", resp.text())
                    }
                    Ids(want) => {
                        assert_eq!(resp.status, 200, "{who}: GET {path}: {}", resp.text());
                        let mut got: Vec<String> = entries(&resp.json())
                            .iter()
                            .map(|e| id_of(&e["resource"]))
                            .collect();
                        let mut want = want.clone();
                        got.sort();
                        want.sort();
                        assert_eq!(got, want, "{who}: GET {path}");
                    }
                }
            }
            let create_own = bearer(&s, Method::POST, "Immunization", &token)
                .fhir_json(&immunization_for(&me))
                .fetch();
            assert_eq!(
                create_own.status,
                row.writes[0],
                "{who}: create own: {}",
                create_own.text()
            );
            let create_other = bearer(&s, Method::POST, "Immunization", &token)
                .fhir_json(&immunization_for(&other))
                .fetch();
            assert_eq!(
                create_other.status,
                row.writes[1],
                "{who}: create other's: {}",
                create_other.text()
            );
            let mut update = their_shot_body.clone();
            update["id"] = json!(their_shot);
            let update_other = bearer(
                &s,
                Method::PUT,
                &format!("Immunization/{their_shot}"),
                &token,
            )
            .fhir_json(&update)
            .fetch();
            assert_eq!(
                update_other.status,
                row.writes[2],
                "{who}: update other's: {}",
                update_other.text()
            );
            check_body("update other's", &update_other);
        }
    }
}

/// Chains and `_has` reach only what the token may search (scopes-and-launch-context.html:
/// a resource the token may not see is never hinted at): a chain into a type without a
/// scope, or a `_has` over resources a granular scope hides, matches nothing.
#[test]
fn chains_and_has_reach_only_what_the_token_may_see() {
    for backend in backends() {
        let (s, idp) = secured_server_with(backend, OPEN);
        let admin = idp.token("system/*.cruds");
        let person = create_with(&s, &admin, &patient("Kín-Đáo"));
        let shot = create_with(&s, &admin, &immunization_for(&person));
        let obs = |category: &str, code: &str| {
            json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": format!("Patient/{person}")}})
        };
        create_with(&s, &admin, &obs("laboratory", "94500-6"));
        create_with(&s, &admin, &obs("social-history", "11331-6"));
        let ids = |token: &str, path: &str| -> Vec<String> {
            let bundle = bearer(&s, Method::GET, path, token)
                .fetch()
                .expect_status(200)
                .json();
            entries(&bundle)
                .iter()
                .map(|e| id_of(&e["resource"]))
                .collect()
        };

        // Immunizations only: the patient's name is not searchable through a chain.
        let shots_only = idp.token("user/Immunization.rs");
        assert_eq!(
            ids(&shots_only, &format!("Immunization?patient={person}")),
            vec![shot.clone()],
            "[{}]",
            s.backend
        );
        assert!(ids(&shots_only, "Immunization?patient.name=kin").is_empty());
        let with_patients = idp.token("user/Immunization.rs user/Patient.rs");
        assert_eq!(
            ids(&with_patients, "Immunization?patient.name=kin"),
            vec![shot.clone()]
        );

        // Laboratory Observations only: `_has` does not tell which other Observations exist.
        let lab = idp.token(
            "user/Patient.rs user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        );
        assert_eq!(
            ids(&lab, "Patient?_has:Observation:subject:code=94500-6"),
            vec![person.clone()]
        );
        assert!(ids(&lab, "Patient?_has:Observation:subject:code=11331-6").is_empty());
        let no_observations = idp.token("user/Patient.rs");
        assert!(ids(
            &no_observations,
            "Patient?_has:Observation:subject:code=94500-6"
        )
        .is_empty());
        assert_eq!(
            ids(&admin, "Patient?_has:Observation:subject:code=11331-6"),
            vec![person.clone()]
        );
    }
}

/// search.html#contained under a `patient/` token: the containers are narrowed like any
/// search (the compartment), so neither the containers nor the contained resources of
/// another person come back; a chain into a contained resource is confined like any
/// chain of the token.
#[test]
fn contained_searches_stay_in_the_compartment() {
    for backend in backends() {
        let (s, idp) = secured_server(backend);
        let admin = idp.token("system/*.cruds");
        let me = create_with(&s, &admin, &patient("Của-Tôi"));
        let other = create_with(&s, &admin, &patient("Người-Khác"));
        let sys = unique_system();
        let request = |person: &str| {
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                   "contained": [{"resourceType": "Medication", "id": "m1",
                                  "code": {"coding": [{"system": sys, "code": "aspirin"}]}}],
                   "medicationReference": {"reference": "#m1"},
                   "subject": {"reference": format!("Patient/{person}")}})
        };
        let mine = create_with(&s, &admin, &request(&me));
        let theirs = create_with(&s, &admin, &request(&other));
        let token = idp.token_with(
            "patient/*.rs",
            &TokenOptions {
                patient: Some(&me),
                ..Default::default()
            },
        );
        let urls = |token: &str, path: &str| -> Vec<String> {
            let bundle = bearer(&s, Method::GET, path, token)
                .fetch()
                .expect_status(200)
                .json();
            let mut urls: Vec<String> = entries(&bundle)
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap_or_default().to_owned())
                .collect();
            urls.sort();
            urls
        };
        let mut everyone = vec![
            format!("{}/MedicationRequest/{mine}", s.base),
            format!("{}/MedicationRequest/{theirs}", s.base),
        ];
        everyone.sort();
        let code = format!("code={sys}|aspirin");
        assert_eq!(
            urls(&admin, &format!("Medication?_contained=true&{code}")),
            everyone,
            "[{}]",
            s.backend
        );
        assert_eq!(
            urls(&token, &format!("Medication?_contained=true&{code}")),
            vec![format!("{}/MedicationRequest/{mine}", s.base)]
        );
        assert_eq!(
            urls(
                &token,
                &format!("Medication?_contained=true&_containedType=contained&{code}")
            ),
            vec![format!("{}/MedicationRequest/{mine}#m1", s.base)]
        );
        // A chain is confined like any chain of the token: Medication is outside the
        // Patient compartment, so a chain into one, contained or not, reaches nothing.
        let chain = format!("MedicationRequest?medication.code={sys}|aspirin");
        assert_eq!(urls(&admin, &chain), everyone);
        assert!(urls(&token, &chain).is_empty());
    }
}
