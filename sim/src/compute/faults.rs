//! What the Compute simulator injects: latency on every request, how long operations
//! stay RUNNING, random throttling and server errors drawn from a seeded generator (a
//! run with the same seed fails the same way), scripted one-shot failures of a
//! method, and methods denied outright (a missing IAM permission).
//!
//! The answers real Compute gives that a client must survive are all here, so chaos
//! can mix them in: `429`/`403 rateLimitExceeded`, `5xx`, `400 resourceNotReady` (another
//! operation is running on the instance), operations ending in `QUOTA_EXCEEDED`, an
//! `operations.wait` that returns while the operation is still RUNNING (the API's wait
//! is best-effort), and list pages that are empty but still carry a `nextPageToken`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::errors::ApiError;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Added before every request is served.
    pub latency: Duration,
    /// How long an operation stays RUNNING before it is DONE.
    pub operation_time: Duration,
    /// Probability that a request answers 503 (or 500).
    pub error_rate: f64,
    /// Probability that a request is throttled (429, or 403 `rateLimitExceeded`).
    pub throttle_rate: f64,
    /// Probability that an instance write answers `400 resourceNotReady`.
    pub not_ready_rate: f64,
    /// Probability that a write's operation ends in `QUOTA_EXCEEDED` (nothing changes).
    pub quota_rate: f64,
    /// Probability that `operations.wait` answers at once, the operation still RUNNING.
    pub wait_early_rate: f64,
    /// Probability that a list page comes back empty with a `nextPageToken` (the page
    /// the client asked for comes on the next request).
    pub empty_page_rate: f64,
    pub seed: u64,
}

impl Faults {
    /// Every Compute answer a client must survive, each at `rate` (latency and
    /// operation time as given): what `pinip simulate --chaos` mixes in on GCP.
    pub fn everything(rate: f64, latency: Duration, seed: u64) -> Faults {
        Faults {
            latency,
            operation_time: latency,
            error_rate: rate,
            throttle_rate: rate,
            not_ready_rate: rate,
            quota_rate: rate,
            wait_early_rate: rate,
            empty_page_rate: rate,
            seed,
        }
    }
}

/// A scripted failure of the next call of one method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The call itself fails with this HTTP status.
    Http {
        status: u16,
        reason: &'static str,
        message: String,
    },
    /// The call is accepted, changes nothing, and its operation ends in this error.
    Operation { code: String, message: String },
}

impl Failure {
    /// `400 resourceNotReady`: what Compute answers a write on an instance that has
    /// another operation running.
    pub fn not_ready(resource: &str) -> Failure {
        Failure::Http {
            status: 400,
            reason: NOT_READY,
            message: not_ready_message(resource),
        }
    }

    /// An operation that ends in `QUOTA_EXCEEDED` (e.g. the region's in-use address quota).
    pub fn quota_exceeded() -> Failure {
        Failure::Operation {
            code: QUOTA_EXCEEDED.into(),
            message: QUOTA_MESSAGE.into(),
        }
    }

    /// `403 rateLimitExceeded`: Compute's other way to throttle (besides 429).
    pub fn rate_limited() -> Failure {
        Failure::Http {
            status: 403,
            reason: "rateLimitExceeded",
            message: "Rate Limit Exceeded".into(),
        }
    }
}

pub const NOT_READY: &str = "resourceNotReady";
pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
const QUOTA_MESSAGE: &str = "Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region.";

pub fn not_ready_message(resource: &str) -> String {
    format!("The resource '{resource}' is not ready")
}

/// What the seeded dice say about one request, drawn in one go.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Roll {
    /// Throttling or a server error, for any request.
    pub error: Option<ApiError>,
    /// For an instance write: answer `400 resourceNotReady`.
    pub not_ready: bool,
    /// For a write: the operation ends in `QUOTA_EXCEEDED`.
    pub quota: bool,
    /// For `operations.wait`: answer at once.
    pub wait_early: bool,
    /// For a list: this page is empty (with a `nextPageToken`).
    pub empty_page: bool,
}

pub(crate) struct FaultState {
    pub faults: Faults,
    rng: fastrand::Rng,
    scripted: Vec<(String, Failure)>,
    pub denied: BTreeSet<String>,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            faults: Faults::default(),
            rng: fastrand::Rng::with_seed(0),
            scripted: Vec::new(),
            denied: BTreeSet::new(),
        }
    }
}

impl FaultState {
    pub fn set(&mut self, faults: Faults) {
        self.rng = fastrand::Rng::with_seed(faults.seed);
        self.faults = faults;
    }

    pub fn script(&mut self, method: &str, failure: Failure) {
        self.scripted.push((method.to_string(), failure));
    }

    /// The scripted failure for this call of `method`, if one is queued (consumed).
    pub fn take_scripted(&mut self, method: &str) -> Option<Failure> {
        let at = self.scripted.iter().position(|(m, _)| m == method)?;
        Some(self.scripted.remove(at).1)
    }

    /// Random faults for one request. Always draws the same count of numbers, so the
    /// sequence depends only on how many requests came.
    pub fn roll(&mut self) -> Roll {
        let error = self.roll_error();
        let f = &self.faults;
        let (not_ready, quota, early, empty) = (
            self.rng.f64(),
            self.rng.f64(),
            self.rng.f64(),
            self.rng.f64(),
        );
        Roll {
            error,
            not_ready: not_ready < f.not_ready_rate,
            quota: quota < f.quota_rate,
            wait_early: early < f.wait_early_rate,
            empty_page: empty < f.empty_page_rate,
        }
    }

    fn roll_error(&mut self) -> Option<ApiError> {
        let (error, throttle, which) = (self.rng.f64(), self.rng.f64(), self.rng.bool());
        if throttle < self.faults.throttle_rate {
            return Some(if which {
                let mut e = ApiError::new(
                    429,
                    "rateLimitExceeded",
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'.",
                );
                e.retry_after = Some(1);
                e
            } else {
                ApiError::new(403, "rateLimitExceeded", "Rate Limit Exceeded")
            });
        }
        if error < self.faults.error_rate {
            return Some(if which {
                ApiError::new(503, "backendError", "Service temporarily unavailable.")
            } else {
                ApiError::new(
                    500,
                    "backendError",
                    "Internal error. Please try again or contact Google Support.",
                )
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults_and_scripts_are_one_shot() {
        let run = || {
            let mut f = FaultState::default();
            f.set(Faults {
                error_rate: 0.3,
                throttle_rate: 0.3,
                seed: 9,
                ..Faults::default()
            });
            (0..50)
                .map(|_| f.roll().error.map(|e| e.status))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert!(run().contains(&None) && run().iter().any(Option::is_some));
        let mut f = FaultState::default();
        f.script(
            "instances.addAccessConfig",
            Failure::Operation {
                code: "X".into(),
                message: "m".into(),
            },
        );
        assert!(f.take_scripted("instances.get").is_none());
        assert!(f.take_scripted("instances.addAccessConfig").is_some());
        assert!(f.take_scripted("instances.addAccessConfig").is_none());
        assert_eq!(FaultState::default().roll(), Roll::default());
        let mut all = FaultState::default();
        all.set(Faults::everything(1.0, Duration::ZERO, 1));
        let roll = all.roll();
        assert!(roll.error.is_some() && roll.not_ready && roll.quota);
        assert!(roll.wait_early && roll.empty_page);
    }
}
