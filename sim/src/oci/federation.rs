//! The auth service's X.509 federation endpoint (`POST /v1/x509`) and the session tokens
//! it issues, as instance principals use them:
//!
//! - the body names the leaf `certificate`, the session `publicKey` (base64 DER, no
//!   armour), `intermediateCertificates`, optionally `purpose` (`DEFAULT`) and
//!   `fingerprintAlgorithm` (`SHA256`);
//! - the request is signed (draft-cavage, `date (request-target) content-length
//!   content-type x-content-sha256`, `host` not required) with the leaf's key, keyId
//!   `<tenancy>/fed-x509-sha256/<SHA-256 of the leaf>` (or, as older SDKs and the Python
//!   SDK send, `<tenancy>/fed-x509/<SHA-1>`): the fingerprint must be the presented
//!   certificate's, the tenancy its `opc-tenant:`, the signature the leaf key's;
//! - the leaf must chain through a presented intermediate to the simulator's root;
//! - the answer is `{"token": <JWT>}`, RS256, whose claims name the instance, its
//!   compartment and tenancy, `exp`/`iat`, and `jwk`: the session public key.
//!
//! Core Services accepts `keyId="ST$<token>"` when the token is one of ours (signature),
//! not expired (`exp`, and not expired by [`super::OciSim::expire_session_tokens`]), and
//! the request verifies with the token's `jwk`. Everything else is 401 `NotAuthenticated`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};
use std::sync::Arc;

use super::errors::ApiError;
use super::identity::Pki;
use super::signature::{parse_authorization, pem_body, verify_with, PublicKey};
use super::x509::{parse_leaf, rsa_components};
use super::Shared;

/// The key the simulated auth service signs its tokens with. Made for the simulator.
const TEST_TOKEN_KEY_PEM: &str = include_str!("test_token_key.pem");
/// How long a token lasts unless a test says otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(20 * 60);

/// The simulated identity side: the PKI, the token key, and what tests changed.
pub struct Principals {
    pub pki: Pki,
    token_key: RsaKeyPair,
    pub lifetime: Duration,
    /// Tokens issued so far (each one's `jti` is its number).
    pub issued: u64,
    /// Tokens up to this number are treated as expired.
    pub expired_through: u64,
    /// The metadata service answers 503 while set.
    pub metadata_down: bool,
}

impl Principals {
    pub fn new() -> Result<Principals, String> {
        let der = pem_body(TEST_TOKEN_KEY_PEM, "PRIVATE KEY")?;
        let token_key = RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("the token key: {e}"))?;
        Ok(Principals {
            pki: Pki::new()?,
            token_key,
            lifetime: DEFAULT_TOKEN_LIFETIME,
            issued: 0,
            expired_through: 0,
            metadata_down: false,
        })
    }

    pub fn issue(&mut self, mut claims: Value, now: i64) -> Result<String, ApiError> {
        self.issued += 1;
        claims["jti"] = json!(self.issued.to_string());
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + self.lifetime.as_secs() as i64);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"asw","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let mut signature = vec![0u8; self.token_key.public().modulus_len()];
        self.token_key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| ApiError::new(500, "InternalServerError", "token signing failed"))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The session key of a token Core Services is presented (`ST$<token>`).
    pub fn session_key(&self, token: &str, now: i64) -> Result<PublicKey, ApiError> {
        let fail = |why: &str| ApiError::not_authenticated(why);
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(fail("The security token is not a JWT."));
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| fail("The security token's signature is not base64url."))?;
        UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            self.token_key.public().as_ref(),
        )
        .verify(format!("{header}.{payload}").as_bytes(), &signature)
        .map_err(|_| fail("The security token was not issued by this auth service."))?;
        let claims: Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| fail("The security token's claims are unreadable."))?;
        let serial: u64 = claims["jti"]
            .as_str()
            .and_then(|j| j.parse().ok())
            .unwrap_or(0);
        if claims["exp"].as_i64().is_none_or(|exp| exp <= now) || serial <= self.expired_through {
            return Err(fail("The security token has expired."));
        }
        let jwk: Value = claims["jwk"]
            .as_str()
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| fail("The security token has no jwk."))?;
        let part = |k: &str| {
            jwk[k]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or_else(|| fail("The security token's jwk is malformed."))
        };
        Ok(PublicKey::Components {
            n: part("n")?,
            e: part("e")?,
        })
    }
}

fn refused(why: &str) -> ApiError {
    ApiError::not_authenticated(why)
}

