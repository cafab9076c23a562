//! When a node's public IP has to be given back (an ephemeral one, after a failed swap
//! or an address removed by hand): a few quick attempts while the caller waits, then,
//! if they all failed, a task of its own that keeps trying until one works. The agent
//! may not attach again soon (its address gone to another node, the pool exhausted),
//! and a node must not wait without egress. Each attempt re-reads first, so it never
//! adds an IP beside one attached meanwhile.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

const QUICK_ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The background attempts: their longest pause (short: the node has no egress, and an
/// attempt starts with one read) and how long they go on.
const BACKGROUND_MAX_PAUSE: Duration = Duration::from_secs(5);
const BACKGROUND_FOR: Duration = Duration::from_secs(3600);

/// Run `attempt(n)` (true: the node has a public IP again, or is gone) on the schedule
/// above. `what` names the IP in the log lines ("an external IPv4", "a public IP").
/// The background attempts end with `lifetime` (the provider's: an agent that is gone
/// restores nothing; in `pinip simulate` one process runs many agents and worlds).
pub(crate) async fn restore_on_schedule<F, Fut>(
    instance: &str,
    what: &'static str,
    lifetime: CancellationToken,
    mut attempt: F,
) where
    F: FnMut(u32) -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let mut pause = FIRST_PAUSE;
    for n in 1..=QUICK_ATTEMPTS {
        if attempt(n).await {
            return;
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    error!(instance, "the node may be left WITHOUT {what}: restoring an ephemeral one failed {QUICK_ATTEMPTS} times; trying again in the background until it has one");
    let instance = instance.to_string();
    tokio::spawn(async move {
        let mut pause = pause.min(BACKGROUND_MAX_PAUSE);
        let give_up = tokio::time::Instant::now() + BACKGROUND_FOR;
        let mut n = QUICK_ATTEMPTS;
        while tokio::time::Instant::now() < give_up {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = lifetime.cancelled() => {
                    debug!(instance, "the provider is gone; no more attempts to restore {what}");
                    return;
                }
            }
            pause = (pause * 2).min(BACKGROUND_MAX_PAUSE);
            n += 1;
            if attempt(n).await {
                return;
            }
        }
        error!(instance, "gave up restoring {what} after {BACKGROUND_FOR:?}; the agent's next attach tries again");
    });
}
