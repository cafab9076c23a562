//! Injected faults: latency, server errors and write conflicts, drawn from a
//! small seeded PRNG so a run with the same seed fails the same way.

use std::time::Duration;

/// What to inject into HTTP requests. The default injects nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Delay before every request is served.
    pub latency: Duration,
    /// Probability that a request answers 500 or 503 instead of being served.
    pub error_rate: f64,
    /// Probability that an update, patch or delete answers 409 Conflict.
    pub conflict_rate: f64,
    /// Probability that a write (create, update, patch, delete) is applied and then
    /// answered `504 Timeout`, as an API server does when its deadline passes while
    /// etcd commits: the client cannot tell whether the write happened.
    pub timeout_after_write_rate: f64,
    /// PRNG seed; the sequence restarts whenever faults are set.
    pub seed: u64,
}

/// The fault chosen for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Internal,
    Unavailable,
    Conflict,
    /// Serve the request, then answer 504 instead of its result.
    TimeoutAfterWrite,
}

/// splitmix64: tiny, fast and good enough for fault dice.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The configured faults plus the dice they are rolled with.
#[derive(Debug)]
pub struct FaultState {
    pub faults: Faults,
    rng: SplitMix64,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState::new(Faults::default())
    }
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let rng = SplitMix64::new(faults.seed);
        FaultState { faults, rng }
    }

    /// Rolls for one request. Always draws four numbers, so the sequence
    /// depends only on the number of requests, not on their verbs.
    /// `writes_existing`: update, patch or delete; `writes`: those or a create.
    pub fn roll(&mut self, writes_existing: bool, writes: bool) -> Option<Fault> {
        let (error, which, conflict, timeout) = (
            self.rng.next_f64(),
            self.rng.next_u64(),
            self.rng.next_f64(),
            self.rng.next_f64(),
        );
        if error < self.faults.error_rate {
            Some(if which % 2 == 0 {
                Fault::Internal
            } else {
                Fault::Unavailable
            })
        } else if writes_existing && conflict < self.faults.conflict_rate {
            Some(Fault::Conflict)
        } else if writes && timeout < self.faults.timeout_after_write_rate {
            Some(Fault::TimeoutAfterWrite)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_dice() {
        let faults = Faults {
            error_rate: 0.5,
            conflict_rate: 0.5,
            seed: 7,
            ..Faults::default()
        };
        let run = || {
            let mut s = FaultState::new(faults.clone());
            (0..64)
                .map(|i| s.roll(i % 3 == 0, i % 3 == 0))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert!(run().contains(&None));
        assert!(run().contains(&Some(Fault::Conflict)));
    }

    #[test]
    fn no_faults_by_default() {
        let mut s = FaultState::default();
        assert!((0..100).all(|_| s.roll(true, true).is_none()));
    }

    #[test]
    fn timeouts_after_writes_only_hit_writes() {
        let mut s = FaultState::new(Faults {
            timeout_after_write_rate: 1.0,
            seed: 3,
            ..Faults::default()
        });
        assert_eq!(s.roll(false, false), None);
        assert_eq!(s.roll(false, true), Some(Fault::TimeoutAfterWrite));
        assert_eq!(s.roll(true, true), Some(Fault::TimeoutAfterWrite));
    }
}
