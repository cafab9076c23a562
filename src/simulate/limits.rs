//! `pinip simulate --cloud-limits`: the published API rate limits a run's simulated
//! cloud enforces (EC2's token buckets, Compute's per-minute quota windows: the
//! simulators' `limits.rs`), what they refused, and `floor_ms`, the least time in which
//! the run's assignments could have been made under them.
//!
//! The floor counts the calls of the *minimal sequence* of one fresh assignment (below,
//! per cloud and family: what the real provider sends for one node that meets no
//! conflict, no retry and no refusal, measured with `pinip simulate --nodes 1`), times
//! the assignments the run made. Not the measured counters: a floor must not rise
//! when agents waste calls. For each bucket (window group) it takes the time that
//! bucket needs to grant the demand, starting full, and reports the largest.

use std::collections::BTreeMap;

use clap::ValueEnum;
use pinip_providers::IpFamily;
use pinip_sim::compute::{ComputeRateLimits, ComputeSim, QuotaGroup, WindowTally};
use pinip_sim::ec2::{Bucket, Ec2RateLimits, Ec2Sim};
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudLimits {
    /// No limits (only the faults asked for).
    #[default]
    None,
    /// The providers' published defaults (EC2 and Compute only).
    Default,
}

impl CloudLimits {
    pub fn name(self) -> &'static str {
        match self {
            CloudLimits::None => "none",
            CloudLimits::Default => "default",
        }
    }
}

/// `cloud_limits` in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CloudLimitsReport {
    pub profile: CloudLimits,
    /// Cloud calls the limits refused (random throttling from faults not included).
    pub throttled: u64,
    /// Least time the run's assignments could have taken under the limits (None
    /// without limits, or when not computed).
    pub floor_ms: Option<u64>,
    /// Whether a refused EC2 request took a token anyway (Compute: always false, a
    /// refusal in a spent window changes nothing).
    pub throttled_consume_tokens: bool,
    /// Compute: each quota window's admissions and refusals per method, in order (the
    /// run's timeline under the quotas; windows numbered from the first request's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowCounts>,
}

/// One method's window in `cloud_limits.windows`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    pub window: u64,
    pub method: String,
    pub group: &'static str,
    #[serde(flatten)]
    pub tally: WindowTally,
}

/// One call of a minimal assignment: the action or method, whether EC2 counts it as
/// unfiltered (its own bucket), and how many times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub name: &'static str,
    pub unfiltered: bool,
    pub count: u64,
}

const fn call(name: &'static str, unfiltered: bool, count: u64) -> Call {
    Call {
        name,
        unfiltered,
        count,
    }
}

/// EC2, one fresh assignment: the node's own instance (by an `instance-id` filter, so
/// the filtered bucket), the pool listing (filtered), the association, the ownership
/// tags. IPv6 lists the subnet's ENIs (filtered) instead of the Elastic IPs, reads the
/// subnet's blocks, and assigns. (The sweep's one listing per run is no assignment's.)
pub fn ec2_assignment(family: IpFamily) -> &'static [Call] {
    match family {
        IpFamily::V4 => EC2_V4,
        IpFamily::V6 => EC2_V6,
    }
}

const EC2_V4: &[Call] = &[
    call("DescribeInstances", false, 1),
    call("DescribeAddresses", false, 1),
    call("AssociateAddress", false, 1),
    call("CreateTags", false, 1),
];

const EC2_V6: &[Call] = &[
    call("DescribeInstances", false, 1),
    call("DescribeNetworkInterfaces", false, 1),
    call("DescribeSubnets", false, 1),
    call("AssignIpv6Addresses", false, 1),
    call("CreateTags", false, 1),
];

/// Compute, one fresh assignment: the instance, the pool listing (one list, every
/// status), the swap (delete the ephemeral access config, add the reserved one,
/// each waited on) and the ownership labels (waited on). IPv6 swaps the NIC's stack
/// type in two waited steps and reads the instance again between them. (With
/// `--latency-ms 0` operations are DONE at once and the agents skip the waits; their
/// group needs no more calls than the mutations', so the floor is the same.)
pub fn compute_assignment(family: IpFamily) -> &'static [Call] {
    match family {
        IpFamily::V4 => COMPUTE_V4,
        IpFamily::V6 => COMPUTE_V6,
    }
}

const COMPUTE_V4: &[Call] = &[
    call("instances.get", false, 1),
    call("addresses.list", false, 1),
    call("instances.deleteAccessConfig", false, 1),
    call("instances.addAccessConfig", false, 1),
    call("addresses.setLabels", false, 1),
    call("zoneOperations.wait", false, 2),
    call("regionOperations.wait", false, 1),
];

