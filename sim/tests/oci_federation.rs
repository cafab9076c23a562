//! The simulated auth service and metadata service refuse what OCI's refuse: requests
//! to `POST /v1/x509` whose keyId does not name the presented certificate (tenancy,
//! fingerprint, algorithm), that the leaf key did not sign, whose body changed, whose
//! leaf does not chain to the root, or with an unknown purpose; metadata requests
//! without `Authorization: Bearer Oracle` or for an unknown instance; and Core Services
//! calls whose `ST$` token is forged or expired. Requests are signed with pinip's own
//! signer (`pinip_providers::oci::SigningKey`).

use std::time::SystemTime;

use pinip_providers::oci::x509::{der_of_pem, sha256_fingerprint, unarmoured};
use pinip_providers::oci::SigningKey;
use pinip_sim::oci::{OciSim, SeededInstance, TEST_PRIVATE_KEY_PEM, TEST_PUBLIC_KEY_PEM};
use reqwest::{Method, Url};
use serde_json::{json, Value};

struct World {
    sim: OciSim,
    node: SeededInstance,
    http: reqwest::Client,
    cert: String,
    key: String,
    intermediate: String,
}

async fn world() -> World {
    let sim = OciSim::start().await.expect("simulator starts");
    let compartment = sim.add_compartment();
    let node = sim.add_instance(&compartment, "node-1", true, true);
    // reqwest is built without a crypto provider of its own (plain HTTP here anyway).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let base = sim.metadata_base_url(&node.instance_id);
    let mut got = Vec::new();
    for path in [
        "identity/cert.pem",
        "identity/key.pem",
        "identity/intermediate.pem",
    ] {
        let answer = http
            .get(format!("{base}/{path}"))
            .header("authorization", "Bearer Oracle")
            .send()
            .await
            .expect("metadata answers");
        assert_eq!(answer.status(), 200, "{path}");
        got.push(answer.text().await.expect("text"));
    }
    let [cert, key, intermediate] = <[String; 3]>::try_from(got).expect("three");
    World {
        sim,
        node,
        http,
        cert,
        key,
        intermediate,
    }
}

fn sha1_fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl World {
    fn key_id(&self) -> String {
        let der = der_of_pem(&self.cert).expect("a certificate");
        format!(
            "{}/fed-x509-sha256/{}",
            self.sim.tenancy(),
            sha256_fingerprint(&der)
        )
    }

    fn body(&self) -> Value {
        json!({
            "certificate": unarmoured(&self.cert),
            "publicKey": unarmoured(TEST_PUBLIC_KEY_PEM),
            "intermediateCertificates": [unarmoured(&self.intermediate)],
            "purpose": "DEFAULT",
            "fingerprintAlgorithm": "SHA256",
        })
    }

    /// POST /v1/x509 with `body`, signed by `key_pem` as `key_id`; `tamper` changes the
    /// body after signing.
    async fn federate(
        &self,
        key_id: &str,
        key_pem: &str,
        body: &Value,
        tamper: bool,
    ) -> (u16, Value) {
        let url = Url::parse(&self.sim.federation_endpoint()).expect("url");
        let mut bytes = serde_json::to_vec(body).expect("json");
        let key = SigningKey::new(key_id, key_pem).expect("key");
        let headers = key
            .sign_federation(&url, &bytes, SystemTime::now())
            .expect("signed");
        if tamper {
            // Still JSON, the certificate intact: one character of the session key.
            let at = String::from_utf8_lossy(&bytes)
                .find("\"publicKey\":\"")
                .expect("a publicKey")
                + 20;
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        }
        let mut request = self.http.post(url).body(bytes);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = request.send().await.expect("answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    async fn core_get(&self, key_id: &str, key_pem: &str) -> (u16, Value) {
        let url = Url::parse(&format!(
            "{}/20160918/instances/{}",
            self.sim.url(),
            self.node.instance_id
        ))
        .expect("url");
        let key = SigningKey::new(key_id, key_pem).expect("key");
        let mut request = self.http.request(Method::GET, url.clone());
        for (name, value) in key
            .sign(&Method::GET, &url, None, SystemTime::now())
            .expect("signed")
        {
            request = request.header(name, value);
        }
        let answer = request.send().await.expect("answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_well_formed_request_gets_a_token_that_names_the_instance() {
    let w = world().await;
    let (status, answer) = w.federate(&w.key_id(), &w.key, &w.body(), false).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().expect("a token");
    let payload: Value = {
        use base64::Engine;
        let part = token.split('.').nth(1).expect("a JWT");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("claims")
    };
    assert_eq!(payload["opc-instance"], w.node.instance_id.as_str());
    assert_eq!(payload["res_tenant"], w.sim.tenancy().as_str());
    assert_eq!(payload["opc-compartment"], w.node.compartment.as_str());
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        pinip_sim::oci::DEFAULT_TOKEN_LIFETIME.as_secs() as i64
    );
    let jwk: Value = serde_json::from_str(payload["jwk"].as_str().expect("jwk")).expect("JSON");
    assert_eq!(
        (jwk["kty"].as_str(), jwk["e"].as_str()),
        (Some("RSA"), Some("AQAB"))
    );

    // The token signs Core Services calls with the session key (here the test key).
    let (status, instance) = w
        .core_get(&format!("ST${token}"), TEST_PRIVATE_KEY_PEM)
        .await;
    assert_eq!(status, 200, "{instance}");
    // With another key than the token's jwk: refused.
    let (status, _) = w.core_get(&format!("ST${token}"), &w.key).await;
    assert_eq!(status, 401);
    // A token whose claims were changed: its signature no longer holds.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1].insert(4, 'x');
    let (status, body) = w
        .core_get(&format!("ST${}", parts.join(".")), TEST_PRIVATE_KEY_PEM)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("NotAuthenticated"))
    );
    // Expired: 401 with the API's error body.
    w.sim.expire_session_tokens();
    let (status, body) = w
        .core_get(&format!("ST${token}"), TEST_PRIVATE_KEY_PEM)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("NotAuthenticated"))
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{body}"
    );
}

