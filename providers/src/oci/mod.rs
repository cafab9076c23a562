//! The OCI provider: reserved public IPs pinned to OKE nodes through the Core Services
//! REST API (20160918), on `reqwest` with OCI request signing ([`signer`], `ring`).
//!
//! - `describe_instance`: `GetInstance` (compartment, state), `ListVnicAttachments`,
//!   `GetVnic` until the primary one, `ListPrivateIps` for its primary private IP
//!   (cached: an instance's primary private IP never changes);
//! - `list_pool`: `ListPublicIps(scope=REGION, lifetime=RESERVED)` in `PROJECT`'s
//!   compartment (else the node's), **every page**, narrowed by `FILTER` in KubeIP's
//!   syntax ([`filter`]); the holder of an assigned address comes from pinip's own
//!   record when it names the address's private IP ([`tags`]), else it is looked up;
//! - `attach`: the swap of [`swap`] (ephemeral out, reserved in with `if-match`, an
//!   ephemeral restored on any failure), ownership tags in the same write;
//! - `detach`: unassign if still on that instance, clear the record, restore an
//!   ephemeral public IP.
//!
//! Credentials ([`Credentials`]): an API key or a config file's session token
//! ([`auth`]), or session tokens the provider obtains and renews itself ([`principal`]):
//! instance principals ([`instance`]) and OKE workload identity ([`workload`]).
//!
//! IPv6: OCI has no reserved public IPv6 to move between nodes (a VNIC's IPv6
//! addresses come from its subnet's prefix), so `IPV6=true` is refused at start.

mod auth;
mod client;
mod credentials;
mod errors;
pub mod filter;
mod instance;
pub mod permissions;
mod principal;
mod provider_id;
mod session_key;
mod signer;
mod swap;
pub mod tags;
pub mod token;
mod wire;
mod workload;
pub mod x509;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tracing::{debug, warn};

use crate::order::OrderBy;
use crate::{
    ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolAddress, PoolSpec, Provider,
    ProviderError,
};

pub use auth::{auth_mode, from_config, from_environment, AuthMode, Loaded};
pub use client::default_endpoint;
pub use credentials::Credentials;
pub use instance::{InstanceSettings, DEFAULT_METADATA_BASE_URL};
pub use principal::{Clock, Principal};
pub use provider_id::{parse_provider_id, ProviderIdError};
pub use signer::SigningKey;
pub use swap::Target;
pub use workload::{
    WorkloadSettings, DEFAULT_SERVICE_ACCOUNT_CERT_PATH, DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH,
    PROXYMUX_PORT,
};

use client::CoreClient;
use filter::TagFilter;
use permissions::op;
use wire::PublicIp;

/// Where and how to reach Core Services.
#[derive(Clone, Debug)]
pub struct OciSettings {
    /// `PROJECT`: the compartment OCID of the reserved public IPs. None: the node's own
    /// compartment (read from the instance).
    pub compartment: Option<String>,
    /// `REGION`, else the config file's `region`. Empty with instance principals: the
    /// instance metadata service's.
    pub region: String,
    /// None: `https://iaas.<region>.oraclecloud.com`; else e.g. the simulator's URL.
    pub endpoint: Option<String>,
    /// What signs the calls (a [`SigningKey`] converts).
    pub credentials: Credentials,
    pub pool: PoolSpec,
}

pub struct OciProvider {
    client: CoreClient,
    /// Ends the client's background tasks with this provider.
    _lifetime: tokio_util::sync::DropGuard,
    family_pool: PoolSpec,
    filters: Vec<TagFilter>,
    order: Option<OrderBy>,
    compartment: Mutex<Option<String>>,
    /// instance OCID → its primary private IP (never changes for an instance).
    targets: Mutex<HashMap<String, Target>>,
    /// One resolution at a time: the agent lists the pool and describes its instance
    /// side by side, and both may need the instance (the compartment, the target).
    resolving: tokio::sync::Mutex<()>,
    /// private IP OCID → instance OCID, learned (never changes for a private IP).
    holders: Mutex<HashMap<String, String>>,
    /// The node this provider serves: without `PROJECT`, its compartment is the pool's.
    home: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OciProvider {
    pub fn new(settings: OciSettings) -> Result<OciProvider, ProviderError> {
        if settings.pool.family == IpFamily::V6 {
            return Err(ProviderError::invalid_input(
                "configuration",
                "IPV6=true is not supported on OCI: OCI has no reserved public IPv6 addresses to pin (a VNIC's IPv6 addresses come from its subnet's prefix and are public on a public subnet already); unset IPV6",
            ));
        }
        let region = settings.region.trim();
        if region.is_empty() && settings.endpoint.is_none() && !settings.credentials.knows_region()
        {
            return Err(ProviderError::invalid_input(
                "configuration",
                "the OCI region is unknown: set REGION (or `region` in the OCI config file)",
            ));
        }
        let filters = filter::parse(&settings.pool.filter)
            .map_err(|e| ProviderError::invalid_input("configuration", e.to_string()))?;
        let order = match settings
            .pool
            .order_by
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            Some(text) => Some(
                OrderBy::parse(text)
                    .map_err(|e| ProviderError::invalid_input("configuration", e.to_string()))?,
            ),
            None => None,
        };
        let endpoint = match (&settings.endpoint, region) {
            (Some(endpoint), _) => Some(endpoint.clone()),
            (None, "") => None,
            (None, region) => Some(default_endpoint(region)),
        };
        let client = CoreClient::new(endpoint.as_deref(), settings.credentials)?;
        Ok(OciProvider {
            _lifetime: client.lifetime.clone().drop_guard(),
            client,
            family_pool: settings.pool,
            filters,
            order,
            compartment: Mutex::new(settings.compartment.filter(|c| !c.trim().is_empty())),
            targets: Mutex::new(HashMap::new()),
            resolving: tokio::sync::Mutex::new(()),
            holders: Mutex::new(HashMap::new()),
            home: None,
        })
    }

