//! The Core Services calls pinip makes, over `reqwest`: URLs under `/20160918/`,
//! signed requests, error classification, `opc-next-page` paging, ETags and `if-match`.
//! A 401 to a call signed with an instance principal's session token gets the token
//! renewed and the call sent once more.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::debug;

use crate::{ErrorClass, ProviderError};

use super::credentials::Credentials;
use super::errors;
use super::permissions::op;
use super::signer::SigningKey;
use super::wire::{
    ByPrivateIp, CreatePublicIp, Instance, PrivateIp, PublicIp, UpdatePublicIp, Vnic,
    VnicAttachment,
};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest page the list calls serve.
const PAGE_LIMIT: &str = "1000";
/// A listing that keeps paging past this many pages is a broken server, not a big pool.
const MAX_PAGES: usize = 1000;

/// `https://iaas.<region>.oraclecloud.com` (realm oc1; other realms need `OCI_CORE_ENDPOINT`).
pub fn default_endpoint(region: &str) -> String {
    format!("https://iaas.{region}.oraclecloud.com")
}

#[derive(Clone, Debug)]
pub struct CoreClient {
    http: reqwest::Client,
    /// The endpoint; unset until the credentials name the region (instance principals
    /// without `REGION`: the metadata service's, at the first call).
    base: Arc<tokio::sync::OnceCell<Url>>,
    credentials: Credentials,
    /// Cancelled when the provider that made this client is dropped: ends the tasks
    /// that outlive a call (the background restore).
    pub(super) lifetime: tokio_util::sync::CancellationToken,
}

/// One answer: status, body, ETag, next page, request id.
struct Answered {
    status: u16,
    text: String,
    etag: Option<String>,
    next: Option<String>,
    request_id: Option<String>,
}

