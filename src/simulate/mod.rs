//! `pinip simulate`: the real agent code against an embedded cluster and cloud.
//!
//! Starts the Kubernetes API simulator with N nodes, a simulated cloud with a pool of
//! M addresses, runs K agents in this process (each with its own kube client over
//! HTTP), waits until every node has an address or the rest are waiting on an
//! exhausted pool, then reports. `--serve` keeps everything running for other clients.

mod aws;
mod chaos;
mod cloud;
mod gcp;
mod kubeip_lock;
mod limits;
mod oci;
mod report;
mod serve;
mod world;

pub use aws::AwsSim;
pub use cloud::{FakeSim, SimulatedCloud};
pub use gcp::GcpSim;
pub use limits::{CloudLimits, CloudLimitsReport, Enforcer};
pub use oci::OciSimCloud;

pub use report::{percentiles, render_table, Percentiles, Report};
pub use world::{
    eventually, pool_address, AgentHandle, SimNode, SimulatedWorld, WorldSpec, LEASE_NAMESPACE,
};

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use pinip_providers::fake::FakeCloud;
use pinip_providers::IpFamily;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::status::AgentStatus;
use crate::config::ToolLogArgs;
use crate::process::exit::config_error;
use crate::process::shutdown::cancel_on_signal;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimCloud {
    /// The in-memory fake cloud (no wire protocol).
    Fake,
    /// The EC2 simulator (Query API over HTTP), driven by the real AWS provider.
    Aws,
    /// The Compute simulator.
    Gcp,
    /// The OCI Core Services simulator (OKE nodes, reserved public IPs), driven by the
    /// real OCI provider with signed requests.
    Oci,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Coordination {
    /// pinip's own: one claim Lease per address, no global lock.
    Pinip,
    /// KubeIP v2's: one global Lease `kubeip-lock`, one assignment at a time.
    KubeipLock,
}

#[derive(Args, Clone, Debug)]
pub struct SimulateArgs {
    /// Which simulated cloud the agents run against.
    #[arg(long, value_enum, default_value = "aws")]
    pub cloud: SimCloud,
    /// Nodes in the simulated cluster.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub nodes: u32,
    /// Addresses in the pool (default: nodes + 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub pool: Option<u32>,
    /// Latency added to every simulated cloud call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Seed for everything random in the simulation (start order, injected faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_s: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the simulated cluster and cloud running until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Run in-process agents for only the first K nodes (default: all).
    #[arg(long)]
    pub agents: Option<u32>,
    /// Simulate an IPv6 pool.
    #[arg(long)]
    pub ipv6: bool,
    /// The agents' ORDER_BY, in the cloud's syntax (e.g. `creationTimestamp desc` on
    /// `--cloud gcp`, `PublicIp desc` on aws).
    #[arg(long)]
    pub order_by: Option<String>,
    /// How the agents coordinate: `pinip` (one Lease per address), or `kubeip-lock`:
    /// KubeIP v2's one global Lease, as a baseline in the same world.
    #[arg(long, value_enum, default_value = "pinip")]
    pub coordination: Coordination,
    /// Inject faults (seeded by --seed) while checking invariants; see docs/design.md.
    #[arg(long)]
    pub chaos: bool,
    /// The clouds' published API rate limits: `none`, or `default` (EC2's token
    /// buckets, Compute's per-minute quotas; aws and gcp only).
    #[arg(long, value_enum, default_value = "none")]
    pub cloud_limits: CloudLimits,
    /// With `--cloud-limits default` on aws: a throttled request takes a token too (EC2
    /// does not document which).
    #[arg(long)]
    pub throttled_consume_tokens: bool,
    /// How long a chaos run injects faults.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub chaos_seconds: u64,
    /// Chaos runs to make, with seeds --seed, --seed+1, ... (a soak is `--runs 200`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub runs: u32,
    #[command(flatten)]
    pub log: ToolLogArgs,
}

pub async fn command(args: SimulateArgs) -> ExitCode {
    if args.ipv6 && args.cloud == SimCloud::Oci {
        return config_error(crate::cloud::oci::NO_IPV6);
    }
    if let Err(message) = check_limits(&args) {
        return config_error(&message);
    }
    let nodes = args.nodes as usize;
    let spec = WorldSpec {
        nodes,
        pool: args.pool.map(|p| p as usize).unwrap_or(nodes + 2),
        family: if args.ipv6 {
            IpFamily::V6
        } else {
            IpFamily::V4
        },
        cloud_latency: Duration::from_millis(args.latency_ms),
        seed: args.seed,
    };
    if args.chaos {
        if args.coordination == Coordination::KubeipLock {
            return config_error("--coordination kubeip-lock is a benchmark baseline: it runs without --chaos (its lock is not safe under faults; see ../shared/reference/kubeip-notes.md)");
        }
        return chaos_command(&args, spec).await;
    }
    let (cloud, enforcer) = match make_cloud(&args).await {
        Ok(made) => made,
        Err(message) => return config_error(&message),
    };
    let world = match SimulatedWorld::start_on(spec, cloud).await {
        Ok(world) => world,
        Err(e) => {
            eprintln!("pinip: could not start the simulation: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(&args, &world, enforcer.as_ref()).await;
    world.shutdown();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pinip: simulation failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    args: &SimulateArgs,
    world: &SimulatedWorld,
    enforcer: Option<&Enforcer>,
) -> anyhow::Result<ExitCode> {
    let agent_count = args
        .agents
        .map(|k| k as usize)
        .unwrap_or(world.nodes.len())
        .min(world.nodes.len());
    let stop = CancellationToken::new();
    let served = match args.serve {
        true => Some(serve::open(world, &stop).await?),
        false => None,
    };
    if let Some(served) = &served {
        let line = json!({
            "kubeconfig": served.admin_kubeconfig,
            "agent_kubeconfig": served.agent_kubeconfig,
            "kube_url": served.url,
            "counters_url": served.counters_url,
            "ec2_url": if world.cloud.name() == "aws" { world.cloud.endpoint() } else { None },
            "compute_url": if world.cloud.name() == "gcp" { world.cloud.endpoint() } else { None },
            "oci_url": if world.cloud.name() == "oci" { world.cloud.endpoint() } else { None },
            "nodes": world.nodes.iter().map(|n| json!({"name": n.name, "instance": n.instance})).collect::<Vec<_>>(),
        });
        println!("{line}");
    }
    let started = Instant::now();
    let window_offset_ms = enforcer.map(Enforcer::window_offset_ms).unwrap_or(0);
    let mut agents = Vec::with_capacity(agent_count);
    // When each agent started, after the run's start: its status says how long after
    // its own start it got its address.
    let mut spawned_after = HashMap::with_capacity(agent_count);
    for node in start_order(&world.nodes[..agent_count], args.seed) {
        let mut settings = world.settings_for(&node.name);
        settings.cloud.pool.order_by = args.order_by.clone();
        let agent = match args.coordination {
            Coordination::Pinip => world.spawn_agent(settings).await?,
            Coordination::KubeipLock => kubeip_lock::spawn(world, settings).await?,
        };
        spawned_after.insert(node.name.clone(), started.elapsed());
        agents.push(agent);
    }
    if let Some(served) = served {
        tokio::spawn(cancel_on_signal(stop.clone()));
        if !args.json {
            eprintln!(
                "serving: KUBECONFIG={} (an admin; the pinip ServiceAccount under deploy/base's RBAC: {}) ({} nodes, {} in-process agents); Ctrl-C to stop",
                served.admin_kubeconfig.display(),
                served.agent_kubeconfig.display(),
                world.nodes.len(),
                agent_count
            );
        }
        let last = served.count_until(&stop, world, &agents, enforcer).await;
        stop_agents(agents).await;
        // The counters as they stood at Ctrl-C, for a benchmark of an agent outside.
        println!("{last}");
        return Ok(ExitCode::SUCCESS);
    }

    let deadline = started + Duration::from_secs(args.timeout_s);
    let statuses = loop {
        let statuses: HashMap<String, AgentStatus> = agents
            .iter()
            .map(|a| (a.node.clone(), a.status.borrow().clone()))
            .collect();
        if Instant::now() >= deadline {
            break statuses;
        }
        if settled(&statuses, world) {
            // Every agent's life up to its steady state (the watch of its Node) is in
            // every run: stopped at once, a short run's agents never get there, and the
            // per-node CPU of 30 nodes would leave out what 1000 nodes' early agents do.
            tokio::time::sleep(STEADY_SETTLE).await;
            break statuses;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    // Stopping the agents is a rollout, not a node removal: nothing may change. The
    // report follows it, so what the agents still had in flight when the last one was
    // assigned (ownership records are written beside the publication) is counted.
    stop_agents(agents).await;
    let mut report = report::build(world, &statuses, elapsed);
    if args.coordination == Coordination::KubeipLock {
        report.coordination = "kubeip-lock";
    }
    if report.assigned == world.nodes.len() {
        report.time_to_all_ms = report::time_to_all(&statuses, &spawned_after);
    }
    if let Some(enforcer) = enforcer {
        let family = world.spec.family;
        report.cloud_limits =
            enforcer.report(Some((report.assigned as u64, family, window_offset_ms)));
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    let ok = report.violations.is_empty() && report.duplicates == 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--chaos`: one storm per seed; one report (JSON line or table) per run; exit code 1
/// if any run saw a violation.
async fn chaos_command(args: &SimulateArgs, spec: WorldSpec) -> ExitCode {
    let mut breached = 0;
    for run in 0..u64::from(args.runs) {
        let seed = args.seed.wrapping_add(run);
        let world_spec = WorldSpec {
            seed,
            ..spec.clone()
        };
        // The in-memory cloud brings extra fault knobs (hung attaches); the others run
        // with what their simulators offer.
        let mut enforcer = None;
        let world = match args.cloud {
            SimCloud::Fake => SimulatedWorld::start(world_spec).await,
            _ => match make_cloud(args).await {
                Ok((cloud, limits)) => {
                    enforcer = limits;
                    SimulatedWorld::start_on(world_spec, cloud).await
                }
                Err(message) => return config_error(&message),
            },
        };
        let mut world = match world {
            Ok(world) => world,
            Err(e) => {
                eprintln!("pinip: could not start the simulation: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let chaos_spec = chaos::ChaosSpec {
            seed,
            storm: Duration::from_secs(args.chaos_seconds),
            settle: Duration::from_secs(args.timeout_s),
            sweep_interval: Duration::from_secs(2),
        };
        let outcome = chaos::run(&mut world, chaos_spec).await;
        world.shutdown();
        let mut report = match outcome {
            Ok(report) => report,
            Err(e) => {
                eprintln!("pinip: chaos run with seed {seed} failed: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(enforcer) = &enforcer {
            // No floor: kills and restarts make more assignments than the end shows.
            report.cloud_limits = enforcer.report(None);
        }
        if !report.violations.is_empty() || report.duplicates > 0 {
            breached += 1;
        }
        if args.json {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("pinip: {e}"),
            }
        } else {
            println!("== chaos seed {seed}");
            print!("{}", render_table(&report));
        }
    }
    if breached > 0 {
        eprintln!(
            "pinip: {breached} of {} chaos runs saw invariant violations",
            args.runs
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--cloud-limits default` is modelled on EC2 and Compute only.
fn check_limits(args: &SimulateArgs) -> Result<(), String> {
    let limited = args.cloud_limits == CloudLimits::Default;
    if limited && matches!(args.cloud, SimCloud::Fake | SimCloud::Oci) {
        return Err(format!(
            "--cloud-limits default models EC2's and Compute's published limits; --cloud {} has none (use --cloud aws or gcp)",
            args.cloud.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
        ));
    }
    if args.throttled_consume_tokens && !(limited && args.cloud == SimCloud::Aws) {
        return Err(
            "--throttled-consume-tokens applies to EC2's token buckets: it needs --cloud aws --cloud-limits default"
                .into(),
        );
    }
    Ok(())
}

/// The simulated cloud behind `--cloud`, with the limits of `--cloud-limits` in force.
async fn make_cloud(
    args: &SimulateArgs,
) -> Result<(Arc<dyn SimulatedCloud>, Option<Enforcer>), String> {
    let limited = args.cloud_limits == CloudLimits::Default;
    match args.cloud {
        SimCloud::Fake => Ok((Arc::new(FakeSim(FakeCloud::new())), None)),
        SimCloud::Gcp => {
            let sim = GcpSim::start()
                .await
                .map_err(|e| format!("could not start the Compute simulator: {e:#}"))?;
            let enforcer = limited.then(|| Enforcer::compute(sim.compute()));
            Ok((Arc::new(sim), enforcer))
        }
        SimCloud::Oci => OciSimCloud::start()
            .await
            .map(|sim| (Arc::new(sim) as Arc<dyn SimulatedCloud>, None))
            .map_err(|e| format!("could not start the OCI simulator: {e:#}")),
        SimCloud::Aws => {
            let sim = AwsSim::start()
                .await
                .map_err(|e| format!("could not start the EC2 simulator: {e:#}"))?;
            let enforcer = limited.then(|| Enforcer::ec2(sim.ec2(), args.throttled_consume_tokens));
            Ok((Arc::new(sim), enforcer))
        }
    }
}

/// How long a run goes on after the last assignment before the agents stop.
const STEADY_SETTLE: Duration = Duration::from_millis(500);

/// Done when every agent holds an address, or those that do not wait on a pool that
/// has no free address left.
fn settled(statuses: &HashMap<String, AgentStatus>, world: &SimulatedWorld) -> bool {
    let mut exhausted = false;
    for status in statuses.values() {
        match status {
            AgentStatus::Assigned { .. } => {}
            AgentStatus::PoolExhausted { .. } => exhausted = true,
            _ => return false,
        }
    }
    // The pool is read (all of it) only when it decides: polled every 50 ms, it was a
    // share of the harness's own CPU that grew with the pool.
    !exhausted || world.free_pool_addresses() == 0
}

/// A reproducible shuffle of the nodes, so the seed changes who starts first.
fn start_order(nodes: &[SimNode], seed: u64) -> Vec<SimNode> {
    let mut order = nodes.to_vec();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

async fn stop_agents(agents: Vec<AgentHandle>) {
    for agent in &agents {
        agent.shutdown.cancel();
    }
    for agent in agents {
        let node = agent.node.clone();
        match tokio::time::timeout(Duration::from_secs(30), agent.stop()).await {
            Ok(Ok(exit)) => info!(%node, ?exit, "agent stopped"),
            Ok(Err(e)) => warn!(%node, error = %e, "agent ended with an error"),
            Err(_) => warn!(%node, "agent did not stop within 30 s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_order_is_a_seeded_permutation() {
        let nodes: Vec<SimNode> = (0..20)
            .map(|i| SimNode {
                name: format!("n{i}"),
                instance: format!("i{i}"),
                zone: "z".into(),
            })
            .collect();
        let a = start_order(&nodes, 7);
        assert_eq!(a, start_order(&nodes, 7));
        assert_ne!(a, start_order(&nodes, 8));
        let mut names: Vec<_> = a.iter().map(|n| n.name.clone()).collect();
        names.sort();
        let mut expected: Vec<_> = nodes.iter().map(|n| n.name.clone()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }
}
