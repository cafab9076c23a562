//! OKE workload identity (`OCI_AUTH=workload_identity`, resource principals version
//! 2.2), as the SDKs' `get_oke_workload_identity_resource_principal_signer` does it:
//!
//! 1. a new RSA-2048 session key ([`super::session_key`]);
//! 2. `POST https://<KUBERNETES_SERVICE_HOST>:12250/resourcePrincipalSessionTokens`
//!    (the cluster's proxymux; `OCI_PROXYMUX_ENDPOINT` overrides the base URL) with
//!    `{"podKey": <base64 SubjectPublicKeyInfo DER>}`, `Authorization: Bearer <the pod's
//!    service account token>` (read from its file at every exchange: the kubelet
//!    rotates it), over TLS verified with the cluster's CA
//!    (`OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH`, default the service account's
//!    `ca.crt`);
//! 3. the answer is base64 of `{"token": "ST$<jwt>"}`: the resource-principal session
//!    token, which signs every Core Services call ([`super::principal`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Url;
use serde::Deserialize;

use super::principal::{chain, refused, url_setting, Fresh};
use super::signer::SigningKey;
use super::{session_key, token};
use crate::{ErrorClass, ProviderError};

/// The proxymux port of OKE clusters (the SDKs' `OCI_KUBERNETES_PROXYMUX_SERVICE_PORT`).
pub const PROXYMUX_PORT: u16 = 12250;
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const DEFAULT_SERVICE_ACCOUNT_CERT_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const EXCHANGE: &str = "ResourcePrincipalSessionToken";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the proxymux is and what the pod presents to it.
#[derive(Clone, Debug, Default)]
pub struct WorkloadSettings {
    /// `KUBERNETES_SERVICE_HOST` (set in every pod).
    pub service_host: Option<String>,
    /// `OCI_PROXYMUX_ENDPOINT`: the proxymux's base URL instead of
    /// `https://<KUBERNETES_SERVICE_HOST>:12250`.
    pub endpoint: Option<String>,
    /// The service account token's file (default [`DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH`]).
    pub token_path: Option<PathBuf>,
    /// `OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH`, the SDKs' variable: the CA the
    /// proxymux's certificate is verified with (default [`DEFAULT_SERVICE_ACCOUNT_CERT_PATH`]).
    pub ca_path: Option<PathBuf>,
    /// `REGION` or `OCI_RESOURCE_PRINCIPAL_REGION` (required: nothing else tells it).
    pub region: Option<String>,
}

pub(crate) struct WorkloadSource {
    http: reqwest::Client,
    url: Url,
    token_path: PathBuf,
}

fn config_error(message: String) -> ProviderError {
    ProviderError::invalid_input("configuration", message)
}

