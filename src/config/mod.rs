//! Settings of `pinip run`: KubeIP v2's flags and environment variables (same names,
//! units and defaults), plus pinip's own. Everything is checked here, before the
//! agent talks to anything; a bad value is one line naming the variable and the fix.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgAction, Args};
use pinip_providers::{IpFamily, PoolSpec};

use crate::cloud::settings::CloudSettings;
use crate::cloud::{AwsArgs, GcpArgs, OciArgs};
use crate::cluster::claim_store::ClaimSettings;
use crate::cluster::publish::TaintSettings;
use crate::config::duration::parse_go_duration;
use crate::config::filter_syntax::{check_filter, FilterForm};
use crate::domain::exit_decision::{ReleasePolicy, ReleaseSettings};
pub use crate::domain::identity::NodeSettings;
use crate::domain::retry::RetryPolicy;
use crate::process::logging::LogLevel;

pub mod duration;
pub mod filter_syntax;
mod k8s_names;
pub(crate) mod pool_syntax;

use k8s_names::{check_dns_label, check_dns_subdomain, check_label_value, check_qualified_name};

/// Where KubeIP read the node name when `NODE_NAME` is unset (Downward API volume).
pub const DOWNWARD_API_NODE_NAME: &str = "/etc/podinfo/nodeName";

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Name of the node this agent serves (Downward API `spec.nodeName`).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// GCP project (default: from the node's providerID); OCI: the compartment OCID of the reserved public IPs. Ignored on AWS.
    #[arg(long, env = "PROJECT")]
    pub project: Option<String>,
    /// Cloud region (default: derived from the node's zone).
    #[arg(long, env = "REGION")]
    pub region: Option<String>,
    /// Assign an IPv6 address instead of IPv4.
    #[arg(long, env = "IPV6", default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, value_parser = parse_bool("IPV6"))]
    pub ipv6: bool,
    /// Path to a kubeconfig (default: in-cluster configuration).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Longest pause between assignment attempts (Go duration).
    #[arg(long, env = "RETRY_INTERVAL", allow_hyphen_values = true, default_value = "1m", value_parser = duration("RETRY_INTERVAL"))]
    pub retry_interval: Duration,
    /// Failed attempts in a row before the agent reports it is stuck (it keeps trying).
    #[arg(long, env = "RETRY_ATTEMPTS", allow_hyphen_values = true, default_value_t = 60, value_parser = positive_u32("RETRY_ATTEMPTS"))]
    pub retry_attempts: u32,
    /// Pool filter, `;`-separated entries (AWS: `Name=tag:kubeip,Values=reserved`; GCP: `labels.kubeip=reserved`).
    #[arg(long, env = "FILTER", value_delimiter = ';')]
    pub filter: Vec<String>,
    /// Candidate order (AWS: `Tag:<key>`, `PublicIp`, ... with optional ` desc`; GCP: API orderBy).
    #[arg(long, env = "ORDER_BY")]
    pub order_by: Option<String>,
    /// Lifetime of an address claim that is not renewed, in seconds.
    #[arg(long, env = "LEASE_DURATION", allow_hyphen_values = true, default_value_t = 5, value_parser = positive_u32("LEASE_DURATION"))]
    pub lease_duration: u32,
    /// Namespace of the claim Leases.
    #[arg(long, env = "LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// When to release the address on exit: `true`/`auto` (only when the node is going away), `always` (KubeIP), `false`/`never`.
    #[arg(long, env = "RELEASE_ON_EXIT", default_value = "true")]
    pub release_on_exit: ReleasePolicy,
    /// Taint removed from the node once its address is attached.
    #[arg(long, env = "TAINT_KEY")]
    pub taint_key: Option<String>,
    /// How long to wait for the node to report the address as ExternalIP before lifting the taint anyway.
    #[arg(long, env = "TAINT_WAIT", allow_hyphen_values = true, default_value = "2m", value_parser = duration("TAINT_WAIT"))]
    pub taint_wait: Duration,
    /// Name of this cluster, written on the cloud address as its owner.
    #[arg(long, env = "CLUSTER_NAME", default_value = "kubernetes")]
    pub cluster_name: String,
    /// How often the attachment is re-checked with the cloud in steady state.
    #[arg(long, env = "VERIFY_INTERVAL", allow_hyphen_values = true, default_value = "5m", value_parser = duration("VERIFY_INTERVAL"))]
    pub verify_interval: Duration,
    /// Time budget for releasing the address on exit (keep under the pod's grace period).
    #[arg(long, env = "RELEASE_TIMEOUT", allow_hyphen_values = true, default_value = "20s", value_parser = duration("RELEASE_TIMEOUT"))]
    pub release_timeout: Duration,
    /// How often one agent (chosen through the Lease `pinip-sweep`) frees addresses and claims of vanished nodes.
    #[arg(long, env = "SWEEP_INTERVAL", allow_hyphen_values = true, default_value = "5m", value_parser = duration("SWEEP_INTERVAL"))]
    pub sweep_interval: Duration,
    /// How long the Kubernetes API must keep refusing the same call (403) before the agent stops with a configuration error (exit 2); shorter denials, as from an API server that has just started, are retried.
    #[arg(long, env = "PERMISSION_GRACE", allow_hyphen_values = true, default_value = "30s", value_parser = duration("PERMISSION_GRACE"))]
    pub permission_grace: Duration,
    /// Address of the admin server (/healthz, /readyz, /metrics); `off` disables it.
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9090", value_parser = parse_admin_addr)]
    pub admin_addr: AdminAddr,
    /// Decide and log, but write nothing to the cloud or the cluster.
    #[arg(long, env = "DRY_RUN", default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, value_parser = parse_bool("DRY_RUN"))]
    pub dry_run: bool,
    /// With TAINT_KEY: lift the taint anyway (and label the node `pinip.dev/assigned=false`) when no address could be had for this long; unset = keep the taint.
    #[arg(long, env = "TAINT_GIVE_UP", allow_hyphen_values = true, value_parser = duration("TAINT_GIVE_UP"))]
    pub taint_give_up: Option<Duration>,
    /// This pod's name (Downward API `metadata.name`), named as the reporter of Events.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub gcp: GcpArgs,
    #[command(flatten)]
    pub oci: OciArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// trace, debug, info, warn (or warning), error (fatal and panic are read as error).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: LogLevel,
    /// One JSON object per log line (KubeIP's flag name).
    #[arg(long = "json", env = "LOG_JSON", default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, value_parser = parse_bool("LOG_JSON"))]
    pub log_json: bool,
    /// Human-friendly multi-line logs with source locations (KubeIP accepted this flag and ignored it).
    #[arg(long = "develop-mode", env = "DEV_MODE", default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, value_parser = parse_bool("DEV_MODE"))]
    pub dev_mode: bool,
}

