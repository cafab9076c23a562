//! The cloud side of pinip: the [`Provider`] trait the agent drives, the types it
//! speaks in, and an in-memory `fake` cloud (feature `fake`) for tests and `pinip simulate`.
//!
//! No provider knows about Kubernetes; the agent knows nothing of a cloud SDK.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "contract")]
pub mod contract;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod filter;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "oci")]
pub mod oci;
pub mod order;
mod provider;
mod rate_limit;
mod restore_schedule;
mod types;
#[cfg(feature = "gcp")]
mod window_retry;

pub use error::{ErrorClass, ProviderError};
pub use provider::{Provider, ProviderHandle};
pub use rate_limit::{until_window_turn, AssignmentRateLimit};
pub use types::{
    Instance, InstanceRef, IpFamily, Ownership, PoolAddress, PoolPart, PoolRead, PoolSpec,
    OWNER_CLUSTER_TAG, OWNER_INSTANCE_TAG, OWNER_NODE_TAG, PART_FILTER,
};
