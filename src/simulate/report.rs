//! The outcome of a simulation: who got which address, how fast, at what cost in API
//! calls, and every invariant breach seen (the `violations` list).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use pinip_sim::kube::{Kind, KubeSim};
use serde::Serialize;
use serde_json::Value;

use crate::admin::status::AgentStatus;
use crate::cluster::events::reason;
use crate::cluster::publish::ADDRESS_KEY;
use crate::domain::claim_record::{ADDRESS_ANNOTATION, PHASE_ANNOTATION};

use super::limits::CloudLimitsReport;
use super::world::{SimulatedWorld, LEASE_NAMESPACE};

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Nearest-rank percentiles of `samples` (milliseconds).
pub fn percentiles(samples: &[u64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    Percentiles {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: sorted[sorted.len() - 1],
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CloudCalls {
    pub total: u64,
    pub per_assignment: f64,
    pub by_operation: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KubeCalls {
    pub total: u64,
    pub by_verb: BTreeMap<String, u64>,
    /// Requests per node (each agent has its own token): mean and the busiest node.
    pub per_node: f64,
    pub per_node_max: u64,
}

/// Response body bytes the agents read from the API server, watch events included.
#[derive(Clone, Debug, Serialize)]
pub struct KubeBytes {
    pub total: u64,
    pub per_node: f64,
    pub per_node_max: u64,
}

/// One node's line in the table.
#[derive(Clone, Debug, Serialize)]
pub struct NodeRow {
    pub node: String,
    pub instance: String,
    pub address: Option<IpAddr>,
    pub time_to_address_ms: Option<u64>,
    pub state: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cloud: String,
    /// `pinip`, or `kubeip-lock` for the KubeIP baseline (`--coordination`).
    pub coordination: &'static str,
    pub nodes: usize,
    pub pool: usize,
    /// Nodes holding a pool address at the end, as the cloud sees it.
    pub assigned: usize,
    /// Addresses attached to more than one instance, as the cloud sees it.
    pub duplicates: usize,
    pub violations: Vec<String>,
    pub elapsed_ms: u64,
    pub time_to_address_ms: Percentiles,
    /// From the run's start until the last node got its address (None if not all did).
    pub time_to_all_ms: Option<u64>,
    /// The rate limits in force (`--cloud-limits`), what they refused, and the floor.
    pub cloud_limits: CloudLimitsReport,
    pub cloud_calls: CloudCalls,
    pub kube_calls: KubeCalls,
    pub kube_bytes: KubeBytes,
    /// Agents still waiting for an address (alive, pool exhausted).
    pub waiting: usize,
    /// Of those, how many said so in a PoolExhausted Event on their Node.
    pub waiting_with_event: usize,
    /// What a chaos run injected (with `--chaos`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<super::chaos::ChaosStats>,
    #[serde(skip)]
    pub rows: Vec<NodeRow>,
}

/// Build the report from the end state of the world and the agents' last statuses.
pub fn build(
    world: &SimulatedWorld,
    statuses: &HashMap<String, AgentStatus>,
    elapsed: Duration,
) -> Report {
    let cloud = &world.cloud;
    let kube: &KubeSim = &world.kube;
    let mut violations = cloud.violations();
    // Only a live node's instance counts: an instance whose Node was deleted and which was
    // left running is outside the cluster (its address was detached by hand, say, and
    // its agent died with the Node before re-attaching).
    for instance in cloud.without_external_ipv4() {
        let live = world
            .nodes
            .iter()
            .any(|n| n.instance == instance && kube.get(Kind::Node, None, &n.name).is_some());
        if live {
            violations.push(format!(
                "instance {instance} is left without an external IPv4"
            ));
        }
    }
    let pool = world.pool_addresses();

    // Cloud view: which instance holds which pool address.
    let mut by_instance: HashMap<&str, Vec<IpAddr>> = HashMap::new();
    for address in &pool {
        if let Some(instance) = &address.attached_to {
            by_instance
                .entry(instance.as_str())
                .or_default()
                .push(address.ip);
        }
    }
    let duplicates = cloud.duplicates();
    let node_events = kube.list(Kind::EventV1, None);

    let mut rows = Vec::new();
    let mut times = Vec::new();
    let mut published: HashMap<String, Vec<String>> = HashMap::new();
    let (mut assigned, mut waiting, mut waiting_with_event) = (0, 0, 0);
    for node in &world.nodes {
        let held = by_instance
            .get(node.instance.as_str())
            .cloned()
            .unwrap_or_default();
        if !held.is_empty() {
            assigned += 1;
        }
        if held.len() > 1 {
            violations.push(format!(
                "node {} holds {} pool addresses: {held:?}",
                node.name,
                held.len()
            ));
        }
        let node_object = kube.get(Kind::Node, None, &node.name);
        let annotation = node_object.as_ref().and_then(|n| {
            n.pointer("/metadata/annotations")
                .and_then(|a| a.get(ADDRESS_KEY))
                .and_then(Value::as_str)
                .map(String::from)
        });
        if let Some(text) = &annotation {
            published
                .entry(text.clone())
                .or_default()
                .push(node.name.clone());
            if !held.iter().any(|ip| ip.to_string() == *text) {
                violations.push(format!(
                    "node {} publishes {text} but the cloud does not attach it to {}",
                    node.name, node.instance
                ));
            }
        }
        let status = statuses.get(&node.name);
        let (state, time) = match status {
            Some(AgentStatus::Assigned {
                address, elapsed, ..
            }) => {
                if !held.contains(address) {
                    violations.push(format!(
                        "agent of {} reports {address} but the cloud disagrees",
                        node.name
                    ));
                }
                if annotation.as_deref() != Some(address.to_string().as_str()) {
                    violations.push(format!(
                        "agent of {} reports {address} but the Node does not publish it",
                        node.name
                    ));
                }
                ("assigned".to_string(), Some(elapsed.as_millis() as u64))
            }
            Some(AgentStatus::PoolExhausted { .. }) => {
                waiting += 1;
                let said_so = node_events.iter().any(|e| {
                    e.get("reason").and_then(Value::as_str) == Some(reason::POOL_EXHAUSTED)
                        && e.pointer("/regarding/name").and_then(Value::as_str)
                            == Some(node.name.as_str())
                });
                if said_so {
                    waiting_with_event += 1;
                }
                ("waiting: pool exhausted".to_string(), None)
            }
            Some(other) => (format!("{other:?}"), None),
            None => ("no agent".to_string(), None),
        };
        if let Some(ms) = time {
            times.push(ms);
        }
        rows.push(NodeRow {
            node: node.name.clone(),
            instance: node.instance.clone(),
            address: held.first().copied(),
            time_to_address_ms: time,
            state,
        });
    }
    for (address, holders) in &published {
        if holders.len() > 1 {
            violations.push(format!(
                "address {address} published on several nodes: {holders:?}"
            ));
        }
    }
    check_claims(world, &by_instance, &mut violations);

    let by_operation = cloud.call_counts();
    let total: u64 = by_operation.values().sum();
    let counts = kube.request_counts();
    let traffic = kube.client_traffic();
    let (requests, bytes): (Vec<u64>, Vec<u64>) = world
        .nodes
        .iter()
        .filter_map(|n| traffic.get(&n.name))
        .map(|t| (t.requests, t.response_bytes))
        .unzip();
    Report {
        coordination: "pinip",
        cloud: cloud.name().to_string(),
        nodes: world.nodes.len(),
        pool: pool.len(),
        assigned,
        duplicates,
        violations,
        elapsed_ms: elapsed.as_millis() as u64,
        time_to_address_ms: percentiles(&times),
        time_to_all_ms: None,
        cloud_limits: CloudLimitsReport::default(),
        cloud_calls: CloudCalls {
            total,
            per_assignment: if assigned == 0 {
                0.0
            } else {
                (total as f64 / assigned as f64 * 100.0).round() / 100.0
            },
            by_operation,
        },
        kube_calls: KubeCalls {
            total: counts.total,
            by_verb: counts.by_verb,
            per_node: mean(&requests),
            per_node_max: requests.iter().copied().max().unwrap_or(0),
        },
        kube_bytes: KubeBytes {
            total: bytes.iter().sum(),
            per_node: mean(&bytes),
            per_node_max: bytes.iter().copied().max().unwrap_or(0),
        },
        waiting,
        waiting_with_event,
        chaos: None,
        rows,
    }
}

/// From the run's start until the last agent got its address: each agent's start
/// (`spawned_after`, since the run's start) plus its own time to address. None unless
/// every agent has one.
pub fn time_to_all(
    statuses: &HashMap<String, AgentStatus>,
    spawned_after: &HashMap<String, Duration>,
) -> Option<u64> {
    let mut last = Duration::ZERO;
    for (node, status) in statuses {
        let AgentStatus::Assigned { elapsed, .. } = status else {
            return None;
        };
        last = last.max(*spawned_after.get(node)? + *elapsed);
    }
    Some(last.as_millis() as u64)
}

fn mean(values: &[u64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
    (mean * 10.0).round() / 10.0
}

/// Every claim must be `held` and match the cloud: a claim left `claiming`, or held for
/// an address its holder's instance does not carry, is a leak.
/// The claim Leases (the sweep token is another kind of Lease).
fn claim_leases(world: &SimulatedWorld) -> Vec<Value> {
    world
        .kube
        .list(Kind::Lease, Some(LEASE_NAMESPACE))
        .into_iter()
        .filter(|lease| {
            lease
                .pointer("/metadata/labels/app.kubernetes.io~1managed-by")
                .and_then(Value::as_str)
                == Some(crate::domain::claim_record::MANAGED_BY_VALUE)
        })
        .collect()
}

fn phase_of(lease: &Value) -> &str {
    lease
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PHASE_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Claims not yet `held`: acquisitions in flight (an attach done in the cloud is
/// marked held a moment later), or leftovers that `check_claims` reports.
pub(crate) fn claims_not_held(world: &SimulatedWorld) -> usize {
    unheld_claims(world).len()
}

/// The claims not (yet) held: name, holder and phase of each.
pub(crate) fn unheld_claims(world: &SimulatedWorld) -> Vec<String> {
    claim_leases(world)
        .iter()
        .filter(|lease| phase_of(lease) != "held")
        .map(|lease| {
            let text = |path: &str| lease.pointer(path).and_then(Value::as_str).unwrap_or("?");
            format!(
                "{} held by {} ({})",
                text("/metadata/name"),
                text("/spec/holderIdentity"),
                phase_of(lease)
            )
        })
        .collect()
}

fn check_claims(
    world: &SimulatedWorld,
    by_instance: &HashMap<&str, Vec<IpAddr>>,
    violations: &mut Vec<String>,
) {
    for lease in claim_leases(world) {
        let name = lease
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let annotations = lease.pointer("/metadata/annotations");
        let get = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let holder = lease
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .unwrap_or("");
        let phase = phase_of(&lease);
        let address = get(ADDRESS_ANNOTATION);
        let instance = world
            .node(holder)
            .map(|n| n.instance.as_str())
            .unwrap_or("");
        let attached = by_instance
            .get(instance)
            .is_some_and(|list| list.iter().any(|ip| ip.to_string() == address));
        if phase != "held" {
            violations.push(format!(
                "claim {name} of {holder} is still {phase:?} at the end"
            ));
        } else if !attached {
            violations.push(format!("claim {name} says {holder} holds {address}, but the cloud does not attach it there"));
        }
    }
}

/// The human table.
pub fn render_table(report: &Report) -> String {
    let mut out = format!(
        "{:<10} {:<20} {:<16} {:>12}  {}\n",
        "NODE", "INSTANCE", "ADDRESS", "TIME-TO-IP", "STATE"
    );
    for row in &report.rows {
        let address = row
            .address
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let time = row
            .time_to_address_ms
            .map(|t| format!("{t} ms"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<10} {:<20} {:<16} {:>12}  {}\n",
            row.node, row.instance, address, time, row.state
        ));
    }
    let t = &report.time_to_address_ms;
    out.push_str(&format!(
        "\n{} of {} nodes hold an address from a pool of {} ({} waiting, {} of them announced by an Event); duplicates: {}; violations: {}\n",
        report.assigned, report.nodes, report.pool, report.waiting, report.waiting_with_event, report.duplicates, report.violations.len()
    ));
    out.push_str(&format!(
        "time to address: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms; elapsed {} ms\n",
        t.p50, t.p90, t.p99, t.max, report.elapsed_ms
    ));
    let ms_or_dash = |t: Option<u64>| t.map_or_else(|| "-".to_string(), |t| format!("{t} ms"));
    let time_to_all = ms_or_dash(report.time_to_all_ms);
    let limits = &report.cloud_limits;
    let floor = ms_or_dash(limits.floor_ms);
    out.push_str(&format!(
        "all assigned after {time_to_all}; cloud limits: {} ({} throttled, floor {floor}, throttled requests consume tokens: {})\n",
        limits.profile.name(), limits.throttled, limits.throttled_consume_tokens
    ));
    out.push_str(&format!(
        "cloud calls: {} ({} per assignment) {:?}; Kubernetes API calls: {} {:?}\n",
        report.cloud_calls.total,
        report.cloud_calls.per_assignment,
        report.cloud_calls.by_operation,
        report.kube_calls.total,
        report.kube_calls.by_verb
    ));
    out.push_str(&format!(
        "Kubernetes API per node: {} requests (busiest {}), {} response bytes (busiest {})\n",
        report.kube_calls.per_node,
        report.kube_calls.per_node_max,
        report.kube_bytes.per_node,
        report.kube_bytes.per_node_max
    ));
    for v in &report.violations {
        out.push_str(&format!("VIOLATION: {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_all_is_the_latest_start_plus_time_to_address() {
        let assigned = |ms| AgentStatus::Assigned {
            address: "192.0.2.1".parse().expect("address"),
            adopted: false,
            elapsed: Duration::from_millis(ms),
        };
        let statuses: HashMap<String, AgentStatus> = [
            ("a".to_string(), assigned(900)),
            ("b".to_string(), assigned(300)),
        ]
        .into();
        let spawned: HashMap<String, Duration> = [
            ("a".to_string(), Duration::from_millis(10)),
            ("b".to_string(), Duration::from_millis(2000)),
        ]
        .into();
        assert_eq!(time_to_all(&statuses, &spawned), Some(2300));
        let mut waiting = statuses.clone();
        waiting.insert("c".into(), AgentStatus::Acquiring);
        assert_eq!(time_to_all(&waiting, &spawned), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentiles(&[]), Percentiles::default());
        let p = percentiles(&[5]);
        assert_eq!((p.p50, p.p99, p.max), (5, 5, 5));
        let samples: Vec<u64> = (1..=100).rev().collect();
        let p = percentiles(&samples);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
    }
}
