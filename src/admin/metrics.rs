//! The agent's Prometheus metrics (served on `/metrics` by the admin server). Names and
//! labels are documented in docs/operations.md; keep the two in step.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `assigned`, `adopted`, `reattached` (assignments); `released`, `kept`, `failed` (releases).
    pub result: String,
    /// Why, in a word or two (`pool_exhausted`, `node_deleted`, `pod_restart`, ...).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudCallLabels {
    pub provider: String,
    pub operation: String,
    /// `ok`, or the error class (`transient`, `throttled`, `conflict`, `not_found`, `permission_denied`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub provider: String,
    pub operation: String,
}

/// The `result` label of `pinip_assignments_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignResult {
    Assigned,
    Adopted,
    Reattached,
    /// No free address: the agent waits (reason `pool_exhausted`).
    Waiting,
    /// An attempt failed (reason: the error class).
    Failed,
    /// The cloud throttled an attempt; the agent paces itself (not a failure: the
    /// alerts on `failed` do not fire for it).
    Throttled,
}

impl AssignResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignResult::Assigned => "assigned",
            AssignResult::Adopted => "adopted",
            AssignResult::Reattached => "reattached",
            AssignResult::Waiting => "waiting",
            AssignResult::Failed => "failed",
            AssignResult::Throttled => "throttled",
        }
    }
}

/// The `result` label of `pinip_releases_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseResult {
    Released,
    Kept,
    Failed,
}

impl ReleaseResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseResult::Released => "released",
            ReleaseResult::Kept => "kept",
            ReleaseResult::Failed => "failed",
        }
    }
}

/// The labels of `pinip_sweep_runs_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepResult {
    /// result `ok`, reason `swept`.
    Swept,
    /// result `failed`, reason `error`.
    Failed,
}

impl SweepResult {
    fn labels(self) -> OutcomeLabels {
        match self {
            SweepResult::Swept => outcome("ok", "swept"),
            SweepResult::Failed => outcome("failed", "error"),
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn cloud_call_buckets() -> Histogram {
    // 5 ms .. ~41 s: from a simulator round trip to a slow GCP zone operation.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every metric the agent exports, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub assignments: Family<OutcomeLabels, Counter>,
    pub releases: Family<OutcomeLabels, Counter>,
    pub cloud_calls: Family<CloudCallLabels, Counter>,
    pub cloud_call_duration: HistogramFamily<OperationLabels>,
    pub claim_conflicts: Counter,
    pub time_to_address: Histogram,
    pub pool_free_addresses: Gauge<i64, AtomicI64>,
    pub pool_matched_addresses: Gauge<i64, AtomicI64>,
    pub has_address: Gauge<i64, AtomicI64>,
    pub sweep_runs: Family<OutcomeLabels, Counter>,
    pub sweep_freed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pinip");
        let metrics = Metrics {
            assignments: Family::default(),
            releases: Family::default(),
            cloud_calls: Family::default(),
            cloud_call_duration: Family::new_with_constructor(
                cloud_call_buckets as fn() -> Histogram,
            ),
            claim_conflicts: Counter::default(),
            time_to_address: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            pool_free_addresses: Gauge::default(),
            pool_matched_addresses: Gauge::default(),
            has_address: Gauge::default(),
            sweep_runs: Family::default(),
            sweep_freed: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "assignments",
            "Addresses this agent assigned to its node, by result and reason",
            metrics.assignments.clone(),
        );
        registry.register(
            "releases",
            "Exit and removal decisions about the node's address",
            metrics.releases.clone(),
        );
        registry.register(
            "cloud_calls",
            "Cloud API calls by provider, operation and outcome",
            metrics.cloud_calls.clone(),
        );
        registry.register(
            "cloud_call_duration_seconds",
            "Duration of cloud API calls",
            metrics.cloud_call_duration.clone(),
        );
        registry.register(
            "claim_conflicts",
            "Candidate addresses found claimed by another node",
            metrics.claim_conflicts.clone(),
        );
        registry.register(
            "time_to_address_seconds",
            "From agent start to the node's address being attached and published",
            metrics.time_to_address.clone(),
        );
        registry.register(
            "pool_free_addresses",
            "Unattached addresses in the pool, as last listed",
            metrics.pool_free_addresses.clone(),
        );
        registry.register(
            "pool_matched_addresses",
            "Addresses matched by FILTER, as last listed",
            metrics.pool_matched_addresses.clone(),
        );
        registry.register(
            "node_has_address",
            "1 while this node holds an address of the pool",
            metrics.has_address.clone(),
        );
        registry.register(
            "sweep_runs",
            "Sweeps run, by result",
            metrics.sweep_runs.clone(),
        );
        registry.register(
            "sweep_freed_addresses",
            "Addresses freed by sweeps",
            metrics.sweep_freed.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    pub fn assigned(&self, result: AssignResult, reason: &str) {
        self.assignments
            .get_or_create(&outcome(result.as_str(), reason))
            .inc();
    }

    pub fn released(&self, result: ReleaseResult, reason: &str) {
        self.releases
            .get_or_create(&outcome(result.as_str(), reason))
            .inc();
    }

    pub fn swept(&self, result: SweepResult) {
        self.sweep_runs.get_or_create(&result.labels()).inc();
    }

    /// How many sweeps ended with `result`: for tests and `simulate`.
    pub fn sweeps(&self, result: SweepResult) -> u64 {
        self.sweep_runs.get_or_create(&result.labels()).get()
    }

    pub fn cloud_call(&self, provider: &str, operation: &str, outcome: &str, took: Duration) {
        self.cloud_calls
            .get_or_create(&CloudCallLabels {
                provider: provider.to_string(),
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.cloud_call_duration
            .get_or_create(&OperationLabels {
                provider: provider.to_string(),
                operation: operation.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn pool_seen(&self, matched: usize, free: usize) {
        self.pool_matched_addresses.set(matched as i64);
        self.pool_free_addresses.set(free as i64);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn outcome(result: &str, reason: &str) -> OutcomeLabels {
    OutcomeLabels {
        result: result.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric() {
        let m = Metrics::new();
        m.assigned(AssignResult::Assigned, "claimed");
        m.cloud_call("fake", "Attach", "ok", Duration::from_millis(12));
        m.pool_seen(10, 3);
        m.has_address.set(1);
        let text = m.encode().unwrap();
        for name in [
            "pinip_assignments_total{result=\"assigned\",reason=\"claimed\"} 1",
            "pinip_cloud_calls_total{provider=\"fake\",operation=\"Attach\",outcome=\"ok\"} 1",
            "pinip_cloud_call_duration_seconds_bucket",
            "pinip_pool_free_addresses 3",
            "pinip_pool_matched_addresses 10",
            "pinip_node_has_address 1",
            "pinip_claim_conflicts_total 0",
            "pinip_time_to_address_seconds",
            "pinip_sweep_freed_addresses_total 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
