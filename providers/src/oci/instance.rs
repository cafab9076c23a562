//! Instance principals (`OCI_AUTH=instance_principal`), as Oracle's SDKs implement them:
//!
//! 1. from the instance metadata service (`OCI_METADATA_BASE_URL`, default
//!    `http://169.254.169.254/opc/v2`, header `Authorization: Bearer Oracle`): the leaf
//!    certificate `identity/cert.pem`, its key `identity/key.pem`, the intermediate
//!    `identity/intermediate.pem`, and (unless `REGION` is set) the region
//!    `instance/canonicalRegionName`;
//! 2. the tenancy from the leaf's subject (`opc-tenant:…`, [`super::x509`]);
//! 3. a new RSA-2048 session key ([`super::session_key`]);
//! 4. `POST https://auth.<region>.oraclecloud.com/v1/x509` (`OCI_FEDERATION_ENDPOINT`)
//!    with `{certificate, publicKey, intermediateCertificates, purpose: "DEFAULT",
//!    fingerprintAlgorithm: "SHA256"}`, signed by the leaf key with keyId
//!    `<tenancy>/fed-x509-sha256/<SHA-256 of the leaf>` over `date (request-target)
//!    content-length content-type x-content-sha256` (no `host`);
//! 5. the answer's `token` signs every Core Services call ([`super::principal`]).

use std::time::{Duration, SystemTime};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::client::tls_config;
use super::principal::{chain, refused, url_setting, Fresh, Principal};
use super::signer::SigningKey;
use super::{session_key, token, x509};
use crate::{ErrorClass, ProviderError};

/// The instance metadata service, version 2.
pub const DEFAULT_METADATA_BASE_URL: &str = "http://169.254.169.254/opc/v2";
const METADATA: &str = "InstanceMetadata";
const FEDERATE: &str = "X509Federation";
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the instance's identity and the auth service are.
#[derive(Clone, Debug, Default)]
pub struct InstanceSettings {
    /// `OCI_METADATA_BASE_URL`, the SDKs' variable; None: [`DEFAULT_METADATA_BASE_URL`].
    pub metadata_base_url: Option<String>,
    /// `OCI_FEDERATION_ENDPOINT`, the SDKs' `federation_endpoint` (the whole URL, with
    /// `/v1/x509`); None: `https://auth.<region>.oraclecloud.com/v1/x509`.
    pub federation_endpoint: Option<String>,
    /// `REGION`, when set: the metadata service is not asked.
    pub region: Option<String>,
}

pub(crate) struct InstanceSource {
    http: reqwest::Client,
    metadata_client: reqwest::Client,
    metadata_base: String,
    federation: Option<Url>,
}

