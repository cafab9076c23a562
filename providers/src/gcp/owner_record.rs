//! Writing the ownership labels of an address (`addresses.setLabels`, waited on).
//!
//! The record the agent writes beside the publication ([`write_owner_paced`]), refused
//! by the rate quota, is retried three times quickly (a passing throttle) and then when the
//! quota window turns: the address is ours and published by then, so nothing waits on
//! the record, and a refusal that outlasts the quick retries means the window is spent
//! (Compute's quotas refill only at whole minutes). Not a retry schedule that spends the
//! rest of a spent window asking again (a first version made 7 090 `setLabels` calls
//! for 1 000 records at 1000 nodes), nor only the turn (a second one waited up to a
//! minute after a one-second throttle, leaving the previous owner's record that long:
//! Compute chaos seed 51028).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::debug;

use crate::{until_window_turn, ErrorClass, Ownership, ProviderError};

use super::access_config::QUOTA_WINDOW;
use super::client::ComputeClient;
use super::errors::{is_rate_limited, is_stale_fingerprint};
use super::labels;
use super::permissions::method;
use super::wire::Address;

const LABEL_ATTEMPTS: usize = 3;
const LABEL_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Quick retries of a refused record before it waits for the window's turn.
const QUICK: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// Retries after the turn of the window: spread over this much, for at most so many turns.
const TURN_SPREAD: Duration = Duration::from_secs(2);
const TURNS: u32 = 2;

/// Write (Some) or clear (None) the ownership labels, re-reading on a stale fingerprint.
pub(super) async fn set_owner(
    client: &ComputeClient,
    region: &str,
    record: Address,
    owner: Option<&Ownership>,
) -> Result<(), ProviderError> {
    set_labels_retrying(client, region, record, owner, true).await
}

/// [`set_owner`]; a refusal of the rate quota is retried here only if `quick_on_quota`.
async fn set_labels_retrying(
    client: &ComputeClient,
    region: &str,
    mut record: Address,
    owner: Option<&Ownership>,
    quick_on_quota: bool,
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
            Err(e) if !quick_on_quota && is_rate_limited(&e) => return Err(e),
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

/// Write `owner` on `record`; a refusal of the rate quota is retried after the
/// [`QUICK`] pauses, then at the window's turn (spread over [`TURN_SPREAD`]), for at most
/// [`TURNS`] turns; other errors as [`set_owner`].
pub(super) async fn write_owner_paced(
    client: &ComputeClient,
    region: &str,
    record: Address,
    owner: &Ownership,
) -> Result<(), ProviderError> {
    let mut refusals = 0;
    loop {
        match set_labels_retrying(client, region, record.clone(), Some(owner), false).await {
            Err(e) if is_rate_limited(&e) && refusals < QUICK.len() + TURNS as usize => {
                let pause = match QUICK.get(refusals) {
                    Some(quick) => quick.mul_f64(0.5 + fastrand::f64()),
                    None => pause_to_turn(wall_clock(), fastrand::f64()),
                };
                refusals += 1;
                debug!(address = %record.name, ?pause, "setLabels refused by the rate quota; retried");
                tokio::time::sleep(pause).await;
            }
            done => return done,
        }
    }
}

/// Pure: from `now` (time since the Unix epoch) to just after the quota window's
/// turn, spread by `jitter` in [0, 1).
fn pause_to_turn(now: Duration, jitter: f64) -> Duration {
    until_window_turn(QUOTA_WINDOW, now) + TURN_SPREAD.mul_f64(jitter.clamp(0.0, 1.0))
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_record_waits_for_the_turn_of_the_minute_and_no_more_than_the_spread() {
        let at = |s: f64| Duration::from_secs_f64(s);
        assert_eq!(pause_to_turn(at(612.5), 0.0), at(47.5));
        assert_eq!(pause_to_turn(at(659.9), 0.5), at(0.1) + at(1.0));
        // Refused in the first millisecond of a window: that window is spent too.
        assert_eq!(pause_to_turn(at(660.0), 0.0), at(60.0));
        assert!(pause_to_turn(at(612.5), 0.999) < at(47.5) + TURN_SPREAD);
    }
}
