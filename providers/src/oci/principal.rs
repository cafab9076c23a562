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
//! 5. the answer's `token` signs every Core Services call: keyId `ST$<token>`, the
//!    session key.
//!
//! The token is renewed shortly before its `exp` ([`super::token`]) and after a 401,
//! never on every call; callers arriving during a renewal wait for it and share its
//! result. Nothing is contacted before the first call, so an instance metadata service
//! that is down at start is a transient failure the agent retries, not an exit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OnceCell};
use tracing::{info, warn};

use super::client::tls_config;
use super::signer::SigningKey;
use super::token::{self, SessionToken};
use super::wire::ErrorBody;
use super::{session_key, x509};
use crate::{ErrorClass, ProviderError};

/// The instance metadata service, version 2.
pub const DEFAULT_METADATA_BASE_URL: &str = "http://169.254.169.254/opc/v2";
const METADATA: &str = "InstanceMetadata";
const FEDERATE: &str = "X509Federation";
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The wall clock tokens are judged by (tests move it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Where the instance's identity and the auth service are.
#[derive(Clone, Debug, Default)]
pub struct PrincipalSettings {
    /// `OCI_METADATA_BASE_URL`, the SDKs' variable; None: [`DEFAULT_METADATA_BASE_URL`].
    pub metadata_base_url: Option<String>,
    /// `OCI_FEDERATION_ENDPOINT`, the SDKs' `federation_endpoint` (the whole URL, with
    /// `/v1/x509`); None: `https://auth.<region>.oraclecloud.com/v1/x509`.
    pub federation_endpoint: Option<String>,
    /// `REGION`, when set: the metadata service is not asked.
    pub region: Option<String>,
}

struct Session {
    key: SigningKey,
    token: SessionToken,
    /// When it was fetched, Unix seconds by `clock`.
    fetched: i64,
    tenancy: String,
}

pub struct InstancePrincipal {
    http: reqwest::Client,
    metadata_client: reqwest::Client,
    metadata_base: String,
    federation: Option<Url>,
    region: OnceCell<String>,
    session: Mutex<Option<Session>>,
    clock: Clock,
    federations: AtomicU64,
}

impl std::fmt::Debug for InstancePrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePrincipal")
            .field("metadata", &self.metadata_base)
            .field("federation", &self.federation.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

fn url_setting(name: &str, value: &str) -> Result<Url, ProviderError> {
    Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ProviderError::invalid_input(
                "configuration",
                format!("{name}={value:?} is not an http(s) URL"),
            )
        })
}

impl InstancePrincipal {
    /// Checks the settings; contacts nothing.
    pub fn new(settings: PrincipalSettings) -> Result<InstancePrincipal, ProviderError> {
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
        let region = OnceCell::new();
        if let Some(r) = settings.region.filter(|r| !r.trim().is_empty()) {
            let _ = region.set(r.trim().to_string());
        }
        Ok(InstancePrincipal {
            http,
            metadata_client,
            metadata_base: base.trim().trim_end_matches('/').to_string(),
            federation,
            region,
            session: Mutex::new(None),
            clock: Arc::new(SystemTime::now),
            federations: AtomicU64::new(0),
        })
    }

    /// Judge tokens by this clock instead of the system's (tests).
    pub fn with_clock(mut self, clock: Clock) -> InstancePrincipal {
        self.clock = clock;
        self
    }

    /// Session tokens obtained so far.
    pub fn federations(&self) -> u64 {
        self.federations.load(Ordering::Relaxed)
    }

