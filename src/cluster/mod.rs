//! The Kubernetes side: the claim Leases, the Node's publication, Events, the client,
//! the API's error classes, and the RBAC the agent needs.

pub(crate) mod census;
pub mod claim_store;
pub mod client;
pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod leases;
pub mod permissions;
pub(crate) mod publish;
