//! Following Compute operations to their end: `wait` is best-effort (it may answer at
//! once, still RUNNING), so it is called again, with a short pause when it came back
//! early, until DONE or the budget runs out; a blip on the wait is retried, and a
//! refused `wait` falls back to polling `get`. An instance write whose end could not
//! be seen is remembered per instance, and [`ComputeClient::settle`] waits for it
//! before anyone trusts a read of that instance: the change lands when the operation
//! completes, not when it was accepted.

use std::time::Duration;

use reqwest::{Method, Url};
use tracing::debug;

use crate::{ErrorClass, ProviderError};

use super::client::{
    lock, ComputeClient, Scope, EARLY, FIRST_PAUSE, MAX_PAUSE, SETTLE_BUDGET, WAIT_TIMEOUT,
};
use super::permissions::method;
use super::wire::Operation;

/// An instance write whose operation was accepted but not seen DONE.
#[derive(Clone, Debug)]
pub struct Unfinished {
    pub zone: String,
    pub operation: String,
}

impl ComputeClient {
    /// Is a write on `instance` not seen done?
    pub fn has_unfinished(&self, instance: &str) -> bool {
        lock(&self.unfinished).contains_key(instance)
    }

    /// Wait for the last write on `instance` whose end was not seen, if any. True when
    /// nothing is pending any more (a read of the instance can be trusted).
    pub async fn settle(&self, zone: &str, instance: &str) -> bool {
        let Some(pending) = lock(&self.unfinished).get(instance).cloned() else {
            return true;
        };
        let operation = Operation {
            name: pending.operation.clone(),
            ..Operation::default()
        };
        let zone = if zone.is_empty() {
            pending.zone.as_str()
        } else {
            zone
        };
        match self
            .follow(
                method::ZONE_OPERATIONS_GET,
                operation,
                Scope::Zone(zone),
                SETTLE_BUDGET,
            )
            .await
        {
            Ok(_) => {
                let mut unfinished = lock(&self.unfinished);
                if unfinished
                    .get(instance)
                    .is_some_and(|u| u.operation == pending.operation)
                {
                    unfinished.remove(instance);
                }
                true
            }
            Err(e) => {
                debug!(instance, operation = %pending.operation, error = %e, "an earlier write on the instance is still not seen done");
                false
            }
        }
    }

    /// Follow an operation until DONE: `wait` (best-effort: it may answer early, still
    /// RUNNING), falling back to `get` when `wait` is refused; pauses when the answer
    /// came back early or the call failed transiently.
    pub(super) async fn follow(
        &self,
        op: &'static str,
        mut operation: Operation,
        scope: Scope<'_>,
        budget: Duration,
    ) -> Result<Operation, ProviderError> {
        let deadline = tokio::time::Instant::now() + budget;
        let mut pause = FIRST_PAUSE;
        let mut use_get = false;
        loop {
            if operation.is_done() {
                return Ok(operation);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderError::new(
                    ErrorClass::Transient,
                    op,
                    format!(
                        "operation {} is still not done after {budget:?}",
                        operation.name
                    ),
                ));
            }
            let (segments, call) = match (scope, use_get) {
                (Scope::Zone(z), false) => (
                    vec!["zones", z, "operations", operation.name.as_str(), "wait"],
                    method::ZONE_OPERATIONS_WAIT,
                ),
                (Scope::Zone(z), true) => (
                    vec!["zones", z, "operations", operation.name.as_str()],
                    method::ZONE_OPERATIONS_GET,
                ),
                (Scope::Region(r), false) => (
                    vec!["regions", r, "operations", operation.name.as_str(), "wait"],
                    method::REGION_OPERATIONS_WAIT,
                ),
                (Scope::Region(r), true) => (
                    vec!["regions", r, "operations", operation.name.as_str()],
                    method::REGION_OPERATIONS_GET,
                ),
            };
            let verb = if use_get { Method::GET } else { Method::POST };
            let asked = tokio::time::Instant::now();
            let answer: Result<Operation, ProviderError> = self
                .json(call, self.request(verb, self.url(&segments), WAIT_TIMEOUT))
                .await;
            let early = match answer {
                Ok(next) => {
                    operation = next;
                    asked.elapsed() < EARLY
                }
                Err(e) if e.is_retryable() => {
                    debug!(operation = %operation.name, error = %e, "following an operation failed; again");
                    true
                }
                Err(e) if !use_get && e.class != ErrorClass::NotFound => {
                    debug!(operation = %operation.name, error = %e, "wait refused; polling get instead");
                    use_get = true;
                    false
                }
                Err(e) => return Err(e),
            };
            if early && !operation.is_done() {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// `…/zones/z/instances/NAME/addAccessConfig` → NAME.
pub fn instance_of_url(url: &Url) -> Option<&str> {
    let mut segments = url.path_segments()?.rev();
    segments.next()?;
    let name = segments.next()?;
    (segments.next()? == "instances").then_some(name)
}
