//! The GCP provider: reserved regional external addresses (IPv4 or IPv6) pinned to GCE
//! instances through the Compute v1 REST API, on `reqwest` with tokens from
//! `gcp_auth` (Application Default Credentials) or a static token for emulators.
//!
//! - `list_pool`: `addresses.list` in the region with KubeIP's filter less its status
//!   term (`(addressType=EXTERNAL) (ipVersion…) (FILTER…)`, every page): one listing
//!   gives the free candidates (RESERVED) and "does my instance already hold one?"
//!   (IN_USE), where KubeIP lists twice; sorted here by `ORDER_BY`
//!   ([`ordering`]: the API refuses `orderBy` next to a filter); free IPv6 addresses
//!   that cannot go on this node's NIC (endpoint type `NETLB`, another subnetwork) are
//!   left out once the NIC is known; `list_pool_prefix` gives the pages read before the
//!   list quota refused one ([`paging`]);
//! - `attach`: the IPv4 access-config swap ([`access_config`]) or the two-step IPv6
//!   NIC update ([`ipv6`]), then the ownership labels ([`labels`]) via `setLabels`
//!   ([`owner_record`]); the agent asks for the two apart (`attach_unrecorded`,
//!   `record_owner`) and writes the labels beside the publication;
//! - `detach`: the reverse, leaving an ephemeral address on the node.
//!
//! Attach and detach run on their own task: if the agent stops waiting (a timeout,
//! shutdown) the swap still runs to its end, so the node is not left half-swapped
//! without an external IP.

mod access_config;
mod auth;
mod client;
mod errors;
mod filter;
mod ipv6;
pub mod labels;
mod operation;
mod ordering;
mod owner_record;
mod paging;
pub mod permissions;
mod pool_address;
mod wire;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant as WallInstant};

use async_trait::async_trait;
use tracing::{debug, warn};

use crate::{
    AssignmentRateLimit, ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolAddress,
    PoolRead, PoolSpec, Provider, ProviderError,
};

pub use auth::{TokenSource, COMPUTE_SCOPE};
pub use client::{ComputeClient, DEFAULT_ENDPOINT};
pub use filter::{api_filter, Status};
pub use ordering::{GcpOrder, GcpOrderError, GcpOrderKey};

use owner_record::{set_owner, write_owner_paced};
use paging::Pages;
use permissions::method;
pub use pool_address::pool_address;
use wire::{instance_of_user, resource_path, zone_of_user, Address};

/// An instance read by `describe_instance` is reused by the attach that follows it
/// within this long (saves a GET per assignment); older reads are refreshed.
const INSTANCE_READ_REUSE: Duration = Duration::from_secs(10);

/// Where and how to reach Compute.
#[derive(Clone, Debug)]
pub struct GcpSettings {
    pub project: String,
    pub region: String,
    /// None: Google's endpoint; else e.g. `http://127.0.0.1:8089/compute/v1/`.
    pub endpoint: Option<String>,
    pub token: TokenSource,
    pub pool: PoolSpec,
}

