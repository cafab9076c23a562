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
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use pinip_sim::kube::{Faults as KubeFaults, Kind};
use serde::Serialize;
use tokio::time::Instant;

use crate::admin::status::AgentStatus;
use crate::cluster::claim_store::WallClock;

use super::report::{self, Report};
use super::world::{AgentHandle, SimulatedWorld};

mod checks;
mod faults;

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

/// Settings of a chaos agent: short timers.
fn chaos_settings(world: &SimulatedWorld, node: &str, spec: &ChaosSpec) -> crate::config::Settings {
    let mut s = world.settings_for(node);
    s.retry.interval = Duration::from_millis(500);
    s.claims.duration = Duration::from_secs(1);
    s.verify_interval = Duration::from_secs(1);
    s.sweep_interval = spec.sweep_interval;
    s.release.timeout = Duration::from_secs(3);
    s
}

/// A wall clock up to ±5 minutes off: nothing in pinip compares clocks across nodes.
fn skewed_clock(dice: &mut Dice) -> WallClock {
    let skew = SignedDuration::from_secs(dice.below(600) as i64 - 300);
    Arc::new(move || {
        let now = Timestamp::now();
        now.checked_add(skew).unwrap_or(now)
    })
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
    /// When the faults stopped.
    calm_at: Option<Instant>,
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
        calm_at: None,
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
        let settings = chaos_settings(self.world, node, &self.spec);
        let clock = skewed_clock(&mut self.dice);
        let handle = self
            .world
            .spawn_agent_with_clock(settings, Some(clock))
            .await?;
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
                86..=88 => self.restart_api_server(),
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
        // Agents that ended by themselves restart too, like a crashed container; no fault
        // of the storm is a reason to end, so each one is a violation.
        for node in self.reap_crashed().await {
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
                self.violations.push(format!(
                    "the agent of {node} ended by itself (no fault ends an agent): {outcome:?}"
                ));
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
}
