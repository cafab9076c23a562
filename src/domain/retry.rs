//! The one retry schedule of the agent: jittered exponential backoff between a floor
//! and a ceiling, optionally bounded, with what the cloud said (throttling,
//! `Retry-After`) taken into account. Pure: the caller passes the jitter.

use std::time::Duration;

/// `RETRY_INTERVAL` and `RETRY_ATTEMPTS`: the longest pause between assignment attempts,
/// and how many failures in a row make the agent report that it is stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub interval: Duration,
    pub attempts: u32,
}

/// Exponential backoff: `min · 2ⁿ` capped at `max`, plus up to as much again of jitter
/// (so agents that failed together do not retry together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    /// None: retry for as long as the caller wants.
    pub max_attempts: Option<u32>,
}

/// The longest pause between looks at a Node that is not ready for us yet.
const NODE_POLL_MAX: Duration = Duration::from_secs(30);

impl Backoff {
    /// A single Kubernetes API call that failed transiently.
    pub const API_CALL: Backoff = Backoff {
        min: Duration::from_millis(100),
        max: Duration::from_secs(2),
        max_attempts: Some(6),
    };

    /// The ownership record written after an attach (past these, the next
    /// verification writes it).
    pub const RECORD: Backoff = Backoff {
        min: Duration::from_millis(500),
        max: Duration::from_secs(8),
        max_attempts: Some(4),
    };

    /// One step of a release (bounded: the whole release has RELEASE_TIMEOUT).
    pub const RELEASE_STEP: Backoff = Backoff {
        min: Duration::from_millis(200),
        max: Duration::from_secs(2),
        max_attempts: Some(5),
    };

    /// Looks at a Node that does not exist yet or has no providerID.
    pub fn node_lookup(policy: &RetryPolicy) -> Backoff {
        Backoff {
            min: Duration::from_millis(200),
            max: NODE_POLL_MAX.min(policy.interval),
            max_attempts: None,
        }
    }

    /// Assignment attempts, up to RETRY_INTERVAL apart.
    pub fn assignment(policy: &RetryPolicy) -> Backoff {
        Backoff {
            min: Duration::from_secs(1).min(policy.interval),
            max: policy.interval,
            max_attempts: None,
        }
    }

    /// The pause before retry `attempt` (1 for the first retry); `jitter` in [0, 1).
    /// None once `max_attempts` retries were made.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt == 0 || self.max_attempts.is_some_and(|max| attempt > max) {
            return None;
        }
        let doublings = (attempt - 1).min(32);
        let base = self
            .min
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max);
        Some(base + base.mul_f64(jitter.clamp(0.0, 1.0)))
    }

    /// The delays one after the other, with fresh jitter each time.
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        (1..).map_while(move |attempt| self.delay(attempt, fastrand::f64()))
    }
}

/// What a failed assignment attempt says about the wait before the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureHint {
    /// The cloud said it is throttling us.
    pub throttled: bool,
    /// The cloud named a time to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl RetryPolicy {
    /// The pause after `failures` failed assignment attempts in a row: the backoff
    /// until RETRY_ATTEMPTS, RETRY_INTERVAL from then on; twice that when throttled
    /// (a shared bucket refills for everyone only if everyone slows down); never less
    /// than what the cloud asked for.
    pub fn after_failure(&self, failures: u32, hint: FailureHint, jitter: f64) -> Duration {
        let base = if failures >= self.attempts {
            self.interval
        } else {
            Backoff::assignment(self)
                .delay(failures.max(1), jitter)
                .unwrap_or(self.interval)
        };
        let base = if hint.throttled { base * 2 } else { base };
        base.max(hint.retry_after.unwrap_or_default())
    }

    /// True exactly once: the failure that makes the agent report it is stuck.
    pub fn is_stalled_now(&self, failures: u32) -> bool {
        failures == self.attempts
    }
}

/// A run of 403s with the same message: when it began and when it was last seen.
/// A different denial, or a gap longer than the grace without one, starts a new run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenialStreak {
    current: Option<(String, Duration, Duration)>,
}

impl DenialStreak {
    /// Record a denial at `now` (any monotonic reading, e.g. time since start); true
    /// once the same denial has persisted for `grace`.
    pub fn persists(&mut self, denial: &str, now: Duration, grace: Duration) -> bool {
        let first = match &self.current {
            Some((seen, first, last)) if seen == denial && now.saturating_sub(*last) < grace => {
                *first
            }
            _ => now,
        };
        self.current = Some((denial.to_string(), first, now));
        now.saturating_sub(first) >= grace
    }

