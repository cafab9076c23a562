//! The Compute REST calls pinip makes, over `reqwest`: URLs, bearer tokens, error
//! classification, pagination, and waiting on operations with `operations/{op}/wait`
//! (an operation that ends in error is an error; KubeIP took some failed waits for
//! success).
//!
//! `wait` is best-effort: it may answer at once with the operation still RUNNING, so
//! it is called again (with a short pause when it came back early) until DONE or
//! [`OPERATION_BUDGET`] runs out; a blip on the wait itself is retried too. An
//! instance write whose end could not be seen is remembered, and [`ComputeClient::settle`]
//! waits for it before anyone trusts a read of that instance (the change lands when the
//! operation completes, not when it was accepted).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use reqwest::header::RETRY_AFTER;
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::debug;

use crate::{ErrorClass, ProviderError};

use super::auth::TokenSource;
use super::errors;
use super::operation::{instance_of_url, Unfinished};
use super::paging::{InFlight, Pages, Resumable};
use super::permissions::method;
use super::wire::{
    AccessConfig, Address, AddressList, Instance, NetworkInterface, Operation, SetLabelsRequest,
};

/// Google's endpoint; `GCP_COMPUTE_ENDPOINT` overrides it (emulators, the simulator).
pub const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1/";
/// Plain calls; `wait` is allowed longer (the API holds it up to ~2 minutes).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const WAIT_TIMEOUT: Duration = Duration::from_secs(150);
/// How long an operation is followed before it is reported as not done (transient).
pub const OPERATION_BUDGET: Duration = Duration::from_secs(300);
/// How long [`ComputeClient::settle`] follows a write whose end was not seen.
pub(super) const SETTLE_BUDGET: Duration = Duration::from_secs(60);
/// Pauses between polls when `wait` answers early or fails: doubling, capped.
pub(super) const FIRST_PAUSE: Duration = Duration::from_millis(100);
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(5);
/// A `wait` that answers sooner than this, not DONE, is followed by a pause.
pub(super) const EARLY: Duration = Duration::from_secs(1);
/// Largest page the API serves.
const PAGE_SIZE: &str = "500";
/// Pages followed at most (empty pages with a token count too): a runaway guard.
const MAX_PAGES: usize = 10_000;