/// Log flags of the commands whose `--json` means their output format.
#[derive(Args, Clone, Debug)]
pub struct ToolLogArgs {
    /// trace, debug, info, warn (or warning), error. Logs go to stderr.
    #[arg(long, env = "LOG_LEVEL", default_value = "warn")]
    pub log_level: LogLevel,
    /// One JSON object per log line.
    #[arg(long = "log-json", env = "LOG_JSON", default_value = "false", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, value_parser = parse_bool("LOG_JSON"))]
    pub log_json: bool,
}

/// Validated settings of one agent, in parts: each component gets only its own.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: NodeSettings,
    pub cloud: CloudSettings,
    pub claims: ClaimSettings,
    pub taint: TaintSettings,
    pub retry: RetryPolicy,
    pub release: ReleaseSettings,
    /// How often the attachment is re-checked with the cloud in steady state.
    pub verify_interval: Duration,
    /// How often the elected agent sweeps what vanished nodes left.
    pub sweep_interval: Duration,
    /// How long the same 403 must persist before it is a configuration error.
    pub permission_grace: Duration,
    pub kubeconfig: Option<PathBuf>,
    pub admin_addr: Option<SocketAddr>,
    /// Decide and log, write nothing to the cloud or the cluster.
    pub dry_run: bool,
}