    /// The instance of the node this provider serves: when `PROJECT` is unset, the pool
    /// is looked for in its compartment (read with `GetInstance` at the first listing).
    pub fn for_instance(mut self, instance: &str) -> OciProvider {
        self.home = Some(instance.to_string());
        self
    }

    /// The node's primary VNIC and its primary private IP. None: the instance is gone.
    async fn resolve(&self, instance: &str) -> Result<Option<Target>, ProviderError> {
        if let Some(known) = lock(&self.targets).get(instance).cloned() {
            return Ok(Some(known));
        }
        let _one_at_a_time = self.resolving.lock().await;
        if let Some(known) = lock(&self.targets).get(instance).cloned() {
            return Ok(Some(known));
        }
        let read = match self.client.get_instance(instance).await {
            Ok(read) => read,
            Err(e) if e.class == ErrorClass::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if matches!(read.lifecycle_state.as_str(), "TERMINATED" | "TERMINATING") {
            return Ok(None);
        }
        lock(&self.compartment).get_or_insert_with(|| read.compartment_id.clone());
        let mut attachments = self
            .client
            .vnic_attachments(&read.compartment_id, ("instanceId", instance))
            .await?;
        attachments.retain(|a| a.lifecycle_state == "ATTACHED" && wire::set(&a.vnic_id).is_some());
        attachments.sort_by_key(|a| a.nic_index.unwrap_or(u32::MAX));
        for attachment in attachments {
            let vnic = self
                .client
                .get_vnic(attachment.vnic_id.as_deref().unwrap_or_default())
                .await?;
            if vnic.is_primary != Some(true) {
                continue;
            }
            let primary = self
                .client
                .private_ips_of(&vnic.id)
                .await?
                .into_iter()
                .find(|p| p.is_primary == Some(true));
            let Some(private_ip) = primary else { break };
            let target = Target {
                instance: instance.to_string(),
                vnic: vnic.id.clone(),
                private_ip: private_ip.id.clone(),
                compartment: private_ip.compartment_id.clone(),
                ip_address: private_ip.ip_address.clone(),
            };
            lock(&self.targets).insert(instance.to_string(), target.clone());
            lock(&self.holders).insert(private_ip.id, instance.to_string());
            return Ok(Some(target));
        }
        Err(ProviderError::new(
            ErrorClass::Permanent,
            op::LIST_VNIC_ATTACHMENTS,
            format!("instance {instance} has no attached primary VNIC with a primary private IP"),
        ))
    }

    /// The instance behind a private IP: learned, from pinip's record, or looked up.
    async fn holder(&self, ip: &PublicIp, private_ip: &str) -> String {
        if let Some(known) = lock(&self.holders).get(private_ip).cloned() {
            return known;
        }
        if let Some(recorded) = tags::recorded_holder(&ip.freeform_tags, private_ip) {
            return recorded.to_string();
        }
        let looked_up = async {
            let p = self.client.get_private_ip(private_ip).await?;
            let vnic = self.client.get_vnic(&p.vnic_id).await?;
            let attachments = self
                .client
                .vnic_attachments(&vnic.compartment_id, ("vnicId", &vnic.id))
                .await?;
            Ok::<_, ProviderError>(attachments.into_iter().next().map(|a| a.instance_id))
        };
        match looked_up.await {
            Ok(Some(instance)) => {
                lock(&self.holders).insert(private_ip.to_string(), instance.clone());
                instance
            }
            Ok(None) => private_ip.to_string(),
            Err(e) => {
                debug!(private_ip, error = %e, "could not find the instance behind a private IP");
                private_ip.to_string()
            }
        }
    }

    async fn pool_address(&self, ip: &PublicIp) -> Option<PoolAddress> {
        let address: IpAddr = ip.ip_address.parse().ok()?;
        if !self.family_pool.family.matches(&address)
            || matches!(ip.lifecycle_state.as_str(), "TERMINATING" | "TERMINATED")
        {
            return None;
        }
        let attached_to = match (ip.lifecycle_state.as_str(), ip.private_ip()) {
            ("AVAILABLE", _) => None,
            (_, Some(private_ip)) => Some(self.holder(ip, private_ip).await),
            // On a NAT gateway, or PROVISIONING: not free, and not any node's.
            (state, None) => Some(
                ip.held_by_other_entity()
                    .map(String::from)
                    .unwrap_or_else(|| format!("({})", state.to_lowercase())),
            ),
        };
        Some(PoolAddress {
            id: ip.id.clone(),
            ip: address,
            attached_to,
            owner: tags::owner_of(&ip.freeform_tags),
            labels: filter::flat_tags(ip).into(),
        })
    }
}

/// Await a swap task; a panicked task is a transient failure.
async fn joined<T>(
    task: tokio::task::JoinHandle<Result<T, ProviderError>>,
    operation: &'static str,
) -> Result<T, ProviderError> {
    task.await.unwrap_or_else(|e| {
        Err(ProviderError::new(
            ErrorClass::Transient,
            operation,
            format!("the cloud task failed: {e}"),
        ))
    })
}

#[async_trait]
impl Provider for OciProvider {
    fn name(&self) -> &'static str {
        "oci"
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        let target = self.resolve(&instance.id).await?.ok_or_else(|| {
            ProviderError::new(
                ErrorClass::NotFound,
                op::GET_INSTANCE,
                format!("instance {} is gone", instance.id),
            )
        })?;
        Ok(Instance {
            reference: instance.clone(),
            nic: Some(target.vnic.clone()),
            private_ip: target.ip_address.parse().ok(),
            reserved_ips: Vec::new(),
        })
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        let unknown = lock(&self.compartment).is_none();
        if let (true, Some(home)) = (unknown, &self.home) {
            // Learns the compartment (and caches the node's private IP) on the way.
            self.resolve(home).await?;
        }
        let compartment = lock(&self.compartment).clone().ok_or_else(|| {
            ProviderError::invalid_input(
                "configuration",
                "the compartment of the reserved public IPs is unknown: set PROJECT to its OCID",
            )
        })?;
        let listed = self.client.list_reserved(&compartment).await?;
        let mut pool = Vec::new();
        for ip in listed
            .iter()
            .filter(|ip| filter::matches(&self.filters, ip))
        {
            if let Some(entry) = self.pool_address(ip).await {
                pool.push(entry);
            }
        }
        if let Some(order) = &self.order {
            order.sort(&mut pool);
        }
        Ok(pool)
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let target = self.resolve(&instance.reference.id).await?.ok_or_else(|| {
            ProviderError::new(
                ErrorClass::NotFound,
                op::GET_INSTANCE,
                format!("instance {} is gone", instance.reference.id),
            )
        })?;
        let (client, id, owner) = (self.client.clone(), address.id.clone(), owner.clone());
        // On its own task: a caller that stops waiting must not cut the swap in half.
        let task = tokio::spawn(async move { swap::attach(&client, &target, &id, &owner).await });
        joined(task, op::UPDATE_PUBLIC_IP).await
    }

