//! EC2's published request-rate limits ("Request throttling for the Amazon EC2 API"):
//! one token bucket per API action for the account and Region (one simulator is one
//! account in one Region), refilled continuously up to its capacity; an empty bucket
//! answers `RequestLimitExceeded` (HTTP 503), as the random throttling fault does.
//!
//! Off unless set ([`Ec2Sim::set_rate_limits`]). Only HTTP requests spend tokens: what
//! tests do through [`Ec2Sim`]'s own methods is not a request.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::Ec2Error;
use super::query::Params;
use super::{faults, lock, Ec2Sim, ACTIONS};
use crate::clock::{self, Clock};

/// One bucket's size: `capacity` tokens, `refill_per_s` tokens added per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub capacity: u32,
    pub refill_per_s: u32,
}

impl Bucket {
    pub const fn new(capacity: u32, refill_per_s: u32) -> Bucket {
        Bucket {
            capacity,
            refill_per_s,
        }
    }
}

/// The actions whose calls without a filter and without pagination have their own,
/// smaller bucket (the "unfiltered and unpaginated non-mutating" category).
pub const UNFILTERED_ACTIONS: &[&str] = &[
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeSnapshots",
    "DescribeSpotInstanceRequests",
    "DescribeVolumes",
];

/// Bucket sizes by category, per-action exceptions, and what a throttled request costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ec2RateLimits {
    /// `Describe*`, `List*`, `Search*`, `Get*` (and [`UNFILTERED_ACTIONS`] with a filter
    /// or pagination).
    pub non_mutating: Bucket,
    /// [`UNFILTERED_ACTIONS`] without any `Filter.N` and without `MaxResults`/`NextToken`
    /// (`InstanceIds` alone counts as unfiltered: the conservative reading).
    pub unfiltered: Bucket,
    /// Every other action.
    pub mutating: Bucket,
    /// Actions with their own numbers, whatever their category.
    pub uncategorized: BTreeMap<String, Bucket>,
    /// Whether a refused request takes a token anyway (the bucket goes below zero). The
    /// documentation does not say; off by default.
    pub throttled_consume_tokens: bool,
}

impl Ec2RateLimits {
    /// The documented defaults of an account that never asked for more.
    pub fn published_defaults() -> Ec2RateLimits {
        let own = [
            ("CreateTags", Bucket::new(100, 10)),
            ("DeleteTags", Bucket::new(100, 10)),
            ("AssignIpv6Addresses", Bucket::new(100, 5)),
            ("UnassignIpv6Addresses", Bucket::new(100, 5)),
            ("AssignPrivateIpAddresses", Bucket::new(100, 5)),
            ("UnassignPrivateIpAddresses", Bucket::new(100, 5)),
            ("ModifyNetworkInterfaceAttribute", Bucket::new(100, 5)),
            ("RunInstances", Bucket::new(5, 2)),
        ];
        Ec2RateLimits {
            non_mutating: Bucket::new(100, 20),
            unfiltered: Bucket::new(50, 10),
            mutating: Bucket::new(50, 5),
            uncategorized: own
                .into_iter()
                .map(|(action, bucket)| (action.to_string(), bucket))
                .collect(),
            throttled_consume_tokens: false,
        }
    }

    /// Every action's bucket the same size (small buckets for tests).
    pub fn uniform(bucket: Bucket) -> Ec2RateLimits {
        Ec2RateLimits {
            non_mutating: bucket,
            unfiltered: bucket,
            mutating: bucket,
            uncategorized: BTreeMap::new(),
            throttled_consume_tokens: false,
        }
    }

    /// The bucket a call of `action` spends from: its key (the action, or
    /// `"{action} (unfiltered)"` for the unfiltered variant, a bucket of its own) and size.
    pub fn bucket_for(&self, action: &str, unfiltered: bool) -> (String, Bucket) {
        if let Some(bucket) = self.uncategorized.get(action) {
            return (action.to_string(), *bucket);
        }
        if unfiltered && UNFILTERED_ACTIONS.contains(&action) {
            return (format!("{action} (unfiltered)"), self.unfiltered);
        }
        let non_mutating = ["Describe", "List", "Search", "Get"]
            .iter()
            .any(|prefix| action.starts_with(prefix));
        let bucket = if non_mutating {
            self.non_mutating
        } else {
            self.mutating
        };
        (action.to_string(), bucket)
    }
}

