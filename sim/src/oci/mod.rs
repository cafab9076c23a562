//! An OCI Core Services (API 20160918) simulator on loopback: the subset pinip uses
//! and Oracle's `oci` CLI/SDK (its conformance clients) call — `ListPublicIps`,
//! `GetPublicIp`, `UpdatePublicIp`, `CreatePublicIp`, `DeletePublicIp`,
//! `GetPublicIpByPrivateIpId`, `GetPublicIpByIpAddress`, `ListVnicAttachments`,
//! `GetVnic`, `ListPrivateIps`, `GetPrivateIp`, `GetInstance` — with signed requests
//! verified ([`signature`]), the asynchronous public-IP lifecycle ([`state`]), paging,
//! ETags, the API's error bodies, injected latency and failures ([`Faults`]), request
//! counters and a list of invariant breaches (`violations`).
//!
//! Instance principals too: each instance's metadata service ([`metadata`]: its
//! certificate from a test PKI made at start, [`identity`]) and the auth service's
//! federation endpoint ([`federation`]), and an OKE cluster's proxymux for workload
//! identity ([`proxymux`]), whose `ST$` session tokens Core Services accepts.
//!
//! Tests and `pinip simulate` seed the world through [`OciSim`] (compartments,
//! instances with a primary VNIC and private IP, reserved public IPs with tags) while
//! agents and the CLI use HTTP at [`OciSim::url`].

mod errors;
mod faults;
mod federation;
mod identity;
mod metadata;
mod model;
mod observe;
mod proxymux;
mod routes;
mod signature;
mod state;
mod x509;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

pub use errors::ApiError;
pub use faults::{Failure, Faults};
pub use federation::DEFAULT_TOKEN_LIFETIME;
pub use identity::TEST_INSTANCE_KEY_PEM;
pub use model::Lifetime;
pub use observe::{PublicIpSnapshot, RequestCounts};
pub use proxymux::ProxymuxEndpoint;
pub use routes::route;
pub use signature::{parse_authorization, KeyRing};

use faults::FaultState;
use model::{PipState, SimInstance, SimPrivateIp, SimPublicIp, SimVnic};
use state::State;

/// Every operation the simulator serves, as counted.
pub const OPERATIONS: &[&str] = &[
    "ListPublicIps",
    "GetPublicIp",
    "UpdatePublicIp",
    "CreatePublicIp",
    "DeletePublicIp",
    "GetPublicIpByPrivateIpId",
    "GetPublicIpByIpAddress",
    "ListVnicAttachments",
    "GetVnic",
    "ListPrivateIps",
    "GetPrivateIp",
    "GetInstance",
];

/// The operations that change state.
pub const WRITE_OPERATIONS: &[&str] = &["UpdatePublicIp", "CreatePublicIp", "DeletePublicIp"];

/// A 2048-bit RSA API key made for the simulator and nothing else (it guards no real
/// account). It is uploaded at start, so `pinip simulate` and tests sign for real.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("test_api_key.pem");
pub const TEST_PUBLIC_KEY_PEM: &str = include_str!("test_api_key.pub.pem");
/// `openssl pkey -pubout -outform DER | openssl md5 -c` of the test key: OCI's fingerprint.
pub const TEST_KEY_FINGERPRINT: &str = "0a:ed:98:fe:c8:25:cd:34:75:4e:6c:60:d6:d9:a4:e7";
pub const TEST_USER: &str = "ocid1.user.oc1..aaaaaaaapinipsimuser";

/// A seeded instance: what pinip needs to find and what tests assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededInstance {
    pub instance_id: String,
    pub vnic_id: String,
    pub private_ip_id: String,
    pub private_ip: Ipv4Addr,
    pub availability_domain: String,
    pub compartment: String,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Mutex<FaultState>,
    counts: Mutex<RequestCounts>,
    keys: Mutex<KeyRing>,
    principals: Mutex<federation::Principals>,
    cluster: Mutex<proxymux::Cluster>,
    last_key: Mutex<Option<String>>,
    requests: AtomicU64,
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

    fn count(&self, operation: Option<&str>) {
        let mut counts = lock(&self.counts);
        match operation {
            None => counts.total += 1,
            Some(o) => *counts.by_operation.entry(o.to_string()).or_default() += 1,
        }
    }

    fn count_injected(&self) {
        lock(&self.counts).injected += 1;
    }

    fn count_unauthenticated(&self) {
        lock(&self.counts).unauthenticated += 1;
    }

    /// A unique `opc-request-id`; the client's own id, when sent, comes first.
    fn request_id(&self, client: Option<&str>) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let ours = format!(
            "{:032X}",
            (n as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
        );
        match client.filter(|c| !c.is_empty()) {
            Some(c) => format!("{c}/{ours}"),
            None => ours,
        }
    }
}

fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Handle to a running OCI simulator. Cheap to clone.
#[derive(Clone)]
pub struct OciSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for OciSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciSim").field("addr", &self.addr).finish()
    }
}

