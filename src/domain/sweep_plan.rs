//! What a sweep should free: pure decisions over the pool, the live nodes and the claims.
//!
//! Only records that name *this* cluster are touched: an address whose ownership record
//! names another cluster, or that has none, is never detached or cleared.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use pinip_providers::{Ownership, PoolAddress};

use crate::domain::claim_record::{ClaimRecord, Phase};

/// A node as the sweep sees it: its name and the instance its providerID names.
pub type LiveNodes = BTreeMap<String, Option<String>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreeAddress {
    pub address: PoolAddress,
    /// The owner whose node is gone (detach from its instance if still there, clear the record).
    pub owner: Ownership,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropClaim {
    pub claim: ClaimRecord,
    pub why: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepPlan {
    pub free: Vec<FreeAddress>,
    pub drop: Vec<DropClaim>,
    /// Addresses left on a vanished owner's instance because `RELEASE_ON_EXIT=false`.
    pub kept: Vec<FreeAddress>,
}

impl SweepPlan {
    /// `RELEASE_ON_EXIT=false` means pinip never takes an address off an instance: an
    /// address still on its vanished owner's instance stays there, with its record and
    /// its claim (so a later sweep, after the policy changes, still finds it). Records
    /// and claims of addresses the cloud already freed (instance terminated) are cleared
    /// as usual. Such an address is not free, so no node picks it as a candidate.
    pub fn keeping_attached(mut self) -> SweepPlan {
        let (kept, free): (Vec<_>, Vec<_>) = std::mem::take(&mut self.free)
            .into_iter()
            .partition(|f| f.address.attached_to.as_deref() == Some(f.owner.instance.as_str()));
        let kept_ips: BTreeSet<IpAddr> = kept.iter().map(|f| f.address.ip).collect();
        // An address kept under one record may also be listed under a stale one (see
        // `plan`): clearing that record would detach nothing, but leave it for the same
        // later sweep.
        self.free = free
            .into_iter()
            .filter(|f| !kept_ips.contains(&f.address.ip))
            .collect();
        self.drop
            .retain(|d| !d.claim.address.is_some_and(|a| kept_ips.contains(&a)));
        self.kept = kept;
        self
    }
}

/// Is `owner` (node + instance) still a live node of this cluster?
fn owner_gone(nodes: &LiveNodes, node: &str, instance: &str) -> Option<String> {
    match nodes.get(node) {
        None => Some(format!("node {node} no longer exists")),
        Some(Some(current)) if !instance.is_empty() && current != instance => Some(format!(
            "node {node} now runs instance {current}, not {instance}"
        )),
        Some(_) => None,
    }
}

/// The address each node publishes (its `pinip.dev/address` annotation).
pub type Published = BTreeMap<String, IpAddr>;

pub fn plan(
    pool: &[PoolAddress],
    nodes: &LiveNodes,
    published: &Published,
    claims: &[ClaimRecord],
    cluster: &str,
) -> SweepPlan {
    let mut plan = SweepPlan::default();
    let live_instances: BTreeSet<&str> = nodes.values().flatten().map(String::as_str).collect();
    // First, what the claims of vanished nodes say: the claim records the instance pinip
    // attached the address to, so it still finds the address when the cloud's ownership
    // record is stale (the record write failed after the attach, and the record still
    // names an earlier owner; docs/design.md). Never for an instance a live node runs,
    // nor for an address whose record names another cluster.
    for claim in claims {
        let Some(why) = owner_gone(nodes, &claim.holder, &claim.instance) else {
            continue;
        };
        if claim.instance.is_empty() || live_instances.contains(claim.instance.as_str()) {
            continue;
        }
        let Some(address) = pool.iter().find(|a| {
            Some(a.ip) == claim.address && a.attached_to.as_deref() == Some(&claim.instance)
        }) else {
            continue;
        };
        match &address.owner {
            Some(owner) if owner.cluster != cluster => continue,
            // The record rule below covers it.
            Some(owner) if owner.instance == claim.instance => continue,
            _ => {}
        }
        plan.free.push(FreeAddress {
            address: address.clone(),
            owner: Ownership {
                cluster: cluster.to_string(),
                node: claim.holder.clone(),
                instance: claim.instance.clone(),
            },
            why: format!("{why}; its claim put the address on {}", claim.instance),
        });
    }
    // Then what the cloud's ownership records say (after the claim-based detaches, so a
    // stale record is cleared in the same sweep once its address is free).
    for address in pool {
        let Some(owner) = &address.owner else {
            continue;
        };
        if owner.cluster != cluster {
            continue;
        }
        // A stale record on an address a live node now holds: that node's agent rewrites
        // the record at its next verification; nothing to detach here.
        if address
            .attached_to
            .as_deref()
            .is_some_and(|at| at != owner.instance && live_instances.contains(at))
        {
            continue;
        }
        if let Some(why) = owner_gone(nodes, &owner.node, &owner.instance) {
            plan.free.push(FreeAddress {
                address: address.clone(),
                owner: owner.clone(),
                why,
            });
        }
    }
    for claim in claims {
        // In-flight claims of live nodes expire by the claim rule; only held claims and
        // claims of vanished nodes are the sweep's business.
        let why = match owner_gone(nodes, &claim.holder, &claim.instance) {
            Some(why) => why,
            // A held claim of a live node is stale only if the cloud shows its address on
            // another instance; a detached address is its holder's to re-attach.
            None if claim.phase == Phase::Held => {
                let holder_instance = nodes.get(&claim.holder).cloned().flatten();
                match pool.iter().find(|a| Some(a.ip) == claim.address) {
                    Some(a) if a.attached_to.is_some() && a.attached_to != holder_instance => {
                        format!(
                            "{} now sits on instance {}, not on its holder {}",
                            a.ip,
                            a.attached_to.clone().unwrap_or_default(),
                            claim.holder
                        )
                    }
                    // Free, while its holder's instance carries another pool address: a
                    // leftover its agent failed to drop (a node never wants two).
                    // Not while the holder still publishes it: between attaching its new
                    // address and publishing it, a node holds one and shows the other.
                    Some(a)
                        if a.attached_to.is_none()
                            && holder_instance.is_some()
                            && published.get(&claim.holder) != Some(&a.ip) =>
                    {
                        match pool
                            .iter()
                            .find(|b| b.ip != a.ip && b.attached_to == holder_instance)
                        {
                            Some(other) => format!(
                                "{} holds {} now; its claim on the free {} is a leftover",
                                claim.holder, other.ip, a.ip
                            ),
                            None => continue,
                        }
                    }
                    _ => continue,
                }
            }
            None => continue,
        };
        plan.drop.push(DropClaim {
            claim: claim.clone(),
            why,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{address, claim, owner};

    fn freed_ips(items: &[FreeAddress]) -> Vec<String> {
        items.iter().map(|f| f.address.ip.to_string()).collect()
    }

    fn dropped_ips(plan: &SweepPlan) -> Vec<String> {
        plan.drop
            .iter()
            .filter_map(|d| d.claim.address.map(|a| a.to_string()))
            .collect()
    }

    fn nodes(list: &[(&str, &str)]) -> LiveNodes {
        list.iter()
            .map(|(n, i)| (n.to_string(), Some(i.to_string())))
            .collect()
    }

    #[test]
    fn frees_only_this_clusters_addresses_of_vanished_nodes() {
        let pool = [
            address("192.0.2.1", Some("i-a"), Some(owner("c1", "a", "i-a"))), // live
            address(
                "192.0.2.2",
                Some("i-gone"),
                Some(owner("c1", "gone", "i-gone")),
            ), // node gone, instance running
            address("192.0.2.3", None, Some(owner("c1", "gone2", "i-gone2"))), // instance terminated, tags left
            address("192.0.2.4", Some("i-x"), Some(owner("c2", "gone", "i-x"))), // another cluster
            address("192.0.2.5", Some("i-y"), None),                           // not pinip's
            address("192.0.2.6", Some("i-old"), Some(owner("c1", "b", "i-old"))), // node b re-created on i-new
        ];
        let live = nodes(&[("a", "i-a"), ("b", "i-new")]);
        let plan = plan(&pool, &live, &Published::new(), &[], "c1");
        assert_eq!(
            freed_ips(&plan.free),
            ["192.0.2.2", "192.0.2.3", "192.0.2.6"]
        );
        assert!(plan.free[2].why.contains("i-new"));
    }

    #[test]
    fn a_vanished_nodes_address_under_a_stale_record_is_found_through_its_claim() {
        // .1: the record still names "old" (gone), but "gone" claimed it and attached it to
        // i-gone before its record write failed; "gone" vanished too, instance running.
        // .2: a stale record of a gone owner on an address a live node holds: leave it.
        // .3: a claim of a vanished node on an instance a live node runs now: leave it.
        // .4: another cluster's record: never touched.
        let pool = [
            address(
                "192.0.2.1",
                Some("i-gone"),
                Some(owner("c1", "old", "i-old")),
            ),
            address(
                "192.0.2.2",
                Some("i-a"),
                Some(owner("c1", "old2", "i-old2")),
            ),
            address("192.0.2.3", Some("i-a"), None),
            address("192.0.2.4", Some("i-gone"), Some(owner("c2", "x", "i-x"))),
        ];
        let live = nodes(&[("a", "i-a")]);
        let claims = [
            claim("gone", "i-gone", "192.0.2.1", Phase::Held),
            claim("gone3", "i-a", "192.0.2.3", Phase::Held),
            claim("gone", "i-gone", "192.0.2.4", Phase::Held),
        ];
        let planned = plan(&pool, &live, &Published::new(), &claims, "c1");
        let freed: Vec<(String, String)> = planned
            .free
            .iter()
            .map(|f| (f.address.ip.to_string(), f.owner.instance.clone()))
            .collect();
        // From the claim's instance first, then the record's (which clears the record).
        assert_eq!(
            freed,
            [
                ("192.0.2.1".to_string(), "i-gone".to_string()),
                ("192.0.2.1".to_string(), "i-old".to_string()),
            ]
        );
    }

    #[test]
    fn drops_claims_of_vanished_nodes_and_contradicted_held_claims_only() {
        let pool = [
            address("192.0.2.1", Some("i-a"), None),
            address("192.0.2.2", None, None),
            address("192.0.2.3", Some("i-b"), None),
            address("192.0.2.4", None, None),
        ];
        let live = nodes(&[("a", "i-a"), ("b", "i-b"), ("c", "i-c")]);
        let claims = [
            claim("a", "i-a", "192.0.2.1", Phase::Held),    // fine
            claim("gone", "i-g", "192.0.2.9", Phase::Held), // holder gone
            claim("gone", "i-g", "192.0.2.8", Phase::Claiming), // holder gone, mid-claim
            claim("c", "i-c", "192.0.2.2", Phase::Held), // detached from c, which holds nothing: c re-attaches it, keep
            claim("c", "i-c", "192.0.2.3", Phase::Held), // on b's instance now: drop
            claim("b", "i-b", "192.0.2.7", Phase::Claiming), // in flight: the claim rule's business
            claim("a", "i-a", "192.0.2.4", Phase::Held), // a holds .1 already: a leftover on a free address, drop
        ];
        let mut published = Published::new();
        published.insert("a".into(), "192.0.2.1".parse().unwrap());
        let planned = plan(&pool, &live, &published, &claims, "c1");
        assert_eq!(
            dropped_ips(&planned),
            ["192.0.2.9", "192.0.2.8", "192.0.2.3", "192.0.2.4"]
        );
        // RELEASE_ON_EXIT=false: none of these is on a vanished owner's instance, so
        // the same claims go.
        assert_eq!(
            plan(&pool, &live, &published, &claims, "c1")
                .keeping_attached()
                .drop
                .len(),
            4
        );
        assert!(
            planned.drop[3].why.contains("leftover"),
            "{}",
            planned.drop[3].why
        );
        // Mid-switch: a attached .1 but still publishes .4, so .4's claim is not a leftover yet.
        published.insert("a".into(), "192.0.2.4".parse().unwrap());
        let mid_switch = plan(&pool, &live, &published, &claims, "c1");
        assert!(!mid_switch
            .drop
            .iter()
            .any(|d| d.claim.address == Some("192.0.2.4".parse().unwrap())));
    }

    #[test]
    fn release_on_exit_false_leaves_addresses_on_vanished_instances_and_clears_the_rest() {
        let pool = [
            // node gone, instance running: stays, with its record and claim
            address(
                "192.0.2.2",
                Some("i-gone"),
                Some(owner("c1", "gone", "i-gone")),
            ),
            // instance terminated, record left: cleared
            address("192.0.2.3", None, Some(owner("c1", "gone2", "i-gone2"))),
            // stale record of an earlier owner, claim of the vanished current one: stays
            address(
                "192.0.2.4",
                Some("i-gone3"),
                Some(owner("c1", "old", "i-old")),
            ),
        ];
        let live = nodes(&[("a", "i-a")]);
        let claims = [
            claim("gone", "i-gone", "192.0.2.2", Phase::Held),
            claim("gone2", "i-gone2", "192.0.2.3", Phase::Held),
            claim("gone3", "i-gone3", "192.0.2.4", Phase::Held),
        ];
        let planned = plan(&pool, &live, &Published::new(), &claims, "c1").keeping_attached();
        assert_eq!(freed_ips(&planned.free), ["192.0.2.3"]);
        assert_eq!(freed_ips(&planned.kept), ["192.0.2.4", "192.0.2.2"]);
        assert_eq!(dropped_ips(&planned), ["192.0.2.3"]);
    }
}
