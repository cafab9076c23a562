//! `pinip-nimbus demo`: the real agent, with the Nimbus provider, against a Nimbus
//! cloud and a Kubernetes API server, both simulated on 127.0.0.1. Three nodes share a
//! pool of two addresses: two get one, the third waits; when a node is deleted, its
//! address is released and goes to the node that waited. Everything is checked against
//! the cloud's own state; any surprise is an error.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use clap::Parser;
use pinip::admin::status::AgentStatus;
use pinip::agent::{Agent, AgentError, Exit};
use pinip::cli::{Cli, Command};
use pinip::config::Settings;
use pinip_sim::kube::KubeSim;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cloud::NimbusCloud;
use crate::provider::{NimbusConfig, NimbusProviders};

/// No step of the demo waits longer than this.
const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "nimbus-demo-token";
const ZONE: &str = "nimbus-1a";
const FILTER: &str = "labels.pool=egress";

/// What happened, for the printout.
#[derive(Debug)]
pub struct DemoReport {
    pub cloud_endpoint: String,
    pub kube_endpoint: String,
    /// node → address, after the first round.
    pub assigned: BTreeMap<String, IpAddr>,
    pub waited: String,
    /// The deleted node, its address, and who got it next.
    pub handover: (String, IpAddr, String),
    /// Nimbus API calls by route.
    pub calls: BTreeMap<String, u64>,
}

struct RunningAgent {
    node: String,
    instance: String,
    status: watch::Receiver<AgentStatus>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<Exit, AgentError>>,
}

