//! How long one observer has seen an object at one `resourceVersion`, on its own
//! monotonic clock. Claims and the sweep Lease are judged stale by this, never by a
//! timestamp another node wrote, so a skewed wall clock changes no decision.

use std::time::{Duration, Instant};

/// The version last seen and when this observer first saw it.
#[derive(Debug, Default)]
pub(crate) struct UnchangedSince {
    seen: Option<(String, Instant)>,
}

impl UnchangedSince {
    /// Records a read of `version` at `now`; how long the version has not moved.
    /// A new version restarts the count at zero.
    pub(crate) fn observe(&mut self, version: &str, now: Instant) -> Duration {
        match &self.seen {
            Some((seen, since)) if seen == version => now.saturating_duration_since(*since),
            _ => {
                self.seen = Some((version.to_string(), now));
                Duration::ZERO
            }
        }
    }

    /// Forgets what was seen (the next read starts a new count).
    pub(crate) fn forget(&mut self) {
        self.seen = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmoved_version_ages_and_a_new_one_starts_at_zero() {
        let start = Instant::now();
        let mut watch = UnchangedSince::default();
        assert_eq!(watch.observe("1", start), Duration::ZERO);
        let later = start + Duration::from_secs(7);
        assert_eq!(watch.observe("1", later), Duration::from_secs(7));
        assert_eq!(watch.observe("2", later), Duration::ZERO);
        let much_later = later + Duration::from_secs(3);
        assert_eq!(watch.observe("2", much_later), Duration::from_secs(3));
        watch.forget();
        assert_eq!(watch.observe("2", much_later), Duration::ZERO);
    }

    #[test]
    fn a_clock_read_out_of_order_does_not_underflow() {
        let start = Instant::now() + Duration::from_secs(5);
        let mut watch = UnchangedSince::default();
        watch.observe("1", start);
        assert_eq!(
            watch.observe("1", start - Duration::from_secs(5)),
            Duration::ZERO
        );
    }
}
