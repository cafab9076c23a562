//! The faults of the storm: each one breaks something the way the real world does.

use std::time::Duration;

use pinip_sim::kube::{Faults as KubeFaults, Restart};
use tokio::time::Instant;

use super::Storm;

impl Storm<'_> {
    pub(super) fn kube_burst(&mut self) {
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

    pub(super) fn conflict_storm(&mut self) {
        let faults = KubeFaults {
            conflict_rate: 0.6,
            seed: self.dice.next(),
            ..KubeFaults::default()
        };
        self.world.kube.set_faults(faults);
        self.clear_kube_at = Some(Instant::now() + self.dice.millis(200, 700));
        self.count("conflict_storm");
    }

    /// The API server restarts: connections refused, then 503 while it is not ready,
    /// then 401 and 403 to authorized requests for a moment (what a real kube-apiserver
    /// did), then normal service. Agents must ride it out wherever they are.
    pub(super) fn restart_api_server(&mut self) {
        let plan = Restart {
            down: self.dice.millis(50, 400),
            unavailable: self.dice.millis(50, 400),
            unauthorized: self.dice.millis(20, 150),
            forbidden: self.dice.millis(50, 300),
        };
        self.world.kube.restart(plan);
        self.count("api_server_restarts");
    }

    pub(super) fn cloud_burst(&mut self) {
        let throttle = if self.dice.chance(50) { 0.5 } else { 0.1 };
        self.world.cloud.set_failure_rates(0.15, throttle);
        self.clear_cloud_at = Some(Instant::now() + self.dice.millis(300, 1200));
        self.count("cloud_failures");
    }

    /// A claim left behind mid-attach: the attach hangs, then the agent dies.
    pub(super) fn crash_mid_claim(&mut self) {
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
    pub(super) async fn delete_node(&mut self) -> anyhow::Result<()> {
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

    pub(super) fn detach_by_hand(&mut self) {
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
}