    /// The region: `REGION`, else the metadata service's (asked once).
    pub async fn region(&self) -> Result<String, ProviderError> {
        self.region
            .get_or_try_init(|| async {
                let canonical = self.metadata("instance/canonicalRegionName").await;
                let named = match canonical {
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
            })
            .await
            .cloned()
    }

    /// The key to sign the next call with: the current session's, renewed first when
    /// due. Concurrent callers wait for one renewal.
    pub async fn signing_key(&self) -> Result<SigningKey, ProviderError> {
        let mut session = self.session.lock().await;
        let now = unix((self.clock)());
        if let Some(current) = session.as_ref() {
            let age = Duration::from_secs(now.saturating_sub(current.fetched).max(0) as u64);
            if !token::refresh_due(&current.token, now, age) {
                return Ok(current.key.clone());
            }
        }
        let tenancy = session.as_ref().map(|s| s.tenancy.clone());
        match self.federate(tenancy.as_deref(), now).await {
            Ok(fresh) => {
                let key = fresh.key.clone();
                *session = Some(fresh);
                Ok(key)
            }
            // Not expired yet: keep using it, and try again at the next call.
            Err(e) => match session.as_ref() {
                Some(current) if now < current.token.expires => {
                    warn!(error = %e, "could not renew the instance principal token; the current one is still valid");
                    Ok(current.key.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Core Services refused a call signed with `key_id` (401): forget that session,
    /// unless a renewal already replaced it.
    pub async fn rejected(&self, key_id: &str) {
        let mut session = self.session.lock().await;
        if session.as_ref().is_some_and(|s| s.key.key_id() == key_id) {
            *session = None;
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

    async fn federation_url(&self) -> Result<Url, ProviderError> {
        if let Some(url) = &self.federation {
            return Ok(url.clone());
        }
        let region = self.region().await?;
        url_setting(
            "the auth endpoint",
            &format!("https://auth.{region}.oraclecloud.com/v1/x509"),
        )
    }

    /// A new session: the instance's certificate exchanged for a token.
    async fn federate(
        &self,
        previous_tenancy: Option<&str>,
        now: i64,
    ) -> Result<Session, ProviderError> {
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
        let url = self.federation_url().await?;
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
            return Err(refused(status, &text, request_id.as_deref()));
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
        self.federations.fetch_add(1, Ordering::Relaxed);
        info!(%tenancy, expires = token.expires, "instance principal session token obtained");
        Ok(Session {
            key,
            token,
            fetched: now,
            tenancy,
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

/// The auth service's refusal as the class the agent acts on. Pure.
pub fn refused(status: u16, body: &str, request_id: Option<&str>) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let code = Some(parsed.code.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| status.to_string());
    let mut message = format!(
        "the auth service refused the instance certificate: HTTP {status} {code}: {}",
        parsed.message
    );
    if let Some(id) = request_id {
        message.push_str(&format!(" (opc-request-id {id})"));
    }
    let class = match status {
        429 => ErrorClass::Throttled,
        408 | 500..=599 => ErrorClass::Transient,
        400..=499 => ErrorClass::PermissionDenied {
            action: "an instance principal: this instance must be an OCI instance of the tenancy, its dynamic group matched by deploy/iam/oci-dynamic-group.txt".into(),
        },
        _ => ErrorClass::Permanent,
    };
    ProviderError::new(class, FEDERATE, message).with_code(code)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An error and its causes on one line (reqwest hides the cause behind "error sending").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified() {
        let body = r#"{"code":"NotAuthenticated","message":"bad cert"}"#;
        let e = refused(401, body, Some("R1"));
        assert!(matches!(e.class, ErrorClass::PermissionDenied { .. }));
        assert!(
            e.message.contains("bad cert") && e.message.contains("R1"),
            "{e}"
        );
        assert_eq!(e.code.as_deref(), Some("NotAuthenticated"));
        assert_eq!(refused(429, "", None).class, ErrorClass::Throttled);
        assert_eq!(refused(503, "<html>", None).class, ErrorClass::Transient);
        assert_eq!(refused(302, "", None).class, ErrorClass::Permanent);
    }

    #[test]
    fn settings_are_checked_without_contact() {
        let bad = PrincipalSettings {
            metadata_base_url: Some("169.254.169.254/opc/v2".into()),
            ..Default::default()
        };
        let e = InstancePrincipal::new(bad).unwrap_err();
        assert!(e.message.contains("OCI_METADATA_BASE_URL"), "{e}");
        let bad = PrincipalSettings {
            federation_endpoint: Some("ftp://auth".into()),
            ..Default::default()
        };
        assert!(InstancePrincipal::new(bad).is_err());
        assert!(InstancePrincipal::new(PrincipalSettings::default()).is_ok());
    }
}