    async fn ensure_public_ip(&self, instance: &Instance) -> Result<(), ProviderError> {
        if let Some(target) = self.resolve(&instance.reference.id).await? {
            // Reads first: nothing is written while the node has a public IP.
            swap::restore(&self.client, &target).await;
        }
        Ok(())
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        let target = self.resolve(&instance.id).await?;
        let (client, id, instance_id) =
            (self.client.clone(), address.id.clone(), instance.id.clone());
        let task = tokio::spawn(async move {
            let detached = match &target {
                Some(target) => swap::detach(&client, target, &id).await?,
                // The instance is gone: OCI unassigned the address with its private IP.
                None => false,
            };
            let (ip, etag) = match client.get_public_ip(&id).await {
                Ok(read) => read,
                Err(e) if e.class == ErrorClass::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            // Clear a record that names this instance, unless the address is held now
            // (by someone else: their agent rewrites the record).
            let names_it = ip.freeform_tags.get(tags::INSTANCE_TAG) == Some(&instance_id);
            if names_it && ip.lifecycle_state == "AVAILABLE" {
                let desired = tags::without_owner(&ip.freeform_tags);
                swap::set_tags(&client, ip, etag, tags::without_owner, desired).await?;
            } else if !detached && names_it {
                warn!(instance = %instance_id, address = %ip.ip_address, state = %ip.lifecycle_state, "address not on this instance and held elsewhere; left alone");
            }
            Ok(())
        });
        joined(task, op::UPDATE_PUBLIC_IP).await
    }
}
