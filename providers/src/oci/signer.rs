//! OCI request signing (draft-cavage HTTP signatures, `version="1"`, `rsa-sha256`), the
//! way Oracle's SDKs sign: `date (request-target) host` on every request, plus
//! `content-length content-type x-content-sha256` on PUT, POST and PATCH. RSA and SHA-256
//! come from `ring`, the crypto library rustls already brings.

use std::sync::Arc;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, Url};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};

use crate::{ErrorClass, ProviderError};

/// A key that signs requests, and the keyId the API looks it up by.
#[derive(Clone)]
pub struct SigningKey {
    key_id: String,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keyId may be a session token (`ST$…`): only its start is shown.
        let shown: String = self.key_id.chars().take(24).collect();
        write!(f, "SigningKey({shown}…, <private key redacted>)")
    }
}

impl SigningKey {
    /// `key_id`: `<tenancy>/<user>/<fingerprint>`, or `ST$<token>` for a session token.
    /// `private_key_pem`: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`),
    /// unencrypted.
    pub fn new(key_id: &str, private_key_pem: &str) -> Result<SigningKey, ProviderError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::PrivateKeyDer;
        let bad = |why: String| {
            ProviderError::invalid_input(
                "configuration",
                format!("the OCI API private key cannot be used: {why}"),
            )
        };
        if private_key_pem.contains("ENCRYPTED") {
            return Err(bad(
                "it is encrypted; pinip reads unencrypted keys only (mount it from a Secret)"
                    .into(),
            ));
        }
        let der = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes())
            .map_err(|e| bad(format!("no PEM private key found ({e:?})")))?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(bad("it is not an RSA key".into())),
        }
        .map_err(|e| {
            bad(format!(
                "it is not a usable RSA key of 2048 bits or more ({e})"
            ))
        })?;
        SigningKey::with_key(key_id, key)
    }

    /// A key from its PKCS#8 DER (a session key made in memory).
    pub fn from_pkcs8_der(key_id: &str, pkcs8: &[u8]) -> Result<SigningKey, ProviderError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| {
            ProviderError::invalid_input(
                "configuration",
                format!("the session key cannot be used: {e}"),
            )
        })?;
        SigningKey::with_key(key_id, key)
    }

    fn with_key(key_id: &str, key: RsaKeyPair) -> Result<SigningKey, ProviderError> {
        if key_id.trim().is_empty() {
            return Err(ProviderError::invalid_input(
                "configuration",
                "the OCI keyId is empty",
            ));
        }
        Ok(SigningKey {
            key_id: key_id.to_string(),
            key: Arc::new(key),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The headers that sign a request to `url` (with `body` for PUT/POST/PATCH), the
    /// `authorization` header last.
    pub fn sign(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, ProviderError> {
        self.sign_with(method, url, body, now, true)
    }

    /// The headers of a request to the auth service's federation endpoint, which signs
    /// `date (request-target)` without `host` (as every SDK does there).
    pub fn sign_federation(
        &self,
        url: &Url,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, ProviderError> {
        self.sign_with(&Method::POST, url, Some(body), now, false)
    }

    fn sign_with(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        now: SystemTime,
        sign_host: bool,
    ) -> Result<Vec<(&'static str, String)>, ProviderError> {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(ProviderError::invalid_input(
                    "signing",
                    format!("{url} has no host"),
                ))
            }
        };
        let target = match url.query() {
            Some(q) => format!(
                "{} {}?{q}",
                method.as_str().to_ascii_lowercase(),
                url.path()
            ),
            None => format!("{} {}", method.as_str().to_ascii_lowercase(), url.path()),
        };
        let mut headers = vec![("date", httpdate::fmt_http_date(now)), ("host", host)];
        let with_body = matches!(method.as_str(), "PUT" | "POST" | "PATCH");
        if with_body {
            let body = body.unwrap_or_default();
            let digest = ring::digest::digest(&ring::digest::SHA256, body);
            headers.push(("content-length", body.len().to_string()));
            headers.push(("content-type", "application/json".into()));
            headers.push(("x-content-sha256", STANDARD.encode(digest.as_ref())));
        }
        let mut names = vec!["date", "(request-target)"];
        let mut lines = vec![
            format!("date: {}", headers[0].1),
            format!("(request-target): {target}"),
        ];
        if sign_host {
            names.push("host");
            lines.push(format!("host: {}", headers[1].1));
        }
        for (name, value) in headers.iter().skip(2) {
            names.push(*name);
            lines.push(format!("{name}: {value}"));
        }
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                lines.join("\n").as_bytes(),
                &mut signature,
            )
            .map_err(|_| {
                ProviderError::new(ErrorClass::Permanent, "signing", "RSA signing failed")
            })?;
        headers.push((
            "authorization",
            format!(
                "Signature version=\"1\",keyId=\"{}\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{}\"",
                self.key_id,
                names.join(" "),
                STANDARD.encode(&signature)
            ),
        ));
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_configuration_errors() {
        for bad in [
            "",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ] {
            let e = SigningKey::new("t/u/f", bad).unwrap_err();
            assert_eq!(e.class, ErrorClass::InvalidInput, "{bad}");
        }
    }
}