impl RunningAgent {
    async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&AgentStatus) -> bool,
    ) -> anyhow::Result<AgentStatus> {
        let waited = tokio::time::timeout(WAIT, self.status.wait_for(|s| pred(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match waited {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) => bail!("{}: the agent ended while waiting for {what}", self.node),
            Err(_) => bail!(
                "{}: no {what} within {WAIT:?} (last: {:?})",
                self.node,
                self.status.borrow()
            ),
        }
    }

    async fn stop(self) -> anyhow::Result<Exit> {
        self.shutdown.cancel();
        match tokio::time::timeout(WAIT, self.task).await {
            Ok(Ok(Ok(exit))) => Ok(exit),
            Ok(Ok(Err(e))) => Err(anyhow!("{}: the agent failed: {e}", self.node)),
            Ok(Err(e)) => Err(anyhow!("{}: the agent task failed: {e}", self.node)),
            Err(_) => Err(anyhow!(
                "{}: the agent did not stop within {WAIT:?}",
                self.node
            )),
        }
    }
}

/// Settings exactly as `pinip run` builds them from its flags (and environment).
fn settings(node: &str, kubeconfig: &Path) -> anyhow::Result<Settings> {
    let kubeconfig = kubeconfig.to_string_lossy();
    let cli = Cli::try_parse_from([
        "pinip",
        "run",
        "--node-name",
        node,
        "--filter",
        FILTER,
        "--cluster-name",
        "nimbus-demo",
        "--kubeconfig",
        &kubeconfig,
        "--admin-addr",
        "off",
        "--retry-interval",
        "1s",
        "--lease-duration",
        "2",
    ])?;
    let Command::Run(args) = cli.command else {
        bail!("`pinip run` parsed as another command");
    };
    Ok(Settings::from_args(&args, Path::new("/nonexistent"))?)
}

async fn spawn(
    node: &str,
    instance: &str,
    kubeconfig: &Path,
    config: &NimbusConfig,
) -> anyhow::Result<RunningAgent> {
    let client = pinip::cluster::client::kube_client(Some(kubeconfig)).await?;
    let providers = Arc::new(NimbusProviders {
        config: Some(config.clone()),
    });
    let (agent, status) = Agent::new(settings(node, kubeconfig)?, client, providers);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(agent.run(shutdown.clone()));
    Ok(RunningAgent {
        node: node.to_string(),
        instance: instance.to_string(),
        status,
        shutdown,
        task,
    })
}

fn assigned_address(status: &AgentStatus) -> Option<IpAddr> {
    match status {
        AgentStatus::Assigned { address, .. } => Some(*address),
        _ => None,
    }
}

/// `pinip-nimbus demo`: run the scenario and print what happened; non-zero on any surprise.
pub async fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    pinip::process::logging::init(pinip::process::logging::LogLevel::Warn, false, false);
    match run().await {
        Ok(report) => {
            println!(
                "nimbus cloud {} / kubernetes API {}",
                report.cloud_endpoint, report.kube_endpoint
            );
            for (node, ip) in &report.assigned {
                println!("  {node}: {ip}");
            }
            println!("  {}: waited (pool of 2 for 3 nodes)", report.waited);
            let (gone, ip, heir) = &report.handover;
            println!("{gone} deleted: {ip} released and re-assigned to {heir}");
            let calls: Vec<String> = report
                .calls
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            println!("nimbus API calls: {}", calls.join(", "));
            println!("custom provider demo: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custom provider demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run() -> anyhow::Result<DemoReport> {
    pinip::cloud::tls::install_crypto_provider();
    let cloud = NimbusCloud::start(TOKEN)
        .await
        .context("starting the Nimbus cloud")?;
    let kube = KubeSim::start()
        .await
        .context("starting the Kubernetes API simulator")?;
    let workdir: PathBuf =
        std::env::temp_dir().join(format!("pinip-nimbus-demo-{}", std::process::id()));
    let kubeconfig = workdir.join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig)?;
    let result = scenario(&cloud, &kube, &kubeconfig).await;
    cloud.shutdown();
    kube.shutdown();
    let _ = std::fs::remove_dir_all(&workdir);
    result
}

async fn scenario(
    cloud: &NimbusCloud,
    kube: &KubeSim,
    kubeconfig: &Path,
) -> anyhow::Result<DemoReport> {
    // The cloud: three VMs, a pool of two reserved addresses, and an address outside the
    // pool held by a VM pinip does not manage (it must never be touched).
    for n in 1..=3u8 {
        cloud.add_instance(&format!("vm-{n}"), ZONE, IpAddr::from([10, 1, 0, n]));
    }
    cloud.add_instance("vm-unmanaged", ZONE, IpAddr::from([10, 1, 0, 99]));
    let pool: [IpAddr; 2] = [
        IpAddr::from([203, 0, 113, 10]),
        IpAddr::from([203, 0, 113, 11]),
    ];
    cloud.add_address("addr-a", pool[0], &[("pool", "egress")]);
    cloud.add_address("addr-b", pool[1], &[("pool", "egress")]);
    cloud.add_address(
        "addr-other",
        IpAddr::from([203, 0, 113, 99]),
        &[("pool", "other")],
    );
    cloud.attach_by_hand("addr-other", "vm-unmanaged");

    // The cluster: one Node per VM, registered by a (simulated) Nimbus kubelet.
    let config = NimbusConfig {
        endpoint: cloud.endpoint(),
        token: TOKEN.to_string(),
    };
    let mut agents = Vec::new();
    for n in 1..=3u8 {
        let (node, instance) = (format!("node-{n}"), format!("vm-{n}"));
        let provider_id = format!("nimbus:///{ZONE}/{instance}");
        kube.add_node(&node, Some(&provider_id), BTreeMap::new(), Vec::new());
        agents.push(spawn(&node, &instance, kubeconfig, &config).await?);
    }

    // Two nodes get an address, the third waits.
    for agent in &mut agents {
        agent
            .wait_for("an address or a full pool", |s| {
                s.is_ready() || matches!(s, AgentStatus::PoolExhausted { .. })
            })
            .await?;
    }
    let mut assigned = BTreeMap::new();
    let mut waiting = Vec::new();
    for agent in &agents {
        let status = agent.status.borrow().clone();
        match assigned_address(&status) {
            Some(ip) => {
                ensure!(
                    cloud.attached_to(&agent.instance) == vec![ip],
                    "{} says {ip}, the cloud says {:?}",
                    agent.node,
                    cloud.attached_to(&agent.instance)
                );
                assigned.insert(agent.node.clone(), ip);
            }
            None => waiting.push(agent.node.clone()),
        }
    }
    ensure!(
        assigned.len() == 2 && waiting.len() == 1,
        "expected 2 assigned and 1 waiting: {assigned:?} {waiting:?}"
    );
    let distinct: std::collections::BTreeSet<_> = assigned.values().collect();
    ensure!(distinct.len() == 2, "one address given twice: {assigned:?}");

    // A node is deleted: its agent releases the address, and the waiting node gets it.
    let (gone_node, gone_ip) = assigned
        .iter()
        .next()
        .map(|(n, ip)| (n.clone(), *ip))
        .ok_or_else(|| anyhow!("nothing assigned"))?;
    ensure!(
        kube.delete_node(&gone_node),
        "{gone_node} could not be deleted"
    );
    let gone_index = agents
        .iter()
        .position(|a| a.node == gone_node)
        .ok_or_else(|| anyhow!("no agent for {gone_node}"))?;
    agents[gone_index]
        .wait_for("the release", |s| {
            matches!(s, AgentStatus::WaitingForNode(_))
        })
        .await?;
    let waited = waiting.remove(0);
    let heir_index = agents
        .iter()
        .position(|a| a.node == waited)
        .ok_or_else(|| anyhow!("no agent for {waited}"))?;
    let taken = agents[heir_index]
        .wait_for("the released address", AgentStatus::is_ready)
        .await?;
    ensure!(
        assigned_address(&taken) == Some(gone_ip),
        "{waited} got {taken:?}, expected {gone_ip}"
    );
    ensure!(
        cloud.attached_to(&agents[gone_index].instance).is_empty(),
        "{gone_node}'s VM still holds an address"
    );
    ensure!(
        cloud.attached_to("vm-unmanaged") == vec![IpAddr::from([203, 0, 113, 99])],
        "the address outside the pool was touched"
    );

    for agent in agents {
        agent.stop().await?;
    }
    Ok(DemoReport {
        cloud_endpoint: cloud.endpoint(),
        kube_endpoint: kube.url(),
        assigned,
        waited: waited.clone(),
        handover: (gone_node, gone_ip, waited),
        calls: cloud.calls(),
    })
}
