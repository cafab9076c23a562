//! `pinip status`: where every node stands, from the cluster (node publications and
//! claims) and, with `--cloud`, from the cloud (the pool: ours, free, foreign). Built by
//! a pure function from what was read, so it is tested without any IO.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use pinip_providers::PoolAddress;
use serde::Serialize;

use crate::cluster::publish::{
    ADDRESS_KEY, ASSIGNED_AT_ANNOTATION, ASSIGNED_LABEL, WAITING_ANNOTATION,
};
use crate::domain::claim_record::{ClaimRecord, Phase};
use crate::domain::identity::parse_provider_id;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NodeLine {
    pub node: String,
    pub address: Option<String>,
    pub since: Option<String>,
    pub instance: Option<String>,
    /// The `pinip.dev/assigned` label: "true", "false" (taint given up), or absent.
    pub assigned: Option<String>,
    /// Why its agent holds no address yet (`pinip.dev/waiting`), for a waiting node.
    pub waiting: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ClaimLine {
    pub claim: String,
    pub address: Option<String>,
    pub holder: String,
    pub phase: String,
    pub instance: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PoolLine {
    pub address: String,
    pub id: String,
    /// `ours` (on a node of this cluster), `free`, or `foreign` (attached to an instance that is no node of ours).
    pub state: String,
    pub node: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PoolSummary {
    pub matched: usize,
    pub ours: usize,
    pub free: usize,
    pub foreign: usize,
    pub addresses: Vec<PoolLine>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StatusReport {
    pub nodes: Vec<NodeLine>,
    pub claims: Vec<ClaimLine>,
    /// Records that outlived their purpose or contradict each other.
    pub stale: Vec<String>,
    /// The pool as the cloud sees it (`--cloud`), else null.
    pub pool: Option<PoolSummary>,
}

/// Build the report. `nodes` are all Nodes; `claims` all pinip claims; `pool` the cloud's
/// listing when asked for.
pub fn build(nodes: &[Node], claims: &[ClaimRecord], pool: Option<&[PoolAddress]>) -> StatusReport {
    let mut stale = Vec::new();
    let mut instance_of: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut published: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let instance = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(|id| parse_provider_id(id).ok())
            .map(|i| i.id);
        if let Some(i) = &instance {
            instance_of.insert(i.clone(), name.clone());
        }
        let annotations = node.metadata.annotations.as_ref();
        let address = annotations.and_then(|a| a.get(ADDRESS_KEY)).cloned();
        let assigned = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ASSIGNED_LABEL))
            .cloned();
        let waiting = annotations
            .and_then(|a| a.get(WAITING_ANNOTATION))
            .filter(|_| address.is_none())
            .cloned();
        let served = address.is_some()
            || assigned.is_some()
            || waiting.is_some()
            || claims.iter().any(|c| c.holder == name);
        if !served {
            continue; // not a node of the pool
        }
        if let Some(a) = &address {
            published.entry(a.clone()).or_default().push(name.clone());
        }
        lines.push(NodeLine {
            since: annotations
                .and_then(|a| a.get(ASSIGNED_AT_ANNOTATION))
                .cloned(),
            node: name,
            address,
            instance,
            assigned,
            waiting,
        });
    }
    for (address, holders) in &published {
        if holders.len() > 1 {
            stale.push(format!(
                "address {address} is published on several nodes: {holders:?}"
            ));
        }
    }
    let node_names: BTreeSet<&str> = lines
        .iter()
        .map(|l| l.node.as_str())
        .chain(nodes.iter().filter_map(|n| n.metadata.name.as_deref()))
        .collect();
    let mut claim_lines = Vec::new();
    for claim in claims {
        let address = claim.address.map(|a| a.to_string());
        if !node_names.contains(claim.holder.as_str()) {
            stale.push(format!(
                "claim {} names node {}, which no longer exists",
                claim.name, claim.holder
            ));
        }
        if claim.phase == Phase::Claiming {
            stale.push(format!(
                "claim {} of {} is still claiming (an attach in flight, or a crashed agent)",
                claim.name, claim.holder
            ));
        }
        let holder_publishes = lines
            .iter()
            .any(|l| l.node == claim.holder && l.address == address);
        if claim.phase == Phase::Held && !holder_publishes {
            stale.push(format!(
                "claim {} says {} holds {}, but the node does not publish it",
                claim.name,
                claim.holder,
                address.clone().unwrap_or_default()
            ));
        }
        claim_lines.push(ClaimLine {
            claim: claim.name.clone(),
            address,
            holder: claim.holder.clone(),
            phase: match claim.phase {
                Phase::Claiming => "claiming".into(),
                Phase::Held => "held".into(),
            },
            instance: claim.instance.clone(),
        });
    }
    for line in &lines {
        if let Some(address) = &line.address {
            if !claim_lines
                .iter()
                .any(|c| c.address.as_ref() == Some(address) && c.holder == line.node)
            {
                stale.push(format!(
                    "node {} publishes {address} without a claim",
                    line.node
                ));
            }
        }
    }
    let pool = pool.map(|pool| summarize_pool(pool, &instance_of));
    StatusReport {
        nodes: lines,
        claims: claim_lines,
        stale,
        pool,
    }
}

fn summarize_pool(pool: &[PoolAddress], instance_of: &BTreeMap<String, String>) -> PoolSummary {
    let addresses: Vec<PoolLine> = pool
        .iter()
        .map(|a| {
            let (state, node) = match &a.attached_to {
                None => ("free", None),
                Some(instance) => match instance_of.get(instance) {
                    Some(node) => ("ours", Some(node.clone())),
                    None => ("foreign", None),
                },
            };
            PoolLine {
                address: a.ip.to_string(),
                id: a.id.clone(),
                state: state.to_string(),
                node,
            }
        })
        .collect();
    let count = |s: &str| addresses.iter().filter(|a| a.state == s).count();
    PoolSummary {
        matched: addresses.len(),
        ours: count("ours"),
        free: count("free"),
        foreign: count("foreign"),
        addresses,
    }
}

/// The human view.
pub fn render_table(report: &StatusReport) -> String {
    let mut out = format!(
        "{:<24} {:<40} {:<28} {}\n",
        "NODE", "ADDRESS", "SINCE", "INSTANCE"
    );
    for n in &report.nodes {
        let address = match (&n.address, n.assigned.as_deref(), &n.waiting) {
            (Some(a), _, _) => a.clone(),
            (None, Some("false"), _) => "(none: taint given up)".into(),
            (None, _, Some(why)) => format!("(waiting: {why})"),
            (None, _, None) => "(waiting)".into(),
        };
        out.push_str(&format!(
            "{:<24} {:<40} {:<28} {}\n",
            n.node,
            address,
            n.since.as_deref().unwrap_or("-"),
            n.instance.as_deref().unwrap_or("-")
        ));
    }
    out.push_str(&format!(
        "\n{:<32} {:<40} {:<24} {}\n",
        "CLAIM", "ADDRESS", "HOLDER", "PHASE"
    ));
    for c in &report.claims {
        out.push_str(&format!(
            "{:<32} {:<40} {:<24} {}\n",
            c.claim,
            c.address.as_deref().unwrap_or("-"),
            c.holder,
            c.phase
        ));
    }
    match &report.pool {
        Some(pool) => out.push_str(&format!(
            "\npool: {} addresses: {} on our nodes, {} free, {} attached elsewhere\n",
            pool.matched, pool.ours, pool.free, pool.foreign
        )),
        None => out.push_str("\npool: not read (add --cloud to list it as the cloud sees it)\n"),
    }
    if report.stale.is_empty() {
        out.push_str("stale records: none\n");
    } else {
        for s in &report.stale {
            out.push_str(&format!("stale: {s}\n"));
        }
    }
    out
}

/// One address per line: what to whitelist. With the pool read, every pool address
/// (a node may get any of them); otherwise the addresses nodes hold now.
pub fn render_addresses(report: &StatusReport) -> String {
    let mut addresses: Vec<IpAddr> = match &report.pool {
        Some(pool) => pool
            .addresses
            .iter()
            .filter_map(|a| a.address.parse().ok())
            .collect(),
        None => report
            .nodes
            .iter()
            .filter_map(|n| n.address.as_deref()?.parse().ok())
            .collect(),
    };
    addresses.sort();
    addresses.dedup();
    addresses.iter().map(|a| format!("{a}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{claim, pool_address};
    use k8s_openapi::api::core::v1::NodeSpec;

    fn node(name: &str, instance: &str, address: Option<&str>) -> Node {
        let mut n = Node {
            spec: Some(NodeSpec {
                provider_id: Some(format!("aws:///z-1a/{instance}")),
                ..NodeSpec::default()
            }),
            ..Node::default()
        };
        n.metadata.name = Some(name.into());
        if let Some(a) = address {
            n.metadata.annotations = Some(
                [
                    (ADDRESS_KEY.to_string(), a.to_string()),
                    (
                        ASSIGNED_AT_ANNOTATION.to_string(),
                        "2026-11-21T06:00:00Z".to_string(),
                    ),
                ]
                .into(),
            );
            n.metadata.labels = Some([(ASSIGNED_LABEL.to_string(), "true".to_string())].into());
        }
        n
    }

    #[test]
    fn a_waiting_node_is_listed_with_its_reason_and_a_node_without_an_agent_is_not() {
        let mut waiting = node("node-w", "i-w", None);
        waiting.metadata.annotations = Some(
            [(
                WAITING_ANNOTATION.to_string(),
                "pool exhausted: 2 addresses match the pool, none is free".to_string(),
            )]
            .into(),
        );
        let nodes = [
            node("node-a", "i-a", Some("192.0.2.1")),
            waiting,
            node("node-x", "i-x", None),
        ];
        let claims = [claim("node-a", "i-a", "192.0.2.1", Phase::Held)];
        let report = build(&nodes, &claims, None);
        let names: Vec<&str> = report.nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["node-a", "node-w"]);
        assert_eq!(
            report.nodes[1].waiting.as_deref(),
            Some("pool exhausted: 2 addresses match the pool, none is free")
        );
        let table = render_table(&report);
        assert!(table.contains("(waiting: pool exhausted"), "{table}");
        assert!(report.stale.is_empty(), "{:?}", report.stale);
    }

    #[test]
    fn a_healthy_cluster_has_no_stale_records() {
        let nodes = [
            node("a", "i-a", Some("192.0.2.1")),
            node("b", "i-b", Some("192.0.2.2")),
            node("c", "i-c", None),
        ];
        let claims = [
            claim("a", "i-a", "192.0.2.1", Phase::Held),
            claim("b", "i-b", "192.0.2.2", Phase::Held),
        ];
        let pool = [
            pool_address("192.0.2.1", Some("i-a")),
            pool_address("192.0.2.2", Some("i-b")),
            pool_address("192.0.2.3", None),
            pool_address("192.0.2.4", Some("i-other")),
        ];
        let report = build(&nodes, &claims, Some(&pool));
        assert_eq!(report.nodes.len(), 2, "node c is not in the pool");
        assert!(report.stale.is_empty(), "{:?}", report.stale);
        let summary = report.pool.as_ref().unwrap();
        assert_eq!(
            (summary.matched, summary.ours, summary.free, summary.foreign),
            (4, 2, 1, 1)
        );
        assert_eq!(
            render_addresses(&report),
            "192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.4\n"
        );
        let table = render_table(&report);
        assert!(
            table.contains("192.0.2.1") && table.contains("2 on our nodes, 1 free"),
            "{table}"
        );
    }

    #[test]
    fn leftovers_and_contradictions_are_stale() {
        let nodes = [
            node("a", "i-a", Some("192.0.2.1")),
            node("b", "i-b", Some("192.0.2.1")),
        ];
        let claims = [
            claim("a", "i-a", "192.0.2.1", Phase::Held),
            claim("gone", "i-x", "192.0.2.9", Phase::Held),
            claim("a", "i-a", "192.0.2.5", Phase::Claiming),
        ];
        let report = build(&nodes, &claims, None);
        let stale = report.stale.join("\n");
        assert!(stale.contains("published on several nodes"), "{stale}");
        assert!(
            stale.contains("node gone, which no longer exists"),
            "{stale}"
        );
        assert!(stale.contains("still claiming"), "{stale}");
        assert!(
            stale.contains("node b publishes 192.0.2.1 without a claim"),
            "{stale}"
        );
        assert_eq!(render_addresses(&report), "192.0.2.1\n");
    }
}