impl InstanceSource {
    pub fn new(settings: InstanceSettings) -> Result<InstanceSource, ProviderError> {
        let base = settings
            .metadata_base_url
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_METADATA_BASE_URL.to_string());
        url_setting("OCI_METADATA_BASE_URL", &base)?;
        let federation = settings
            .federation_endpoint
            .filter(|f| !f.trim().is_empty())
            .map(|f| url_setting("OCI_FEDERATION_ENDPOINT", &f))
            .transpose()?;
        let failed = |e: reqwest::Error| {
            ProviderError::new(ErrorClass::Permanent, "http client", e.to_string())
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("pinip/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tls_backend_preconfigured(tls_config()?)
            .build()
            .map_err(failed)?;
        // The metadata service is link-local: never through a proxy.
        let metadata_client = reqwest::Client::builder()
            .user_agent(concat!("pinip/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .tls_backend_preconfigured(tls_config()?)
            .build()
            .map_err(failed)?;
        Ok(InstanceSource {
            http,
            metadata_client,
            metadata_base: base.trim().trim_end_matches('/').to_string(),
            federation,
        })
    }

    /// The metadata service's region name.
    pub async fn region(&self) -> Result<String, ProviderError> {
        let named = match self.metadata("instance/canonicalRegionName").await {
            Ok(name) => name,
            Err(_) => self.metadata("instance/region").await?,
        };
        let name = named.trim().to_ascii_lowercase();
        if name.contains('-') {
            Ok(name)
        } else {
            Err(ProviderError::new(
                ErrorClass::Permanent,
                METADATA,
                format!("the instance metadata service names the region {name:?}, not a region name pinip can use: set REGION"),
            ))
        }
    }

    /// One `GET <metadata base>/<path>`; any failure is transient.
    async fn metadata(&self, path: &str) -> Result<String, ProviderError> {
        let url = format!("{}/{path}", self.metadata_base);
        let response = self
            .metadata_client
            .get(&url)
            .header("authorization", "Bearer Oracle")
            .timeout(METADATA_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                ProviderError::new(
                    ErrorClass::Transient,
                    METADATA,
                    format!("the instance metadata service is unreachable at {url}: {}; instance principals work only on OCI instances (OCI_METADATA_BASE_URL overrides the address)", chain(&e)),
                )
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            ProviderError::new(
                ErrorClass::Transient,
                METADATA,
                format!("{url}: {}", chain(&e)),
            )
        })?;
        if !status.is_success() {
            let shown: String = text.chars().take(200).collect();
            return Err(ProviderError::new(
                ErrorClass::Transient,
                METADATA,
                format!("the instance metadata service answered {status} for {url}: {shown}"),
            ));
        }
        Ok(text)
    }

    async fn federation_url(&self, principal: &Principal) -> Result<Url, ProviderError> {
        if let Some(url) = &self.federation {
            return Ok(url.clone());
        }
        let region = principal.region().await?;
        url_setting(
            "the auth endpoint",
            &format!("https://auth.{region}.oraclecloud.com/v1/x509"),
        )
    }

    /// A new session: the instance's certificate exchanged for a token.
    pub async fn exchange(
        &self,
        principal: &Principal,
        previous_tenancy: Option<&str>,
    ) -> Result<Fresh, ProviderError> {
        let cert_pem = self.metadata("identity/cert.pem").await?;
        let key_pem = self.metadata("identity/key.pem").await?;
        let intermediate_pem = self.metadata("identity/intermediate.pem").await?;
        let unusable = |what: &str, why: String| {
            ProviderError::new(ErrorClass::Transient, METADATA, format!("{what}: {why}"))
        };
        let leaf = x509::der_of_pem(&cert_pem).map_err(|e| unusable("identity/cert.pem", e))?;
        let tenancy = x509::tenancy_of(&leaf).map_err(|e| unusable("identity/cert.pem", e))?;
        if let Some(previous) = previous_tenancy.filter(|p| *p != tenancy) {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                METADATA,
                format!("the instance certificate's tenancy changed from {previous} to {tenancy}"),
            ));
        }
        let key_id = format!(
            "{tenancy}/fed-x509-sha256/{}",
            x509::sha256_fingerprint(&leaf)
        );
        let leaf_key = SigningKey::new(&key_id, &key_pem)
            .map_err(|e| unusable("identity/key.pem", e.message))?;
        let session_key = session_key::generate().await?;
        let request = FederationRequest {
            certificate: x509::unarmoured(&cert_pem),
            public_key: session_key.public_spki_base64.clone(),
            intermediate_certificates: vec![x509::unarmoured(&intermediate_pem)],
            purpose: "DEFAULT",
            fingerprint_algorithm: "SHA256",
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, FEDERATE, e.to_string()))?;
        let url = self.federation_url(principal).await?;
        let headers = leaf_key.sign_federation(&url, &body, SystemTime::now())?;
        let mut post = self
            .http
            .post(url.clone())
            .timeout(FEDERATION_TIMEOUT)
            .body(body);
        for (name, value) in headers {
            post = post.header(name, value);
        }
        let transport = |e: reqwest::Error| {
            ProviderError::new(
                ErrorClass::Transient,
                FEDERATE,
                format!("the auth service at {url}: {}", chain(&e)),
            )
        };
        let response = post.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("opc-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = response.text().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            let what = "the auth service refused the instance certificate";
            return Err(refused(
                FEDERATE,
                what,
                status,
                &text,
                request_id.as_deref(),
            ));
        }
        let unreadable = |why: String| {
            ProviderError::new(
                ErrorClass::Transient,
                FEDERATE,
                format!("unreadable answer from {url}: {why}"),
            )
        };
        let answer: FederationAnswer =
            serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        let token = token::parse(&answer.token).map_err(unreadable)?;
        let key = SigningKey::from_pkcs8_der(&format!("ST${}", token.raw), &session_key.pkcs8)?;
        Ok(Fresh {
            key,
            token,
            identity: Some(tenancy),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FederationRequest {
    certificate: String,
    public_key: String,
    intermediate_certificates: Vec<String>,
    purpose: &'static str,
    fingerprint_algorithm: &'static str,
}

#[derive(Deserialize)]
struct FederationAnswer {
    token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_without_contact() {
        let bad = InstanceSettings {
            metadata_base_url: Some("169.254.169.254/opc/v2".into()),
            ..Default::default()
        };
        let e = Principal::instance(bad).unwrap_err();
        assert!(e.message.contains("OCI_METADATA_BASE_URL"), "{e}");
        let bad = InstanceSettings {
            federation_endpoint: Some("ftp://auth".into()),
            ..Default::default()
        };
        assert!(Principal::instance(bad).is_err());
        assert!(Principal::instance(InstanceSettings::default()).is_ok());
    }
}
