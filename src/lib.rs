//! pinip: pins reserved static public IPs to Kubernetes nodes.
//!
//! The agent (`pinip run`) serves one node: it finds its instance, adopts the pool
//! address it already holds or claims a free one through a per-address Lease, attaches
//! it through a [`pinip_providers::Provider`], publishes it on the Node, and on exit
//! releases it only when the node is going away.
//!
//! The folders are the layers (docs/design.md, "The moving parts"):
//! - [`domain`]: the pure decisions (no IO);
//! - [`config`]: `pinip run`'s settings, validated before anything is contacted;
//! - [`cluster`]: the Kubernetes side (claims, publication, Events, API errors);
//! - [`cloud`]: the cloud side (provider factory, per-cloud settings, decorators);
//! - [`agent`]: one node's life, sequencing the above;
//! - [`admin`]: probes, metrics and the agent's status;
//! - [`cli`] and [`process`]: the commands, and what every command shares (logging,
//!   signals, exit codes);
//! - `simulate` (cargo feature `simulate`): the playground and test harness.

pub mod admin;
pub mod agent;
pub mod cli;
pub mod cloud;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod process;
#[cfg(feature = "simulate")]
pub mod simulate;