    /// A call went through: whatever was denied before is not denied now.
    pub fn clear(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_start_up_blip_of_denials_is_not_persistent() {
        let mut streak = DenialStreak::default();
        assert!(!streak.persists("cannot get nodes", Duration::ZERO, GRACE));
        assert!(!streak.persists("cannot get nodes", Duration::from_millis(100), GRACE));
        streak.clear();
        assert!(!streak.persists("cannot get nodes", secs(40), GRACE));
    }

    #[test]
    fn the_same_denial_for_the_whole_grace_is_persistent() {
        let mut streak = DenialStreak::default();
        for t in (0..30).step_by(5) {
            assert!(
                !streak.persists("cannot patch leases", secs(t), GRACE),
                "{t}"
            );
        }
        assert!(streak.persists("cannot patch leases", secs(30), GRACE));
    }

    #[test]
    fn another_denial_or_a_long_gap_starts_over() {
        let mut streak = DenialStreak::default();
        assert!(!streak.persists("a", secs(0), GRACE));
        assert!(!streak.persists("b", secs(29), GRACE));
        assert!(!streak.persists("b", secs(58), GRACE));
        assert!(streak.persists("b", secs(59), GRACE));
        let mut gap = DenialStreak::default();
        assert!(!gap.persists("a", secs(0), GRACE));
        assert!(
            !gap.persists("a", secs(31), GRACE),
            "a gap of a whole grace"
        );
    }

    const POLICY: RetryPolicy = RetryPolicy {
        interval: Duration::from_secs(60),
        attempts: 5,
    };

    #[test]
    fn delays_double_from_the_floor_up_to_the_ceiling() {
        let b = Backoff::assignment(&POLICY);
        let no_jitter: Vec<u64> = (1..=8)
            .map(|n| b.delay(n, 0.0).unwrap().as_secs())
            .collect();
        assert_eq!(no_jitter, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn jitter_adds_up_to_as_much_again() {
        let b = Backoff::RELEASE_STEP;
        assert_eq!(b.delay(1, 0.0), Some(Duration::from_millis(200)));
        assert_eq!(b.delay(1, 0.5), Some(Duration::from_millis(300)));
        assert_eq!(b.delay(1, 7.0), Some(Duration::from_millis(400)), "clamped");
        assert!(b.delays().all(|d| d <= Duration::from_secs(4)));
    }

    #[test]
    fn bounded_backoffs_end() {
        assert_eq!(Backoff::RELEASE_STEP.delays().count(), 5);
        assert_eq!(Backoff::API_CALL.delays().count(), 6);
        assert_eq!(Backoff::API_CALL.delay(7, 0.0), None);
        assert_eq!(Backoff::API_CALL.delay(0, 0.0), None);
        assert_eq!(
            Backoff::node_lookup(&POLICY).delays().take(100).count(),
            100
        );
    }

    #[test]
    fn node_lookups_never_wait_longer_than_the_retry_interval_or_30s() {
        let short = RetryPolicy {
            interval: Duration::from_secs(5),
            attempts: 1,
        };
        assert_eq!(Backoff::node_lookup(&short).max, Duration::from_secs(5));
        assert_eq!(Backoff::node_lookup(&POLICY).max, Duration::from_secs(30));
    }

    #[test]
    fn a_short_retry_interval_lowers_the_floor_too() {
        let tiny = RetryPolicy {
            interval: Duration::from_millis(500),
            attempts: 3,
        };
        assert_eq!(
            Backoff::assignment(&tiny).delay(1, 0.0),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn after_retry_attempts_failures_the_interval_applies() {
        let plain = FailureHint::default();
        assert_eq!(POLICY.after_failure(1, plain, 0.0), Duration::from_secs(1));
        assert_eq!(POLICY.after_failure(4, plain, 0.0), Duration::from_secs(8));
        assert_eq!(POLICY.after_failure(5, plain, 0.9), Duration::from_secs(60));
        assert!(POLICY.is_stalled_now(5) && !POLICY.is_stalled_now(6));
    }

    #[test]
    fn throttling_doubles_and_retry_after_is_a_floor() {
        let throttled = FailureHint {
            throttled: true,
            retry_after: None,
        };
        assert_eq!(
            POLICY.after_failure(2, throttled, 0.0),
            Duration::from_secs(4)
        );
        let asked = FailureHint {
            throttled: false,
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(POLICY.after_failure(1, asked, 0.0), Duration::from_secs(30));
        let asked_less = FailureHint {
            throttled: true,
            retry_after: Some(Duration::from_millis(10)),
        };
        assert_eq!(
            POLICY.after_failure(1, asked_less, 0.0),
            Duration::from_secs(2)
        );
    }
}
