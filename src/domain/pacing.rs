//! Pacing after the cloud throttled us: agents that share one account's rate limit
//! spread their retries over the time that limit needs to serve them all, each at its
//! own place, instead of backing off blindly (which, among hundreds of agents, costs
//! several refused calls each and leaves the bucket idle between the bursts). Pure:
//! the caller passes the clock, the jitter and what it knows of the sharers.

use std::time::Duration;

use pinip_providers::{until_window_turn, AssignmentRateLimit};

use super::selection::{finalise, stable_hash};

/// Slack over the exact share: Poisson-like arrivals at the bucket's own rate would meet
/// it empty half the time; 10 % below it, the burst left in the bucket absorbs them.
const SPREAD: f64 = 1.1;

/// No pause is longer than this, whatever the estimate says.
const LONGEST_PAUSE: Duration = Duration::from_secs(3600);

/// Spread of the agents given one quota window, so they do not all arrive in its first
/// millisecond.
const WINDOW_SPREAD: Duration = Duration::from_secs(2);

/// This agent among those that share the limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sharing {
    /// Where in the schedule this agent goes, in [0, 1): stable per node, uniform over
    /// nodes.
    pub place: f64,
    /// How many agents the limit is shared by, at most.
    pub sharers: u64,
    /// How many agents could have spent a quota window between them: every node, the
    /// ones that already have an address too (they spent it), as far as known.
    pub cluster: u64,
}

impl Sharing {
    /// `node_name`'s share, from the cluster's node count and the free addresses the
    /// node last saw, each when known.
    pub fn of(node_name: &str, nodes: Option<u64>, free_addresses: Option<usize>) -> Sharing {
        let sharers = sharers(nodes, free_addresses);
        Sharing {
            place: place_of(node_name),
            sharers,
            cluster: nodes.unwrap_or(sharers).max(sharers),
        }
    }
}

/// The agents that compete for assignments: no more than the nodes (without an
/// address, but all of them when that is not known) and no more than the addresses left
/// free, each bound when known; 1 when nothing is.
pub fn sharers(nodes: Option<u64>, free_addresses: Option<usize>) -> u64 {
    let free = free_addresses.map(|f| f as u64);
    match (nodes, free) {
        (Some(n), Some(f)) => n.min(f),
        (Some(n), None) => n,
        (None, Some(f)) => f,
        (None, None) => 1,
    }
    .max(1)
}