const COMPUTE_V6: &[Call] = &[
    call("instances.get", false, 2),
    call("addresses.list", false, 1),
    call("instances.updateNetworkInterface", false, 2),
    call("addresses.setLabels", false, 1),
    call("zoneOperations.wait", false, 2),
    call("regionOperations.wait", false, 1),
];

/// Milliseconds until a bucket that starts full has granted `demand` tokens: the
/// tokens beyond its capacity arrive at `refill_per_s`.
pub fn bucket_floor_ms(demand: u64, bucket: Bucket) -> u64 {
    let capacity = u64::from(bucket.capacity);
    if demand <= capacity {
        return 0;
    }
    if bucket.refill_per_s == 0 {
        return u64::MAX;
    }
    (demand - capacity)
        .saturating_mul(1000)
        .div_ceil(u64::from(bucket.refill_per_s))
}

/// Milliseconds until fixed windows of `window_ms` admitting `limit` each have admitted
/// `demand`, for a run that starts `offset_ms` into a window: the last window needed
/// opens after the rest of the first (partial) window and every full one between.
pub fn window_floor_ms(demand: u64, limit: u64, window_ms: u64, offset_ms: u64) -> u64 {
    if demand == 0 {
        return 0;
    }
    if limit == 0 {
        return u64::MAX;
    }
    let windows = demand.div_ceil(limit);
    if windows <= 1 {
        return 0;
    }
    let window_ms = window_ms.max(1);
    (window_ms - offset_ms % window_ms).saturating_add((windows - 2).saturating_mul(window_ms))
}

/// The EC2 floor: the slowest bucket the assignments' calls spend from.
pub fn ec2_floor_ms(limits: &Ec2RateLimits, calls: &[Call], assignments: u64) -> u64 {
    let mut demand: BTreeMap<String, (Bucket, u64)> = BTreeMap::new();
    for c in calls {
        let (key, bucket) = limits.bucket_for(c.name, c.unfiltered);
        demand.entry(key).or_insert((bucket, 0)).1 += c.count * assignments;
    }
    demand
        .values()
        .map(|(bucket, n)| bucket_floor_ms(*n, *bucket))
        .max()
        .unwrap_or(0)
}

/// The Compute floor: the slowest quota group, methods of a group added up.
pub fn compute_floor_ms(
    limits: &ComputeRateLimits,
    calls: &[Call],
    assignments: u64,
    offset_ms: u64,
) -> u64 {
    let mut demand: BTreeMap<QuotaGroup, u64> = BTreeMap::new();
    for c in calls {
        *demand.entry(QuotaGroup::of(c.name)).or_default() += c.count * assignments;
    }
    demand
        .iter()
        .map(|(group, n)| {
            let limit = u64::from(limits.limit_of(*group));
            window_floor_ms(*n, limit, limits.window_ms(), offset_ms)
        })
        .max()
        .unwrap_or(0)
}

/// The simulator whose limits a run enforces: to read its counters and its clock.
#[derive(Clone, Debug)]
pub enum Enforcer {
    Ec2 {
        sim: Ec2Sim,
        limits: Ec2RateLimits,
    },
    Compute {
        sim: ComputeSim,
        limits: ComputeRateLimits,
    },
}

impl Enforcer {
    /// Put EC2's published defaults on `sim`.
    pub fn ec2(sim: &Ec2Sim, throttled_consume_tokens: bool) -> Enforcer {
        let limits = Ec2RateLimits {
            throttled_consume_tokens,
            ..Ec2RateLimits::published_defaults()
        };
        sim.set_rate_limits(Some(limits.clone()));
        Enforcer::Ec2 {
            sim: sim.clone(),
            limits,
        }
    }

    /// Put Compute's published defaults on `sim`.
    pub fn compute(sim: &ComputeSim) -> Enforcer {
        let limits = ComputeRateLimits::published_defaults();
        sim.set_rate_limits(Some(limits.clone()));
        Enforcer::Compute {
            sim: sim.clone(),
            limits,
        }
    }

    /// Where the quota clock stands in its window now (0 for EC2's buckets): read when
    /// the run starts.
    pub fn window_offset_ms(&self) -> u64 {
        match self {
            Enforcer::Ec2 { .. } => 0,
            Enforcer::Compute { sim, limits } => sim.rate_clock_ms() % limits.window_ms(),
        }
    }

