//! A simulated cluster and cloud with real agents in it: the Kubernetes API simulator
//! (real HTTP, real kube client) plus the in-memory fake cloud. Used by `pinip
//! simulate` and by the integration tests.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::fake::{AddressView, FakeCloud};
use pinip_providers::{IpFamily, PoolSpec};
use pinip_sim::kube::KubeSim;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::metrics::Metrics;
use crate::agent::{Agent, AgentError, Exit};
use crate::cloud::settings::CloudSettings;
use crate::cluster::claim_store::{ClaimSettings, WallClock};
use crate::cluster::client::kube_client_from;
use crate::cluster::publish::TaintSettings;
use crate::config::{NodeSettings, Settings};
use crate::domain::exit_decision::ReleasePolicy;
use crate::domain::exit_decision::ReleaseSettings;
use crate::domain::retry::RetryPolicy;

use super::cloud::{FakeSim, SimulatedCloud};
use crate::admin::status::AgentStatus;

/// Poll `check` every 50 ms until it holds, for at most `within`.
pub async fn eventually(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("timed out after {within:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub const LEASE_NAMESPACE: &str = "pinip-system";
const ZONES: [&str; 3] = ["sim-1a", "sim-1b", "sim-1c"];

/// Shape of a simulated world.
#[derive(Clone, Debug)]
pub struct WorldSpec {
    pub nodes: usize,
    pub pool: usize,
    pub family: IpFamily,
    pub cloud_latency: Duration,
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNode {
    pub name: String,
    pub instance: String,
    pub zone: String,
}

pub struct SimulatedWorld {
    pub kube: KubeSim,
    pub cloud: Arc<dyn SimulatedCloud>,
    /// The in-memory cloud's extra knobs (failures, hangs), when that is the cloud.
    fake: Option<Arc<FakeCloud>>,
    pub nodes: Vec<SimNode>,
    pub kubeconfig: PathBuf,
    pub spec: WorldSpec,
    workdir: PathBuf,
    controller: CancellationToken,
}

/// A running agent of the simulation.
pub struct AgentHandle {
    pub node: String,
    pub metrics: Arc<Metrics>,
    pub status: watch::Receiver<AgentStatus>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<Exit, AgentError>>,
}

impl AgentHandle {
    /// Orderly stop (like SIGTERM), returning how the agent ended.
    pub async fn stop(self) -> Result<Exit, String> {
        self.shutdown.cancel();
        match self.task.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("agent task failed: {e}")),
        }
    }

    /// Wait (at most `within`) until the agent's status satisfies `pred`.
    pub async fn wait_until(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&AgentStatus) -> bool,
    ) -> Result<AgentStatus, String> {
        let outcome = tokio::time::timeout(within, self.status.wait_for(|s| pred(s)))
            .await
            .map(|waited| waited.map(|status| status.clone()));
        match outcome {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) => Err(format!(
                "{}: agent ended while waiting for {what}",
                self.node
            )),
            Err(_) => Err(format!(
                "{}: no {what} within {within:?}; last status {:?}",
                self.node,
                *self.status.borrow()
            )),
        }
    }

    /// Wait (at most `within`) for an address: (address, adopted).
    pub async fn address(&mut self, within: Duration) -> Result<(IpAddr, bool), String> {
        match self
            .wait_until("an address", within, AgentStatus::is_ready)
            .await?
        {
            AgentStatus::Assigned {
                address, adopted, ..
            } => Ok((address, adopted)),
            other => Err(format!("{}: ready but not assigned: {other:?}", self.node)),
        }
    }

    /// Wait for the agent to end by itself (a configuration error, say).
    pub async fn stop_when_done(self) -> Result<Exit, String> {
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(result)) => result.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(format!("agent task failed: {e}")),
            Err(_) => Err("the agent did not end within 30 s".into()),
        }
    }

    /// Abrupt stop (like SIGKILL): no exit decision, no cleanup.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// The n-th address of the simulated pool: 198.18.0.0/15 (benchmarking range) or 2001:db8::/32.
pub fn pool_address(family: IpFamily, n: usize) -> IpAddr {
    match family {
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n as u32 + 1,
        )),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::from(
            u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)) + n as u128 + 1,
        )),
    }
}

impl SimulatedWorld {
    /// A world on the in-memory fake cloud.
    pub async fn start(spec: WorldSpec) -> anyhow::Result<SimulatedWorld> {
        let fake = FakeCloud::new();
        let mut world = Self::start_on(spec, Arc::new(FakeSim(Arc::clone(&fake)))).await?;
        world.fake = Some(fake);
        Ok(world)
    }