/// Where an operation lives (zonal for instance calls, regional for address labels).
#[derive(Clone, Copy, Debug)]
pub(super) enum Scope<'a> {
    Zone(&'a str),
    Region(&'a str),
}

/// A Compute v1 client for one project.
#[derive(Clone, Debug)]
pub struct ComputeClient {
    http: reqwest::Client,
    base: Url,
    project: String,
    token: TokenSource,
    /// By instance name: writes whose end is unknown (see [`ComputeClient::settle`]).
    pub(super) unfinished: Arc<Mutex<HashMap<String, Unfinished>>>,
    /// Cancelled when the provider that made this client is dropped: ends the tasks
    /// that outlive a call (the background restore).
    pub(super) lifetime: tokio_util::sync::CancellationToken,
    /// The pool listing the list quota cut short, to resume (`gcp::paging`).
    listing: Arc<Resumable>,
    /// The pool listing in flight, joined by whoever lists it meanwhile (`gcp::paging`).
    in_flight: Arc<InFlight>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ComputeClient {
    /// `endpoint`: None for Google, else a base such as `http://127.0.0.1:8089/compute/v1/`
    /// (gcloud's `api_endpoint_overrides/compute` form); a bare `http://host:port` gets
    /// `compute/v1/` appended.
    pub fn new(
        endpoint: Option<&str>,
        project: &str,
        token: TokenSource,
    ) -> Result<ComputeClient, ProviderError> {
        let base = base_url(endpoint.unwrap_or(DEFAULT_ENDPOINT))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("pinip/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tls_backend_preconfigured(tls_config()?)
            .build()
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, "http client", e.to_string()))?;
        Ok(ComputeClient {
            http,
            base,
            project: project.to_string(),
            token,
            unfinished: Arc::new(Mutex::new(HashMap::new())),
            lifetime: tokio_util::sync::CancellationToken::new(),
            listing: Arc::default(),
            in_flight: Arc::default(),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// `{base}projects/{project}/{segments…}`, each segment percent-encoded.
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .push("projects")
                .push(&self.project)
                .extend(segments);
        }
        url
    }

    /// Send with the bearer token; a non-2xx answer becomes a classified error.
    async fn send(
        &self,
        op: &'static str,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let token = self.token.token().await?;
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| errors::from_transport(op, &e))?;
        let status = response.status();
        debug!(method = op, status = status.as_u16(), "compute call");
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = response.text().await.unwrap_or_default();
        Err(errors::from_http(
            op,
            status.as_u16(),
            retry_after.as_deref(),
            &body,
        ))
    }

    pub(super) async fn json<T: DeserializeOwned>(
        &self,
        op: &'static str,
        request: RequestBuilder,
    ) -> Result<T, ProviderError> {
        self.send(op, request)
            .await?
            .json::<T>()
            .await
            .map_err(|e| errors::from_transport(op, &format!("unreadable answer: {e}")))
    }

    pub(super) fn request(&self, verb: Method, url: Url, timeout: Duration) -> RequestBuilder {
        self.http
            .request(verb, url)
            .timeout(timeout)
            .query(&[("alt", "json")])
    }

    /// `addresses.list` with `filter` (never `orderBy`: the API refuses the two
    /// together), every page, empty ones included; or, when the list quota refused a
    /// page after the first, the pages before it (kept to resume from).
    pub(super) async fn list_addresses(
        &self,
        region: &str,
        filter: &str,
    ) -> Result<Pages, ProviderError> {
        let query = format!("{region}\n{filter}");
        let listing = self.in_flight.join_or_start(&query, || {
            let (client, region, filter, query) = (
                self.clone(),
                region.to_string(),
                filter.to_string(),
                query.clone(),
            );
            async move { client.read_pages(&region, &filter, &query).await }.boxed()
        });
        listing.await
    }

    /// A partial listing kept to resume from is dropped: an attach made its pages stale.
    pub(super) fn forget_partial_listing(&self) {
        self.listing.forget();
    }

    /// Every page of one listing, resuming a partial one of the same query.
    async fn read_pages(
        &self,
        region: &str,
        filter: &str,
        query: &str,
    ) -> Result<Pages, ProviderError> {
        let url = self.url(&["regions", region, "addresses"]);
        let (mut all, mut page_token) = match self.listing.take(query) {
            Some((read, next)) => (read, Some(next)),
            None => (Vec::new(), None),
        };
        for _ in 0..MAX_PAGES {
            let mut request = self
                .request(Method::GET, url.clone(), CALL_TIMEOUT)
                .query(&[("filter", filter), ("maxResults", PAGE_SIZE)]);
            if let Some(token) = &page_token {
                request = request.query(&[("pageToken", token.as_str())]);
            }
            let page: AddressList = match self.json(method::ADDRESSES_LIST, request).await {
                Ok(page) => page,
                Err(e) => {
                    if let (ErrorClass::Throttled, Some(next)) = (&e.class, page_token) {
                        self.listing.keep(query.to_string(), all.clone(), next);
                        return Ok(Pages {
                            items: all,
                            refused: Some(e),
                        });
                    }
                    return Err(e);
                }
            };
            all.extend(page.items);
            // A page may be empty and still carry a token (`NO_RESULTS_ON_PAGE`): follow it.
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != page_token.as_ref() => page_token = Some(next),
                _ => {
                    return Ok(Pages {
                        items: all,
                        refused: None,
                    })
                }
            }
        }
        Err(ProviderError::new(
            ErrorClass::Transient,
            method::ADDRESSES_LIST,
            format!("the address list did not end within {MAX_PAGES} pages"),
        ))
    }

    pub async fn get_address(&self, region: &str, name: &str) -> Result<Address, ProviderError> {
        let url = self.url(&["regions", region, "addresses", name]);
        self.json(
            method::ADDRESSES_GET,
            self.request(Method::GET, url, CALL_TIMEOUT),
        )
        .await
    }

    /// `addresses.setLabels` with the fingerprint the labels were read with (412 when
    /// stale), waited on.
    pub async fn set_labels(
        &self,
        region: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        label_fingerprint: &str,
    ) -> Result<(), ProviderError> {
        let url = self.url(&["regions", region, "addresses", name, "setLabels"]);
        let body = SetLabelsRequest {
            labels,
            label_fingerprint: label_fingerprint.to_string(),
        };
        self.mutate(
            method::ADDRESSES_SET_LABELS,
            Method::POST,
            url,
            &[],
            Some(&body),
            Scope::Region(region),
        )
        .await
    }

    pub async fn get_instance(&self, zone: &str, name: &str) -> Result<Instance, ProviderError> {
        let url = self.url(&["zones", zone, "instances", name]);
        self.json(
            method::INSTANCES_GET,
            self.request(Method::GET, url, CALL_TIMEOUT),
        )
        .await
    }

    pub async fn add_access_config(
        &self,
        zone: &str,
        instance: &str,
        nic: &str,
        access_config: &AccessConfig,
    ) -> Result<(), ProviderError> {
        let url = self.url(&["zones", zone, "instances", instance, "addAccessConfig"]);
        self.mutate(
            method::ADD_ACCESS_CONFIG,
            Method::POST,
            url,
            &[("networkInterface", nic)],
            Some(access_config),
            Scope::Zone(zone),
        )
        .await
    }

    pub async fn delete_access_config(
        &self,
        zone: &str,
        instance: &str,
        nic: &str,
        access_config: &str,
    ) -> Result<(), ProviderError> {
        let url = self.url(&["zones", zone, "instances", instance, "deleteAccessConfig"]);
        self.mutate::<()>(
            method::DELETE_ACCESS_CONFIG,
            Method::POST,
            url,
            &[("networkInterface", nic), ("accessConfig", access_config)],
            None,
            Scope::Zone(zone),
        )
        .await
    }

    /// `PATCH updateNetworkInterface`; `update` must carry the NIC's current fingerprint.
    pub async fn update_network_interface(
        &self,
        zone: &str,
        instance: &str,
        nic: &str,
        update: &NetworkInterface,
    ) -> Result<(), ProviderError> {
        let url = self.url(&[
            "zones",
            zone,
            "instances",
            instance,
            "updateNetworkInterface",
        ]);
        self.mutate(
            method::UPDATE_NETWORK_INTERFACE,
            Method::PATCH,
            url,
            &[("networkInterface", nic)],
            Some(update),
            Scope::Zone(zone),
        )
        .await
    }

    /// A call that returns an Operation: send it, then follow it until it is DONE and
    /// report its errors. An instance write whose end is not seen is remembered.
    async fn mutate<B: Serialize + ?Sized>(
        &self,
        op: &'static str,
        verb: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<&B>,
        scope: Scope<'_>,
    ) -> Result<(), ProviderError> {
        let mut request = self.request(verb, url.clone(), CALL_TIMEOUT).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let operation: Operation = self.json(op, request).await?;
        let name = operation.name.clone();
        let done = match self.follow(op, operation, scope, OPERATION_BUDGET).await {
            Ok(done) => done,
            Err(e) => {
                if let (Scope::Zone(zone), Some(instance)) = (scope, instance_of_url(&url)) {
                    lock(&self.unfinished).insert(
                        instance.to_string(),
                        Unfinished {
                            zone: zone.to_string(),
                            operation: name,
                        },
                    );
                }
                return Err(e);
            }
        };
        match errors::from_operation(op, &done) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// TLS on rustls with ring (the one crypto library of the process: kube and the AWS SDK
/// use it too) and the platform's trust store, set explicitly so nothing depends on a
/// process-wide default provider.
fn tls_config() -> Result<rustls::ClientConfig, ProviderError> {
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

/// Parse an endpoint into a base URL ending in `/`.
fn base_url(endpoint: &str) -> Result<Url, ProviderError> {
    let invalid = |why: String| {
        ProviderError::invalid_input(
            "configuration",
            format!("GCP_COMPUTE_ENDPOINT {endpoint:?} {why}; expected e.g. http://127.0.0.1:8089/compute/v1/"),
        )
    };
    let mut url = Url::parse(endpoint.trim()).map_err(|e| invalid(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("must be an http(s) URL".into()));
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/compute/v1/");
    } else if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> ComputeClient {
        ComputeClient::new(
            Some(endpoint),
            "my-project",
            TokenSource::Static("t".into()),
        )
        .unwrap()
    }

    #[test]
    fn urls_follow_the_discovery_paths() {
        let c = client("http://127.0.0.1:8089/compute/v1/");
        assert_eq!(
            c.url(&["zones", "us-central1-a", "instances", "node-1", "addAccessConfig"]).as_str(),
            "http://127.0.0.1:8089/compute/v1/projects/my-project/zones/us-central1-a/instances/node-1/addAccessConfig"
        );
        let bare = client("http://127.0.0.1:8089");
        assert_eq!(
            bare.url(&["regions", "r", "addresses"]).as_str(),
            "http://127.0.0.1:8089/compute/v1/projects/my-project/regions/r/addresses"
        );
        let no_slash = client("http://[::1]:9/prefix/compute/v1");
        assert_eq!(
            no_slash.url(&["zones", "z"]).as_str(),
            "http://[::1]:9/prefix/compute/v1/projects/my-project/zones/z"
        );
        assert_eq!(
            ComputeClient::new(None, "p", TokenSource::Static("t".into()))
                .unwrap()
                .url(&[])
                .as_str(),
            "https://compute.googleapis.com/compute/v1/projects/p"
        );
    }

    #[test]
    fn bad_endpoints_are_configuration_errors() {
        for bad in ["not a url", "ftp://x/", "mailto:a@b"] {
            let e =
                ComputeClient::new(Some(bad), "p", TokenSource::Static("t".into())).unwrap_err();
            assert_eq!(e.class, ErrorClass::InvalidInput, "{bad}");
            assert!(e.message.contains("GCP_COMPUTE_ENDPOINT"));
        }
    }

    #[test]
    fn writes_name_their_instance() {
        let c = client("http://127.0.0.1:1/compute/v1/");
        let url = c.url(&["zones", "z", "instances", "node-1", "deleteAccessConfig"]);
        assert_eq!(instance_of_url(&url), Some("node-1"));
        let labels = c.url(&["regions", "r", "addresses", "a", "setLabels"]);
        assert_eq!(instance_of_url(&labels), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        let c = client("http://127.0.0.1:1/compute/v1/");
        assert!(c.url(&["zones", "a/b"]).as_str().ends_with("zones/a%2Fb"));
    }
}