impl WorkloadSource {
    /// Reads the CA file; contacts nothing.
    pub fn new(settings: WorkloadSettings) -> Result<WorkloadSource, ProviderError> {
        if settings
            .region
            .as_deref()
            .is_none_or(|r| r.trim().is_empty())
        {
            return Err(config_error(
                "OCI_AUTH=workload_identity needs the region: set REGION (or OCI_RESOURCE_PRINCIPAL_REGION)".into(),
            ));
        }
        let base = match (settings.endpoint.filter(|e| !e.trim().is_empty()), settings.service_host) {
            (Some(endpoint), _) => url_setting("OCI_PROXYMUX_ENDPOINT", &endpoint)?,
            (None, Some(host)) if !host.trim().is_empty() => {
                let host = host.trim();
                let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
                url_setting("the proxymux", &format!("https://{host}:{PROXYMUX_PORT}"))?
            }
            _ => {
                return Err(config_error(
                    "OCI_AUTH=workload_identity needs KUBERNETES_SERVICE_HOST (set in every pod) or OCI_PROXYMUX_ENDPOINT".into(),
                ))
            }
        };
        let url = base
            .join("resourcePrincipalSessionTokens")
            .map_err(|e| config_error(format!("the proxymux URL: {e}")))?;
        let ca_path = settings
            .ca_path
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICE_ACCOUNT_CERT_PATH));
        let ca = std::fs::read(&ca_path).map_err(|e| {
            config_error(format!(
                "cannot read the cluster CA {} (OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH): {e}",
                ca_path.display()
            ))
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("pinip/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .no_proxy()
            .tls_backend_preconfigured(tls_trusting(&ca, &ca_path)?)
            .build()
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, "http client", e.to_string()))?;
        Ok(WorkloadSource {
            http,
            url,
            token_path: settings
                .token_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH)),
        })
    }

    /// A new session: the service account token and a session key exchanged for a
    /// resource-principal session token.
    pub async fn exchange(&self) -> Result<Fresh, ProviderError> {
        let sa_token = std::fs::read_to_string(&self.token_path).map_err(|e| {
            ProviderError::new(
                ErrorClass::Transient,
                EXCHANGE,
                format!(
                    "cannot read the service account token {}: {e}",
                    self.token_path.display()
                ),
            )
        })?;
        let session_key = session_key::generate().await?;
        let body = serde_json::json!({ "podKey": session_key.public_spki_base64 });
        let url = &self.url;
        let transport = |e: reqwest::Error| {
            ProviderError::new(
                ErrorClass::Transient,
                EXCHANGE,
                format!("the proxymux at {url}: {}", chain(&e)),
            )
        };
        let response = self
            .http
            .post(url.clone())
            .timeout(TIMEOUT)
            .bearer_auth(sa_token.trim())
            .header("opc-request-id", request_id())
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let answered_id = response
            .headers()
            .get("opc-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = response.text().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            let what = "the proxymux refused the service account token (workload identity needs an enhanced OKE cluster)";
            return Err(refused(
                EXCHANGE,
                what,
                status,
                &text,
                answered_id.as_deref(),
            ));
        }
        let raw = decode_answer(&text).map_err(|why| {
            ProviderError::new(
                ErrorClass::Transient,
                EXCHANGE,
                format!("unreadable answer from {url}: {why}"),
            )
        })?;
        let token = token::parse(&raw).map_err(|why| {
            ProviderError::new(ErrorClass::Transient, EXCHANGE, format!("{url}: {why}"))
        })?;
        let key = SigningKey::from_pkcs8_der(&format!("ST${}", token.raw), &session_key.pkcs8)?;
        Ok(Fresh {
            key,
            token,
            identity: None,
        })
    }
}

/// The proxymux's answer: base64 of `{"token": "ST$<jwt>"}` → the JWT. Pure.
pub fn decode_answer(body: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Answer {
        token: String,
    }
    let compact: String = body.split_whitespace().collect();
    let json = STANDARD
        .decode(compact.trim_matches('"'))
        .map_err(|e| format!("not base64: {e}"))?;
    let answer: Answer =
        serde_json::from_slice(&json).map_err(|e| format!("not a token document: {e}"))?;
    Ok(answer
        .token
        .strip_prefix("ST$")
        .unwrap_or(&answer.token)
        .to_string())
}

/// A random `opc-request-id` (32 hex digits).
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// rustls on ring trusting only the certificates of `ca_pem` (the cluster's CA).
fn tls_trusting(
    ca_pem: &[u8],
    path: &std::path::Path,
) -> Result<rustls::ClientConfig, ProviderError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| config_error(format!("{}: {e:?}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(config_error(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| config_error(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_base64_of_a_token_document() {
        let body = STANDARD.encode(r#"{"token":"ST$eyJ.eyJ.sig"}"#);
        assert_eq!(decode_answer(&body).unwrap(), "eyJ.eyJ.sig");
        assert_eq!(
            decode_answer(&format!("\"{body}\"\n")).unwrap(),
            "eyJ.eyJ.sig"
        );
        let bare = STANDARD.encode(r#"{"token":"eyJ.a.b"}"#);
        assert_eq!(decode_answer(&bare).unwrap(), "eyJ.a.b");
        assert!(decode_answer("{not base64}").is_err());
        assert!(decode_answer(&STANDARD.encode("{}")).is_err());
    }

    #[test]
    fn settings_are_checked_before_anything_is_contacted() {
        let dir = std::env::temp_dir().join(format!("pinip-wi-{}", std::process::id()));
        let none = WorkloadSettings {
            region: Some("us-ashburn-1".into()),
            ca_path: Some(dir.join("missing.crt")),
            service_host: Some("10.96.0.1".into()),
            ..Default::default()
        };
        let e = WorkloadSource::new(none.clone()).err().expect("no CA file");
        assert!(
            e.message
                .contains("OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH"),
            "{e}"
        );
        let e = WorkloadSource::new(WorkloadSettings {
            region: None,
            ..none.clone()
        })
        .err()
        .expect("no region");
        assert!(e.message.contains("REGION"), "{e}");
        let e = WorkloadSource::new(WorkloadSettings {
            service_host: None,
            ..none
        })
        .err()
        .expect("no host");
        assert!(e.message.contains("KUBERNETES_SERVICE_HOST"), "{e}");
    }
}