    /// A world on any simulated cloud.
    pub async fn start_on(
        spec: WorldSpec,
        cloud: Arc<dyn SimulatedCloud>,
    ) -> anyhow::Result<SimulatedWorld> {
        let kube = KubeSim::start().await?;
        let workdir = std::env::temp_dir().join(format!(
            "pinip-sim-{}-{}",
            std::process::id(),
            kube.addr().port()
        ));
        std::fs::create_dir_all(&workdir)?;
        let kubeconfig = workdir.join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig)?;
        cloud.set_latency(spec.cloud_latency, spec.seed);
        for i in 0..spec.pool {
            cloud.add_address(
                &format!("eipalloc-{i:05}"),
                pool_address(spec.family, i),
                &[("kubeip", "reserved")],
            );
        }
        // Decoys: an address outside the pool, held by an instance pinip does not manage.
        cloud.add_address(
            "eipalloc-decoy",
            IpAddr::V4(Ipv4Addr::new(198, 19, 255, 254)),
            &[("kubeip", "other")],
        );
        cloud.add_instance("i-unmanaged", ZONES[0], false);
        cloud.attach_by_hand("eipalloc-decoy", "i-unmanaged");
        let mut world = SimulatedWorld {
            kube,
            cloud,
            fake: None,
            nodes: Vec::new(),
            kubeconfig,
            spec: spec.clone(),
            workdir,
            controller: CancellationToken::new(),
        };
        for i in 0..spec.nodes {
            world.add_node(i);
        }
        world.spawn_cloud_controller();
        Ok(world)
    }

    /// Add node number `i` (instance and Node object).
    pub fn add_node(&mut self, i: usize) -> SimNode {
        let node = SimNode {
            name: format!("node-{i:03}"),
            instance: self.cloud.instance_id(i),
            zone: ZONES[i % ZONES.len()].to_string(),
        };
        self.cloud.add_instance(&node.instance, &node.zone, true);
        let provider_id = self.cloud.provider_id(&node.zone, &node.instance);
        let labels = BTreeMap::from([
            ("topology.kubernetes.io/zone".to_string(), node.zone.clone()),
            ("pinip.dev/pool".to_string(), "public".to_string()),
        ]);
        self.kube
            .add_node(&node.name, Some(&provider_id), labels, Vec::new());
        self.nodes.push(node.clone());
        node
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Agent settings as the DaemonSet would set them, tuned for a quick simulation.
    pub fn settings_for(&self, node: &str) -> Settings {
        Settings {
            node: NodeSettings {
                name: node.to_string(),
                cluster: "sim".into(),
                pod_name: Some(format!("pinip-{node}")),
            },
            cloud: CloudSettings {
                pool: PoolSpec {
                    filter: self.cloud.pool_filter(),
                    order_by: None,
                    family: self.spec.family,
                },
                ..CloudSettings::default()
            },
            claims: ClaimSettings {
                namespace: LEASE_NAMESPACE.into(),
                duration: Duration::from_secs(5),
            },
            taint: TaintSettings {
                key: None,
                wait: Duration::from_secs(30),
                give_up: None,
            },
            retry: RetryPolicy {
                interval: Duration::from_secs(5),
                attempts: 60,
            },
            release: ReleaseSettings {
                on_exit: ReleasePolicy::Auto,
                timeout: Duration::from_secs(20),
            },
            verify_interval: Duration::from_secs(300),
            permission_grace: Duration::from_secs(30), // PERMISSION_GRACE's default
            sweep_interval: Duration::from_secs(300),
            kubeconfig: Some(self.kubeconfig.clone()),
            admin_addr: None,
            dry_run: false,
        }
    }

    /// A Kubernetes client with a token of the node's own, so the simulator counts each
    /// node's requests and response bytes apart (`KubeSim::client_traffic`), as an API
    /// server sees the ServiceAccount token of each agent's pod.
    pub(super) async fn client_of(&self, node: &str) -> anyhow::Result<kube::Client> {
        let (_, yaml) = self.kube.client_kubeconfig(node)?;
        kube_client_from(kube::config::Kubeconfig::from_yaml(&yaml)?).await
    }

    /// Start an agent in this process (the real agent, over real HTTP).
    pub async fn spawn_agent(&self, settings: Settings) -> anyhow::Result<AgentHandle> {
        self.spawn_agent_with_clock(settings, None).await
    }

    /// Start an agent whose claim timestamps come from `clock` (a skewed wall clock).
    pub async fn spawn_agent_with_clock(
        &self,
        settings: Settings,
        clock: Option<WallClock>,
    ) -> anyhow::Result<AgentHandle> {
        let client = self.client_of(&settings.node.name).await?;
        let node = settings.node.name.clone();
        let (mut agent, status) = Agent::new(settings, client, self.cloud.providers());
        if let Some(clock) = clock {
            agent = agent.with_wall_clock(clock);
        }
        let metrics = agent.metrics();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(agent.run(shutdown.clone()));
        Ok(AgentHandle {
            node,
            metrics,
            status,
            shutdown,
            task,
        })
    }

    /// Start several agents at the same instant (their clients are built first).
    pub async fn spawn_agents(&self, settings: Vec<Settings>) -> anyhow::Result<Vec<AgentHandle>> {
        let gate = CancellationToken::new();
        let mut handles = Vec::with_capacity(settings.len());
        for s in settings {
            let client = self.client_of(&s.node.name).await?;
            let node = s.node.name.clone();
            let (agent, status) = Agent::new(s, client, self.cloud.providers());
            let metrics = agent.metrics();
            let shutdown = CancellationToken::new();
            let (start, stop) = (gate.clone(), shutdown.clone());
            let task = tokio::spawn(async move {
                start.cancelled().await;
                agent.run(stop).await
            });
            handles.push(AgentHandle {
                node,
                metrics,
                status,
                shutdown,
                task,
            });
        }
        gate.cancel();
        Ok(handles)
    }

    /// The addresses of the simulated pool (tagged `kubeip=reserved`), decoys left out.
    pub fn pool_addresses(&self) -> Vec<AddressView> {
        self.cloud
            .addresses()
            .into_iter()
            .filter(|a| a.tags.get("kubeip").map(String::as_str) == Some("reserved"))
            .collect()
    }

    /// Pool addresses attached to no instance.
    pub fn free_pool_addresses(&self) -> usize {
        self.pool_addresses()
            .iter()
            .filter(|a| a.attached_to.is_none())
            .count()
    }

    /// The Events (events.k8s.io) about `node` with `reason`.
    pub fn events(&self, node: &str, reason: &str) -> Vec<Value> {
        self.kube
            .list(pinip_sim::kube::Kind::EventV1, None)
            .into_iter()
            .filter(|e| e.get("reason").and_then(Value::as_str) == Some(reason))
            .filter(|e| e.pointer("/regarding/name").and_then(Value::as_str) == Some(node))
            .collect()
    }

    /// The address `node` publishes (its `pinip.dev/address` annotation).
    pub fn published_address(&self, node: &str) -> Option<String> {
        let object = self.kube.get(pinip_sim::kube::Kind::Node, None, node)?;
        object
            .pointer("/metadata/annotations/pinip.dev~1address")
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// The in-memory cloud's knobs (failures, hangs, permissiveness); None on another cloud.
    pub fn fake(&self) -> Option<&Arc<FakeCloud>> {
        self.fake.as_ref()
    }

    pub fn node(&self, name: &str) -> Option<&SimNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// What a cloud controller does: report each instance's external addresses in its
    /// Node's `status.addresses` (what `TAINT_KEY` waits for).
    fn spawn_cloud_controller(&self) {
        let kube = self.kube.clone();
        let cloud = Arc::clone(&self.cloud);
        let nodes: HashMap<String, String> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.instance.clone()))
            .collect();
        let stop = self.controller.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            // Between full passes (one a second) only the nodes whose instance's
            // attachments changed are looked at: a thousand Node reads every tick were
            // the harness's own work, growing with the run's length.
            let mut previous = BTreeMap::new();
            for round in 0u64.. {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let attachments = cloud.attachments();
                let full = round % 5 == 0;
                for (name, instance) in &nodes {
                    if !full && attachments.get(instance) == previous.get(instance) {
                        continue;
                    }
                    let external: Vec<String> = attachments
                        .get(instance)
                        .into_iter()
                        .flatten()
                        .map(IpAddr::to_string)
                        .collect();
                    let reported =
                        kube.inspect(pinip_sim::kube::Kind::Node, None, name, reported_external);
                    if reported.is_some_and(|reported| reported != external) {
                        kube.update_node(name, |node| set_external(node, &external));
                    }
                }
                previous = attachments;
            }
        });
    }

    pub fn shutdown(&self) {
        self.controller.cancel();
        self.kube.shutdown();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

fn reported_external(node: &Value) -> Vec<String> {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|a| a.get("type").and_then(Value::as_str) == Some("ExternalIP"))
                .filter_map(|a| a.get("address").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn set_external(node: &mut Value, external: &[String]) {
    let mut addresses: Vec<Value> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("ExternalIP"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    addresses.extend(
        external
            .iter()
            .map(|ip| json!({"type": "ExternalIP", "address": ip})),
    );
    if let Some(status) = node.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("addresses".into(), Value::Array(addresses));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_addresses_are_distinct_and_in_test_ranges() {
        assert_eq!(pool_address(IpFamily::V4, 0).to_string(), "198.18.0.1");
        assert_eq!(pool_address(IpFamily::V4, 255).to_string(), "198.18.1.0");
        assert_eq!(pool_address(IpFamily::V6, 0).to_string(), "2001:db8::1");
    }
}
