//! Pauses for retrying one call that a fixed-window quota refused (Compute's
//! per-minute windows, starting at whole minutes of the wall clock), for a call that
//! cannot simply be given up: the add of a static address after the ephemeral one was
//! deleted (`gcp::access_config`). A passing throttle clears quickly, so the pauses
//! double from [`FIRST`]; a spent window refuses everything until it turns, so no pause
//! crosses the turn: the one that would ends just after it, spread over [`SPREAD`] so
//! the retries of many nodes do not all land in its first millisecond. After the turn
//! the retries go on, quickly, for [`AFTER_TURN`]; then the caller gives up. Pure: the
//! caller passes the clock and the jitter.

use std::time::Duration;

use crate::until_window_turn;

const FIRST: Duration = Duration::from_millis(500);
const LONGEST: Duration = Duration::from_secs(16);
const SPREAD: Duration = Duration::from_secs(2);
const AFTER_TURN: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowRetry {
    /// When the window of the first refusal ends, as time since the Unix epoch.
    turn: Duration,
}

impl WindowRetry {
    /// The schedule for a call refused at `refused_at` (time since the Unix epoch), in
    /// windows of `period`.
    pub fn new(period: Duration, refused_at: Duration) -> WindowRetry {
        WindowRetry {
            turn: refused_at + until_window_turn(period, refused_at),
        }
    }

    /// The pause before retry `attempt` (1 for the first), or None: give up.
    pub fn pause(&self, attempt: u32, now: Duration, jitter: f64) -> Option<Duration> {
        if now >= self.turn + AFTER_TURN {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(8);
        let backoff = FIRST.saturating_mul(1 << doublings).min(LONGEST);
        let to_turn = self.turn.saturating_sub(now);
        if to_turn.is_zero() {
            // The window turned: a refusal now means the new one is being spent too.
            return Some(FIRST.mul_f64(0.5 + jitter.clamp(0.0, 1.0)));
        }
        if backoff < to_turn {
            Some(backoff)
        } else {
            Some(to_turn + SPREAD.mul_f64(jitter.clamp(0.0, 1.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_turn_is_the_end_of_the_refusing_window() {
        let retry = WindowRetry::new(MINUTE, secs(600.0 + 12.5));
        assert_eq!(retry.turn, secs(660.0));
        // Refused on the very first millisecond of a window: that window's end.
        assert_eq!(WindowRetry::new(MINUTE, secs(660.0)).turn, secs(720.0));
    }

    #[test]
    fn pauses_double_but_never_cross_the_turn() {
        let retry = WindowRetry::new(MINUTE, secs(612.0));
        assert_eq!(retry.pause(1, secs(612.0), 0.0), Some(secs(0.5)));
        assert_eq!(retry.pause(2, secs(612.5), 0.0), Some(secs(1.0)));
        assert_eq!(retry.pause(5, secs(620.0), 0.0), Some(secs(8.0)));
        assert_eq!(retry.pause(7, secs(640.0), 0.0), Some(secs(16.0)));
        // 16 s would cross the turn at 660: end just after it instead.
        assert_eq!(retry.pause(8, secs(650.0), 0.0), Some(secs(10.0)));
        assert_eq!(retry.pause(8, secs(650.0), 1.0), Some(secs(12.0)));
    }

    #[test]
    fn after_the_turn_retries_are_quick_and_end_soon() {
        let retry = WindowRetry::new(MINUTE, secs(612.0));
        let quick = retry.pause(9, secs(661.0), 0.5).expect("still trying");
        assert!(quick <= secs(1.0), "{quick:?}");
        assert_eq!(retry.pause(10, secs(665.0), 0.5), None);
        assert_eq!(retry.pause(10, secs(700.0), 0.5), None);
    }
}