impl OciSim {
    /// Binds 127.0.0.1 on a free port and serves region `us-ashburn-1` until
    /// [`OciSim::shutdown`]. The test API key ([`OciSim::test_key_id`]) is uploaded.
    pub async fn start() -> anyhow::Result<OciSim> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = State::new("us-ashburn-1", "iad");
        let mut keys = KeyRing::default();
        keys.add_pem(
            &format!("{}/{TEST_USER}/{TEST_KEY_FINGERPRINT}", state.tenancy),
            TEST_PUBLIC_KEY_PEM,
        )
        .map_err(anyhow::Error::msg)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults: Mutex::new(FaultState::default()),
            counts: Mutex::new(RequestCounts {
                by_operation: OPERATIONS.iter().map(|o| (o.to_string(), 0)).collect(),
                ..RequestCounts::default()
            }),
            keys: Mutex::new(keys),
            principals: Mutex::new(federation::Principals::new().map_err(anyhow::Error::msg)?),
            cluster: Mutex::new(proxymux::Cluster::default()),
            last_key: Mutex::new(None),
            requests: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        });
        let app = routes::router(shared.clone());
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "OCI simulator stopped serving");
            }
        });
        Ok(OciSim { shared, addr })
    }

    /// `http://127.0.0.1:PORT`: the CLI's `--endpoint` and pinip's `OCI_ENDPOINT`
    /// (the API paths are under `/20160918/`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn region(&self) -> String {
        self.shared.state().region.clone()
    }

    pub fn tenancy(&self) -> String {
        self.shared.state().tenancy.clone()
    }

    /// The keyId of the built-in test key: `<tenancy>/<user>/<fingerprint>`.
    pub fn test_key_id(&self) -> String {
        format!("{}/{TEST_USER}/{TEST_KEY_FINGERPRINT}", self.tenancy())
    }

    /// Upload another API key (PEM public key) under `key_id`.
    pub fn add_api_key(&self, key_id: &str, public_key_pem: &str) -> Result<(), String> {
        lock(&self.shared.keys).add_pem(key_id, public_key_pem)
    }

    /// Delete an API key: requests it signs get 401 from now on.
    pub fn remove_api_key(&self, key_id: &str) {
        lock(&self.shared.keys).remove(key_id);
    }

    /// The keyId of the last request whose signature verified.
    pub fn last_key_id(&self) -> Option<String> {
        lock(&self.shared.last_key).clone()
    }

    pub fn add_compartment(&self) -> String {
        let mut state = self.shared.state();
        let id = state.ocid("compartment");
        state.compartments.insert(id.clone());
        id
    }

    /// A tag namespace defined tags may use.
    pub fn add_tag_namespace(&self, namespace: &str) {
        self.shared
            .state()
            .tag_namespaces
            .insert(namespace.to_string());
    }

    /// Reserve a public IP (AVAILABLE) with free-form tags and defined tags
    /// (`(namespace, key, value)`; their namespaces are created). Returns its OCID.
    pub fn add_reserved_ip(
        &self,
        compartment: &str,
        ip: Ipv4Addr,
        freeform: &[(&str, &str)],
        defined: &[(&str, &str, &str)],
    ) -> String {
        let mut state = self.shared.state();
        let id = state.ocid("publicip");
        let mut defined_tags: model::DefinedTags = BTreeMap::new();
        for (ns, key, value) in defined {
            state.tag_namespaces.insert(ns.to_string());
            defined_tags
                .entry(ns.to_string())
                .or_default()
                .insert(key.to_string(), (*value).into());
        }
        state.compartments.insert(compartment.to_string());
        state.public_ips.insert(
            id.clone(),
            SimPublicIp {
                id: id.clone(),
                ip,
                lifetime: Lifetime::Reserved,
                compartment: compartment.to_string(),
                display_name: format!("reserved-{ip}"),
                freeform_tags: freeform
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                defined_tags,
                private_ip: None,
                availability_domain: None,
                state: PipState::Available,
                generation: 1,
                time_created: now_timestamp(),
            },
        );
        id
    }

    /// Launch an instance with a primary VNIC (nic 0) and its primary private IP,
    /// in availability domain 1, with an ephemeral public IP if `ephemeral`.
    pub fn add_instance(
        &self,
        compartment: &str,
        name: &str,
        managed: bool,
        ephemeral: bool,
    ) -> SeededInstance {
        let id = self.shared.state().ocid("instance");
        self.add_instance_as(&id, compartment, name, managed, ephemeral)
    }

    /// [`OciSim::add_instance`] with the instance OCID chosen by the caller (a simulated
    /// cluster names its nodes' instances before they exist, as OKE's providerIDs).
    pub fn add_instance_as(
        &self,
        instance_id: &str,
        compartment: &str,
        name: &str,
        managed: bool,
        ephemeral: bool,
    ) -> SeededInstance {
        let mut state = self.shared.state();
        state.compartments.insert(compartment.to_string());
        let (instance_id, vnic_id, attachment_id, private_ip_id, subnet_id) = (
            instance_id.to_string(),
            state.ocid("vnic"),
            state.ocid("vnicattachment"),
            state.ocid("privateip"),
            "ocid1.subnet.oc1.iad.aaaaaaaapinipsimsubnet".to_string(),
        );
        let n = state.instances.len() as u32 + 2;
        let private_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + n);
        let ad = "Uocm:US-ASHBURN-AD-1".to_string();
        let created = now_timestamp();
        state.instances.insert(
            instance_id.clone(),
            SimInstance {
                id: instance_id.clone(),
                display_name: name.to_string(),
                compartment: compartment.to_string(),
                availability_domain: ad.clone(),
                managed,
                terminated: false,
                generation: 1,
                time_created: created.clone(),
            },
        );
        state.vnics.insert(
            vnic_id.clone(),
            SimVnic {
                id: vnic_id.clone(),
                attachment_id,
                instance_id: instance_id.clone(),
                compartment: compartment.to_string(),
                availability_domain: ad.clone(),
                subnet_id: subnet_id.clone(),
                is_primary: true,
                nic_index: 0,
                mac: format!("02:00:17:00:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff),
                hostname_label: name.to_string(),
                attached: true,
                time_created: created.clone(),
            },
        );
        state.private_ips.insert(
            private_ip_id.clone(),
            SimPrivateIp {
                id: private_ip_id.clone(),
                vnic_id: vnic_id.clone(),
                subnet_id,
                compartment: compartment.to_string(),
                availability_domain: ad.clone(),
                ip: private_ip,
                is_primary: true,
                hostname_label: name.to_string(),
                time_created: created.clone(),
            },
        );
        if ephemeral {
            let id = state.ocid("publicip");
            let ip = state.next_ephemeral_ip();
            state.public_ips.insert(
                id.clone(),
                SimPublicIp {
                    id,
                    ip,
                    lifetime: Lifetime::Ephemeral,
                    compartment: compartment.to_string(),
                    display_name: format!("ephemeral-{ip}"),
                    freeform_tags: BTreeMap::new(),
                    defined_tags: BTreeMap::new(),
                    private_ip: Some(private_ip_id.clone()),
                    availability_domain: Some(ad.clone()),
                    state: PipState::Assigned,
                    generation: 1,
                    time_created: created,
                },
            );
        }
        SeededInstance {
            instance_id,
            vnic_id,
            private_ip_id,
            private_ip,
            availability_domain: ad,
            compartment: compartment.to_string(),
        }
    }

    /// Put a reserved public IP on an instance's primary private IP as a person would
    /// (ASSIGNED at once; whatever public IP was there is removed, an ephemeral one deleted).
    pub fn assign_by_hand(&self, public_ip: &str, instance: &str) {
        let mut state = self.shared.state();
        let Some(target) = state.primary_private_ip(instance).map(|p| p.id.clone()) else {
            return;
        };
        for p in state.public_ips.values_mut() {
            if p.private_ip.as_deref() == Some(target.as_str()) && p.state.occupies() {
                p.private_ip = None;
                p.state = match p.lifetime {
                    Lifetime::Ephemeral => PipState::Terminated,
                    Lifetime::Reserved => PipState::Available,
                };
                p.generation += 1;
            }
        }
        if let Some(p) = state.public_ips.get_mut(public_ip) {
            p.private_ip = Some(target);
            p.state = PipState::Assigned;
            p.generation += 1;
        }
    }

    /// Unassign a public IP as a person would (AVAILABLE at once, tags kept).
    pub fn unassign_by_hand(&self, public_ip: &str) {
        if let Some(p) = self.shared.state().public_ips.get_mut(public_ip) {
            p.private_ip = None;
            p.state = PipState::Available;
            p.generation += 1;
        }
    }

    /// Terminate an instance: its private IPs go, reserved public IPs return to
    /// AVAILABLE (tags kept), ephemeral ones die.
    pub fn terminate_instance(&self, instance: &str) {
        self.shared.state().terminate_instance(instance);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults().set(faults);
    }

    /// Random failures only (chaos bursts): latency, transition time and the generator
    /// stay as they are.
    pub fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        let mut faults = self.shared.faults();
        faults.faults.error_rate = error_rate;
        faults.faults.throttle_rate = throttle_rate;
    }

    /// The next call of `operation` (e.g. `UpdatePublicIp`) fails this way.
    pub fn fail_next(&self, operation: &str, failure: Failure) {
        self.shared.faults().script(operation, failure);
    }

    /// Every call of `operation` gets 404 `NotAuthorizedOrNotFound` (a missing policy
    /// statement) until [`OciSim::allow`].
    pub fn deny(&self, operation: &str) {
        self.shared.faults().denied.insert(operation.to_string());
    }

    pub fn allow(&self, operation: &str) {
        self.shared.faults().denied.remove(operation);
    }

    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}