pub struct GcpProvider {
    client: ComputeClient,
    region: String,
    pool: PoolSpec,
    /// `ORDER_BY`, applied to the listing here.
    order: Option<GcpOrder>,
    /// The subnetwork of the node's primary NIC, once `describe_instance` has read it.
    subnetwork: Mutex<Option<String>>,
    /// Address records as last read (fingerprint, tier, prefix length): the free ones
    /// of the last listing, for `attach`, and the one `attach_unrecorded` swapped on,
    /// for `record_owner`.
    addresses: Mutex<HashMap<String, Address>>,
    /// The last `describe_instance` reads.
    instances: Mutex<HashMap<String, (WallInstant, wire::Instance)>>,
    /// Ends the client's background tasks with this provider.
    _lifetime: tokio_util::sync::DropGuard,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GcpProvider {
    pub fn new(settings: GcpSettings) -> Result<GcpProvider, ProviderError> {
        if settings.project.trim().is_empty() {
            return Err(ProviderError::invalid_input(
                "configuration",
                "the GCP project is unknown: set PROJECT or use nodes with a gce://project/zone/name providerID",
            ));
        }
        if settings.region.trim().is_empty() {
            return Err(ProviderError::invalid_input(
                "configuration",
                "the GCP region is unknown: set REGION",
            ));
        }
        let order = match settings.pool.order_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                GcpOrder::parse(text)
                    .map_err(|e| ProviderError::invalid_input("ParseOrderBy", e.to_string()))?,
            ),
        };
        let client = ComputeClient::new(
            settings.endpoint.as_deref(),
            &settings.project,
            settings.token,
        )?;
        Ok(GcpProvider {
            _lifetime: client.lifetime.clone().drop_guard(),
            client,
            region: settings.region,
            pool: settings.pool,
            order,
            subnetwork: Mutex::new(None),
            addresses: Mutex::new(HashMap::new()),
            instances: Mutex::new(HashMap::new()),
        })
    }

    /// One listing, in `ORDER_BY` order (the API's, by name, otherwise).
    async fn list(&self, status: Status) -> Result<Pages, ProviderError> {
        let filter = api_filter(&self.pool, status);
        let mut pages = self.client.list_addresses(&self.region, &filter).await?;
        if let Some(order) = &self.order {
            order.sort(&mut pages.items);
        }
        Ok(pages)
    }

    /// The pool entries of a listing, and the free ones' records kept for `attach`.
    fn pool_of(&self, listed: Vec<Address>) -> Vec<PoolAddress> {
        let mut records = lock(&self.addresses);
        records.clear();
        let mut pool: Vec<PoolAddress> = Vec::with_capacity(listed.len());
        let mut position: HashMap<String, usize> = HashMap::with_capacity(listed.len());
        // Pages are read one after another: an address that changed state between two
        // of them may show up twice; the later view wins.
        for address in listed {
            let Some(entry) = pool_address(&address, self.pool.family) else {
                debug!(address = %address.name, ip = %address.address, "skipping an address of another family or with no IP");
                continue;
            };
            if let Some(why) = self.misfit(&address) {
                debug!(address = %address.name, why, "skipping an address that cannot go on this node");
                continue;
            }
            let free = entry.is_free();
            match position.get(&entry.id) {
                Some(&at) => pool[at] = entry,
                None => {
                    position.insert(entry.id.clone(), pool.len());
                    pool.push(entry);
                }
            }
            // Only a free address can be attached, and attach reads its record (labels,
            // fingerprint) from here; an address in use is read when it is needed.
            match free {
                true => records.insert(address.name.clone(), address),
                false => records.remove(&address.name),
            };
        }
        pool
    }

    /// Why a free address cannot go on this node, if it cannot (IPv6 only: the
    /// endpoint type, and the subnetwork once the NIC is known).
    fn misfit(&self, address: &Address) -> Option<String> {
        if self.pool.family != IpFamily::V6 || !address.is_reserved() {
            return None;
        }
        let nic = wire::NetworkInterface {
            subnetwork: lock(&self.subnetwork).clone(),
            ..wire::NetworkInterface::default()
        };
        ipv6::fits(address, &nic).err()
    }

    /// The wire record of a pool address: from the last listing, else read.
    async fn address_record(&self, name: &str) -> Result<Address, ProviderError> {
        if let Some(known) = lock(&self.addresses).get(name).cloned() {
            return Ok(known);
        }
        self.client.get_address(&self.region, name).await
    }

    /// The swap of an attach, then the labels if `owner` is given, on a task of its own
    /// (a caller that stops waiting must not cut the swap in half); the address's wire
    /// record once done.
    async fn attach_on_task(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: Option<&Ownership>,
    ) -> Result<Address, ProviderError> {
        let target = address.ip;
        if !self.pool.family.matches(&target) {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                method::ADD_ACCESS_CONFIG,
                format!("{target} is not an {:?} address", self.pool.family),
            ));
        }
        let record = self.address_record(&address.id).await?;
        let cached = self.recent_instance(&instance.reference.id);
        let client = self.client.clone();
        let (zone, name) = (
            instance.reference.zone.clone(),
            instance.reference.id.clone(),
        );
        let (region, family, owner) = (self.region.clone(), self.pool.family, owner.cloned());
        // On its own task: a caller that stops waiting must not cut the swap in half.
        let task = tokio::spawn(async move {
            // A write whose end was not seen may still change the NIC: wait for it, and
            // plan from a read taken after it.
            let settled_first = client.has_unfinished(&name);
            if !client.settle(&zone, &name).await {
                return Err(ProviderError::new(
                    ErrorClass::Transient,
                    method::INSTANCES_GET,
                    format!("an earlier change of {name} is still not done"),
                ));
            }
            let read = match cached.filter(|_| !settled_first) {
                Some(read) => read,
                None => client.get_instance(&zone, &name).await?,
            };
            match family {
                IpFamily::V4 => {
                    access_config::attach(&client, &zone, &read, &record, target).await?
                }
                IpFamily::V6 => ipv6::attach(&client, &zone, read, &record, target).await?,
            }
            // The pages a cut-short listing kept show this address free: not to resume.
            client.forget_partial_listing();
            if let Some(owner) = &owner {
                set_owner(&client, &region, record.clone(), Some(owner)).await?;
            }
            Ok(record)
        });
        let swapped = joined(task, method::ADD_ACCESS_CONFIG).await;
        // The listing's record of a free address is spent by the swap, except for a
        // throttled one: that is tried again without a listing (`agent::pacing`), and
        // reading the record again would spend the same spent quota (600 IPv6 nodes:
        // 374 `addresses.get`, 259 of them refused). One whose caller stopped waiting
        // stays until the next listing; a stale label fingerprint is read again on 412.
        if !matches!(&swapped, Err(e) if e.class == ErrorClass::Throttled) {
            lock(&self.addresses).remove(&address.id);
        }
        swapped
    }

    fn recent_instance(&self, name: &str) -> Option<wire::Instance> {
        let (read_at, instance) = lock(&self.instances).remove(name)?;
        (read_at.elapsed() < INSTANCE_READ_REUSE).then_some(instance)
    }
}

