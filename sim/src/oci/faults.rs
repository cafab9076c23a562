//! What the OCI simulator injects: latency on every request, how long a public IP stays
//! in a transitional state (ASSIGNING, UNASSIGNING, TERMINATING), random throttling
//! (429 `TooManyRequests`) and server errors (500/503) drawn from a seeded generator (a
//! run with the same seed fails the same way), scripted one-shot failures of an
//! operation, and operations denied outright (a missing IAM policy statement, which OCI
//! answers with 404 `NotAuthorizedOrNotFound`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::errors::ApiError;

#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Added before every request is served.
    pub latency: Duration,
    /// How long ASSIGNING / UNASSIGNING / TERMINATING stay visible to GETs and lists.
    pub transition_time: Duration,
    /// Probability that a request answers 500 or 503.
    pub error_rate: f64,
    /// Probability that a request answers 429.
    pub throttle_rate: f64,
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            transition_time: Duration::from_millis(200),
            error_rate: 0.0,
            throttle_rate: 0.0,
            seed: 0,
        }
    }
}

/// A scripted failure of the next call of one operation (`UpdatePublicIp`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The call is refused with this status and code; nothing changes.
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// The call takes effect, but the answer is this error (a lost response, a
    /// gateway timeout after the write landed).
    LandedThenFailed {
        status: u16,
        code: &'static str,
        message: String,
    },
}

impl Failure {
    /// A plain 500 `InternalServerError`, nothing applied.
    pub fn internal() -> Failure {
        Failure::Refused {
            status: 500,
            code: "InternalServerError",
            message: "Internal server error.".into(),
        }
    }

    pub(crate) fn error(&self) -> ApiError {
        match self {
            Failure::Refused {
                status,
                code,
                message,
            }
            | Failure::LandedThenFailed {
                status,
                code,
                message,
            } => ApiError::new(*status, code, message.clone()),
        }
    }
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

    pub fn script(&mut self, operation: &str, failure: Failure) {
        self.scripted.push((operation.to_string(), failure));
    }

    /// The scripted failure for this call of `operation`, if one is queued (consumed).
    pub fn take_scripted(&mut self, operation: &str) -> Option<Failure> {
        let at = self.scripted.iter().position(|(o, _)| o == operation)?;
        Some(self.scripted.remove(at).1)
    }

    /// Random faults for one request. Always draws the same count of numbers, so the
    /// sequence depends only on how many requests came.
    pub fn roll(&mut self) -> Option<ApiError> {
        let (error, throttle, which) = (self.rng.f64(), self.rng.f64(), self.rng.bool());
        if throttle < self.faults.throttle_rate {
            return Some(ApiError::too_many_requests());
        }
        if error < self.faults.error_rate {
            return Some(if which {
                ApiError::new(
                    503,
                    "ServiceUnavailable",
                    "The service is currently unavailable.",
                )
            } else {
                ApiError::new(500, "InternalServerError", "Internal server error.")
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
        assert!(run().contains(&None) && run().contains(&Some(429)));
        let mut f = FaultState::default();
        f.script("UpdatePublicIp", Failure::internal());
        assert!(f.take_scripted("GetPublicIp").is_none());
        assert_eq!(
            f.take_scripted("UpdatePublicIp").map(|x| x.error().status),
            Some(500)
        );
        assert!(f.take_scripted("UpdatePublicIp").is_none());
        assert!(FaultState::default().roll().is_none());
    }
}
