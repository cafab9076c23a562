//! Compute Engine's published rate quotas ("Compute Engine rate quotas"): per project
//! (one simulator is one project), per quota group, counted over fixed windows that
//! start at whole minutes of the simulator's clock; a spent group answers HTTP 403
//! `rateLimitExceeded` until the next window starts.
//!
//! Every method here is regional or zonal, but the numbers are the global methods'
//! groups (the reference this models; the regional groups are not modelled). Off unless
//! set ([`ComputeSim::set_rate_limits`]); only HTTP requests count.

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use super::errors::ApiError;
use super::{lock, ComputeSim, Shared, METHODS};
use crate::clock::{self, Clock};

/// The quota groups of the methods the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuotaGroup {
    /// Queries: mutations and whatever no other group takes (`compute.googleapis.com/default`).
    Default,
    /// `*.get`.
    Read,
    /// `*.list`, `aggregatedList`.
    List,
    /// `*Operations.get`, `*Operations.wait`.
    OperationRead,
}

impl QuotaGroup {
    /// The group a method (`instances.get`, `zoneOperations.wait`) is counted in.
    pub fn of(method: &str) -> QuotaGroup {
        let (resource, verb) = method.split_once('.').unwrap_or((method, ""));
        if resource.ends_with("Operations") && matches!(verb, "get" | "wait") {
            QuotaGroup::OperationRead
        } else if verb == "get" {
            QuotaGroup::Read
        } else if matches!(verb, "list" | "aggregatedList") {
            QuotaGroup::List
        } else {
            QuotaGroup::Default
        }
    }

    /// The group's short name, as reports give it.
    pub fn label(self) -> &'static str {
        match self {
            QuotaGroup::Default => "default",
            QuotaGroup::Read => "read",
            QuotaGroup::List => "list",
            QuotaGroup::OperationRead => "operation_read",
        }
    }

    /// Google's metric and limit names, as the quota error words them.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            QuotaGroup::Default => ("Queries", "Queries per minute"),
            QuotaGroup::Read => ("Read requests", "Read requests per minute"),
            QuotaGroup::List => ("List requests", "List requests per minute"),
            QuotaGroup::OperationRead => (
                "Operation read requests",
                "Operation read requests per minute",
            ),
        }
    }
}

/// Requests per window for each group, and the window's length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeRateLimits {
    /// One minute at Google; shorter in tests.
    pub window: Duration,
    pub default: u32,
    pub read: u32,
    pub list: u32,
    pub operation_read: u32,
}

impl ComputeRateLimits {
    /// The documented per-project defaults of the global groups: 1,500 a minute each.
    pub fn published_defaults() -> ComputeRateLimits {
        ComputeRateLimits::uniform(Duration::from_secs(60), 1500)
    }

    /// Every group `limit` requests per `window`.
    pub fn uniform(window: Duration, limit: u32) -> ComputeRateLimits {
        ComputeRateLimits {
            window,
            default: limit,
            read: limit,
            list: limit,
            operation_read: limit,
        }
    }

    pub fn limit_of(&self, group: QuotaGroup) -> u32 {
        match group {
            QuotaGroup::Default => self.default,
            QuotaGroup::Read => self.read,
            QuotaGroup::List => self.list,
            QuotaGroup::OperationRead => self.operation_read,
        }
    }

    /// The window length in milliseconds (at least 1).
    pub fn window_ms(&self) -> u64 {
        (self.window.as_millis() as u64).max(1)
    }
}

/// One group's count in the current fixed window. Windows are numbered from the
/// clock's origin: window `n` is `[n·W, (n+1)·W)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    index: u64,
    used: u32,
}

impl Window {
    /// Count one request at `now_ms`; false if the window already admitted `limit`.
    /// A refused request changes nothing (the window is spent either way).
    pub fn take(&mut self, now_ms: u64, window_ms: u64, limit: u32) -> bool {
        let index = now_ms / window_ms.max(1);
        // A clock that went backwards stays in the window it was in.
        if index > self.index {
            *self = Window { index, used: 0 };
        }
        if self.used >= limit {
            return false;
        }
        self.used += 1;
        true
    }
}

/// The limits in force, each group's window, and the requests refused.
pub(super) struct LimitState {
    limits: Option<ComputeRateLimits>,
    clock: Arc<dyn Clock>,
    windows: BTreeMap<QuotaGroup, Window>,
    /// By window and method: the run's timeline, and the refusals counted from it.
    tally: BTreeMap<(u64, String), WindowTally>,
}

/// What one method's requests in one window were: admitted or refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowTally {
    pub admitted: u32,
    pub refused: u32,
    /// When the window admitted its first and its last request, in ms into it.
    pub first_ms: u64,
    pub last_ms: u64,
}

impl Default for LimitState {
    fn default() -> Self {
        LimitState {
            limits: None,
            clock: clock::system(),
            windows: BTreeMap::new(),
            tally: BTreeMap::new(),
        }
    }
}

impl LimitState {
    /// Count a request of `method` in its group, or refuse it (403 `rateLimitExceeded`).
    pub fn admit(&mut self, method: &str) -> Result<(), ApiError> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        let group = QuotaGroup::of(method);
        let limit = limits.limit_of(group);
        let window_ms = limits.window_ms();
        let now = self.clock.now_ms();
        let admitted = self
            .windows
            .entry(group)
            .or_default()
            .take(now, window_ms, limit);
        let tally = self
            .tally
            .entry((now / window_ms, method.to_string()))
            .or_default();
        if admitted {
            let into = now % window_ms;
            if tally.admitted == 0 {
                tally.first_ms = into;
            }
            tally.last_ms = into;
            tally.admitted += 1;
            return Ok(());
        }
        tally.refused += 1;
        let (metric, name) = group.names();
        Err(ApiError::new(
            403,
            "rateLimitExceeded",
            format!("Quota exceeded for quota metric '{metric}' and limit '{name}' of service 'compute.googleapis.com'."),
        ))
    }
}

