//! A Kubernetes API server simulator on loopback: the real REST paths and
//! JSON for the subset pinip uses (Nodes, Leases, Events, Namespaces), so
//! the real kube-rs client and the real kubectl can talk to it.
//!
//! Tests and `pinip simulate` drive the cluster directly through
//! [`KubeSim`] (add/modify/delete nodes) while the agent uses HTTP.

mod counts;
mod discovery;
mod events;
mod fanout;
mod faults;
mod field;
mod kind;
mod kubeconfig;
mod listing;
mod managed;
mod meta;
mod openapi;
mod patch;
mod protobuf;
mod rbac;
mod request;
mod restart;
mod review;
mod routes;
mod schema;
mod selector;
mod ssa;
mod status;
mod store;
mod table;
mod tls;
mod traffic;
mod validate;
mod watch;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use counts::RequestCounts;
pub use faults::Faults;
pub use kind::{Kind, ResourceDef};
pub use kubeconfig::CONTEXT;
pub use rbac::{Denial, Rbac, RbacError, UserInfo};
pub use restart::Restart;
pub use status::ApiError;
pub use tls::TlsEndpoint;
pub use traffic::ClientTraffic;

use faults::{Fault, FaultState};
use store::Store;

/// The bearer token written into kubeconfigs by [`KubeSim::write_kubeconfig`].
pub const DEFAULT_TOKEN: &str = "pinip-sim";

/// How often watches that asked for bookmarks get one, by default.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

/// Namespaces every real cluster has.
/// Namespaces every real cluster has, and the one `deploy/base/namespace.yaml` creates
/// (the agent's `LEASE_NAMESPACE` in the manifests and in `pinip simulate`).
pub const SYSTEM_NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "pinip-system",
];

/// Server state shared by the handle and the HTTP handlers.
pub(crate) struct Shared {
    store: Arc<Store>,
    faults: Mutex<FaultState>,
    counts: Mutex<RequestCounts>,
    bookmark_interval: Mutex<Duration>,
    /// RBAC, once [`KubeSim::enforce_rbac`] turned it on.
    rbac: Mutex<Option<rbac::Enforcement>>,
    shutdown: CancellationToken,
    /// The restart fault: phases, listener generations, the count.
    restarts: restart::Restarts,
    /// Requests and response bytes per client.
    traffic: traffic::Traffic,
    /// `127.0.0.1:PORT`, as advertised in discovery.
    address: String,
    /// The CA and serving certificate, made when first needed.
    tls: std::sync::OnceLock<crate::https::Serving>,
}

/// Locks a mutex, shrugging off poisoning: counters and dice stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn counts(&self) -> MutexGuard<'_, RequestCounts> {
        lock(&self.counts)
    }

    /// The latency to add and the fault (if any) for one request.
    fn roll_faults(&self, writes_existing: bool, writes: bool) -> (Duration, Option<Fault>) {
        let mut f = lock(&self.faults);
        let latency = f.faults.latency;
        (latency, f.roll(writes_existing, writes))
    }

    fn bookmark_interval(&self) -> Duration {
        *lock(&self.bookmark_interval)
    }
}

/// Serves until shutdown; a restart closes the listener (and with it every
/// connection and watch), waits the down time and binds the same port again.
async fn serve_loop(shared: Arc<Shared>, listener: tokio::net::TcpListener, addr: SocketAddr) {
    let mut listener = Some(listener);
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match rebind(addr, &shared.shutdown).await {
                Some(l) => l,
                None => return,
            },
        };
        shared.restarts.back(&shared.shutdown);
        let generation = shared.restarts.generation();
        let app = routes::router(shared.clone());
        let served = axum::serve(l, app)
            .with_graceful_shutdown(generation.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "kube simulator stopped serving");
        }
        if shared.shutdown.is_cancelled() {
            return;
        }
        let down = shared.restarts.take_down().unwrap_or_default();
        tracing::debug!(?down, "kube simulator restarting");
        tokio::select! {
            _ = tokio::time::sleep(down) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
}

/// Binds the port of a restarting server again (SO_REUSEADDR is set by tokio on Unix;
/// a port still held elsewhere is retried briefly).
async fn rebind(addr: SocketAddr, shutdown: &CancellationToken) -> Option<tokio::net::TcpListener> {
    for _ in 0..200 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => tracing::debug!(error = %e, "kube simulator: port not free yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
    tracing::warn!(%addr, "kube simulator could not bind its port again");
    None
}

/// Handle to a running simulated API server. Cheap to clone.
#[derive(Clone)]
pub struct KubeSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for KubeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSim").field("addr", &self.addr).finish()
    }
}

