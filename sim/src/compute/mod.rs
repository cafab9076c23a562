//! A Compute Engine v1 REST simulator on loopback: the subset pinip (and gcloud, its
//! conformance client) uses — regional `addresses` list/aggregatedList/get/setLabels
//! with the `filter` grammar, `instances` get/addAccessConfig/deleteAccessConfig/
//! updateAccessConfig/updateNetworkInterface, and `zoneOperations`/`regionOperations`
//! get and `wait` — with base64 fingerprints (412 when stale), address `status`/`users`
//! derived from what the instances hold, request counters, injected latency and
//! failures, the published per-minute rate quotas ([`ComputeRateLimits`]), and a list
//! of invariant breaches (`violations`).
//!
//! Tests and `pinip simulate` drive it directly through [`ComputeSim`] (reserve
//! addresses, create instances, attach by hand, terminate) while agents and gcloud use
//! HTTP. Paths are those of the discovery document under `/compute/v1/`.

mod errors;
mod faults;
mod filter;
mod fingerprint;
mod limits;
mod listing;
mod model;
mod nic_update;
mod operations;
mod params;
mod routes;
mod state;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use errors::ApiError;
pub use faults::{Failure, Faults, NOT_READY, QUOTA_EXCEEDED};
pub use filter::Filter;
pub use fingerprint::is_valid as is_valid_fingerprint;
pub use limits::{ComputeRateLimits, QuotaGroup, Window, WindowTally};
pub use model::region_of_zone;
pub use routes::permission_of;

use faults::FaultState;
use limits::LimitState;
use model::Links;
use operations::Operations;
use state::State;

/// Every method the simulator serves, as counted.
pub const METHODS: &[&str] = &[
    "addresses.list",
    "addresses.aggregatedList",
    "addresses.get",
    "addresses.setLabels",
    "instances.get",
    "instances.addAccessConfig",
    "instances.deleteAccessConfig",
    "instances.updateAccessConfig",
    "instances.updateNetworkInterface",
    "zoneOperations.get",
    "zoneOperations.wait",
    "regionOperations.get",
    "regionOperations.wait",
];

/// The methods that change state.
pub const WRITE_METHODS: &[&str] = &[
    "addresses.setLabels",
    "instances.addAccessConfig",
    "instances.deleteAccessConfig",
    "instances.updateAccessConfig",
    "instances.updateNetworkInterface",
];

/// Requests served so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every HTTP request, unknown paths included.
    pub total: u64,
    /// By API method (`instances.addAccessConfig`), every method of [`METHODS`] listed.
    pub by_method: BTreeMap<String, u64>,
    /// Requests answered with an injected fault (random, scripted or denied).
    pub injected: u64,
}

impl RequestCounts {
    pub fn method(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }

    /// Calls that changed (or tried to change) state.
    pub fn writes(&self) -> u64 {
        WRITE_METHODS.iter().map(|m| self.method(m)).sum()
    }
}

/// One reserved address as the API would show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSnapshot {
    pub name: String,
    pub region: String,
    pub ip: IpAddr,
    /// RESERVED or IN_USE.
    pub status: String,
    /// Names of the instances using it.
    pub users: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Locked before `state` when both are needed.
    operations: Mutex<Operations>,
    faults: Mutex<FaultState>,
    limits: Mutex<LimitState>,
    counts: Mutex<RequestCounts>,
    /// The bearer token of the last authenticated request (any non-empty one is accepted).
    last_token: Mutex<Option<String>>,
    links: Links,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn faults(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.faults)
    }

    fn count_injected(&self) {
        lock(&self.counts).injected += 1;
    }

    fn count(&self, method: Option<&str>) {
        let mut counts = lock(&self.counts);
        match method {
            None => counts.total += 1,
            Some(m) => *counts.by_method.entry(m.to_string()).or_default() += 1,
        }
    }
}

