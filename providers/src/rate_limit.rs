//! The published request-rate limit that bounds how fast one cloud account (project,
//! tenancy) can make assignments, in assignments: what the agents sharing it pace
//! themselves by once the cloud throttles them (`domain::pacing` in the agent).

use std::time::Duration;

/// The tightest limit one fresh assignment spends from, counted in assignments (a
/// limit of 1 500 calls a minute for a group that one assignment calls 3 times is 500
/// assignments a minute).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AssignmentRateLimit {
    /// A token bucket (EC2): `burst` assignments at once, then `per_second`.
    Bucket { burst: u32, per_second: f64 },
    /// Fixed windows of `period` admitting `per_window` assignments each, starting at
    /// whole periods of the wall clock (Compute's per-minute quotas).
    Window { period: Duration, per_window: u32 },
}

impl AssignmentRateLimit {
    /// A bucket of `burst` calls refilled at `per_second`, for an assignment that
    /// spends `calls` of it.
    pub fn bucket(burst: u32, per_second: u32, calls: u32) -> Self {
        let calls = calls.max(1);
        AssignmentRateLimit::Bucket {
            burst: burst / calls,
            per_second: f64::from(per_second) / f64::from(calls),
        }
    }

    /// Windows of `period` admitting `limit` calls, for an assignment that spends
    /// `calls` of each.
    pub fn window(period: Duration, limit: u32, calls: u32) -> Self {
        AssignmentRateLimit::Window {
            period,
            per_window: (limit / calls.max(1)).max(1),
        }
    }
}

/// How long from `now` (time since the Unix epoch) until the fixed window of `period`
/// that holds it ends: windows start at whole periods of the wall clock.
pub fn until_window_turn(period: Duration, now: Duration) -> Duration {
    let period_ms = period.as_millis().max(1);
    let into = now.as_millis() % period_ms;
    Duration::from_millis(u64::try_from(period_ms - into).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_turns_at_the_next_whole_period() {
        let minute = Duration::from_secs(60);
        assert_eq!(
            until_window_turn(minute, Duration::from_millis(612_500)),
            Duration::from_millis(47_500)
        );
        // On the turn itself, the window that starts there is the one that holds it.
        assert_eq!(until_window_turn(minute, Duration::from_secs(660)), minute);
    }

    #[test]
    fn limits_are_counted_in_assignments() {
        assert_eq!(
            AssignmentRateLimit::bucket(50, 5, 1),
            AssignmentRateLimit::Bucket {
                burst: 50,
                per_second: 5.0
            }
        );
        assert_eq!(
            AssignmentRateLimit::window(Duration::from_secs(60), 1500, 3),
            AssignmentRateLimit::Window {
                period: Duration::from_secs(60),
                per_window: 500
            }
        );
    }
}
