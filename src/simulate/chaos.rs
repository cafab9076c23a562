//! `pinip simulate --chaos --seed S`: real agents under injected faults, drawn from a
//! seeded generator, while invariants are checked during and after the storm.
//!
//! Faults: agent kills at any step (and restarts, as the kubelet would), graceful
//! restarts, API-server errors, writes that land but answer 504, latency and 409
//! storms, cloud throttling and failures, claims left mid-attach (attach hangs, then the agent is killed: the lease must
//! expire), clock skew between agents, nodes deleted abruptly (instance terminated or
//! left running, a new node joining), addresses detached by hand, and a full rollout.
//!
//! Invariants (any breach lands in `violations`):
//! - no address on two instances, no node with two pool addresses, no address taken
//!   from an instance pinip does not manage (the cloud checks every call);
//! - no address published on two live nodes at any moment;
//! - once faults stop, every node gets an address (as many as the pool allows) in time;
//! - no claim or ownership record names a deleted node one sweep interval after;
//! - a rollout changes no address.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::jiff::SignedDuration;
use pinip_sim::kube::{Faults as KubeFaults, Kind};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::info;

use crate::publish::ADDRESS_KEY;
use crate::status::AgentStatus;

use super::report::{self, Report};
use super::world::{AgentHandle, SimulatedWorld, LEASE_NAMESPACE};

#[derive(Clone, Debug)]
pub struct ChaosSpec {
    pub seed: u64,
    /// How long faults are injected.
    pub storm: Duration,
    /// How long nodes may take to get addresses once faults stop.
    pub settle: Duration,
    pub sweep_interval: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ChaosStats {
    pub seed: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<String, u64>,
    /// From the end of the storm until every node held an address (or the pool was used up).
    pub settle_ms: u64,
    /// Addresses a final rollout changed (must be 0).
    pub rollout_changed: usize,
}

/// splitmix64: small and seedable; the fault schedule is a function of the seed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo).max(1)))
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Settings of a chaos agent: short timers, and a skewed wall clock.
fn chaos_settings(
    world: &SimulatedWorld,
    node: &str,
    spec: &ChaosSpec,
    dice: &mut Dice,
) -> crate::config::Settings {
    let mut s = world.settings_for(node);
    s.retry_interval = Duration::from_millis(500);
    s.lease_duration = Duration::from_secs(1);
    s.verify_interval = Duration::from_secs(1);
    s.sweep_interval = spec.sweep_interval;
    s.release_timeout = Duration::from_secs(3);
    // Up to ±5 minutes of skew: nothing in pinip compares clocks across nodes.
    s.clock_skew = SignedDuration::from_secs(dice.below(600) as i64 - 300);
    s
}

struct Storm<'w> {
    world: &'w mut SimulatedWorld,
    spec: ChaosSpec,
    dice: Dice,
    agents: BTreeMap<String, AgentHandle>,
    /// Killed agents and when the "kubelet" restarts them.
    restarts: Vec<(String, Instant)>,
    /// Deleted nodes and when.
    deleted: Vec<(String, String, Instant)>,
    next_node: usize,
    stats: ChaosStats,
    violations: Vec<String>,
    clear_kube_at: Option<Instant>,
    clear_cloud_at: Option<Instant>,
}

