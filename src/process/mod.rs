//! What every command shares: logging, signals, and the configuration-error exit.

pub mod exit;
pub mod logging;
pub(crate) mod shutdown;
