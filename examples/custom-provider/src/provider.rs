//! pinip's [`Provider`] trait for the made-up Nimbus cloud: everything a new cloud needs.
//! Four calls, the trait's contract (idempotent attach and detach, never move an address
//! another instance holds, errors classed so the agent knows whether to retry, back off,
//! try the next address or stop), and a factory that picks this provider for nodes
//! whose providerID starts with `nimbus://`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pinip::cloud::factory::CloudProviders;
use pinip::cloud::factory::ProviderFactory;
use pinip::cloud::settings::CloudSettings;
use pinip_providers::{
    ErrorClass, Instance, InstanceRef, Ownership, PoolAddress, PoolSpec, Provider, ProviderError,
    ProviderHandle,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::wire::{
    AddressList, AddressView, AttachRequest, DetachRequest, ErrorBody, InstanceView,
};

/// The providerID scheme of Nimbus nodes: `nimbus:///<zone>/<instance>`.
pub const SCHEME: &str = "nimbus";

/// Label keys of pinip's ownership record on a Nimbus address.
pub const OWNER_CLUSTER: &str = "pinip-cluster";
pub const OWNER_NODE: &str = "pinip-node";
pub const OWNER_INSTANCE: &str = "pinip-instance";

/// One call never takes longer than this (the agent adds its own retries).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the Nimbus API is and how to authenticate.
#[derive(Clone, Debug)]
pub struct NimbusConfig {
    /// `https://api.nimbus.example`, or a loopback URL in tests.
    pub endpoint: String,
    pub token: String,
}

/// The Nimbus provider for one pool (`FILTER` terms `labels.K=V`, `ORDER_BY` `ip` or
/// `ip desc`, `IPV6`).
pub struct NimbusProvider {
    http: reqwest::Client,
    config: NimbusConfig,
    labels: Vec<(String, String)>,
    pool: PoolSpec,
}

impl NimbusProvider {
    pub fn new(config: NimbusConfig, pool: &PoolSpec) -> Result<NimbusProvider, ProviderError> {
        let labels = pool
            .filter
            .iter()
            .map(|term| parse_label_term(term))
            .collect::<Result<Vec<_>, _>>()?;
        match pool.order_by.as_deref().map(str::trim) {
            None | Some("ip") | Some("ip desc") => {}
            Some(other) => {
                return Err(ProviderError::invalid_input(
                    "ListAddresses",
                    format!("ORDER_BY {other:?} is not supported by Nimbus; use `ip` or `ip desc`"),
                ))
            }
        }
        // reqwest is built on rustls without a provider of its own (ring is the
        // process's one crypto library): make sure it is installed before the client.
        pinip::cloud::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::new(ErrorClass::Permanent, "NewClient", e.to_string()))?;
        Ok(NimbusProvider {
            http,
            config,
            labels,
            pool: pool.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.endpoint.trim_end_matches('/'))
    }

    /// Send a request and read the JSON answer, or the error, classed.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = request
            .bearer_auth(&self.config.token)
            .send()
            .await
            .map_err(|e| ProviderError::new(ErrorClass::Transient, operation, e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().await.map_err(|e| {
                ProviderError::new(
                    ErrorClass::Permanent,
                    operation,
                    format!("unreadable answer: {e}"),
                )
            });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
            Ok(parsed) => (Some(parsed.error.code), parsed.error.message),
            Err(_) => (None, format!("HTTP {status}: {body}")),
        };
        let mut error = ProviderError::new(classify(status, operation), operation, message);
        error.retry_after = retry_after;
        error.code = code;
        Err(error)
    }
}

/// What the agent should do about an HTTP status from Nimbus.
pub fn classify(status: StatusCode, operation: &'static str) -> ErrorClass {
    match status {
        StatusCode::CONFLICT => ErrorClass::Conflict,
        StatusCode::NOT_FOUND => ErrorClass::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorClass::PermissionDenied {
            action: format!("nimbus:{operation}"),
        },
        StatusCode::TOO_MANY_REQUESTS => ErrorClass::Throttled,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ErrorClass::InvalidInput,
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// `labels.K=V` (the Compute-style FILTER form pinip checks at startup) → `(K, V)`.
pub fn parse_label_term(term: &str) -> Result<(String, String), ProviderError> {
    term.trim()
        .strip_prefix("labels.")
        .and_then(|rest| rest.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| {
            ProviderError::invalid_input(
                "ListAddresses",
                format!(
                    "FILTER term {term:?} is not `labels.KEY=VALUE`, the only form Nimbus supports"
                ),
            )
        })
}

/// A Nimbus address as the agent sees it; the ownership record from its labels.
fn pool_address(view: AddressView) -> PoolAddress {
    let label = |key: &str| view.labels.get(key).cloned();
    let owner = match (
        label(OWNER_CLUSTER),
        label(OWNER_NODE),
        label(OWNER_INSTANCE),
    ) {
        (Some(cluster), Some(node), Some(instance)) => Some(Ownership {
            cluster,
            node,
            instance,
        }),
        _ => None,
    };
    PoolAddress {
        id: view.id,
        ip: view.ip,
        attached_to: view.attached_to.filter(|i| !i.is_empty()),
        owner,
        labels: view.labels.into(),
    }
}

#[async_trait]
impl Provider for NimbusProvider {
    fn name(&self) -> &'static str {
        SCHEME
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        let view: InstanceView = self
            .call(
                "DescribeInstance",
                self.http
                    .get(self.url(&format!("/v1/instances/{}", instance.id))),
            )
            .await?;
        Ok(Instance {
            reference: instance.clone(),
            nic: Some(view.nic.id),
            private_ip: Some(view.nic.private_ip),
            // Read only by pool parts (`Provider::list_pool_part`), which this cloud
            // does not offer.
            reserved_ips: Vec::new(),
        })
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        let query: Vec<(&str, String)> = self
            .labels
            .iter()
            .map(|(k, v)| ("label", format!("{k}={v}")))
            .collect();
        let list: AddressList = self
            .call(
                "ListAddresses",
                self.http.get(self.url("/v1/addresses")).query(&query),
            )
            .await?;
        let mut pool: Vec<PoolAddress> = list
            .addresses
            .into_iter()
            .filter(|a| self.pool.family.matches(&a.ip))
            .map(pool_address)
            .collect();
        match self.pool.order_by.as_deref().map(str::trim) {
            Some("ip") => pool.sort_by_key(|a| a.ip),
            Some("ip desc") => pool.sort_by_key(|a| std::cmp::Reverse(a.ip)),
            _ => {}
        }
        Ok(pool)
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let nic = instance.nic.clone().ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Permanent,
                "AttachAddress",
                format!("instance {} has no NIC", instance.reference),
            )
        })?;
        let request = AttachRequest {
            instance: instance.reference.id.clone(),
            nic,
            labels: BTreeMap::from([
                (OWNER_CLUSTER.to_string(), owner.cluster.clone()),
                (OWNER_NODE.to_string(), owner.node.clone()),
                (OWNER_INSTANCE.to_string(), owner.instance.clone()),
            ]),
        };
        // Nimbus answers 200 when the address is already on this instance (idempotent)
        // and 409 when it is on another one (Conflict: the agent tries the next address).
        let _: AddressView = self
            .call(
                "AttachAddress",
                self.http
                    .post(self.url(&format!("/v1/addresses/{}/attach", address.id)))
                    .json(&request),
            )
            .await?;
        Ok(())
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        let request = DetachRequest {
            instance: instance.id.clone(),
            remove_labels: vec![
                OWNER_CLUSTER.into(),
                OWNER_NODE.into(),
                OWNER_INSTANCE.into(),
            ],
        };
        let detached: Result<AddressView, _> = self
            .call(
                "DetachAddress",
                self.http
                    .post(self.url(&format!("/v1/addresses/{}/detach", address.id)))
                    .json(&request),
            )
            .await;
        match detached {
            // An address that no longer exists is not attached to us: done.
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// Chooses the provider from the node's providerID: Nimbus for `nimbus://…`, pinip's
/// built-in providers (AWS, GCP) for everything else.
pub struct NimbusProviders {
    /// None: `NIMBUS_ENDPOINT`/`NIMBUS_TOKEN` unset, so Nimbus nodes cannot be served.
    pub config: Option<NimbusConfig>,
}

impl NimbusProviders {
    /// The Nimbus endpoint and token from `NIMBUS_ENDPOINT` and `NIMBUS_TOKEN`.
    pub fn from_env() -> NimbusProviders {
        let config = match (
            std::env::var("NIMBUS_ENDPOINT"),
            std::env::var("NIMBUS_TOKEN"),
        ) {
            (Ok(endpoint), Ok(token)) => Some(NimbusConfig { endpoint, token }),
            _ => None,
        };
        NimbusProviders { config }
    }
}

#[async_trait]
impl ProviderFactory for NimbusProviders {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError> {
        if instance.cloud == SCHEME {
            let config = self.config.clone().ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::InvalidInput,
                    "SelectProvider",
                    format!("node instance {instance} runs on Nimbus: set NIMBUS_ENDPOINT and NIMBUS_TOKEN"),
                )
            })?;
            Ok(Arc::new(NimbusProvider::new(config, &settings.pool)?))
        } else {
            CloudProviders.provider_for(instance, settings).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_terms_are_label_equalities() {
        assert_eq!(
            parse_label_term("labels.pool=egress").ok(),
            Some(("pool".to_string(), "egress".to_string()))
        );
        for bad in [
            "pool=egress",
            "labels.pool",
            "labels.=x",
            "labels.pool=",
            "Name=tag:kubeip,Values=reserved",
        ] {
            assert!(parse_label_term(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_statuses_map_to_what_the_agent_does() {
        assert_eq!(classify(StatusCode::CONFLICT, "A"), ErrorClass::Conflict);
        assert_eq!(classify(StatusCode::NOT_FOUND, "A"), ErrorClass::NotFound);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, "A"),
            ErrorClass::Throttled
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, "A"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, "A"),
            ErrorClass::InvalidInput
        );
        assert_eq!(
            classify(StatusCode::FORBIDDEN, "AttachAddress"),
            ErrorClass::PermissionDenied {
                action: "nimbus:AttachAddress".into()
            }
        );
        assert_eq!(
            classify(StatusCode::IM_A_TEAPOT, "A"),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn ownership_is_read_back_from_labels_and_empty_attachments_are_none() {
        let view = AddressView {
            id: "a1".into(),
            ip: "192.0.2.1".parse().unwrap(),
            attached_to: Some(String::new()),
            labels: BTreeMap::from([
                (OWNER_CLUSTER.to_string(), "c".to_string()),
                (OWNER_NODE.to_string(), "n".to_string()),
                (OWNER_INSTANCE.to_string(), "i".to_string()),
            ]),
        };
        let address = pool_address(view);
        assert_eq!(address.attached_to, None);
        assert_eq!(
            address.owner,
            Some(Ownership {
                cluster: "c".into(),
                node: "n".into(),
                instance: "i".into()
            })
        );
    }
}