/// Await a swap task; a panicked task is a transient failure.
async fn joined<T>(
    task: tokio::task::JoinHandle<Result<T, ProviderError>>,
    op: &'static str,
) -> Result<T, ProviderError> {
    task.await.unwrap_or_else(|e| {
        Err(ProviderError::new(
            ErrorClass::Transient,
            op,
            format!("the cloud task failed: {e}"),
        ))
    })
}

#[async_trait]
impl Provider for GcpProvider {
    fn name(&self) -> &'static str {
        "gcp"
    }

    /// Compute's default per-project quotas: 1 500 mutations a minute and 1 500 operation
    /// reads a minute, in windows of whole minutes; one assignment makes 3 of each (the
    /// swap's two steps or the NIC update's two, then `setLabels`, each waited on).
    fn assignment_rate_limit(&self) -> Option<AssignmentRateLimit> {
        Some(AssignmentRateLimit::window(
            access_config::QUOTA_WINDOW,
            1500,
            3,
        ))
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        let read = self
            .client
            .get_instance(&instance.zone, &instance.id)
            .await?;
        let nic = read.primary_nic().cloned();
        if let Some(subnet) = nic.as_ref().and_then(|n| n.subnetwork.as_deref()) {
            *lock(&self.subnetwork) = Some(resource_path(subnet).to_string());
        }
        lock(&self.instances).insert(instance.id.clone(), (WallInstant::now(), read));
        Ok(Instance {
            reference: instance.clone(),
            nic: nic.as_ref().map(|n| n.name.clone()),
            private_ip: nic
                .as_ref()
                .and_then(|n| n.network_ip.as_deref())
                .and_then(|ip| ip.parse().ok()),
            reserved_ips: Vec::new(),
        })
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        match self.list_pool_prefix().await? {
            PoolRead::Whole(pool) | PoolRead::Part(pool) => Ok(pool),
            PoolRead::Prefix { refusal, .. } => Err(refusal),
        }
    }

    /// The pages before a refused one are a prefix: the listing resumes after them.
    async fn list_pool_prefix(&self) -> Result<PoolRead, ProviderError> {
        let listed = self.list(Status::Any).await?;
        let addresses = self.pool_of(listed.items);
        Ok(match listed.refused {
            None => PoolRead::Whole(addresses),
            Some(refusal) => PoolRead::Prefix { addresses, refusal },
        })
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.attach_on_task(address, instance, Some(owner))
            .await
            .map(|_| ())
    }

    /// The swap alone: `setLabels` is `record_owner`, written beside the publication.
    async fn attach_unrecorded(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        _owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let record = self.attach_on_task(address, instance, None).await?;
        lock(&self.addresses).insert(address.id.clone(), record);
        Ok(())
    }

    /// `setLabels` from the record the swap left (its fingerprint), else a fresh read.
    /// Not on a task of its own as the swap is: a label write has no half to be left in.
    async fn record_owner(
        &self,
        address: &PoolAddress,
        _instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let record = self.address_record(&address.id).await?;
        lock(&self.addresses).remove(&address.id);
        write_owner_paced(&self.client, &self.region, record, owner).await
    }

    async fn ensure_public_ip(&self, instance: &Instance) -> Result<(), ProviderError> {
        // An IPv6 pool never touches the NIC's IPv4 access config.
        if self.pool.family != IpFamily::V4 {
            return Ok(());
        }
        let (zone, name) = (&instance.reference.zone, &instance.reference.id);
        if !self.client.settle(zone, name).await {
            return Ok(());
        }
        let read = self.client.get_instance(zone, name).await?;
        access_config::ensure_external_v4(&self.client, zone, &read).await;
        Ok(())
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        let target = address.ip;
        lock(&self.addresses).remove(&address.id);
        lock(&self.instances).remove(&instance.id);
        let client = self.client.clone();
        let (zone, name) = (instance.zone.clone(), instance.id.clone());
        let (region, family, address_name) =
            (self.region.clone(), self.pool.family, address.id.clone());
        let task = tokio::spawn(async move {
            // The sweep knows a vanished owner's instance but not its zone: the address's
            // `users` name it (no user on that instance: nothing to detach).
            let zone = if zone.is_empty() {
                match client.get_address(&region, &address_name).await {
                    Ok(record) => record
                        .users
                        .iter()
                        .find(|u| instance_of_user(u) == Some(name.as_str()))
                        .and_then(|u| zone_of_user(u))
                        .map(String::from),
                    Err(e) if e.class == ErrorClass::NotFound => return Ok(()),
                    Err(e) => return Err(e),
                }
            } else {
                Some(zone)
            };
            if let Some(zone) = &zone {
                // Best effort: a detach that runs while an earlier write is still
                // landing would plan from a stale read.
                client.settle(zone, &name).await;
            }
            let read = match &zone {
                Some(zone) => match client.get_instance(zone, &name).await {
                    Ok(read) => Some((zone.clone(), read)),
                    // The instance is gone: GCE freed the address with it.
                    Err(e) if e.class == ErrorClass::NotFound => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let detached = match read {
                Some((zone, read)) => match family {
                    IpFamily::V4 => access_config::detach(&client, &zone, &read, target).await?,
                    IpFamily::V6 => ipv6::detach(&client, &zone, read, target).await?,
                },
                None => false,
            };
            debug!(instance = %name, address = %target, detached, "detach");
            let record = match client.get_address(&region, &address_name).await {
                Ok(record) => record,
                Err(e) if e.class == ErrorClass::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            // Clear the ownership record only if it names this instance and no other
            // instance holds the address now.
            let held_elsewhere = record
                .users
                .iter()
                .filter_map(|u| instance_of_user(u))
                .any(|user| user != name);
            if labels::owned_by_instance(&record.labels, &name) && !held_elsewhere {
                set_owner(&client, &region, record, None).await?;
            } else if !detached {
                warn!(instance = %name, address = %target, "address not on this instance and owned by another; left alone");
            }
            Ok(())
        });
        joined(task, method::DELETE_ACCESS_CONFIG).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_project_and_region() {
        let settings = GcpSettings {
            project: String::new(),
            region: "r".into(),
            endpoint: None,
            token: TokenSource::Static("t".into()),
            pool: PoolSpec::default(),
        };
        assert_eq!(
            GcpProvider::new(settings.clone()).err().unwrap().class,
            ErrorClass::InvalidInput
        );
        let no_region = GcpSettings {
            project: "p".into(),
            region: " ".into(),
            ..settings
        };
        assert!(GcpProvider::new(no_region)
            .err()
            .unwrap()
            .message
            .contains("REGION"));
    }
}