/// A setting is wrong; the message names it and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Validate `args`. `downward_api_file` is where the node name is read from when
    /// `NODE_NAME` is unset (KubeIP's fallback).
    pub fn from_args(
        args: &RunArgs,
        downward_api_file: &std::path::Path,
    ) -> Result<Settings, ConfigError> {
        let node_name = match args.node_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => std::fs::read_to_string(downward_api_file)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConfigError(
                        "NODE_NAME is not set: set it from the Downward API (env NODE_NAME, valueFrom.fieldRef.fieldPath: spec.nodeName)".into(),
                    )
                })?,
        };
        check_dns_subdomain("NODE_NAME", &node_name)?;
        check_dns_label("LEASE_NAMESPACE", &args.lease_namespace)?;
        check_label_value("CLUSTER_NAME", &args.cluster_name)?;
        let filter = args
            .filter
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>();
        let form = check_filter(&filter).map_err(ConfigError)?;
        check_pool_and_cloud(args, &form).map_err(ConfigError)?;
        (args.oci.check(args.ipv6, form == FilterForm::OciTags)).map_err(ConfigError)?;
        if let Some(taint) = &args.taint_key {
            check_qualified_name("TAINT_KEY", taint)?;
        }
        Ok(Settings {
            node: NodeSettings {
                name: node_name,
                cluster: args.cluster_name.clone(),
                pod_name: non_empty(&args.pod_name),
            },
            cloud: CloudSettings {
                project: non_empty(&args.project),
                region: non_empty(&args.region),
                pool: PoolSpec {
                    filter,
                    order_by: non_empty(&args.order_by),
                    family: if args.ipv6 {
                        IpFamily::V6
                    } else {
                        IpFamily::V4
                    },
                },
                aws: args.aws.clone(),
                gcp: args.gcp.clone(),
                oci: args.oci.clone(),
            },
            claims: ClaimSettings {
                namespace: args.lease_namespace.clone(),
                duration: Duration::from_secs(u64::from(args.lease_duration)),
            },
            taint: TaintSettings {
                key: non_empty(&args.taint_key),
                wait: args.taint_wait,
                give_up: args.taint_give_up,
            },
            retry: RetryPolicy {
                interval: args.retry_interval,
                attempts: args.retry_attempts,
            },
            release: ReleaseSettings {
                on_exit: args.release_on_exit,
                timeout: args.release_timeout,
            },
            verify_interval: args.verify_interval,
            sweep_interval: args.sweep_interval,
            permission_grace: args.permission_grace,
            kubeconfig: args
                .kubeconfig
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            admin_addr: args.admin_addr.0,
            dry_run: args.dry_run,
        })
    }
}

/// `ADMIN_ADDR`: a socket address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminAddr(pub Option<SocketAddr>);

fn parse_admin_addr(text: &str) -> Result<AdminAddr, String> {
    match text.trim() {
        "" | "off" | "false" | "none" => Ok(AdminAddr(None)),
        other => other
            .parse()
            .map(|addr| AdminAddr(Some(addr)))
            .map_err(|_| {
                format!("ADMIN_ADDR={other:?} is not host:port (e.g. 0.0.0.0:9090) or `off`")
            }),
    }
}

/// The cloud-side settings, as far as they can be judged before the cloud is known.
fn check_pool_and_cloud(args: &RunArgs, form: &filter_syntax::FilterForm) -> Result<(), String> {
    if let Some(order_by) = non_empty(&args.order_by) {
        pool_syntax::check_order_by(&order_by, form)?;
    }
    for (var, value) in [("PROJECT", &args.project), ("REGION", &args.region)] {
        if let Some(value) = non_empty(value) {
            pool_syntax::check_identifier(var, &value)?;
        }
    }
    if let Some(endpoint) = non_empty(&args.gcp.compute_endpoint) {
        pool_syntax::check_endpoint("GCP_COMPUTE_ENDPOINT", &endpoint)?;
    }
    if args.taint_give_up.is_some() && non_empty(&args.taint_key).is_none() {
        return Err("TAINT_GIVE_UP is set without TAINT_KEY: there is no taint to lift; set TAINT_KEY or drop TAINT_GIVE_UP".into());
    }
    Ok(())
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn duration(var: &'static str) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| parse_go_duration(s).map_err(|e| format!("{var}: {e}"))
}

fn positive_u32(var: &'static str) -> impl Fn(&str) -> Result<u32, String> + Clone {
    move |s| match s.trim().parse::<i64>() {
        Ok(n) if n >= 1 && n <= i64::from(u32::MAX) => Ok(n as u32),
        Ok(n) => Err(format!("{var}={n} must be a whole number of at least 1")),
        Err(_) => Err(format!("{var}={s:?} is not a whole number")),
    }
}

/// Go's `strconv.ParseBool` forms (what KubeIP accepted), plus yes/no.
fn parse_bool(var: &'static str) -> impl Fn(&str) -> Result<bool, String> + Clone {
    move |s| match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "yes" | "YES" | "Yes" | "y" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "no" | "NO" | "No" | "n" | "" => Ok(false),
        other => Err(format!(
            "{var}={other:?} is not a boolean; use true or false"
        )),
    }
}

