//! Who sweeps: one agent, elected with the `pinip-sweep` Lease. Pure decisions; the
//! Lease IO is `agent::sweep_leader`.
//!
//! Only the leader reads the whole cluster (every claim, every Node, the pool) and
//! watches Node deletions; every other agent reads one Lease now and then, so an
//! agent's Kubernetes work does not grow with the cluster. Expiry is judged the way
//! claims are: the Lease's resourceVersion unchanged for a whole term, on the
//! observer's own monotonic clock (client-go's leader-election rule), so clock skew
//! between nodes cannot depose a live leader. Two leaders at once (a partitioned
//! leader that has not noticed yet) cost a duplicate read: sweeps are idempotent.

use std::time::Duration;

/// The shortest and longest term of a sweeper's leadership.
const MIN_TERM: Duration = Duration::from_secs(1);
const MAX_TERM: Duration = Duration::from_secs(120);

/// How long the leader's Lease binds without renewal: one `SWEEP_INTERVAL`, capped at
/// two minutes. An abruptly lost leader is replaced within about 1⅔ terms; a leader
/// that stops cleanly gives the Lease up and is replaced at the next look.
pub fn term(sweep_interval: Duration) -> Duration {
    sweep_interval.clamp(MIN_TERM, MAX_TERM)
}

/// The leader renews four times a term, so a few lost renewals do not depose it.
pub fn renew_period(term: Duration) -> Duration {
    term / 4
}

/// A follower looks at the Lease three times a term (the caller adds a per-node
/// offset), so a lost leader is replaced within about 1⅔ terms of its last renewal.
pub fn look_period(term: Duration) -> Duration {
    term / 3
}

/// A leader whose renewals have all failed for this long steps down: a follower may
/// already have judged the Lease expired and taken it over.
pub fn step_down_after(term: Duration) -> Duration {
    term
}

/// The `pinip-sweep` Lease as a follower reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderLease {
    pub holder: String,
    pub resource_version: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// No Lease yet: create it (atomic: of many creates, one wins).
    Create,
    /// The Lease names us (an agent restarted on the leader's node): lead.
    Resume,
    /// The Lease is expired or unheld: take it over with a guarded write.
    TakeOver,
    /// Someone else leads.
    Follow,
}

/// What a follower does about the Lease it just read.
pub fn next_step(
    lease: Option<&LeaderLease>,
    me: &str,
    unchanged_for: Duration,
    term: Duration,
) -> Step {
    match lease {
        None => Step::Create,
        Some(l) if l.holder == me => Step::Resume,
        Some(l) if l.holder.is_empty() => Step::TakeOver,
        Some(_) if unchanged_for >= term => Step::TakeOver,
        Some(_) => Step::Follow,
    }
}

/// Deletion-triggered sweeps are at least this far apart (never more than the
/// interval itself).
pub fn deletion_spacing(sweep_interval: Duration) -> Duration {
    Duration::from_secs(5).min(sweep_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str) -> LeaderLease {
        LeaderLease {
            holder: holder.into(),
            resource_version: "7".into(),
        }
    }

    const TERM: Duration = Duration::from_secs(60);

    #[test]
    fn nobody_leads_yet_so_we_create_the_lease() {
        assert_eq!(next_step(None, "a", Duration::ZERO, TERM), Step::Create);
    }

    #[test]
    fn a_live_leader_is_followed_however_its_clock_is_skewed() {
        let lease = held_by("b");
        for seen in [Duration::ZERO, TERM / 2, TERM - Duration::from_millis(1)] {
            assert_eq!(next_step(Some(&lease), "a", seen, TERM), Step::Follow);
        }
    }

    #[test]
    fn a_lease_unchanged_for_a_term_is_taken_over() {
        let lease = held_by("b");
        assert_eq!(next_step(Some(&lease), "a", TERM, TERM), Step::TakeOver);
        assert_eq!(
            next_step(Some(&held_by("")), "a", Duration::ZERO, TERM),
            Step::TakeOver
        );
    }

    #[test]
    fn our_own_lease_is_resumed() {
        assert_eq!(
            next_step(Some(&held_by("a")), "a", Duration::ZERO, TERM),
            Step::Resume
        );
    }

    #[test]
    fn terms_follow_the_sweep_interval_within_bounds() {
        assert_eq!(term(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(term(Duration::from_secs(300)), MAX_TERM);
        assert_eq!(term(Duration::from_millis(10)), MIN_TERM);
        let t = term(Duration::from_secs(90));
        assert!(renew_period(t) < look_period(t) && look_period(t) < step_down_after(t));
        assert_eq!(
            deletion_spacing(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(
            deletion_spacing(Duration::from_secs(300)),
            Duration::from_secs(5)
        );
    }
}
