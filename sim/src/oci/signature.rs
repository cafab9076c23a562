//! Request-signature verification as OCI does it: draft-cavage HTTP signatures
//! (`Authorization: Signature version="1",keyId="<tenancy>/<user>/<fingerprint>",
//! algorithm="rsa-sha256",headers="…",signature="…"`, parameters in any order), RSA
//! PKCS#1 v1.5 over SHA-256 of the signing string built from the listed headers.
//!
//! What is required, as the API requires it:
//! - every request signs `date` (or `x-date`), `(request-target)` and `host`;
//! - PUT, POST and PATCH also sign `content-length`, `content-type` and
//!   `x-content-sha256`, and `x-content-sha256` must be the base64 SHA-256 of the body;
//! - the date is at most 5 minutes away from the server's clock;
//! - the key is one the simulator knows (uploaded API keys, see [`KeyRing`]; session
//!   tokens `ST$<jwt>` that the simulator's auth service issued and that have not
//!   expired, with the key of their `jwk`: see [`super::federation`]).
//!
//! The auth service's federation endpoint verifies with the same rules, except that
//! `host` is not signed there ([`verify_with`]). Any failure is 401 `NotAuthenticated`.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

use super::errors::ApiError;

/// Largest clock skew accepted.
const MAX_SKEW_SECONDS: i64 = 300;

/// The API keys the simulator knows: keyId → RSA public key (PKCS#1 `RSAPublicKey` DER).
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, Vec<u8>>,
}

impl KeyRing {
    /// Upload a public key (PEM `BEGIN PUBLIC KEY`, as the console takes it) for `key_id`.
    pub fn add_pem(&mut self, key_id: &str, public_key_pem: &str) -> Result<(), String> {
        let der = pem_body(public_key_pem, "PUBLIC KEY")?;
        let rsa = rsa_key_of_spki(&der)?;
        self.keys.insert(key_id.to_string(), rsa);
        Ok(())
    }

    pub fn remove(&mut self, key_id: &str) {
        self.keys.remove(key_id);
    }

    fn get(&self, key_id: &str) -> Option<&[u8]> {
        self.keys.get(key_id).map(Vec::as_slice)
    }

    /// The key of `key_id`, or 401.
    pub fn lookup(&self, key_id: &str) -> Result<PublicKey, ApiError> {
        self.get(key_id)
            .map(|k| PublicKey::Der(k.to_vec()))
            .ok_or_else(|| {
                ApiError::not_authenticated(
                    "The key is not known (keyId tenancy/user/fingerprint).",
                )
            })
    }
}

/// The parsed `Authorization: Signature …` header.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub key_id: String,
    pub algorithm: String,
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
}

/// Parse `Signature a="b",c="d"` (draft-cavage; OCI requires `version="1"` if present).
pub fn parse_authorization(value: &str) -> Result<SignatureHeader, String> {
    let rest = value
        .trim()
        .strip_prefix("Signature ")
        .ok_or("the Authorization header is not a Signature")?;
    let mut params = BTreeMap::new();
    for part in split_params(rest) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("malformed signature parameter {part:?}"))?;
        let v = v
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("signature parameter {k} is not quoted"))?;
        params.insert(k.trim().to_string(), v.to_string());
    }
    if params.get("version").is_some_and(|v| v != "1") {
        return Err("unsupported signature version".into());
    }
    let get = |k: &str| {
        params
            .get(k)
            .cloned()
            .ok_or_else(|| format!("the signature has no {k}"))
    };
    let signature = STANDARD
        .decode(get("signature")?)
        .map_err(|_| "the signature is not base64".to_string())?;
    Ok(SignatureHeader {
        key_id: get("keyId")?,
        algorithm: get("algorithm")?,
        headers: get("headers")?
            .split_whitespace()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature,
    })
}