/// Helper for places that need an address from text with a clear error.
pub fn parse_ip(var: &str, value: &str) -> Result<IpAddr, ConfigError> {
    IpAddr::from_str(value.trim())
        .map_err(|_| ConfigError(format!("{var}={value:?} is not an IP address")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["pinip"];
        argv.extend_from_slice(args);
        let parsed = Harness::try_parse_from(argv).map_err(|e| e.to_string())?;
        Settings::from_args(&parsed.run, std::path::Path::new("/nonexistent/nodeName"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn kubeip_defaults() {
        let s = parse(&["--node-name", "node-a"]).unwrap();
        assert_eq!(s.retry.interval, Duration::from_secs(60));
        assert_eq!(s.retry.attempts, 60);
        assert_eq!(s.claims.duration, Duration::from_secs(5));
        assert_eq!(s.claims.namespace, "default");
        assert_eq!(s.release.on_exit, ReleasePolicy::Auto);
        assert_eq!(s.cloud.pool.family, IpFamily::V4);
        assert!(s.cloud.pool.filter.is_empty());
    }

    #[test]
    fn boolean_flags_work_like_kubeip() {
        assert_eq!(
            parse(&["--node-name", "n", "--ipv6"])
                .unwrap()
                .cloud
                .pool
                .family,
            IpFamily::V6
        );
        assert_eq!(
            parse(&["--node-name", "n", "--ipv6=false"])
                .unwrap()
                .cloud
                .pool
                .family,
            IpFamily::V4
        );
        assert_eq!(
            parse(&["--node-name", "n", "--ipv6=T"])
                .unwrap()
                .cloud
                .pool
                .family,
            IpFamily::V6
        );
    }

    #[test]
    fn filter_splits_on_semicolons() {
        let s = parse(&[
            "--node-name",
            "n",
            "--filter",
            "Name=tag:kubeip,Values=reserved;Name=tag:env,Values=a,b",
        ])
        .unwrap();
        assert_eq!(
            s.cloud.pool.filter,
            vec!["Name=tag:kubeip,Values=reserved", "Name=tag:env,Values=a,b"]
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--node-name", "n", "--retry-interval", "0s"],
                "RETRY_INTERVAL",
            ),
            (
                &["--node-name", "n", "--retry-interval", "-5m"],
                "RETRY_INTERVAL",
            ),
            (
                &["--node-name", "n", "--lease-duration", "0"],
                "LEASE_DURATION",
            ),
            (
                &["--node-name", "n", "--lease-duration", "-3"],
                "LEASE_DURATION",
            ),
            (
                &["--node-name", "n", "--retry-attempts", "0"],
                "RETRY_ATTEMPTS",
            ),
            (&["--node-name", "n", "--log-level", "verbose"], "LOG_LEVEL"),
            (
                &["--node-name", "n", "--release-on-exit", "sometimes"],
                "RELEASE_ON_EXIT",
            ),
            (&["--node-name", "n", "--ipv6=maybe"], "IPV6"),
            (&["--node-name", "Node_A"], "NODE_NAME"),
            (
                &["--node-name", "n", "--lease-namespace", "Kube System"],
                "LEASE_NAMESPACE",
            ),
            (
                &["--node-name", "n", "--taint-key", "bad key!"],
                "TAINT_KEY",
            ),
            (
                &["--node-name", "n", "--filter", "Name=tag:kubeip"],
                "FILTER",
            ),
            (&["--node-name", "n", "--filter", "labels.kubeip"], "FILTER"),
            (&["--node-name", "n", "--admin-addr", "9090"], "ADMIN_ADDR"),
            (
                &["--node-name", "n", "--taint-give-up", "0s"],
                "TAINT_GIVE_UP",
            ),
            (&[], "NODE_NAME"),
        ];
        for (args, var) in cases {
            let err = parse(args).unwrap_err();
            assert!(err.contains(var), "{args:?}: {err}");
        }
    }

    #[test]
    fn node_name_falls_back_to_downward_api_file() {
        let dir = std::env::temp_dir().join(format!("pinip-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("nodeName");
        std::fs::write(&file, "node-from-file\n").unwrap();
        let parsed = Harness::try_parse_from(["pinip"]).unwrap();
        let s = Settings::from_args(&parsed.run, &file).unwrap();
        assert_eq!(s.node.name, "node-from-file");
        std::fs::remove_dir_all(dir).ok();
    }
}