/// Whether a request is "without a filter and without pagination".
pub fn is_unfiltered(params: &Params) -> bool {
    params.filters().is_empty()
        && params.get("MaxResults").is_none()
        && params.get("NextToken").is_none()
}

/// One bucket's level, in thousandths of a token so that a refill of R tokens per
/// second is exactly R per millisecond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    size: Bucket,
    milli: i64,
    at_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn full(size: Bucket, now_ms: u64) -> TokenBucket {
        TokenBucket {
            size,
            milli: i64::from(size.capacity) * 1000,
            at_ms: now_ms,
        }
    }

    /// Take one token at `now_ms`; false if there was none. With `consume_when_refused`
    /// a refused request takes one too, leaving a debt the refill pays first.
    pub fn take(&mut self, now_ms: u64, consume_when_refused: bool) -> bool {
        self.refill(now_ms);
        let granted = self.milli >= 1000;
        if granted || consume_when_refused {
            self.milli -= 1000;
        }
        granted
    }

    /// Whole tokens left at `now_ms` (negative while in debt).
    pub fn tokens(&mut self, now_ms: u64) -> i64 {
        self.refill(now_ms);
        self.milli.div_euclid(1000)
    }

    fn refill(&mut self, now_ms: u64) {
        // A clock that went backwards adds nothing.
        let elapsed = now_ms.saturating_sub(self.at_ms);
        self.at_ms = self.at_ms.max(now_ms);
        let added = i64::try_from(elapsed)
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::from(self.size.refill_per_s));
        let cap = i64::from(self.size.capacity) * 1000;
        self.milli = self.milli.saturating_add(added).min(cap);
    }
}

/// The limits in force, their buckets, and the requests they refused.
pub(super) struct LimitState {
    limits: Option<Ec2RateLimits>,
    clock: Arc<dyn Clock>,
    buckets: BTreeMap<String, TokenBucket>,
    throttled: BTreeMap<String, u64>,
}

impl Default for LimitState {
    fn default() -> Self {
        LimitState {
            limits: None,
            clock: clock::system(),
            buckets: BTreeMap::new(),
            throttled: BTreeMap::new(),
        }
    }
}

impl LimitState {
    /// Spend a token of the request's bucket, or refuse it with `RequestLimitExceeded`.
    /// Actions the simulator does not serve are not limited (they fail anyway).
    pub fn admit(&mut self, action: &str, params: &Params) -> Result<(), Ec2Error> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        if !ACTIONS.contains(&action) {
            return Ok(());
        }
        let (key, size) = limits.bucket_for(action, is_unfiltered(params));
        let now = self.clock.now_ms();
        let consume = limits.throttled_consume_tokens;
        let bucket = self
            .buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::full(size, now));
        if bucket.take(now, consume) {
            return Ok(());
        }
        *self.throttled.entry(action.to_string()).or_default() += 1;
        Err(faults::request_limit_exceeded())
    }
}

