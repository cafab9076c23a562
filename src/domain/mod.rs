//! The pure decisions: what a providerID means, which address to try, whether a claim
//! still binds, whether to release on exit, what a sweep frees, how long to wait before
//! trying again. Nothing here does IO (`tests/architecture.rs` checks the imports).

pub mod claim_record;
pub mod exit_decision;
pub mod identity;
pub(crate) mod pacing;
pub mod pool_part;
pub(crate) mod retry;
pub(crate) mod selection;
pub(crate) mod sweep_leadership;
pub mod sweep_plan;
pub(crate) mod unchanged_since;

#[cfg(test)]
pub(crate) mod fixtures;