#[tokio::test]
async fn the_older_sha1_key_id_is_accepted_without_a_fingerprint_algorithm() {
    let w = world().await;
    let der = der_of_pem(&w.cert).expect("cert");
    let mut body = w.body();
    body.as_object_mut()
        .expect("object")
        .remove("fingerprintAlgorithm");
    body.as_object_mut().expect("object").remove("purpose");
    let key_id = format!("{}/fed-x509/{}", w.sim.tenancy(), sha1_fingerprint(&der));
    let (status, answer) = w.federate(&key_id, &w.key, &body, false).await;
    assert_eq!(status, 200, "{answer}");
    // But not under the SHA-256 algorithm.
    let (status, _) = w.federate(&key_id, &w.key, &w.body(), false).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn what_oci_refuses_the_simulator_refuses() {
    let w = world().await;
    let good = w.key_id();
    let fingerprint = good.rsplit('/').next().expect("fingerprint").to_string();
    let cases: Vec<(&str, String, &str, Value, bool, u16)> = vec![
        (
            "another tenancy",
            format!("ocid1.tenancy.oc1..other/fed-x509-sha256/{fingerprint}"),
            &w.key,
            w.body(),
            false,
            401,
        ),
        (
            "another certificate's fingerprint",
            format!(
                "{}/fed-x509-sha256/{}",
                w.sim.tenancy(),
                "ab:".repeat(31) + "ab"
            ),
            &w.key,
            w.body(),
            false,
            401,
        ),
        (
            "not the leaf's key",
            good.clone(),
            TEST_PRIVATE_KEY_PEM,
            w.body(),
            false,
            401,
        ),
        (
            "a body changed after signing",
            good.clone(),
            &w.key,
            w.body(),
            true,
            401,
        ),
        (
            "no intermediate",
            good.clone(),
            &w.key,
            {
                let mut b = w.body();
                b["intermediateCertificates"] = json!([]);
                b
            },
            false,
            401,
        ),
        (
            "an unknown purpose",
            good.clone(),
            &w.key,
            {
                let mut b = w.body();
                b["purpose"] = json!("SERVICE_PRINCIPAL");
                b
            },
            false,
            400,
        ),
        (
            "no session key",
            good.clone(),
            &w.key,
            {
                let mut b = w.body();
                b.as_object_mut().expect("object").remove("publicKey");
                b
            },
            false,
            400,
        ),
    ];
    for (what, key_id, key, body, tamper, expected) in cases {
        let (status, answer) = w.federate(&key_id, key, &body, tamper).await;
        assert_eq!(status, expected, "{what}: {answer}");
        assert!(
            answer["code"].as_str().is_some(),
            "{what}: an error body: {answer}"
        );
    }
    assert_eq!(w.sim.session_tokens_issued(), 0);
}

#[tokio::test]
async fn the_metadata_service_wants_the_v2_header_and_a_known_instance() {
    let w = world().await;
    let base = w.sim.metadata_base_url(&w.node.instance_id);
    let plain = w
        .http
        .get(format!("{base}/identity/cert.pem"))
        .send()
        .await
        .expect("answers");
    assert_eq!(plain.status(), 401);
    let region = w
        .http
        .get(format!("{base}/instance/region"))
        .header("authorization", "Bearer Oracle")
        .send()
        .await
        .expect("answers");
    assert_eq!(region.text().await.expect("text"), "iad");
    let unknown = w
        .http
        .get(format!(
            "{}/identity/cert.pem",
            w.sim.metadata_base_url("ocid1.instance.oc1.iad.nobody")
        ))
        .header("authorization", "Bearer Oracle")
        .send()
        .await
        .expect("answers");
    assert_eq!(unknown.status(), 404);
    w.sim.terminate_instance(&w.node.instance_id);
    let gone = w
        .http
        .get(format!("{base}/identity/key.pem"))
        .header("authorization", "Bearer Oracle")
        .send()
        .await
        .expect("answers");
    assert_eq!(gone.status(), 404);
}