/// Split on commas outside quotes.
fn split_params(input: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in input.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(input[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(input[start..].trim());
    out.retain(|p| !p.is_empty());
    out
}

/// An RSA public key a signature is checked with.
pub enum PublicKey {
    /// PKCS#1 `RSAPublicKey` DER.
    Der(Vec<u8>),
    /// Modulus and exponent, big-endian (a JWK's `n` and `e`).
    Components { n: Vec<u8>, e: Vec<u8> },
}

impl PublicKey {
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Der(der) => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
                .verify(message, signature)
                .is_ok(),
            PublicKey::Components { n, e } => ring::signature::RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }
}

/// Verify the request with the key `lookup` finds for its keyId (which may refuse the
/// keyId itself), `host` signed or not; Ok is the keyId.
pub fn verify_with(
    lookup: &dyn Fn(&str) -> Result<PublicKey, ApiError>,
    sign_host: bool,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, ApiError> {
    let fail = |why: &str| ApiError::not_authenticated(why);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth =
        header("authorization").ok_or_else(|| fail("The Authorization header is missing."))?;
    let sig = parse_authorization(auth).map_err(|why| fail(&format!("{why}.")))?;
    if sig.algorithm != "rsa-sha256" {
        return Err(fail("Only algorithm rsa-sha256 is supported."));
    }
    let date_header = if sig.headers.iter().any(|h| h == "x-date") {
        "x-date"
    } else {
        "date"
    };
    let mut required = vec![date_header, "(request-target)"];
    if sign_host {
        required.push("host");
    }
    let has_body = matches!(method.as_str(), "PUT" | "POST" | "PATCH");
    if has_body {
        required.extend(["content-length", "content-type", "x-content-sha256"]);
    }
    for needed in &required {
        if !sig.headers.iter().any(|h| h == needed) {
            return Err(fail(&format!(
                "The signature must cover the header {needed}."
            )));
        }
    }
    let date = header(date_header).ok_or_else(|| fail("The date header is missing."))?;
    let sent = chrono::DateTime::parse_from_rfc2822(date)
        .map_err(|_| fail("The date header is not an HTTP date."))?;
    if (now - sent.with_timezone(&chrono::Utc)).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(fail(
            "The date header is more than 5 minutes off the server's clock.",
        ));
    }
    if has_body {
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        if header("x-content-sha256") != Some(STANDARD.encode(digest.as_ref()).as_str()) {
            return Err(fail("x-content-sha256 does not match the body."));
        }
        if header("content-length").and_then(|l| l.trim().parse::<usize>().ok()) != Some(body.len())
        {
            return Err(fail("content-length does not match the body."));
        }
    }
    let mut lines = Vec::with_capacity(sig.headers.len());
    for name in &sig.headers {
        let value = if name == "(request-target)" {
            format!("{} {target}", method.as_str().to_ascii_lowercase())
        } else {
            header(name)
                .ok_or_else(|| fail(&format!("The signed header {name} is missing.")))?
                .to_string()
        };
        lines.push(format!("{name}: {value}"));
    }
    let signing_string = lines.join("\n");
    let key = lookup(&sig.key_id)?;
    if !key.verifies(signing_string.as_bytes(), &sig.signature) {
        return Err(fail("The signature does not verify."));
    }
    Ok(sig.key_id)
}

/// The DER inside a PEM block labelled `label`.
pub fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| format!("no {begin} block"))?
        + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| format!("no {end}"))? + start;
    let b64: String = pem[start..stop].split_whitespace().collect();
    STANDARD
        .decode(b64)
        .map_err(|e| format!("the PEM body is not base64: {e}"))
}

/// One DER element at the start of `input`: (tag, contents, rest).
pub(super) fn der_element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let short = || "truncated DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(short)?;
    let (&first, rest) = rest.split_first().ok_or_else(short)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("unsupported DER length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(short());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// `SubjectPublicKeyInfo { algorithm, BIT STRING { RSAPublicKey } }` → the RSAPublicKey
/// DER ring verifies with. Checks the algorithm is rsaEncryption.
pub(super) fn rsa_key_of_spki(spki: &[u8]) -> Result<Vec<u8>, String> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (tag, body, _) = der_element(spki)?;
    if tag != 0x30 {
        return Err("not a SubjectPublicKeyInfo".into());
    }
    let (tag, algorithm, rest) = der_element(body)?;
    let (oid_tag, oid, _) = der_element(algorithm)?;
    if tag != 0x30 || oid_tag != 0x06 || oid != RSA_ENCRYPTION {
        return Err("not an RSA public key".into());
    }
    let (tag, bits, _) = der_element(rest)?;
    match bits.split_first() {
        Some((0, key)) if tag == 0x03 => Ok(key.to_vec()),
        _ => Err("malformed public key bit string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parameters_parse_in_any_order() {
        let a = parse_authorization(
            r#"Signature algorithm="rsa-sha256",headers="date (request-target) host",keyId="t/u/aa:bb",signature="AAEC",version="1""#,
        )
        .unwrap();
        assert_eq!(a.key_id, "t/u/aa:bb");
        assert_eq!(a.headers, ["date", "(request-target)", "host"]);
        assert_eq!(a.signature, [0, 1, 2]);
        assert!(parse_authorization("Bearer x").is_err());
        assert!(parse_authorization(r#"Signature keyId="k",version="2""#).is_err());
    }

    #[test]
    fn the_test_key_loads() {
        let mut ring = KeyRing::default();
        ring.add_pem("k", super::super::TEST_PUBLIC_KEY_PEM)
            .unwrap();
        assert!(ring.get("k").is_some_and(|k| k.len() > 256));
        assert!(ring
            .add_pem(
                "k",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
            )
            .is_err());
    }
}
