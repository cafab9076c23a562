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
    /// Cuts a deferral short: a stopping agent writes the record at once.
    hurry: CancellationToken,
}

impl PendingRecord {
    /// Start writing `owner` on `address`, just attached to `instance`, after `defer`
    /// if given (a quota window's pacing: `domain::pacing::record_deferral`).
    pub(super) fn start(
        provider: ProviderHandle,
        address: PoolAddress,
        instance: Instance,
        owner: Ownership,
        defer: Option<Duration>,
    ) -> PendingRecord {
        let ip = address.ip;
        let hurry = CancellationToken::new();
        let hurried = hurry.clone();
        let task = tokio::spawn(async move {
            if let Some(defer) = defer {
                debug!(address = %address.ip, defer_ms = defer.as_millis() as u64, "the ownership record waits for the next quota window");
                tokio::select! {
                    _ = tokio::time::sleep(defer) => {}
                    _ = hurried.cancelled() => {}
                }
            }
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
        PendingRecord {
            address: ip,
            task,
            hurry,
        }
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
                record.hurry.cancel();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;
    use pinip_providers::{InstanceRef, Provider};

    use super::*;

    /// Counts the records written; nothing else is called.
    #[derive(Default)]
    struct Records(AtomicU32);

    fn unused(op: &'static str) -> ProviderError {
        ProviderError::new(ErrorClass::Permanent, op, "not used by this test")
    }

    #[async_trait]
    impl Provider for Records {
        fn name(&self) -> &'static str {
            "records"
        }
        async fn describe_instance(&self, _: &InstanceRef) -> Result<Instance, ProviderError> {
            Err(unused("describe_instance"))
        }
        async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
            Err(unused("list_pool"))
        }
        async fn attach(
            &self,
            _: &PoolAddress,
            _: &Instance,
            _: &Ownership,
        ) -> Result<(), ProviderError> {
            Err(unused("attach"))
        }
        async fn record_owner(
            &self,
            _: &PoolAddress,
            _: &Instance,
            _: &Ownership,
        ) -> Result<(), ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn detach(&self, _: &PoolAddress, _: &InstanceRef) -> Result<(), ProviderError> {
            Err(unused("detach"))
        }
    }

    fn start(provider: &Arc<Records>, defer: Option<Duration>) -> PendingRecord {
        let reference = InstanceRef {
            cloud: "fake".into(),
            project: None,
            zone: "z-1a".into(),
            id: "i-1".into(),
        };
        let address = PoolAddress {
            id: "a-1".into(),
            ip: "192.0.2.1".parse().expect("an IP"),
            attached_to: Some("i-1".into()),
            owner: None,
            labels: Arc::new(BTreeMap::new()),
        };
        let owner = Ownership {
            cluster: "c".into(),
            node: "n-1".into(),
            instance: "i-1".into(),
        };
        let instance = Instance {
            reference,
            nic: None,
            private_ip: None,
            reserved_ips: Vec::new(),
        };
        let handle: ProviderHandle = provider.clone();
        PendingRecord::start(handle, address, instance, owner, defer)
    }

    #[tokio::test]
    async fn a_record_is_written_at_once_unless_deferred() {
        let provider = Arc::new(Records::default());
        let record = start(&provider, None);
        record.task.await.expect("joined").expect("written");
        assert_eq!(provider.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_deferred_record_waits_until_a_stopping_agent_hurries_it() {
        let provider = Arc::new(Records::default());
        let record = start(&provider, Some(Duration::from_secs(3600)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            provider.0.load(Ordering::SeqCst),
            0,
            "written before its window"
        );
        record.hurry.cancel();
        tokio::time::timeout(STOPPING_WAIT, record.task)
            .await
            .expect("written within the stopping wait")
            .expect("joined")
            .expect("written");
        assert_eq!(provider.0.load(Ordering::SeqCst), 1);
    }
}
