//! The kit the integration tests share: short-timer settings and bounded waits on
//! agents, instead of a copy in every file. Each test file names its own timings once
//! (`const KIT: Kit = Kit { … }`); everything else is common.

// Every test binary uses part of the kit.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::config::Settings;
use pinip::simulate::{AgentHandle, SimulatedWorld};

/// A test file's timings.
pub struct Kit {
    /// The longest any wait may take before the test fails (never a speed assertion).
    pub wait: Duration,
    /// `RETRY_INTERVAL` of the agents.
    pub retry: Duration,
    /// `LEASE_DURATION` of the agents.
    pub lease: Duration,
}

impl Kit {
    /// The world's settings for `node`, with this kit's short timers.
    pub fn settings(&self, world: &SimulatedWorld, node: &str) -> Settings {
        let mut s = world.settings_for(node);
        s.retry.interval = self.retry;
        s.claims.duration = self.lease;
        s
    }

    /// An agent on every node of the world, started at the same instant.
    pub async fn spawn_all(&self, world: &SimulatedWorld) -> Vec<AgentHandle> {
        let settings = world
            .nodes
            .iter()
            .map(|n| self.settings(world, &n.name))
            .collect();
        world
            .spawn_agents(settings)
            .await
            .expect("the agents start")
    }

    /// Wait until the agent's status satisfies `pred`; fails the test after `wait`.
    pub async fn status(
        &self,
        agent: &mut AgentHandle,
        what: &str,
        pred: impl Fn(&AgentStatus) -> bool,
    ) -> AgentStatus {
        agent
            .wait_until(what, self.wait, pred)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The agent's address once assigned, and whether it was adopted.
    pub async fn assigned(&self, agent: &mut AgentHandle) -> (IpAddr, bool) {
        agent
            .address(self.wait)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Poll `check` until it holds; fails the test after `wait`.
    pub async fn eventually(&self, what: &str, check: impl FnMut() -> bool) {
        pinip::simulate::eventually(what, self.wait, check)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A world on the in-memory cloud: `nodes` nodes, `pool` IPv4 addresses, no latency.
pub async fn world(nodes: usize, pool: usize, seed: u64) -> SimulatedWorld {
    SimulatedWorld::start(pinip::simulate::WorldSpec {
        nodes,
        pool,
        family: pinip_providers::IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed,
    })
    .await
    .expect("the simulated world starts")
}

/// A world on the EC2 simulator, no latency, and that simulator (for its counters).
pub async fn aws_world(
    nodes: usize,
    pool: usize,
    family: pinip_providers::IpFamily,
    seed: u64,
) -> (SimulatedWorld, std::sync::Arc<pinip::simulate::AwsSim>) {
    let aws = std::sync::Arc::new(
        pinip::simulate::AwsSim::start()
            .await
            .expect("EC2 simulator starts"),
    );
    let world = SimulatedWorld::start_on(
        pinip::simulate::WorldSpec {
            nodes,
            pool,
            family,
            cloud_latency: Duration::ZERO,
            seed,
        },
        aws.clone() as std::sync::Arc<dyn pinip::simulate::SimulatedCloud>,
    )
    .await
    .expect("simulated world starts");
    (world, aws)
}
