//! The command line: `pinip run` (the agent) and `pinip simulate` (the agent against
//! an embedded cluster and cloud).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::admin::AdminServer;
use crate::agent::{Agent, AgentError, Exit, ProviderFactory};
use crate::config::{RunArgs, Settings, DOWNWARD_API_NODE_NAME};
use crate::logging::LogLevel;
use crate::providers::CloudProviders;
use crate::simulate::SimulateArgs;
use crate::status_command::StatusArgs;

/// Exit code for configuration errors (and clap's own usage errors).
pub const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "pinip",
    // The commit comes from build.rs (the Dockerfile's PINIP_COMMIT, else git).
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PINIP_COMMIT"), ")"),
    disable_version_flag = true,
    about = "Pins reserved static public IPs to Kubernetes nodes"
)]
pub struct Cli {
    /// Print the version (`-v` as in KubeIP, or `-V`).
    #[arg(short = 'v', long = "version", visible_short_alias = 'V', action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent for one node (what the DaemonSet runs).
    Run(Box<RunArgs>),
    /// Run real agents against an embedded simulated cluster and cloud.
    Simulate(Box<SimulateArgs>),
    /// Where every node stands: addresses, claims, stale records, and (--cloud) the pool.
    Status(Box<StatusArgs>),
}

impl Command {
    /// Log level, JSON lines, developer format.
    pub fn log_settings(&self) -> (LogLevel, bool, bool) {
        match self {
            Command::Run(args) => (args.log.log_level, args.log.log_json, args.log.dev_mode),
            Command::Simulate(args) => (args.log.log_level, args.log.log_json, false),
            Command::Status(args) => (args.log.log_level, args.log.log_json, false),
        }
    }
}

/// `pinip run`.
pub async fn run(args: RunArgs) -> ExitCode {
    let settings = match Settings::from_args(&args, Path::new(DOWNWARD_API_NODE_NAME)) {
        Ok(settings) => settings,
        Err(e) => return config_error(&e.to_string()),
    };
    let client = match kube_client(settings.kubeconfig.as_deref()).await {
        Ok(client) => client,
        Err(e) => return config_error(&format!("cannot reach the Kubernetes API: {e}")),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    run_agent(settings, client, Arc::new(CloudProviders), shutdown).await
}

/// Run one agent to its end and turn the outcome into an exit code.
pub async fn run_agent(
    settings: Settings,
    client: kube::Client,
    providers: Arc<dyn ProviderFactory>,
    shutdown: CancellationToken,
) -> ExitCode {
    info!(node = %settings.node_name, version = env!("CARGO_PKG_VERSION"), commit = env!("PINIP_COMMIT"), dry_run = settings.dry_run, "pinip agent starting");
    let admin_addr = settings.admin_addr;
    let (agent, status) = Agent::new(settings, client, providers);
    // The admin server outlives the agent's own shutdown, so probes see it to the end.
    let admin_stop = CancellationToken::new();
    if let Some(addr) = admin_addr {
        match AdminServer::bind(addr, status, agent.metrics()).await {
            Ok(server) => {
                info!(%addr, "admin server listening (/healthz, /readyz, /metrics)");
                let stop = admin_stop.clone();
                tokio::spawn(async move {
                    if let Err(e) = server.serve(stop).await {
                        error!(error = %e, "admin server failed");
                    }
                });
            }
            Err(e) => {
                return config_error(&format!(
                    "ADMIN_ADDR={addr} cannot be served: {e}; choose a free port or `off`"
                ))
            }
        }
    }
    let outcome = agent.run(shutdown).await;
    admin_stop.cancel();
    match outcome {
        Ok(exit) => {
            match exit {
                Exit::NothingHeld => info!("stopped; no address was held"),
                Exit::Kept(ip) => info!(address = %ip, "stopped; the address stays on the node"),
                Exit::Released(ip) => info!(address = %ip, "stopped; the address was released"),
            }
            ExitCode::SUCCESS
        }
        Err(AgentError::Config(message)) => config_error(&message),
        Err(e) => {
            error!(error = %e, "agent failed");
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr (whatever the log format) and exit code 2.
pub fn config_error(message: &str) -> ExitCode {
    eprintln!("pinip: configuration error: {message}");
    ExitCode::from(EXIT_CONFIG)
}

/// A client from `KUBECONFIG`/`--kubeconfig`, else the in-cluster configuration.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    crate::tls::install_crypto_provider();
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// SIGTERM (kubelet) or Ctrl-C starts the orderly exit; a second signal is not needed.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    info!("shutdown signal received");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