pub async fn run(world: &mut SimulatedWorld, spec: ChaosSpec) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut storm = Storm {
        next_node: world.nodes.len(),
        dice: Dice(spec.seed ^ 0xC4A0_5EED),
        stats: ChaosStats {
            seed: spec.seed,
            ..ChaosStats::default()
        },
        world,
        spec,
        agents: BTreeMap::new(),
        restarts: Vec::new(),
        deleted: Vec::new(),
        violations: Vec::new(),
        clear_kube_at: None,
        clear_cloud_at: None,
    };
    for node in storm.world.nodes.clone() {
        storm.start_agent(&node.name).await?;
    }
    storm.rage().await?;
    storm.calm_down().await?;
    let settle_started = Instant::now();
    storm.settle().await?;
    storm.stats.settle_ms = settle_started.elapsed().as_millis() as u64;
    storm.check_no_leftovers_of_deleted_nodes().await;
    storm.rollout().await?;
    let statuses: HashMap<String, AgentStatus> = storm
        .agents
        .iter()
        .map(|(n, a)| (n.clone(), a.status.borrow().clone()))
        .collect();
    let mut report = report::build(storm.world, &statuses, started.elapsed());
    report.violations.append(&mut storm.violations);
    report.chaos = Some(storm.stats.clone());
    for (_, agent) in std::mem::take(&mut storm.agents) {
        let _ = tokio::time::timeout(Duration::from_secs(10), agent.stop()).await;
    }
    Ok(report)
}