    /// The report's `cloud_limits`; the floor for `assignments` fresh assignments of
    /// `family` when given them.
    pub fn report(&self, floor_for: Option<(u64, IpFamily, u64)>) -> CloudLimitsReport {
        let floor_ms = floor_for.map(|(assignments, family, offset_ms)| match self {
            Enforcer::Ec2 { limits, .. } => {
                ec2_floor_ms(limits, ec2_assignment(family), assignments)
            }
            Enforcer::Compute { limits, .. } => {
                compute_floor_ms(limits, compute_assignment(family), assignments, offset_ms)
            }
        });
        let (throttled, consume) = match self {
            Enforcer::Ec2 { sim, limits } => {
                (sim.throttled_total(), limits.throttled_consume_tokens)
            }
            Enforcer::Compute { sim, .. } => (sim.throttled_total(), false),
        };
        let windows = match self {
            Enforcer::Ec2 { .. } => Vec::new(),
            Enforcer::Compute { sim, .. } => sim
                .window_tally()
                .into_iter()
                .map(|(window, method, tally)| WindowCounts {
                    window,
                    group: QuotaGroup::of(&method).label(),
                    method,
                    tally,
                })
                .collect(),
        };
        CloudLimitsReport {
            profile: CloudLimits::Default,
            throttled,
            floor_ms,
            throttled_consume_tokens: consume,
            windows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_grants_its_capacity_at_once_then_its_refill_rate() {
        let associate = Bucket::new(50, 5);
        assert_eq!(bucket_floor_ms(0, associate), 0);
        assert_eq!(bucket_floor_ms(50, associate), 0);
        assert_eq!(bucket_floor_ms(51, associate), 200);
        // The reference's 1000 nodes: (1000 − 50) / 5 = 190 s.
        assert_eq!(bucket_floor_ms(1000, associate), 190_000);
        assert_eq!(bucket_floor_ms(52, Bucket::new(50, 3)), 667);
        assert_eq!(bucket_floor_ms(51, Bucket::new(50, 0)), u64::MAX);
    }

    #[test]
    fn windows_count_the_partial_first_one() {
        let minute = 60_000;
        assert_eq!(window_floor_ms(0, 1500, minute, 0), 0);
        assert_eq!(window_floor_ms(1500, 1500, minute, 15_000), 0);
        // Spent at 10:00:15, the 1501st call waits until 10:01:00.
        assert_eq!(window_floor_ms(1501, 1500, minute, 15_000), 45_000);
        assert_eq!(window_floor_ms(3000, 1500, minute, 15_000), 45_000);
        assert_eq!(window_floor_ms(3001, 1500, minute, 15_000), 105_000);
        assert_eq!(window_floor_ms(3001, 1500, minute, 0), 120_000);
        assert_eq!(window_floor_ms(1, 0, minute, 0), u64::MAX);
    }

    #[test]
    fn the_ec2_floor_is_the_slowest_bucket_of_the_minimal_sequence() {
        let limits = Ec2RateLimits::published_defaults();
        let v4 = ec2_assignment(IpFamily::V4);
        assert_eq!(ec2_floor_ms(&limits, v4, 50), 0);
        // 60 nodes: AssociateAddress (50/5) needs 2 s; DescribeInstances unfiltered
        // (50/10) needs 1 s; CreateTags (100/10) and DescribeAddresses (100/20) none.
        assert_eq!(ec2_floor_ms(&limits, v4, 60), 2000);
        assert_eq!(ec2_floor_ms(&limits, v4, 300), 50_000);
        // IPv6: AssignIpv6Addresses (100/5) is the slowest.
        let v6 = ec2_assignment(IpFamily::V6);
        assert_eq!(ec2_floor_ms(&limits, v6, 300), 40_000);
        // Two calls of one bucket add up.
        let twice = [call("AssociateAddress", false, 2)];
        assert_eq!(ec2_floor_ms(&limits, &twice, 30), 2000);
    }

    #[test]
    fn the_compute_floor_adds_up_the_methods_of_a_group() {
        let limits = ComputeRateLimits::published_defaults();
        let v4 = compute_assignment(IpFamily::V4);
        // Three mutations per assignment: 500 fit one minute, 501 do not.
        assert_eq!(compute_floor_ms(&limits, v4, 500, 0), 0);
        assert_eq!(compute_floor_ms(&limits, v4, 501, 20_000), 40_000);
        // Three operation reads too, two lists, one read: mutations and waits set the pace.
        assert_eq!(compute_floor_ms(&limits, v4, 1001, 0), 120_000);
        let short = ComputeRateLimits::uniform(Duration::from_secs(1), 2);
        assert_eq!(
            compute_floor_ms(&short, &[call("instances.get", false, 1)], 5, 0),
            2000
        );
    }
}