impl LimitState {
    /// Requests refused, per method that had any.
    fn refused_by_method(&self) -> BTreeMap<String, u64> {
        let mut refused: BTreeMap<String, u64> = BTreeMap::new();
        for ((_, method), tally) in &self.tally {
            if tally.refused > 0 {
                *refused.entry(method.clone()).or_default() += u64::from(tally.refused);
            }
        }
        refused
    }
}

impl Shared {
    pub(super) fn rate_limit(&self, method: &str) -> Result<(), ApiError> {
        lock(&self.limits).admit(method)
    }
}

impl ComputeSim {
    fn limit_state(&self) -> MutexGuard<'_, LimitState> {
        lock(&self.shared.limits)
    }

    /// Enforce these quotas on HTTP requests from now on (None: no limits).
    pub fn set_rate_limits(&self, limits: Option<ComputeRateLimits>) {
        let mut state = self.limit_state();
        state.limits = limits;
        state.windows.clear();
        state.tally.clear();
    }

    pub fn rate_limits(&self) -> Option<ComputeRateLimits> {
        self.limit_state().limits.clone()
    }

    /// The clock whose whole minutes (windows) the quotas follow; the wall clock unless
    /// a test sets a [`crate::clock::ManualClock`].
    pub fn set_rate_clock(&self, clock: Arc<dyn Clock>) {
        let mut state = self.limit_state();
        state.clock = clock;
        state.windows.clear();
    }

    /// The quota clock now, in milliseconds (where a run starts within its window).
    pub fn rate_clock_ms(&self) -> u64 {
        self.limit_state().clock.now_ms()
    }

    /// Requests the quotas refused, per method (every method listed, zero included).
    pub fn throttled_counts(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = METHODS.iter().map(|m| (m.to_string(), 0)).collect();
        all.extend(self.limit_state().refused_by_method());
        all
    }

    /// Each window's admissions and refusals per method, windows numbered from the
    /// first one that saw a request (0).
    pub fn window_tally(&self) -> Vec<(u64, String, WindowTally)> {
        let state = self.limit_state();
        let first = state
            .tally
            .keys()
            .map(|(window, _)| *window)
            .min()
            .unwrap_or(0);
        state
            .tally
            .iter()
            .map(|((window, method), tally)| (window - first, method.clone(), *tally))
            .collect()
    }

    /// Requests the quotas refused, in all.
    pub fn throttled_total(&self) -> u64 {
        let state = self.limit_state();
        state.tally.values().map(|t| u64::from(t.refused)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_fall_in_their_groups() {
        for (method, group) in [
            ("addresses.get", QuotaGroup::Read),
            ("instances.get", QuotaGroup::Read),
            ("addresses.list", QuotaGroup::List),
            ("addresses.aggregatedList", QuotaGroup::List),
            ("addresses.setLabels", QuotaGroup::Default),
            ("instances.addAccessConfig", QuotaGroup::Default),
            ("instances.updateNetworkInterface", QuotaGroup::Default),
            ("zoneOperations.get", QuotaGroup::OperationRead),
            ("regionOperations.wait", QuotaGroup::OperationRead),
        ] {
            assert_eq!(QuotaGroup::of(method), group, "{method}");
        }
        assert!(METHODS
            .iter()
            .all(|m| QuotaGroup::of(m) != QuotaGroup::Default
                || crate::compute::WRITE_METHODS.contains(m)));
    }

    #[test]
    fn a_window_refills_at_its_boundary_not_a_minute_after_it_was_spent() {
        let mut w = Window::default();
        // Spent at 10:00:15 (15 s into the window)...
        assert!(w.take(15_000, 60_000, 2));
        assert!(w.take(15_000, 60_000, 2));
        assert!(!w.take(15_001, 60_000, 2));
        assert!(!w.take(59_999, 60_000, 2));
        // ...refilled at 10:01:00.
        assert!(w.take(60_000, 60_000, 2));
        assert!(w.take(119_999, 60_000, 2));
        assert!(!w.take(119_999, 60_000, 2));
        // A clock that went backwards does not open an old window again.
        assert!(!w.take(10_000, 60_000, 2));
    }

    #[test]
    fn groups_are_counted_apart_and_refusals_are_403_rate_limit_exceeded() {
        let clock = crate::clock::ManualClock::at(0);
        let mut state = LimitState {
            limits: Some(ComputeRateLimits::uniform(Duration::from_secs(1), 1)),
            clock: Arc::new(clock.clone()),
            ..LimitState::default()
        };
        assert!(state.admit("instances.get").is_ok());
        let refused = state.admit("addresses.get").unwrap_err();
        assert_eq!((refused.status, refused.reason), (403, "rateLimitExceeded"));
        assert!(refused.message.contains("Read requests per minute"));
        assert!(state.admit("addresses.list").is_ok());
        assert!(state.admit("zoneOperations.wait").is_ok());
        clock.advance_ms(1000);
        assert!(state.admit("addresses.get").is_ok());
        assert_eq!(state.refused_by_method()["addresses.get"], 1);
        let read = |window| state.tally[&(window, "addresses.get".to_string())];
        assert_eq!((read(0).admitted, read(0).refused), (0, 1));
        assert_eq!((read(1).admitted, read(1).refused), (1, 0));
    }
}
