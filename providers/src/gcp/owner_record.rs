//! Writing the ownership labels of an address (`addresses.setLabels`, waited on).
//!
//! A write refused by the rate quota right after a swap is retried on the quota
//! window's schedule ([`WindowRetry`]): the address is ours by then, and a record that
//! waits for the window to turn is cheaper than an address without one (the next
//! verification would write it, minutes later).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::debug;

use crate::window_retry::WindowRetry;
use crate::{ErrorClass, Ownership, ProviderError};

use super::access_config::QUOTA_WINDOW;
use super::client::ComputeClient;
use super::errors::{is_rate_limited, is_stale_fingerprint};
use super::labels;
use super::permissions::method;
use super::wire::Address;

const LABEL_ATTEMPTS: usize = 3;
const LABEL_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Write (Some) or clear (None) the ownership labels, re-reading on a stale fingerprint.
pub(super) async fn set_owner(
    client: &ComputeClient,
    region: &str,
    mut record: Address,
    owner: Option<&Ownership>,
) -> Result<(), ProviderError> {
    for attempt in 1..=LABEL_ATTEMPTS {
        let desired = match owner {
            Some(owner) => labels::with_owner(&record.labels, owner),
            None => labels::without_owner(&record.labels),
        };
        if desired == record.labels {
            return Ok(());
        }
        let fingerprint = record.label_fingerprint.clone().unwrap_or_default();
        match client
            .set_labels(region, &record.name, desired, &fingerprint)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if is_stale_fingerprint(&e) && attempt < LABEL_ATTEMPTS => {
                record = client.get_address(region, &record.name).await?;
            }
            // After a swap the address is ours: a blip must not cost the ownership record.
            Err(e) if e.is_retryable() && attempt < LABEL_ATTEMPTS => {
                tokio::time::sleep(LABEL_RETRY_DELAY * attempt as u32).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ProviderError::new(
        ErrorClass::Transient,
        method::ADDRESSES_SET_LABELS,
        format!("the labels of {} kept changing under us", record.name),
    ))
}

/// Write `owner` on `record`, retrying a refusal of the rate quota until just after the
/// window turns (then a few quick retries); other errors as [`set_owner`].
pub(super) async fn write_owner_paced(
    client: &ComputeClient,
    region: &str,
    record: Address,
    owner: &Ownership,
) -> Result<(), ProviderError> {
    let mut schedule = None;
    let mut attempt = 0;
    loop {
        let error = match set_owner(client, region, record.clone(), Some(owner)).await {
            Ok(()) => return Ok(()),
            Err(e) if is_rate_limited(&e) => e,
            Err(e) => return Err(e),
        };
        let plan = *schedule.get_or_insert_with(|| WindowRetry::new(QUOTA_WINDOW, wall_clock()));
        attempt += 1;
        match plan.pause(attempt, wall_clock(), fastrand::f64()) {
            Some(pause) => {
                debug!(address = %record.name, ?pause, "setLabels refused by the rate quota; retried on the window's schedule");
                tokio::time::sleep(pause).await;
            }
            None => return Err(error),
        }
    }
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
