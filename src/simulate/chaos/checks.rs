//! The invariants checked during and after the storm, and the calm that ends it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use pinip_sim::kube::{Faults as KubeFaults, Kind};
use serde_json::Value;
use tokio::time::Instant;
use tracing::info;

use crate::admin::status::AgentStatus;
use crate::cluster::publish::ADDRESS_KEY;

use super::super::world::LEASE_NAMESPACE;
use super::Storm;

/// How long the end of a rollout waits for claims in flight to be held.
const ROLLOUT_QUIET: Duration = Duration::from_secs(10);
impl Storm<'_> {
    /// No address may be published on two live nodes at any moment.
    pub(super) fn check_publications(&mut self) {
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
    pub(super) fn describe_address(&self, address: &str, nodes: &[&str]) -> String {
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
                    &crate::domain::claim_record::lease_name(&ip),
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
    pub(super) async fn calm_down(&mut self) -> anyhow::Result<()> {
        self.calm_at = Some(Instant::now());
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
        for node in self.reap_crashed().await {
            self.start_agent(&node).await?;
        }
        info!(agents = self.agents.len(), "storm over");
        Ok(())
    }

    pub(super) fn pool_free(&self) -> usize {
        self.world.free_pool_addresses()
    }

    /// Every node gets an address, as many as the pool allows, within `settle`.
    pub(super) async fn settle(&mut self) -> anyhow::Result<()> {
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
            // And no acquisition in flight: a waiting agent that just attached the
            // last free address still reports PoolExhausted until its claim is held.
            let done = (ready == self.agents.len()
                || self.pool_free() == 0
                    && self.agents.values().all(|a| {
                        let s = a.status.borrow();
                        s.is_ready() || matches!(*s, AgentStatus::PoolExhausted { .. })
                    }))
                && crate::simulate::report::claims_not_held(self.world) == 0;
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
                    "{} nodes without an address {:?} after faults stopped, with {} free addresses: {waiting:?}; claims not held: {:?}",
                    waiting.len(),
                    self.spec.settle,
                    self.pool_free(),
                    crate::simulate::report::unheld_claims(self.world)
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Nothing names deleted nodes once the sweep had its chance: from the last
    /// deletion, or from the end of the faults if that came later (a sweep that meets a
    /// 409 storm or a 5xx retries at its next interval), a leader's takeover (a killed
    /// leader's Lease must stand still for a term, seen by two looks), then two sweep
    /// intervals and some slack.
    pub(super) async fn check_no_leftovers_of_deleted_nodes(&mut self) {
        let Some(last) = self.deleted.iter().map(|(_, _, at)| *at).max() else {
            return;
        };
        let from = self.calm_at.map_or(last, |calm| calm.max(last));
        let term = crate::domain::sweep_leadership::term(self.spec.sweep_interval);
        let takeover = term + crate::domain::sweep_leadership::look_period(term) * 2;
        let bound = from + takeover + self.spec.sweep_interval * 2 + Duration::from_secs(2);
        let deadline = bound.max(Instant::now());
        loop {
            let leftovers = self.leftovers();
            if leftovers.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "{leftovers:?}: sweep Lease {}; deleted nodes {}",
                    self.describe_sweep_lease(),
                    self.describe_deleted()
                );
                self.violations.extend(leftovers);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Who leads the sweep, as the Lease says.
    fn describe_sweep_lease(&self) -> String {
        match self.world.kube.get(
            Kind::Lease,
            Some(LEASE_NAMESPACE),
            crate::agent::sweeper::SWEEP_LEASE,
        ) {
            Some(lease) => format!(
                "holder {} renewed {} resourceVersion {}",
                lease
                    .pointer("/spec/holderIdentity")
                    .and_then(Value::as_str)
                    .unwrap_or("-"),
                lease
                    .pointer("/spec/renewTime")
                    .and_then(Value::as_str)
                    .unwrap_or("-"),
                lease
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("-"),
            ),
            None => "none".into(),
        }
    }

    /// Each deleted node's claims and addresses as they stand, and its agent.
    fn describe_deleted(&self) -> String {
        let claims = self.world.kube.list(Kind::Lease, Some(LEASE_NAMESPACE));
        let mut lines = Vec::new();
        for (node, instance, _) in &self.deleted {
            for lease in claims
                .iter()
                .filter(|l| l.pointer("/spec/holderIdentity").and_then(Value::as_str) == Some(node))
            {
                let address = lease
                    .pointer("/metadata/annotations/pinip.dev~1address")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                lines.push(format!(
                    "{node} (instance {instance}) claims {address} (rv {}): {}",
                    lease
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("-"),
                    self.describe_address(address, &[node.as_str()])
                ));
            }
        }
        lines.join("; ")
    }

    pub(super) fn leftovers(&self) -> Vec<String> {
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
                // AWS's tag key; GCP's labels and OCI's free-form tags spell it `pinip-node`.
                let recorded = ["pinip.dev/node", "pinip-node"]
                    .iter()
                    .any(|key| a.tags.get(*key) == Some(node));
                if recorded {
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
    pub(super) async fn rollout(&mut self) -> anyhow::Result<()> {
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
        // Agents that waited were restarted without waiting for them: one may be in the
        // middle of a claim (claiming, attach, held) when the report reads the claims.
        // A claim that stays un-held past this is reported by the claims check.
        let deadline = Instant::now() + ROLLOUT_QUIET;
        while crate::simulate::report::claims_not_held(self.world) > 0 && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
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

    pub(super) fn assigned(&self) -> BTreeMap<String, IpAddr> {
        self.agents
            .iter()
            .filter_map(|(n, a)| match *a.status.borrow() {
                AgentStatus::Assigned { address, .. } => Some((n.clone(), address)),
                _ => None,
            })
            .collect()
    }
}
