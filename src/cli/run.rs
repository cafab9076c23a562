//! `pinip run`: validate the settings, reach the API server, run one agent to its end
//! and turn the outcome into an exit code.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::admin::AdminServer;
use crate::agent::{Agent, AgentError, Exit};
use crate::cloud::factory::ProviderFactory;
use crate::cluster::client::kube_client;
use crate::config::{RunArgs, Settings, DOWNWARD_API_NODE_NAME};
use crate::process::exit::config_error;
use crate::process::shutdown;

/// `pinip run`, the nodes' clouds served by `providers`.
pub async fn command(args: RunArgs, providers: Arc<dyn ProviderFactory>) -> ExitCode {
    let settings = match Settings::from_args(&args, Path::new(DOWNWARD_API_NODE_NAME)) {
        Ok(settings) => settings,
        Err(e) => return config_error(&e.to_string()),
    };
    let client = match kube_client(settings.kubeconfig.as_deref()).await {
        Ok(client) => client,
        Err(e) => return config_error(&format!("cannot reach the Kubernetes API: {e}")),
    };
    run_agent(settings, client, providers, shutdown::on_signal()).await
}

/// Run one agent to its end and turn the outcome into an exit code.
pub async fn run_agent(
    settings: Settings,
    client: kube::Client,
    providers: Arc<dyn ProviderFactory>,
    shutdown: CancellationToken,
) -> ExitCode {
    info!(node = %settings.node.name, version = env!("CARGO_PKG_VERSION"), commit = env!("PINIP_COMMIT"), dry_run = settings.dry_run, "pinip agent starting");
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
