//! pinip: pins reserved static public IPs to Kubernetes nodes.
//!
//! The agent (`pinip run`) serves one node: it finds its instance, adopts the pool
//! address it already holds or claims a free one through a per-address Lease, attaches
//! it through a [`pinip_providers::Provider`], publishes it on the Node, and on exit
//! releases it only when the node is going away.

pub mod admin;
pub mod agent;
pub mod claim;
pub mod cli;
pub mod cloud_args;
pub mod config;
pub mod dry_run;
pub mod duration;
pub mod events;
pub mod exit_decision;
pub mod filter_syntax;
pub mod identity;
pub mod kube_errors;
pub mod logging;
pub mod metered;
pub mod metrics;
pub mod permissions;
pub mod providers;
pub mod publish;
pub mod selection;
pub mod simulate;
pub mod status;
pub mod status_command;
pub mod status_report;
pub mod sweep;
pub mod sweep_plan;
pub mod tls;