impl Storm<'_> {
    fn count(&mut self, what: &str) {
        *self.stats.injected.entry(what.to_string()).or_default() += 1;
    }

    async fn start_agent(&mut self, node: &str) -> anyhow::Result<()> {
        let settings = chaos_settings(self.world, node, &self.spec, &mut self.dice);
        let handle = self.world.spawn_agent(settings).await?;
        self.agents.insert(node.to_string(), handle);
        Ok(())
    }

    fn random_agent(&mut self) -> Option<String> {
        let names: Vec<String> = self.agents.keys().cloned().collect();
        let pick = self.dice.below(names.len() as u64) as usize;
        names.get(pick).cloned()
    }

    /// Inject faults until the storm is over.
    async fn rage(&mut self) -> anyhow::Result<()> {
        let end = Instant::now() + self.spec.storm;
        while Instant::now() < end {
            let pause = self.dice.millis(40, 220);
            tokio::time::sleep(pause).await;
            self.housekeeping().await?;
            self.check_publications();
            match self.dice.below(100) {
                0..=17 => self.kill_agent(),
                18..=25 => self.restart_agent().await?,
                26..=37 => self.kube_burst(),
                38..=45 => self.conflict_storm(),
                46..=57 => self.cloud_burst(),
                58..=63 => self.crash_mid_claim(),
                64..=73 => self.delete_node().await?,
                74..=85 => self.detach_by_hand(),
                _ => {} // a quiet moment
            }
        }
        Ok(())
    }

    /// Restart killed agents when due (as the kubelet does), clear bursts when over.
    async fn housekeeping(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if self.clear_kube_at.is_some_and(|t| t <= now) {
            self.world.kube.set_faults(KubeFaults::default());
            self.clear_kube_at = None;
        }
        if self.clear_cloud_at.is_some_and(|t| t <= now) {
            self.world.cloud.set_failure_rates(0.0, 0.0);
            self.clear_cloud_at = None;
        }
        // Agents that ended by themselves (an error) restart too, like a crashed container.
        let crashed: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.task.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for node in crashed {
            self.agents.remove(&node);
            self.restarts.push((node, now + Duration::from_millis(300)));
        }
        let (due, later): (Vec<_>, Vec<_>) =
            self.restarts.drain(..).partition(|(_, at)| *at <= now);
        self.restarts = later;
        for (node, _) in due {
            let exists = self.world.kube.get(Kind::Node, None, &node).is_some();
            if exists && !self.agents.contains_key(&node) {
                self.start_agent(&node).await?;
            }
        }
        Ok(())
    }

    /// Agents whose task ended by itself: logged, counted, removed (the caller restarts them).
    async fn reap_crashed(&mut self) -> Vec<String> {
        let finished: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.task.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for node in &finished {
            if let Some(agent) = self.agents.remove(node) {
                let outcome = agent.task.await;
                tracing::warn!(%node, ?outcome, "agent ended by itself; restarting it");
                *self
                    .stats
                    .injected
                    .entry("agent_crashed_by_itself".into())
                    .or_default() += 1;
            }
        }
        finished
    }

    fn kill_agent(&mut self) {
        if let Some(node) = self.random_agent() {
            if let Some(agent) = self.agents.remove(&node) {
                agent.kill();
                let back = Instant::now() + self.dice.millis(0, 800);
                self.restarts.push((node, back));
                self.count("agent_killed");
            }
        }
    }

    async fn restart_agent(&mut self) -> anyhow::Result<()> {
        if let Some(node) = self.random_agent() {
            if let Some(agent) = self.agents.remove(&node) {
                let _ = tokio::time::timeout(Duration::from_secs(5), agent.stop()).await;
                self.start_agent(&node).await?;
                self.count("agent_restarted");
            }
        }
        Ok(())
    }

    fn kube_burst(&mut self) {
        let faults = KubeFaults {
            latency: self.dice.millis(0, 40),
            error_rate: 0.15,
            conflict_rate: 0.1,
            // Writes that land but answer 504: every write must be safe to repeat.
            timeout_after_write_rate: 0.1,
            seed: self.dice.next(),
        };
        self.world.kube.set_faults(faults);
        self.clear_kube_at = Some(Instant::now() + self.dice.millis(300, 1200));
        self.count("api_server_errors");
    }

    fn conflict_storm(&mut self) {
        let faults = KubeFaults {
            conflict_rate: 0.6,
            seed: self.dice.next(),
            ..KubeFaults::default()
        };
        self.world.kube.set_faults(faults);
        self.clear_kube_at = Some(Instant::now() + self.dice.millis(200, 700));
        self.count("conflict_storm");
    }

    fn cloud_burst(&mut self) {
        let throttle = if self.dice.chance(50) { 0.5 } else { 0.1 };
        self.world.cloud.set_failure_rates(0.15, throttle);
        self.clear_cloud_at = Some(Instant::now() + self.dice.millis(300, 1200));
        self.count("cloud_failures");
    }

    /// A claim left behind mid-attach: the attach hangs, then the agent dies.
    fn crash_mid_claim(&mut self) {
        let Some(fake) = self.world.fake().cloned() else {
            return;
        };
        let waiting: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| !a.status.borrow().is_ready())
            .map(|(n, _)| n.clone())
            .collect();
        let Some(node) = waiting
            .get(self.dice.below(waiting.len() as u64) as usize)
            .cloned()
        else {
            return;
        };
        let Some(instance) = self.world.node(&node).map(|n| n.instance.clone()) else {
            return;
        };
        fake.hang_attach(&instance);
        if let Some(agent) = self.agents.remove(&node) {
            let back = Instant::now() + self.dice.millis(300, 1500);
            tokio::spawn(async move {
                // Let it reach the attach, then kill it there; lift the hang right after,
                // before its replacement (due from 300 ms on) can attach into it.
                tokio::time::sleep(Duration::from_millis(150)).await;
                agent.kill();
                fake.unhang_attach(&instance);
            });
            self.restarts.push((node, back));
            self.count("crash_mid_claim");
        }
    }

    /// A node vanishes without its agent saying goodbye; a new one joins.
    async fn delete_node(&mut self) -> anyhow::Result<()> {
        if self.agents.len() < 2 {
            return Ok(());
        }
        let Some(node) = self.random_agent() else {
            return Ok(());
        };
        let Some(instance) = self.world.node(&node).map(|n| n.instance.clone()) else {
            return Ok(());
        };
        if let Some(agent) = self.agents.remove(&node) {
            agent.kill();
        }
        self.restarts.retain(|(n, _)| n != &node);
        self.world.kube.delete_node(&node);
        if self.dice.chance(50) {
            self.world.cloud.terminate_instance(&instance);
            self.count("node_deleted_instance_terminated");
        } else {
            self.count("node_deleted_instance_running");
        }
        self.deleted.push((node, instance, Instant::now()));
        let joined = self.world.add_node(self.next_node);
        self.next_node += 1;
        self.start_agent(&joined.name).await?;
        Ok(())
    }

    fn detach_by_hand(&mut self) {
        let attached: Vec<String> = self
            .world
            .pool_addresses()
            .into_iter()
            .filter(|a| a.attached_to.is_some())
            .map(|a| a.id)
            .collect();
        if let Some(id) = attached.get(self.dice.below(attached.len() as u64) as usize) {
            self.world.cloud.detach_by_hand(id);
            self.count("detached_by_hand");
        }
    }

    /// No address may be published on two live nodes at any moment.
    fn check_publications(&mut self) {
        let mut seen: HashMap<String, String> = HashMap::new();
        for node in self.world.kube.list(Kind::Node, None) {
            let name = node
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let address = node
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(ADDRESS_KEY))
                .and_then(Value::as_str);
            if let Some(address) = address {
                if let Some(other) = seen.insert(address.to_string(), name.clone()) {
                    let breach =
                        format!("address {address} published on {other} and {name} at once");
                    if !self.violations.contains(&breach) {
                        tracing::warn!(
                            "{breach}: {}",
                            self.describe_address(address, &[other.as_str(), name.as_str()])
                        );
                        self.violations.push(breach);
                    }
                }
            }
        }
    }

    /// The evidence for a breach: where the cloud has the address, who claims it, and
    /// what each node's agent is doing.
    fn describe_address(&self, address: &str, nodes: &[&str]) -> String {
        let attached = self
            .world
            .pool_addresses()
            .into_iter()
            .find(|a| a.ip.to_string() == address)
            .map(|a| format!("{:?}", a.attached_to))
            .unwrap_or_else(|| "not in the pool".into());
        let claim = address
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| {
                self.world.kube.get(
                    Kind::Lease,
                    Some(LEASE_NAMESPACE),
                    &crate::claim::lease_name(&ip),
                )
            })
            .map(|lease| {
                format!(
                    "holder {} phase {}",
                    lease
                        .pointer("/spec/holderIdentity")
                        .and_then(Value::as_str)
                        .unwrap_or("-"),
                    lease
                        .pointer("/metadata/annotations/pinip.dev~1phase")
                        .and_then(Value::as_str)
                        .unwrap_or("-")
                )
            })
            .unwrap_or_else(|| "none".into());
        let agents: Vec<String> = nodes
            .iter()
            .map(|node| {
                let instance = self.world.node(node).map(|n| n.instance.clone());
                let agent = match self.agents.get(*node) {
                    Some(a) => format!("{:?}", *a.status.borrow()),
                    None => "no agent".into(),
                };
                format!("{node} (instance {instance:?}): {agent}")
            })
            .collect();
        format!(
            "cloud attachment {attached}; claim {claim}; {}",
            agents.join("; ")
        )
    }

    /// Faults stop; every dead agent comes back.
    async fn calm_down(&mut self) -> anyhow::Result<()> {
        self.world.kube.set_faults(KubeFaults::default());
        self.world.cloud.set_failure_rates(0.0, 0.0);
        // Before anything restarts: a replacement must not attach into a hang left for
        // an agent that is being killed right now.
        if let Some(fake) = self.world.fake() {
            fake.unhang_all();
        }
        let pending: Vec<String> = self.restarts.drain(..).map(|(n, _)| n).collect();
        for node in pending {
            if self.world.kube.get(Kind::Node, None, &node).is_some()
                && !self.agents.contains_key(&node)
            {
                self.start_agent(&node).await?;
            }
        }
        let crashed: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.task.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for node in crashed {
            self.agents.remove(&node);
            self.start_agent(&node).await?;
        }
        info!(agents = self.agents.len(), "storm over");
        Ok(())
    }

    fn pool_free(&self) -> usize {
        self.world.free_pool_addresses()
    }

    /// Every node gets an address, as many as the pool allows, within `settle`.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.spec.settle;
        loop {
            self.check_publications();
            for node in self.reap_crashed().await {
                self.start_agent(&node).await?;
            }
            let ready = self
                .agents
                .values()
                .filter(|a| a.status.borrow().is_ready())
                .count();
            let done = ready == self.agents.len()
                || self.pool_free() == 0
                    && self.agents.values().all(|a| {
                        let s = a.status.borrow();
                        s.is_ready() || matches!(*s, AgentStatus::PoolExhausted { .. })
                    });
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let waiting: Vec<String> = self
                    .agents
                    .iter()
                    .filter(|(_, a)| !a.status.borrow().is_ready())
                    .map(|(n, a)| format!("{n}: {:?}", *a.status.borrow()))
                    .collect();
                self.violations.push(format!(
                    "{} nodes without an address {:?} after faults stopped, with {} free addresses: {waiting:?}",
                    waiting.len(),
                    self.spec.settle,
                    self.pool_free()
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One sweep interval (plus slack) after the last deletion, nothing names deleted nodes.
    async fn check_no_leftovers_of_deleted_nodes(&mut self) {
        let Some(last) = self.deleted.iter().map(|(_, _, at)| *at).max() else {
            return;
        };
        let bound = last + self.spec.sweep_interval * 2 + Duration::from_secs(2);
        let deadline = bound.max(Instant::now());
        loop {
            let leftovers = self.leftovers();
            if leftovers.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                self.violations.extend(leftovers);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let claims = self.world.kube.list(Kind::Lease, Some(LEASE_NAMESPACE));
        let addresses = self.world.cloud.addresses();
        for (node, instance, _) in &self.deleted {
            // A node name can come back only as a new node; ours never reuse names.
            for lease in &claims {
                if lease
                    .pointer("/spec/holderIdentity")
                    .and_then(Value::as_str)
                    == Some(node)
                    && lease
                        .pointer("/metadata/labels/app.kubernetes.io~1managed-by")
                        .and_then(Value::as_str)
                        == Some("pinip")
                {
                    let name = lease
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    found.push(format!(
                        "claim {name} of deleted node {node} outlived a sweep interval"
                    ));
                }
            }
            for a in &addresses {
                if a.tags.get("pinip.dev/node") == Some(node) {
                    found.push(format!(
                        "ownership record of deleted node {node} on {} outlived a sweep interval",
                        a.ip
                    ));
                }
                if a.attached_to.as_deref() == Some(instance.as_str()) {
                    found.push(format!(
                        "{} still on the instance {instance} of deleted node {node}",
                        a.ip
                    ));
                }
            }
        }
        found
    }

    /// Restart every agent one by one, as a DaemonSet rollout does: no address may change.
    async fn rollout(&mut self) -> anyhow::Result<()> {
        let before: BTreeMap<String, IpAddr> = self.assigned();
        let nodes: Vec<String> = self.agents.keys().cloned().collect();
        for node in nodes {
            if let Some(agent) = self.agents.remove(&node) {
                let _ = tokio::time::timeout(Duration::from_secs(5), agent.stop()).await;
            }
            self.start_agent(&node).await?;
            if before.contains_key(&node) {
                if let Some(agent) = self.agents.get_mut(&node) {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        agent.status.wait_for(AgentStatus::is_ready),
                    )
                    .await;
                }
            }
        }
        let after = self.assigned();
        let changed: Vec<String> = before
            .iter()
            .filter(|(node, ip)| after.get(*node) != Some(*ip))
            .map(|(node, ip)| format!("rollout changed {node}: {ip} -> {:?}", after.get(node)))
            .collect();
        self.stats.rollout_changed = changed.len();
        self.violations.extend(changed);
        Ok(())
    }

    fn assigned(&self) -> BTreeMap<String, IpAddr> {
        self.agents
            .iter()
            .filter_map(|(n, a)| match *a.status.borrow() {
                AgentStatus::Assigned { address, .. } => Some((n.clone(), address)),
                _ => None,
            })
            .collect()
    }
}
