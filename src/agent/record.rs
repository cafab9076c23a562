//! The ownership record of a fresh attach, written beside the claim's mark and the
//! publication rather than before them (docs/design.md, "The critical path of one
//! assignment").
//!
//! It runs on a task of its own: a pass or a publication that fails or is dropped
//! never cuts it off, so the record lands whenever the agent lives past its attach (a
//! stopping agent waits a few seconds for it). The agent waits for it before it does
//! anything else with the address (steady state, release); one that could not be
//! written is written by the next verification (`repair_ownership`).

use std::net::IpAddr;
use std::time::Duration;

use pinip_providers::{
    ErrorClass, Instance, Ownership, PoolAddress, ProviderError, ProviderHandle,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::acquire::ATTACH_TIMEOUT;
use super::report::Outcome;
use super::{cloud_within, Agent, NodeContext};
use crate::domain::retry::Backoff;

/// How long a stopping agent still waits for a record in flight.
const STOPPING_WAIT: Duration = Duration::from_secs(5);

/// A record write in flight for `address`.
pub(super) struct PendingRecord {
    address: IpAddr,
    task: JoinHandle<Result<(), ProviderError>>,
}

impl PendingRecord {
    /// Start writing `owner` on `address`, just attached to `instance`.
    pub(super) fn start(
        provider: ProviderHandle,
        address: PoolAddress,
        instance: Instance,
        owner: Ownership,
    ) -> PendingRecord {
        let ip = address.ip;
        let task = tokio::spawn(async move {
            let mut pauses = Backoff::RECORD.delays();
            loop {
                let error = match cloud_within(
                    ATTACH_TIMEOUT,
                    provider.record_owner(&address, &instance, &owner),
                )
                .await
                {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                };
                let again = matches!(error.class, ErrorClass::Transient | ErrorClass::Throttled);
                match pauses.next() {
                    Some(pause) if again => {
                        tokio::time::sleep(pause.max(error.retry_after.unwrap_or_default())).await
                    }
                    _ => return Err(error),
                }
            }
        });
        PendingRecord { address: ip, task }
    }
}

impl Agent {
    /// Wait for the record, and report it if it could not be written. After a shutdown
    /// the wait is cut to [`STOPPING_WAIT`] (a record refused by a quota may take
    /// minutes, a pod's grace period is short): a record in flight usually lands in it,
    /// and one that does not is written by the next agent's adoption or cleared by the
    /// release.
    pub(super) async fn finish_record(
        &self,
        ctx: &NodeContext,
        mut record: PendingRecord,
        shutdown: &CancellationToken,
    ) {
        let joined = tokio::select! {
            joined = &mut record.task => joined,
            _ = shutdown.cancelled() => {
                match tokio::time::timeout(STOPPING_WAIT, &mut record.task).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        record.task.abort();
                        debug!(address = %record.address, "stopping before the ownership record was written; the next agent writes it");
                        return;
                    }
                }
            }
        };
        let failed = match joined {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(e) => ProviderError::new(
                ErrorClass::Transient,
                "record_owner",
                format!("the record task failed: {e}"),
            ),
        };
        let error = failed.to_string();
        let outcome = Outcome::RecordFailed {
            address: record.address,
            error: &error,
            class: &failed.class,
        };
        self.report.report(Some(&ctx.notifier), outcome).await;
    }
}