/// `POST /v1/x509`.
pub async fn federate(
    AxumState(sh): AxumState<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/v1/x509");
    sh.count(None);
    sh.count(Some("X509Federation"));
    let request_id = sh.request_id(headers.get("opc-request-id").and_then(|v| v.to_str().ok()));
    let mut response = match answer(&sh, target, &headers, &body) {
        Ok(token) => Json(json!({ "token": token })).into_response(),
        Err(e) => {
            if e.status == 401 {
                sh.count_unauthenticated();
            }
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("opc-request-id", v);
    }
    response
}

fn answer(sh: &Shared, target: &str, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let request: Value = serde_json::from_slice(body).map_err(ApiError::cannot_parse)?;
    let text = |k: &str| {
        request[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing_parameter(k))
    };
    let certificate = STANDARD
        .decode(text("certificate")?)
        .map_err(|_| ApiError::invalid_parameter("certificate is not base64 DER."))?;
    let leaf = parse_leaf(&certificate)
        .map_err(|e| refused(&format!("The certificate cannot be read: {e}.")))?;
    let tenancy = leaf
        .named("opc-tenant:")
        .ok_or_else(|| refused("The certificate names no tenancy."))?
        .to_string();
    let instance = leaf
        .named("opc-instance:")
        .ok_or_else(|| refused("The certificate names no instance."))?
        .to_string();
    // keyId: <tenancy>/fed-x509-sha256/<SHA-256> or <tenancy>/fed-x509/<SHA-1> of the
    // presented certificate.
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("The Authorization header is missing."))?;
    let key_id = parse_authorization(auth)
        .map_err(|e| refused(&format!("{e}.")))?
        .key_id;
    let parts: Vec<&str> = key_id.splitn(3, '/').collect();
    let sha256 = parts.get(1) == Some(&"fed-x509-sha256");
    let digest = if sha256 {
        &ring::digest::SHA256
    } else {
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY
    };
    let fingerprint: Vec<String> = ring::digest::digest(digest, &certificate)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fingerprint = fingerprint.join(":");
    match parts[..] {
        [t, "fed-x509-sha256" | "fed-x509", f]
            if t == tenancy && f.eq_ignore_ascii_case(&fingerprint) => {}
        _ => {
            return Err(refused(
                "The keyId must be <tenancy>/fed-x509-sha256/<the certificate's SHA-256 fingerprint> (or fed-x509 and SHA-1).",
            ))
        }
    }
    // Signed by the certificate's key (the body's digest included).
    let rsa = leaf.rsa_public_key.clone();
    let lookup = move |_: &str| Ok(PublicKey::Der(rsa.clone()));
    let now = chrono::Utc::now();
    verify_with(&lookup, false, &Method::POST, target, headers, body, now)?;
    // Authenticated: now what it asks for.
    match (request["fingerprintAlgorithm"].as_str(), sha256) {
        (None | Some("SHA1"), false) | (Some("SHA256"), true) => {}
        (None | Some("SHA1") | Some("SHA256"), _) => {
            return Err(refused(
                "The keyId's fingerprint is not of the fingerprintAlgorithm.",
            ))
        }
        (Some(_), _) => {
            return Err(ApiError::invalid_parameter(
                "Unsupported fingerprintAlgorithm.",
            ))
        }
    }
    if !matches!(request["purpose"].as_str(), None | Some("DEFAULT")) {
        return Err(ApiError::invalid_parameter("Unsupported purpose."));
    }
    let session_spki = STANDARD
        .decode(text("publicKey")?)
        .map_err(|_| ApiError::invalid_parameter("publicKey is not base64 DER."))?;
    let session_key = super::signature::rsa_key_of_spki(&session_spki)
        .map_err(|e| ApiError::invalid_parameter(format!("publicKey: {e}.")))?;
    let (n, e) = rsa_components(&session_key)
        .map_err(|e| ApiError::invalid_parameter(format!("publicKey: {e}.")))?;
    if n.len() < 256 {
        return Err(ApiError::invalid_parameter(
            "publicKey must be an RSA key of 2048 bits or more.",
        ));
    }
    let intermediates: Vec<Vec<u8>> = request["intermediateCertificates"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter_map(|c| STANDARD.decode(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let compartment = leaf
        .named("opc-compartment:")
        .unwrap_or_default()
        .to_string();
    let mut principals = super::lock(&sh.principals);
    principals
        .pki
        .verify_chain(&certificate, &intermediates)
        .map_err(|e| refused(&format!("{e}.")))?;
    let jwk = json!({
        "kid": format!("{instance}-session"),
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&n),
        "e": URL_SAFE_NO_PAD.encode(&e),
    });
    let claims = json!({
        "sub": instance,
        "iss": "authService.oracle.com",
        "aud": "oci",
        "ptype": "instance",
        "ttype": "x509",
        "opc-certtype": "instance",
        "opc-instance": instance,
        "opc-compartment": compartment,
        "opc-tenant": tenancy,
        "tenant": tenancy,
        "res_tenant": tenancy,
        "fprint": fingerprint,
        "jwk": jwk.to_string(),
    });
    principals.issue(claims, now.timestamp())
}