impl Ec2Sim {
    fn limit_state(&self) -> std::sync::MutexGuard<'_, LimitState> {
        lock(&self.shared.limits)
    }

    /// Enforce these limits on HTTP requests from now on (None: no limits). Every
    /// bucket starts full.
    pub fn set_rate_limits(&self, limits: Option<Ec2RateLimits>) {
        let mut state = self.limit_state();
        state.limits = limits;
        state.buckets.clear();
    }

    pub fn rate_limits(&self) -> Option<Ec2RateLimits> {
        self.limit_state().limits.clone()
    }

    /// The clock the buckets refill by (a [`crate::clock::ManualClock`] in tests).
    /// Every bucket starts full again.
    pub fn set_rate_clock(&self, clock: Arc<dyn Clock>) {
        let mut state = self.limit_state();
        state.clock = clock;
        state.buckets.clear();
    }

    /// Requests the rate limits refused, per action (every action listed, zero included).
    pub fn throttled_counts(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = ACTIONS.iter().map(|a| (a.to_string(), 0)).collect();
        all.extend(self.limit_state().throttled.clone());
        all
    }

    /// Requests the rate limits refused, in all.
    pub fn throttled_total(&self) -> u64 {
        self.limit_state().throttled.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_then_refills_continuously_up_to_capacity() {
        let mut b = TokenBucket::full(Bucket::new(50, 5), 0);
        assert!((0..50).all(|_| b.take(0, false)));
        assert!(!b.take(0, false), "the 51st request in the same instant");
        assert!(!b.take(199, false), "5/s: not one token before 200 ms");
        assert!(b.take(200, false));
        assert!(!b.take(200, false));
        // A long idle spell fills it to capacity, not beyond.
        assert_eq!(b.tokens(3_600_000), 50);
    }

    #[test]
    fn a_refused_request_takes_a_token_only_when_so_configured() {
        let mut free = TokenBucket::full(Bucket::new(1, 1), 0);
        let mut costly = free.clone();
        for b in [&mut free, &mut costly] {
            assert!(b.take(0, false));
        }
        assert!(!free.take(500, false));
        assert!(free.take(1000, false), "a refused request cost nothing");
        assert!(!costly.take(500, true));
        assert_eq!(costly.tokens(500), -1);
        assert!(!costly.take(1000, true), "the refill paid the debt first");
        assert!(costly.take(3000, true));
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let mut b = TokenBucket::full(Bucket::new(1, 1), 10_000);
        assert!(b.take(10_000, false));
        assert!(!b.take(5_000, false));
        assert!(!b.take(10_999, false));
        assert!(b.take(11_000, false));
    }

    #[test]
    fn requests_land_in_their_documented_buckets() {
        let d = Ec2RateLimits::published_defaults();
        let bucket = |action: &str, pairs: &[(&str, &str)]| {
            let params = Params::from_pairs(pairs);
            d.bucket_for(action, is_unfiltered(&params))
        };
        let ids = [("InstanceId.1", "i-1")];
        assert_eq!(
            bucket("DescribeInstances", &ids),
            ("DescribeInstances (unfiltered)".into(), Bucket::new(50, 10))
        );
        let filtered = [("Filter.1.Name", "subnet-id"), ("Filter.1.Value.1", "s")];
        assert_eq!(
            bucket("DescribeNetworkInterfaces", &filtered),
            ("DescribeNetworkInterfaces".into(), Bucket::new(100, 20))
        );
        assert_eq!(
            bucket("DescribeInstances", &[("MaxResults", "5")]).1,
            Bucket::new(100, 20)
        );
        assert_eq!(bucket("DescribeAddresses", &[]).1, Bucket::new(100, 20));
        assert_eq!(bucket("AssociateAddress", &[]).1, Bucket::new(50, 5));
        assert_eq!(bucket("ReleaseAddress", &[]).1, Bucket::new(50, 5));
        assert_eq!(bucket("CreateTags", &[]).1, Bucket::new(100, 10));
        assert_eq!(bucket("UnassignIpv6Addresses", &[]).1, Bucket::new(100, 5));
    }

    #[test]
    fn each_action_spends_from_its_own_bucket_and_refusals_are_counted() {
        let clock = crate::clock::ManualClock::at(0);
        let mut state = LimitState {
            limits: Some(Ec2RateLimits::uniform(Bucket::new(2, 1))),
            clock: Arc::new(clock.clone()),
            ..LimitState::default()
        };
        let none = Params::default();
        assert!(state.admit("AssociateAddress", &none).is_ok());
        assert!(state.admit("AssociateAddress", &none).is_ok());
        let refused = state.admit("AssociateAddress", &none).unwrap_err();
        assert_eq!(
            (refused.code.as_str(), refused.status),
            ("RequestLimitExceeded", 503)
        );
        assert!(state.admit("DisassociateAddress", &none).is_ok());
        assert!(state.admit("NoSuchAction", &none).is_ok());
        clock.advance_ms(1000);
        assert!(state.admit("AssociateAddress", &none).is_ok());
        assert_eq!(state.throttled["AssociateAddress"], 1);
    }
}
