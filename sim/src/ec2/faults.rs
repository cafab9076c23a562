//! What the simulator injects, and what it counts: latency, random throttling and
//! server errors (reproducible from a seed), scripted failures, denied actions, and
//! requests per action.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::error::Ec2Error;

/// Random faults applied to every request; the same seed fails the same requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ec2Faults {
    pub latency: Duration,
    /// Probability of `RequestLimitExceeded` (HTTP 503).
    pub throttle_rate: f64,
    /// Probability of `InternalError` (HTTP 500) or `Unavailable` (HTTP 503).
    pub error_rate: f64,
    pub seed: u64,
}

pub struct FaultState {
    pub faults: Ec2Faults,
    rng: fastrand::Rng,
    scripted: VecDeque<(String, String)>,
    denied: BTreeSet<String>,
    pub counts: BTreeMap<String, u64>,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            faults: Ec2Faults::default(),
            rng: fastrand::Rng::with_seed(0),
            scripted: VecDeque::new(),
            denied: BTreeSet::new(),
            counts: BTreeMap::new(),
        }
    }
}

impl FaultState {
    pub fn set(&mut self, faults: Ec2Faults) {
        self.rng = fastrand::Rng::with_seed(faults.seed);
        self.faults = faults;
    }

    /// Change the random failure rates, keeping the latency and the dice.
    pub fn set_rates(&mut self, error_rate: f64, throttle_rate: f64) {
        self.faults.error_rate = error_rate;
        self.faults.throttle_rate = throttle_rate;
    }

    /// The next `action` request fails with EC2 error `code` (queued, one per request).
    pub fn fail_next(&mut self, action: &str, code: &str) {
        self.scripted
            .push_back((action.to_string(), code.to_string()));
    }

    pub fn deny(&mut self, action: &str) {
        self.denied.insert(action.to_string());
    }

    pub fn allow(&mut self, action: &str) {
        self.denied.remove(action);
    }

    /// Count one request and decide whether it fails before being served. Always draws
    /// two numbers, so the sequence depends only on the number of requests.
    #[cfg(test)]
    pub fn admit(&mut self, action: &str) -> Result<(), Ec2Error> {
        self.admit_after(action, Ok(()))
    }

    /// [`FaultState::admit`] for a request the rate limits already judged: a refused
    /// one is counted and rolls its dice, but consumes no scripted failure.
    pub fn admit_after(
        &mut self,
        action: &str,
        limits: Result<(), Ec2Error>,
    ) -> Result<(), Ec2Error> {
        *self.counts.entry(action.to_string()).or_default() += 1;
        let (roll, which) = (self.rng.f64(), self.rng.bool());
        limits?;
        if let Some(pos) = self.scripted.iter().position(|(a, _)| a == action) {
            if let Some((_, code)) = self.scripted.remove(pos) {
                return Err(Ec2Error::new(
                    &code,
                    format!("injected failure of {action}"),
                ));
            }
        }
        if self.denied.contains(action) {
            return Err(Ec2Error::new(
                "UnauthorizedOperation",
                format!(
                    "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/pinip-agent/sim is not authorized to perform: ec2:{action} on resource: * because no identity-based policy allows the ec2:{action} action. Encoded authorization failure message: c2ltdWxhdGVk"
                ),
            ));
        }
        let Ec2Faults {
            throttle_rate,
            error_rate,
            ..
        } = self.faults;
        if roll < throttle_rate {
            return Err(request_limit_exceeded());
        }
        if roll < throttle_rate + error_rate {
            let code = if which {
                "InternalError"
            } else {
                "Unavailable"
            };
            return Err(Ec2Error::new(code, "An internal error has occurred"));
        }
        Ok(())
    }
}

/// EC2's throttling answer (HTTP 503), for random throttling and the rate limits alike.
pub fn request_limit_exceeded() -> Ec2Error {
    Ec2Error::new("RequestLimitExceeded", "Request limit exceeded.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_then_denied_then_random_and_reproducible() {
        let mut state = FaultState::default();
        state.fail_next("AssociateAddress", "Resource.AlreadyAssociated");
        assert_eq!(state.admit("DescribeAddresses"), Ok(()));
        assert_eq!(
            state.admit("AssociateAddress").unwrap_err().code,
            "Resource.AlreadyAssociated"
        );
        assert_eq!(state.admit("AssociateAddress"), Ok(()));
        state.deny("CreateTags");
        let denied = state.admit("CreateTags").unwrap_err();
        assert_eq!(
            (denied.code.as_str(), denied.status),
            ("UnauthorizedOperation", 403)
        );
        assert!(denied.message.contains("ec2:CreateTags"));
        state.allow("CreateTags");
        assert_eq!(state.counts["AssociateAddress"], 2);

        let run = |seed| {
            let mut s = FaultState::default();
            s.set(Ec2Faults {
                throttle_rate: 0.3,
                error_rate: 0.2,
                seed,
                ..Ec2Faults::default()
            });
            (0..50)
                .map(|_| s.admit("X").err().map(|e| (e.code, e.status)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let outcomes = run(7);
        assert!(outcomes.contains(&Some(("RequestLimitExceeded".into(), 503))));
        assert!(outcomes.contains(&None));
    }
}