fn owned(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Handle to a running Compute simulator. Cheap to clone.
#[derive(Clone)]
pub struct ComputeSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for ComputeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeSim")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ComputeSim {
    /// Binds 127.0.0.1 on a free port and serves `project` until [`ComputeSim::shutdown`].
    pub async fn start(project: &str) -> anyhow::Result<ComputeSim> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            operations: Mutex::new(Operations::default()),
            faults: Mutex::new(FaultState::default()),
            limits: Mutex::new(LimitState::default()),
            counts: Mutex::new(RequestCounts {
                total: 0,
                by_method: METHODS.iter().map(|m| (m.to_string(), 0)).collect(),
                injected: 0,
            }),
            last_token: Mutex::new(None),
            links: Links {
                base: format!("http://{addr}/compute/v1/"),
                project: project.to_string(),
            },
            shutdown: CancellationToken::new(),
        });
        let app = routes::router(shared.clone());
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "compute simulator stopped serving");
            }
        });
        tracing::debug!(%addr, "compute simulator listening");
        Ok(ComputeSim { shared, addr })
    }

    /// `http://127.0.0.1:PORT/compute/v1/`: gcloud's `api_endpoint_overrides/compute`
    /// and pinip's `GCP_COMPUTE_ENDPOINT`.
    pub fn url(&self) -> String {
        self.shared.links.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn project(&self) -> &str {
        &self.shared.links.project
    }

    /// Reserve a regional external address (IPv4, or an IPv6 /96 for VMs from the
    /// region's `default` subnetwork).
    pub fn add_address(&self, region: &str, name: &str, ip: IpAddr, labels: &[(&str, &str)]) {
        self.shared
            .state()
            .add_address(region, name, ip, owned(labels), now_timestamp());
    }

    /// Reserve an external IPv6 /96 with this endpoint type (`VM`, `NETLB`) from this
    /// subnetwork of `region`.
    pub fn add_ipv6_address(
        &self,
        region: &str,
        name: &str,
        ip: IpAddr,
        labels: &[(&str, &str)],
        endpoint_type: &str,
        subnetwork: &str,
    ) {
        let mut state = self.shared.state();
        state.add_address(region, name, ip, owned(labels), now_timestamp());
        if let Some(a) = state
            .addresses
            .get_mut(&(region.to_string(), name.to_string()))
            .map(Arc::make_mut)
        {
            a.endpoint_type = Some(endpoint_type.to_string());
            a.subnetwork = Some(subnetwork.to_string());
        }
    }

    /// Create a VM whose `nic0` (on the region's `default` subnetwork) has ephemeral
    /// external IPv4 and IPv6 addresses.
    pub fn add_instance(&self, zone: &str, name: &str, managed: bool) {
        self.add_instance_on(zone, name, managed, "default");
    }

    /// Create a VM whose `nic0` is on this (dual-stack) subnetwork of its region.
    pub fn add_instance_on(&self, zone: &str, name: &str, managed: bool, subnetwork: &str) {
        self.shared
            .state()
            .add_instance(zone, name, managed, subnetwork, now_timestamp());
    }

    /// Put a reserved address on an instance as a person would (no checks).
    pub fn attach_by_hand(&self, address: &str, instance: &str) {
        let mut state = self.shared.state();
        let Some(ip) = state
            .addresses
            .values()
            .find(|a| a.name == address)
            .map(|a| (a.ip, a.tier.clone()))
        else {
            return;
        };
        if let Some(i) = state.instances.get_mut(instance).map(Arc::make_mut) {
            let slot = if ip.0.is_ipv6() {
                &mut i.nic.ipv6_access_config
            } else {
                &mut i.nic.access_config
            };
            let name = slot.as_ref().map(|ac| ac.name.clone()).unwrap_or_else(|| {
                if ip.0.is_ipv6() {
                    "external-ipv6"
                } else {
                    "external-nat"
                }
                .into()
            });
            *slot = Some(model::SimAccessConfig {
                name,
                ip: ip.0,
                tier: ip.1,
                prefix_length: ip.0.is_ipv6().then_some(96),
                extra: Default::default(),
            });
            i.nic.generation += 1;
        }
    }

    /// Take a reserved address off whatever holds it (the instance keeps no external IP
    /// of that family, as after `delete-access-config`).
    pub fn detach_by_hand(&self, address: &str) {
        let mut state = self.shared.state();
        let Some(ip) = state
            .addresses
            .values()
            .find(|a| a.name == address)
            .map(|a| a.ip)
        else {
            return;
        };
        for i in state.instances.values_mut() {
            if !i.external_ips().contains(&ip) {
                continue;
            }
            let i = Arc::make_mut(i);
            for slot in [&mut i.nic.access_config, &mut i.nic.ipv6_access_config] {
                if slot.as_ref().is_some_and(|ac| ac.ip == ip) {
                    *slot = None;
                    i.nic.generation += 1;
                }
            }
        }
    }

    /// Set one label on an address as a person would (its label fingerprint changes).
    pub fn relabel_by_hand(&self, address: &str, key: &str, value: &str) {
        let mut state = self.shared.state();
        if let Some(a) = state.addresses.values_mut().find(|a| a.name == address) {
            let a = Arc::make_mut(a);
            a.labels.insert(key.to_string(), value.to_string());
            a.label_generation += 1;
        }
    }

    /// Delete an instance: its addresses return to RESERVED, their labels stay.
    pub fn terminate_instance(&self, name: &str) {
        self.shared.state().instances.remove(name);
    }

    /// The faults in force (to change one knob and set them back).
    pub fn faults(&self) -> Faults {
        self.shared.faults().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults().set(faults);
    }

    /// The next call of `method` (e.g. `instances.addAccessConfig`) fails this way.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.shared.faults().script(method, failure);
    }

    /// Every call of `method` gets 403 naming its permission, until [`ComputeSim::allow`].
    pub fn deny(&self, method: &str) {
        self.shared.faults().denied.insert(method.to_string());
    }

    pub fn allow(&self, method: &str) {
        self.shared.faults().denied.remove(method);
    }

    pub fn addresses(&self) -> Vec<AddressSnapshot> {
        let state = self.shared.state();
        let holders = state.holders();
        state
            .addresses
            .values()
            .map(|a| {
                let users = holders.get(&a.ip).cloned().unwrap_or_default();
                AddressSnapshot {
                    name: a.name.clone(),
                    region: a.region.clone(),
                    ip: a.ip,
                    status: if users.is_empty() {
                        "RESERVED"
                    } else {
                        "IN_USE"
                    }
                    .into(),
                    users,
                    labels: a.labels.clone(),
                }
            })
            .collect()
    }

    /// The instance as `instances.get` returns it.
    pub fn instance(&self, name: &str) -> Option<Value> {
        let state = self.shared.state();
        state
            .instances
            .get(name)
            .map(|i| model::render_instance(i, &self.shared.links))
    }

    /// Every external IP on the instance (static or ephemeral, IPv4 first).
    pub fn external_ips(&self, instance: &str) -> Vec<IpAddr> {
        self.shared
            .state()
            .instances
            .get(instance)
            .map(|i| i.external_ips())
            .unwrap_or_default()
    }

    /// The reserved addresses of every instance that holds one, in one look.
    pub fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        let state = self.shared.state();
        let reserved: std::collections::HashSet<IpAddr> =
            state.addresses.values().map(|a| a.ip).collect();
        let held = |i: &model::SimInstance| -> Vec<IpAddr> {
            let ips = i.external_ips().into_iter();
            ips.filter(|ip| reserved.contains(ip)).collect()
        };
        let all = state
            .instances
            .iter()
            .map(|(name, i)| (name.clone(), held(i)));
        all.filter(|(_, ips)| !ips.is_empty()).collect()
    }

    /// The reserved addresses on the instance.
    pub fn attached_to(&self, instance: &str) -> Vec<IpAddr> {
        let state = self.shared.state();
        let Some(i) = state.instances.get(instance) else {
            return Vec::new();
        };
        i.external_ips()
            .into_iter()
            .filter(|ip| state.addresses.values().any(|a| a.ip == *ip))
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.state().violations.clone()
    }

    /// Managed instances whose NIC has no external IPv6 right now (an IPv6 swap cut
    /// between its two steps, a failed restore). Point in time, like the IPv4 one.
    pub fn managed_without_external_ipv6(&self) -> Vec<String> {
        self.shared
            .state()
            .instances
            .values()
            .filter(|i| i.managed && i.nic.ipv6_access_config.is_none())
            .map(|i| i.name.clone())
            .collect()
    }

    /// The NIC's stack type (`IPV4_ONLY`, `IPV4_IPV6`).
    pub fn stack_type(&self, instance: &str) -> Option<String> {
        self.shared
            .state()
            .instances
            .get(instance)
            .map(|i| i.nic.stack_type.clone())
    }

    /// Managed instances that have no external IPv4 right now (a swap cut in half, a
    /// failed restore). Point in time: meaningful once no swap is in flight.
    pub fn managed_without_external_ipv4(&self) -> Vec<String> {
        self.shared
            .state()
            .instances
            .values()
            .filter(|i| i.managed && i.nic.access_config.is_none())
            .map(|i| i.name.clone())
            .collect()
    }

    /// Addresses held by more than one instance (the API never allows it).
    pub fn duplicates(&self) -> usize {
        self.shared
            .state()
            .holders()
            .values()
            .filter(|users| users.len() > 1)
            .count()
    }

    /// Operations still RUNNING (their change not applied yet).
    pub fn running_operations(&self) -> usize {
        lock(&self.shared.operations).running()
    }

    /// The bearer token the last request carried.
    pub fn last_token(&self) -> Option<String> {
        lock(&self.shared.last_token).clone()
    }

    pub fn request_counts(&self) -> RequestCounts {
        lock(&self.shared.counts).clone()
    }

    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}