/// A node's place in [0, 1): FNV-1a of its name through SplitMix64's finaliser.
pub fn place_of(node_name: &str) -> f64 {
    let hash = finalise(stable_hash(node_name));
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// The pause after the `streak`-th throttled attempt in a row (1 for the first).
///
/// - A token bucket: the first throttle schedules this agent at its place in the time
///   the bucket needs for everyone beyond its burst (`place × (sharers − burst) ÷ rate`,
///   with [`SPREAD`]); a throttle after that means the schedule slipped, and the agent
///   retries within a few refills, doubling.
/// - Fixed windows: the current one is spent; the first throttle schedules this agent
///   in the window its place falls in among those needed for everyone, a later one in
///   the next window. `wall_clock` is the time since the Unix epoch (the windows start
///   at whole periods of it).
///
/// Never less than what the cloud asked for (`Retry-After`). None when the cluster
/// could not have spent a window (fewer nodes than one window's assignments): the
/// throttle came from elsewhere, and the failure backoff applies. The nodes that already
/// have an address count there: a few agents left waiting are throttled by the window
/// the others spent (600 IPv6 nodes: 200 left against 500 a window backed off blindly
/// and spread their swaps over 20 s of the next window).
pub fn pause_after_throttle(
    limit: &AssignmentRateLimit,
    sharing: &Sharing,
    streak: u32,
    wall_clock: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let jitter = jitter.clamp(0.0, 1.0);
    let pause = match *limit {
        AssignmentRateLimit::Bucket { burst, per_second } => {
            let per_second = per_second.max(0.001);
            let refill = 1.0 / per_second;
            let seconds = if streak <= 1 {
                let beyond_burst = sharing.sharers.saturating_sub(u64::from(burst)) as f64;
                sharing.place * SPREAD * beyond_burst / per_second + jitter * refill
            } else {
                // The schedule leaves the bucket a spare token every 1 / (rate · (1 −
                // 1/SPREAD)) seconds (2.2 s at 5 a second): an agent that slipped waits
                // a random share of a few of those, doubling, instead of competing with
                // the agents scheduled next (full jitter).
                let spare_every = refill / (1.0 - 1.0 / SPREAD);
                let doublings = (streak - 2).min(5);
                jitter * 2.0 * spare_every * f64::from(1u32 << doublings)
            };
            Duration::from_secs_f64(seconds.min(LONGEST_PAUSE.as_secs_f64()))
        }
        AssignmentRateLimit::Window { period, per_window } => {
            if sharing.cluster <= u64::from(per_window) {
                return None;
            }
            let to_next = until_window_turn(period, wall_clock);
            // The window that throttled us is spent: it served `per_window` of the
            // sharers, and the rest need this many windows after it.
            let later_windows = if streak <= 1 {
                let per_window = u64::from(per_window.max(1));
                let needed = sharing
                    .sharers
                    .saturating_sub(per_window)
                    .div_ceil(per_window);
                ((sharing.place * needed as f64) as u64).min(needed.saturating_sub(1))
            } else {
                0
            };
            let spread = WINDOW_SPREAD.min(period / 10).mul_f64(jitter);
            to_next + period.saturating_mul(later_windows as u32) + spread
        }
    };
    Some(
        pause
            .min(LONGEST_PAUSE)
            .max(retry_after.unwrap_or_default()),
    )
}

/// When the ownership record of an assignment that the quota window paced should be
/// written: after the window's turn (spread like the attaches), not in the window the
/// attach was paced into. Those windows are shared out at a full assignment's calls per
/// agent (the attach's and the record's), but the attaches of the agents paced into one
/// all start in its first seconds; a record written at once takes a mutation that a
/// later attach of the same window needed, and that attach then waits a whole window,
/// its node without an external IP after the delete (a 1 000-node Compute run: 316
/// records took window 1 while 66 nodes sat between their delete and add until window
/// 2). Deferred, the records of one window's agents spend the next window's share
/// beside its attaches. None for a token bucket (EC2's tags have a bucket of their
/// own) or a pass the window did not pace.
pub fn record_deferral(
    limit: &AssignmentRateLimit,
    paced_by_window: bool,
    wall_clock: Duration,
    jitter: f64,
) -> Option<Duration> {
    match *limit {
        AssignmentRateLimit::Window { period, .. } if paced_by_window => {
            let spread = WINDOW_SPREAD
                .min(period / 10)
                .mul_f64(jitter.clamp(0.0, 1.0));
            Some(until_window_turn(period, wall_clock) + spread)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC2: AssignmentRateLimit = AssignmentRateLimit::Bucket {
        burst: 50,
        per_second: 5.0,
    };
    const MINUTE: Duration = Duration::from_secs(60);
    const COMPUTE: AssignmentRateLimit = AssignmentRateLimit::Window {
        period: MINUTE,
        per_window: 500,
    };

    fn at(place: f64, sharers: u64) -> Sharing {
        Sharing {
            place,
            sharers,
            cluster: sharers,
        }
    }

    #[test]
    fn places_are_stable_and_spread_over_the_unit_interval() {
        assert_eq!(place_of("node-1"), place_of("node-1"));
        let places: Vec<f64> = (0..1000).map(|i| place_of(&format!("node-{i}"))).collect();
        assert!(places.iter().all(|p| (0.0..1.0).contains(p)));
        for decile in 0..10 {
            let lo = f64::from(decile) / 10.0;
            let n = places
                .iter()
                .filter(|p| **p >= lo && **p < lo + 0.1)
                .count();
            assert!((60..=140).contains(&n), "decile {decile} holds {n} of 1000");
        }
    }

    #[test]
    fn sharers_are_bounded_by_nodes_and_free_addresses() {
        assert_eq!(sharers(Some(1000), Some(1100)), 1000);
        assert_eq!(sharers(Some(1000), Some(30)), 30);
        assert_eq!(sharers(None, Some(0)), 1);
        assert_eq!(sharers(Some(7), None), 7);
        assert_eq!(sharers(None, None), 1);
    }

    #[test]
    fn a_first_throttle_spreads_the_sharers_over_the_time_the_bucket_needs() {
        let now = Duration::ZERO;
        let last = pause_after_throttle(&EC2, &at(0.999, 1000), 1, now, None, 0.0).unwrap();
        // 950 beyond the burst at 5 a second: 190 s, with the slack.
        assert!(last > Duration::from_secs(200) && last < Duration::from_secs(210));
        let first = pause_after_throttle(&EC2, &at(0.0, 1000), 1, now, None, 0.0).unwrap();
        assert_eq!(first, Duration::ZERO);
        // Agents at neighbouring places come one refill (0.2 s) or so apart.
        let a = pause_after_throttle(&EC2, &at(0.500, 1000), 1, now, None, 0.0).unwrap();
        let b = pause_after_throttle(&EC2, &at(0.501, 1000), 1, now, None, 0.0).unwrap();
        assert!(b > a && b - a < Duration::from_millis(250));
    }

    #[test]
    fn few_sharers_wait_about_one_refill() {
        let pause = pause_after_throttle(&EC2, &at(0.9, 20), 1, Duration::ZERO, None, 0.5).unwrap();
        assert_eq!(pause, Duration::from_millis(100));
    }

    #[test]
    fn a_throttle_after_the_schedule_waits_a_random_share_of_the_spare_tokens_doubling() {
        let ms = |streak, jitter| {
            pause_after_throttle(&EC2, &at(0.9, 1000), streak, Duration::ZERO, None, jitter)
                .unwrap()
                .as_millis()
        };
        // A spare token every 2.2 s at 5 a second and a 10 % slack.
        assert_eq!(ms(2, 1.0), 4400);
        assert_eq!(ms(3, 1.0), 8800);
        assert_eq!(ms(3, 0.5), 4400);
        assert_eq!(ms(2, 0.0), 0);
        assert_eq!(ms(40, 1.0), 140_800);
    }

    #[test]
    fn retry_after_is_a_floor_and_an_hour_a_ceiling() {
        let asked = Some(Duration::from_secs(7));
        let pause = pause_after_throttle(&EC2, &at(0.0, 1), 1, Duration::ZERO, asked, 0.0).unwrap();
        assert_eq!(pause, Duration::from_secs(7));
        let huge = pause_after_throttle(&EC2, &at(0.99, 10_000_000), 1, Duration::ZERO, None, 0.0)
            .unwrap();
        assert_eq!(huge, LONGEST_PAUSE);
    }

    #[test]
    fn a_spent_window_sends_each_agent_to_the_window_its_place_falls_in() {
        // 25 s into a minute: the next window opens in 35 s.
        let now = Duration::from_secs(10 * 60 + 25);
        let early = pause_after_throttle(&COMPUTE, &at(0.1, 1000), 1, now, None, 0.0).unwrap();
        assert_eq!(early, Duration::from_secs(35));
        // 1000 sharers, 500 a window: the spent window served 500, the next one
        // serves the rest.
        let next = pause_after_throttle(&COMPUTE, &at(0.7, 1000), 1, now, None, 0.0).unwrap();
        assert_eq!(next, Duration::from_secs(35));
        // 2000: 1500 left, three windows; the upper third goes two windows later.
        let late = pause_after_throttle(&COMPUTE, &at(0.7, 2000), 1, now, None, 0.0).unwrap();
        assert_eq!(late, Duration::from_secs(155));
        let again = pause_after_throttle(&COMPUTE, &at(0.7, 1000), 2, now, None, 1.0).unwrap();
        assert_eq!(again, Duration::from_secs(37));
    }

    #[test]
    fn a_window_too_big_for_the_sharers_to_spend_leaves_it_to_the_backoff() {
        let now = Duration::from_secs(25);
        assert_eq!(
            pause_after_throttle(&COMPUTE, &at(0.5, 30), 1, now, None, 0.0),
            None
        );
        assert_eq!(
            pause_after_throttle(&COMPUTE, &at(0.5, 500), 2, now, None, 0.0),
            None
        );
    }

    #[test]
    fn the_last_sharers_of_a_window_the_cluster_spent_wait_for_its_turn() {
        // 600 nodes, 200 still waiting, 500 assignments a window: the 400 assigned spent
        // it, so the turn (35 s away), not the backoff, is the pause.
        let now = Duration::from_secs(10 * 60 + 25);
        let few_left = Sharing {
            place: 0.9,
            sharers: 200,
            cluster: 600,
        };
        let pause = pause_after_throttle(&COMPUTE, &few_left, 1, now, None, 0.0);
        assert_eq!(pause, Some(Duration::from_secs(35)));
        assert_eq!(Sharing::of("n", Some(600), Some(200)).cluster, 600);
        // Not knowing the nodes, the sharers are all there is.
        assert_eq!(Sharing::of("n", None, Some(200)).cluster, 200);
    }

    #[test]
    fn a_record_after_a_paced_attach_waits_for_the_next_window_and_no_other_does() {
        let now = Duration::from_secs(10 * 60 + 2);
        assert_eq!(
            record_deferral(&COMPUTE, true, now, 0.0),
            Some(Duration::from_secs(58))
        );
        assert_eq!(
            record_deferral(&COMPUTE, true, now, 1.0),
            Some(Duration::from_secs(60))
        );
        assert_eq!(record_deferral(&COMPUTE, false, now, 0.5), None);
        assert_eq!(record_deferral(&EC2, true, now, 0.5), None);
    }
}
