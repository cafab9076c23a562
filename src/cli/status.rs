//! `pinip status` (also `kubectl pinip status` when installed as `kubectl-pinip`):
//! reads the cluster (and with `--cloud` the pool) and prints where every node stands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgAction, Args, ValueEnum};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::Api;
use pinip_providers::{IpFamily, PoolSpec};

use crate::cli::status_report::{build, render_addresses, render_table, StatusReport};
use crate::cloud::factory::ProviderFactory;
use crate::cloud::settings::CloudSettings;
use crate::cloud::{AwsArgs, GcpArgs, OciArgs};
use crate::cluster::claim_store::list_claims;
use crate::cluster::client::kube_client;
use crate::config::ToolLogArgs;
use crate::domain::identity::parse_provider_id;
use crate::process::exit::config_error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// Human tables.
    Table,
    /// One JSON object, for scripts.
    Json,
    /// One address per line: what to hand to a third party to whitelist.
    Addresses,
}

#[derive(Args, Clone, Debug)]
pub struct StatusArgs {
    /// Path to a kubeconfig (default: the usual kubeconfig, or in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the claim Leases (the shipped manifests use pinip-system).
    #[arg(
        long,
        short = 'n',
        env = "LEASE_NAMESPACE",
        default_value = "pinip-system"
    )]
    pub lease_namespace: String,
    /// Also list the pool as the cloud sees it (needs the cloud credentials and FILTER).
    #[arg(long = "cloud", action = ArgAction::SetTrue)]
    pub read_cloud: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: StatusFormat,
    /// The pool filter, as the DaemonSet sets it (with --cloud).
    #[arg(long, env = "FILTER", value_delimiter = ';')]
    pub filter: Vec<String>,
    /// Read the IPv6 pool (with --cloud).
    #[arg(long, env = "IPV6", action = ArgAction::SetTrue)]
    pub ipv6: bool,
    #[arg(long, env = "PROJECT")]
    pub project: Option<String>,
    #[arg(long, env = "REGION")]
    pub region: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub gcp: GcpArgs,
    #[command(flatten)]
    pub oci: OciArgs,
    #[command(flatten)]
    pub log: ToolLogArgs,
}

pub async fn command(args: StatusArgs, providers: Arc<dyn ProviderFactory>) -> ExitCode {
    let client = match kube_client(args.kubeconfig.as_deref()).await {
        Ok(client) => client,
        Err(e) => return config_error(&format!("cannot reach the Kubernetes API: {e}")),
    };
    let cloud = args.read_cloud.then(|| {
        let pool = PoolSpec {
            filter: args
                .filter
                .iter()
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect(),
            order_by: None,
            family: if args.ipv6 {
                IpFamily::V6
            } else {
                IpFamily::V4
            },
        };
        let settings = CloudSettings {
            project: args.project.clone(),
            region: args.region.clone(),
            pool,
            aws: args.aws.clone(),
            gcp: args.gcp.clone(),
            oci: args.oci.clone(),
        };
        (providers, settings)
    });
    let report = match gather(client, &args.lease_namespace, cloud).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("pinip status: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match args.output {
        StatusFormat::Table => print!("{}", render_table(&report)),
        StatusFormat::Addresses => print!("{}", render_addresses(&report)),
        StatusFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("pinip status: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::SUCCESS
}

/// Read nodes and claims (and the pool, given a provider) and build the report.
pub async fn gather(
    client: kube::Client,
    lease_namespace: &str,
    cloud: Option<(Arc<dyn ProviderFactory>, CloudSettings)>,
) -> anyhow::Result<StatusReport> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let claims = list_claims(&Api::<Lease>::namespaced(client, lease_namespace)).await?;
    let pool = match cloud {
        None => None,
        Some((providers, settings)) => {
            // The pool is regional: any node of the cluster tells the provider where to look.
            let instance = nodes
                .iter()
                .filter_map(|n| n.spec.as_ref()?.provider_id.as_deref())
                .find_map(|id| parse_provider_id(id).ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("no node has a providerID, so the cloud cannot be chosen")
                })?;
            let provider = providers.provider_for(&instance, &settings).await?;
            Some(provider.list_pool().await?)
        }
    };
    Ok(build(&nodes, &claims, pool.as_deref()))
}
