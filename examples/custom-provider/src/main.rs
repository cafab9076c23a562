//! `pinip-nimbus`: pinip's own command line with the Nimbus provider compiled in.
//!
//! - `pinip-nimbus demo`: everything on 127.0.0.1 (see `demo.rs`); exits non-zero on any
//!   surprise. CI runs it.
//! - `pinip-nimbus run …`: the agent, exactly like `pinip run` (same flags and
//!   environment), serving `nimbus://` nodes through `NIMBUS_ENDPOINT` with the bearer
//!   token `NIMBUS_TOKEN`, and AWS/GCP nodes through pinip's own providers.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use pinip::cli::{Cli, Command};
use pinip::config::{Settings, DOWNWARD_API_NODE_NAME};
use pinip_example_custom_provider::demo;
use pinip_example_custom_provider::provider::{NimbusConfig, NimbusProviders};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    pinip::tls::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("demo") {
        return run_demo().await;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(pinip::cli::EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let (level, json, dev_mode) = cli.command.log_settings();
    pinip::logging::init(level, json, dev_mode);
    match cli.command {
        Command::Run(args) => run_agent(*args).await,
        _ => pinip::cli::config_error("pinip-nimbus runs `run` and `demo`; use pinip for the rest"),
    }
}

async fn run_agent(args: pinip::config::RunArgs) -> ExitCode {
    let settings = match Settings::from_args(&args, Path::new(DOWNWARD_API_NODE_NAME)) {
        Ok(settings) => settings,
        Err(e) => return pinip::cli::config_error(&e.to_string()),
    };
    let (Ok(endpoint), Ok(token)) = (
        std::env::var("NIMBUS_ENDPOINT"),
        std::env::var("NIMBUS_TOKEN"),
    ) else {
        return pinip::cli::config_error("set NIMBUS_ENDPOINT and NIMBUS_TOKEN");
    };
    let client = match pinip::cli::kube_client(settings.kubeconfig.as_deref()).await {
        Ok(client) => client,
        Err(e) => {
            return pinip::cli::config_error(&format!("cannot reach the Kubernetes API: {e}"))
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(pinip::cli::cancel_on_signal(shutdown.clone()));
    let providers = Arc::new(NimbusProviders {
        config: NimbusConfig { endpoint, token },
    });
    pinip::cli::run_agent(settings, client, providers, shutdown).await
}

async fn run_demo() -> ExitCode {
    pinip::logging::init(pinip::logging::LogLevel::Warn, false, false);
    match demo::run().await {
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
