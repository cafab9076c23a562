//! What the agent shows of itself: the admin server (/healthz, /readyz, /metrics), the
//! metrics, and the status the probes read.

pub mod metrics;
mod server;
pub mod status;

pub use server::AdminServer;