impl KubeSim {
    /// Binds 127.0.0.1 on a free port and serves until [`KubeSim::shutdown`].
    pub async fn start() -> anyhow::Result<KubeSim> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            store: Arc::new(Store::new(seed)),
            faults: Mutex::new(FaultState::default()),
            counts: Mutex::new(RequestCounts::default()),
            bookmark_interval: Mutex::new(DEFAULT_BOOKMARK_INTERVAL),
            rbac: Mutex::new(None),
            restarts: restart::Restarts::new(&shutdown),
            traffic: traffic::Traffic::default(),
            shutdown,
            address: addr.to_string(),
            tls: std::sync::OnceLock::new(),
        });
        let sim = KubeSim { shared, addr };
        for ns in SYSTEM_NAMESPACES {
            sim.upsert_object(json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns}, "status": {"phase": "Active"},
            }))?;
        }
        tokio::spawn(serve_loop(sim.shared.clone(), listener, addr));
        tracing::debug!(%addr, "kube simulator listening");
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes a kubeconfig for this server: context [`CONTEXT`] (current),
    /// bearer token [`DEFAULT_TOKEN`], namespace `default`.
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        kubeconfig::write(path, &self.url(), DEFAULT_TOKEN, None)
    }

    /// Like [`KubeSim::write_kubeconfig`] with another bearer token (to act
    /// as a different identity).
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> anyhow::Result<()> {
        kubeconfig::write(path, &self.url(), token, None)
    }

    /// Adds (or replaces) a Ready node, with the labels a kubelet sets
    /// (`kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch`)
    /// unless `labels` overrides them. Returns the stored node.
    pub fn add_node(
        &self,
        name: &str,
        provider_id: Option<&str>,
        labels: BTreeMap<String, String>,
        taints: Vec<Value>,
    ) -> Value {
        let mut all_labels: BTreeMap<String, String> = [
            ("kubernetes.io/hostname", name),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        all_labels.extend(labels);
        let mut spec = json!({});
        if let Some(id) = provider_id {
            spec["providerID"] = json!(id);
        }
        if !taints.is_empty() {
            spec["taints"] = json!(taints);
        }
        let now = meta::now();
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": all_labels},
            "spec": spec,
            "status": {
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now, "lastTransitionTime": now,
                }],
                "addresses": [{"type": "Hostname", "address": name}],
                "nodeInfo": {
                    "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://1.7.0",
                    "kernelVersion": "6.1.0", "kubeProxyVersion": "", "kubeletVersion": "v1.32.0",
                    "machineID": "", "operatingSystem": "linux", "osImage": "pinip-sim",
                    "systemUUID": "",
                },
            },
        });
        // A node object built here always has a kind and a name.
        self.upsert_object(node).unwrap_or_default()
    }

    /// Creates or replaces any supported object (by `apiVersion`/`kind`;
    /// namespaced objects default to namespace `default`). Replacing keeps
    /// uid and creationTimestamp and emits MODIFIED.
    pub fn upsert_object(&self, obj: Value) -> Result<Value, ApiError> {
        let (api_version, kind_name) = (
            obj.get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            obj.get("kind").and_then(Value::as_str).unwrap_or_default(),
        );
        let kind = Kind::from_type_meta(api_version, kind_name).ok_or_else(|| {
            ApiError::BadRequest(format!("unsupported object type {api_version}/{kind_name}"))
        })?;
        let name = meta::name(&obj)
            .ok_or_else(|| {
                ApiError::invalid(
                    kind.def(),
                    "",
                    vec![field::FieldError::required("metadata.name", "")],
                )
            })?
            .to_string();
        let ns = kind
            .def()
            .namespaced
            .then(|| meta::namespace(&obj).unwrap_or("default").to_string());
        let obj = events::stored(kind, obj);
        let store = &self.shared.store;
        let saved = if store.get(kind, ns.as_deref(), &name).is_some() {
            store.update(kind, ns.as_deref(), &name, |_| Ok(obj))?
        } else {
            store.create(kind, ns.as_deref(), obj)?
        };
        Ok(events::view(kind, saved))
    }

    /// Edits a stored object in place (bumps resourceVersion, emits
    /// MODIFIED). Returns the new object, or `None` if it does not exist.
    pub fn update_object(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        self.shared
            .store
            .update(kind, namespace, name, |cur| {
                let mut v = events::view(kind, cur.clone());
                f(&mut v);
                Ok(events::stored(kind, v))
            })
            .ok()
            .map(|v| events::view(kind, v))
    }

    /// [`KubeSim::update_object`] for a node.
    pub fn update_node(&self, name: &str, f: impl FnOnce(&mut Value)) -> Option<Value> {
        self.update_object(Kind::Node, None, name, f)
    }

    /// Deletes an object (emits DELETED). False if it did not exist.
    pub fn delete_object(&self, kind: Kind, namespace: Option<&str>, name: &str) -> bool {
        self.shared
            .store
            .delete(kind, namespace, name, |_| Ok(()))
            .is_ok()
    }

    pub fn delete_node(&self, name: &str) -> bool {
        self.delete_object(Kind::Node, None, name)
    }

    pub fn get(&self, kind: Kind, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.shared
            .store
            .get(kind, namespace, name)
            .map(|v| events::view(kind, v))
    }

    /// What `read` makes of a stored object, without copying it (a harness that looks
    /// at every Node several times a second). Not for `EventV1`, whose stored form
    /// differs from its view.
    pub fn inspect<R>(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        read: impl FnOnce(&Value) -> R,
    ) -> Option<R> {
        self.shared.store.inspect(kind, namespace, name, read)
    }

    /// Objects of a kind, in one namespace or (with `None`) all of them.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Vec<Value> {
        let (objects, _) = self.shared.store.list(kind, namespace);
        objects.into_iter().map(|v| events::view(kind, v)).collect()
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    pub fn request_counts(&self) -> RequestCounts {
        self.shared.counts().clone()
    }

    pub fn reset_request_counts(&self) {
        *self.shared.counts() = RequestCounts::default();
        self.shared.traffic.reset();
    }

    /// Replaces the injected faults; the PRNG restarts from `faults.seed`.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    /// How often bookmarks are sent to watches that allow them (for new watches).
    pub fn set_bookmark_interval(&self, every: Duration) {
        *lock(&self.shared.bookmark_interval) = every.max(Duration::from_millis(10));
    }

    /// From now on, every request is authorized by `policy` like a real API server
    /// with RBAC: an unknown token gets 401, a request no rule allows 403. The default
    /// token ([`DEFAULT_TOKEN`]) stays a cluster admin unless `policy` maps it.
    pub fn enforce_rbac(&self, mut policy: Rbac) {
        policy.add_default_token(DEFAULT_TOKEN, UserInfo::admin());
        for token in self.shared.traffic.registered_tokens() {
            policy.add_default_token(&token, UserInfo::admin());
        }
        *lock(&self.shared.rbac) = Some(rbac::Enforcement {
            policy,
            denials: Vec::new(),
        });
    }

    /// The requests RBAC refused (403) so far, oldest first.
    pub fn rbac_denials(&self) -> Vec<Denial> {
        lock(&self.shared.rbac)
            .as_ref()
            .map(|e| e.denials.clone())
            .unwrap_or_default()
    }

    /// Restarts the API server (the restart fault): the listener closes now (connections
    /// refused, watches cut) for `plan.down`, then requests meet 503, 401 and 403 for the
    /// other durations in turn before the server serves normally. Returns at once.
    pub fn restart(&self, plan: Restart) {
        self.shared.restarts.begin(plan);
    }

    /// How many restarts [`KubeSim::restart`] began.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.count()
    }

    /// Requests with bearer `token` are counted as client `client` (see
    /// [`KubeSim::client_traffic`]); with RBAC enforced the token acts as an admin
    /// unless the policy maps it.
    pub fn register_client(&self, token: &str, client: &str) {
        self.shared.traffic.register(token, client);
        if let Some(e) = lock(&self.shared.rbac).as_mut() {
            e.policy.add_default_token(token, UserInfo::admin());
        }
    }

    /// Writes a kubeconfig whose bearer token is registered as client `client`.
    pub fn write_client_kubeconfig(&self, path: &Path, client: &str) -> anyhow::Result<String> {
        let (token, yaml) = self.client_kubeconfig(client)?;
        kubeconfig::write_rendered(path, &yaml)?;
        Ok(token)
    }

    /// A kubeconfig (YAML) whose bearer token is registered as client `client`, and that
    /// token. In memory: a thousand simulated agents writing a file each spend their
    /// time in the file system's inode allocation, which grows with the directory.
    pub fn client_kubeconfig(&self, client: &str) -> anyhow::Result<(String, String)> {
        let token = format!("{DEFAULT_TOKEN}-client-{client}");
        self.register_client(&token, client);
        // With the cluster's CA in the kubeconfig, as a real one carries it, a client's
        // TLS setup trusts that one root instead of loading the platform's store: an
        // agent in a cluster pays that once on its own node, while here a thousand
        // agents share two cores. The connection itself stays plain HTTP.
        let ca = self.serving()?.ca_pem.clone();
        let yaml = kubeconfig::render(&self.url(), &token, Some(&ca));
        Ok((token, yaml))
    }

    /// Requests and response body bytes per client, since start or the last reset.
    pub fn client_traffic(&self) -> BTreeMap<String, ClientTraffic> {
        self.shared.traffic.snapshot()
    }

    /// Stops serving: no new connections, open watches end.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}