impl CoreClient {
    /// `endpoint` None: from the credentials' region, at the first call.
    pub fn new(
        endpoint: Option<&str>,
        credentials: Credentials,
    ) -> Result<CoreClient, ProviderError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("pinip/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tls_backend_preconfigured(tls_config()?)
            .build()
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, "http client", e.to_string()))?;
        let base = match endpoint {
            Some(e) => tokio::sync::OnceCell::new_with(Some(base_url(e)?)),
            None => tokio::sync::OnceCell::new(),
        };
        Ok(CoreClient {
            http,
            base: Arc::new(base),
            credentials,
            lifetime: tokio_util::sync::CancellationToken::new(),
        })
    }

    async fn base(&self) -> Result<&Url, ProviderError> {
        self.base
            .get_or_try_init(|| async {
                match self.credentials.region().await? {
                    Some(region) => base_url(&default_endpoint(&region)),
                    None => Err(ProviderError::invalid_input(
                        "configuration",
                        "the OCI region is unknown: set REGION",
                    )),
                }
            })
            .await
    }

    async fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, ProviderError> {
        let mut url = self.base().await?.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("20160918").extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sign and send; a non-2xx answer becomes a classified error. Returns the body,
    /// ETag and next page. A 401 with renewable credentials is retried once, newly signed.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        if_match: Option<&str>,
    ) -> Result<(String, Option<String>, Option<String>), ProviderError> {
        let mut retried = false;
        loop {
            let key = self.credentials.signing_key().await?;
            let answer = self
                .send(operation, &key, &method, &url, body.as_deref(), if_match)
                .await?;
            if answer.status == 401 && !retried && self.credentials.rejected(key.key_id()).await {
                debug!(
                    operation,
                    "401 to a session token: renewing it and sending again"
                );
                retried = true;
                continue;
            }
            return if (200..300).contains(&answer.status) {
                Ok((answer.text, answer.etag, answer.next))
            } else {
                Err(errors::from_http(
                    operation,
                    answer.status,
                    &answer.text,
                    answer.request_id.as_deref(),
                ))
            };
        }
    }

    async fn send(
        &self,
        operation: &'static str,
        key: &SigningKey,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        if_match: Option<&str>,
    ) -> Result<Answered, ProviderError> {
        let headers = key.sign(method, url, body, SystemTime::now())?;
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .timeout(CALL_TIMEOUT);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        if let Some(body) = body {
            request = request.body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| errors::from_transport(operation, &e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let (etag, next, request_id) = (
            header("etag"),
            header("opc-next-page"),
            header("opc-request-id"),
        );
        debug!(
            operation,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            "OCI call"
        );
        let text = response
            .text()
            .await
            .map_err(|e| errors::from_transport(operation, &e))?;
        Ok(Answered {
            status,
            text,
            etag,
            next,
            request_id,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&impl Serialize>,
        if_match: Option<&str>,
    ) -> Result<(T, Option<String>), ProviderError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, operation, e.to_string()))?;
        let (text, etag, _) = self.call(operation, method, url, body, if_match).await?;
        let value = serde_json::from_str(&text)
            .map_err(|e| errors::from_transport(operation, &format!("unreadable answer: {e}")))?;
        Ok((value, etag))
    }

    /// Every page of a list call.
    async fn list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        segment: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ProviderError> {
        let mut all = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            q.push(("limit", PAGE_LIMIT));
            if let Some(p) = &page {
                q.push(("page", p.as_str()));
            }
            let (text, _, next) = self
                .call(
                    operation,
                    Method::GET,
                    self.url(&[segment], &q).await?,
                    None,
                    None,
                )
                .await?;
            let items: Vec<T> = serde_json::from_str(&text).map_err(|e| {
                errors::from_transport(operation, &format!("unreadable answer: {e}"))
            })?;
            all.extend(items);
            match next.filter(|n| !n.is_empty()) {
                Some(n) if Some(&n) != page.as_ref() => page = Some(n),
                _ => return Ok(all),
            }
        }
        Err(ProviderError::new(
            ErrorClass::Transient,
            operation,
            "the listing never ended",
        ))
    }

    /// The reserved public IPs of `compartment` (scope REGION), every page.
    pub async fn list_reserved(&self, compartment: &str) -> Result<Vec<PublicIp>, ProviderError> {
        let q = [
            ("scope", "REGION"),
            ("compartmentId", compartment),
            ("lifetime", "RESERVED"),
        ];
        self.list(op::LIST_PUBLIC_IPS, "publicIps", &q).await
    }

    /// A public IP and its ETag.
    pub async fn get_public_ip(&self, id: &str) -> Result<(PublicIp, String), ProviderError> {
        let (ip, etag) = self
            .json::<PublicIp>(
                op::GET_PUBLIC_IP,
                Method::GET,
                self.url(&["publicIps", id], &[]).await?,
                None::<&()>,
                None,
            )
            .await?;
        Ok((ip, etag.unwrap_or_default()))
    }

    /// The public IP on `private_ip` (ASSIGNING or ASSIGNED), None if it has none.
    pub async fn public_ip_on(&self, private_ip: &str) -> Result<Option<PublicIp>, ProviderError> {
        let url = self
            .url(&["publicIps", "actions", "getByPrivateIpId"], &[])
            .await?;
        let body = ByPrivateIp {
            private_ip_id: private_ip,
        };
        match self
            .json(
                op::GET_PUBLIC_IP_BY_PRIVATE_IP,
                Method::POST,
                url,
                Some(&body),
                None,
            )
            .await
        {
            Ok((ip, _)) => Ok(Some(ip)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `UpdatePublicIp` guarded by `if_match` (412, a Conflict, if the address changed).
    pub async fn update_public_ip(
        &self,
        id: &str,
        details: &UpdatePublicIp,
        if_match: &str,
    ) -> Result<(PublicIp, String), ProviderError> {
        let url = self.url(&["publicIps", id], &[]).await?;
        let tag = Some(if_match).filter(|t| !t.is_empty());
        let (ip, etag) = self
            .json(op::UPDATE_PUBLIC_IP, Method::PUT, url, Some(details), tag)
            .await?;
        Ok((ip, etag.unwrap_or_default()))
    }

    /// A new ephemeral public IP on a primary private IP.
    pub async fn create_ephemeral(
        &self,
        compartment: &str,
        private_ip: &str,
    ) -> Result<PublicIp, ProviderError> {
        let body = CreatePublicIp {
            compartment_id: compartment.to_string(),
            lifetime: "EPHEMERAL".into(),
            private_ip_id: private_ip.to_string(),
        };
        let url = self.url(&["publicIps"], &[]).await?;
        Ok(self
            .json(op::CREATE_PUBLIC_IP, Method::POST, url, Some(&body), None)
            .await?
            .0)
    }

    /// `DeletePublicIp`; already gone is success.
    pub async fn delete_public_ip(&self, id: &str) -> Result<(), ProviderError> {
        match self
            .call(
                op::DELETE_PUBLIC_IP,
                Method::DELETE,
                self.url(&["publicIps", id], &[]).await?,
                None,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn get_instance(&self, id: &str) -> Result<Instance, ProviderError> {
        let url = self.url(&["instances", id], &[]).await?;
        Ok(self
            .json(op::GET_INSTANCE, Method::GET, url, None::<&()>, None)
            .await?
            .0)
    }

    pub async fn vnic_attachments(
        &self,
        compartment: &str,
        filter: (&str, &str),
    ) -> Result<Vec<VnicAttachment>, ProviderError> {
        self.list(
            op::LIST_VNIC_ATTACHMENTS,
            "vnicAttachments",
            &[("compartmentId", compartment), filter],
        )
        .await
    }

    pub async fn get_vnic(&self, id: &str) -> Result<Vnic, ProviderError> {
        let url = self.url(&["vnics", id], &[]).await?;
        Ok(self
            .json(op::GET_VNIC, Method::GET, url, None::<&()>, None)
            .await?
            .0)
    }

    pub async fn private_ips_of(&self, vnic: &str) -> Result<Vec<PrivateIp>, ProviderError> {
        self.list(op::LIST_PRIVATE_IPS, "privateIps", &[("vnicId", vnic)])
            .await
    }

    pub async fn get_private_ip(&self, id: &str) -> Result<PrivateIp, ProviderError> {
        let url = self.url(&["privateIps", id], &[]).await?;
        Ok(self
            .json(op::GET_PRIVATE_IP, Method::GET, url, None::<&()>, None)
            .await?
            .0)
    }
}

/// rustls on ring with the platform's roots, set explicitly (as the GCP provider does).
/// The TLS configuration, built once per process: the platform verifier reads and
/// parses the system's CA bundle, which costs more CPU than a hundred signed calls (and
/// every provider of `pinip simulate`'s agents would pay it again).
pub(super) fn tls_config() -> Result<rustls::ClientConfig, ProviderError> {
    static CONFIG: std::sync::OnceLock<Result<rustls::ClientConfig, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| build_tls_config().map_err(|e| e.message))
        .clone()
        .map_err(|message| ProviderError::new(ErrorClass::Permanent, "tls", message))
}

fn build_tls_config() -> Result<rustls::ClientConfig, ProviderError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let failed = |e: rustls::Error| {
        ProviderError::new(
            ErrorClass::Permanent,
            "tls",
            format!("cannot set up TLS: {e}"),
        )
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(failed)?
    .with_platform_verifier()
    .map_err(failed)?
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// An endpoint (`https://iaas.us-ashburn-1.oraclecloud.com`, `http://127.0.0.1:PORT`) as
/// a base URL; the API version path is added per call.
fn base_url(endpoint: &str) -> Result<Url, ProviderError> {
    let invalid = |why: String| {
        ProviderError::invalid_input(
            "configuration",
            format!("OCI endpoint {endpoint:?} {why}; expected e.g. https://iaas.us-ashburn-1.oraclecloud.com"),
        )
    };
    let url = Url::parse(endpoint.trim()).map_err(|e| invalid(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.cannot_be_a_base()
        || url.host_str().is_none()
    {
        return Err(invalid("must be an http(s) URL".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            default_endpoint("us-ashburn-1"),
            "https://iaas.us-ashburn-1.oraclecloud.com"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("nonsense").is_err());
        assert_eq!(
            base_url("http://127.0.0.1:9/").unwrap().as_str(),
            "http://127.0.0.1:9/"
        );
    }
}
