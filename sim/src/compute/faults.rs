//! What the Compute simulator injects: latency on every request, how long operations
//! stay RUNNING, random throttling and server errors drawn from a seeded generator (a
//! run with the same seed fails the same way), scripted one-shot failures of a
//! method, and methods denied outright (a missing IAM permission).

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
    pub seed: u64,
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
    pub fn roll(&mut self) -> Option<ApiError> {
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
                .map(|_| f.roll().map(|e| e.status))
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
        assert!(FaultState::default().roll().is_none());
    }
}
