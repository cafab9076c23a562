//! Pure: whether a node reads part of the pool first, and what it does with the part.
//!
//! A thousand nodes each reading a pool of 1 100 addresses is a million addresses
//! rendered, sent and parsed, most of them attached to other nodes or wanted by them.
//! In a large cluster a node reads first the part of the pool its name picks, about
//! [`PART_ADDRESSES`] of it; the nodes that pick one part compete for it as the whole
//! cluster competes for the whole pool, in the same ratio (docs/design.md, "Pool parts").

use std::net::IpAddr;

use pinip_providers::{PoolAddress, PoolPart};

use super::selection::{candidates, finalise, stable_hash, PartialChoice};

/// About how many addresses a node's part holds in a cluster of the pool's size.
pub const PART_ADDRESSES: u64 = 100;

/// Below this many Nodes a node reads the whole pool: a part of half the pool or more
/// saves less than the call it costs a node whose part turns out spent.
pub const PART_FROM_NODES: u64 = 2 * PART_ADDRESSES;

/// The part of the pool a fresh node of a cluster of `nodes` reads first, or None for
/// the whole pool (a small cluster, or one the server does not count).
pub fn first_part(node_name: &str, nodes: Option<u64>) -> Option<PoolPart> {
    let nodes = nodes.filter(|n| *n >= PART_FROM_NODES)?;
    Some(PoolPart {
        seed: finalise(stable_hash(node_name)),
        share: PART_ADDRESSES as f64 / nodes as f64,
    })
}

/// Pure: whether the part settles the node.
///
/// - a node that holds a claim, or had an address (`had_address`), may hold one outside
///   the part: taking another would churn it;
/// - so may one whose instance carries a reserved address outside the part
///   (`carried_outside`): KubeIP's, or one put on by hand, adopted on a whole listing;
/// - otherwise a free address of the part is as good as any: the claim and the cloud's
///   refusal keep it from a second node, as on a whole listing.
pub fn part_choice<'a>(
    part: &'a [PoolAddress],
    node_name: &str,
    holds_claim: bool,
    had_address: bool,
    carried_outside: bool,
) -> PartialChoice<'a> {
    if holds_claim || had_address {
        return PartialChoice::Decline("this node may hold an address outside its part");
    }
    if carried_outside {
        return PartialChoice::Decline("the instance carries a reserved address outside its part");
    }
    let free = candidates(part, node_name, false, None);
    match free.is_empty() {
        true => PartialChoice::Decline("no free address in the part"),
        false => PartialChoice::Try(free),
    }
}

/// Does the instance carry a reserved address (`reserved`) that `part` does not show?
pub fn carried_outside(reserved: &[IpAddr], part: &[PoolAddress]) -> bool {
    reserved.iter().any(|ip| !part.iter().any(|a| a.ip == *ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::pool_address;

    #[test]
    fn a_small_or_uncounted_cluster_reads_the_whole_pool() {
        assert_eq!(first_part("n", None), None);
        assert_eq!(first_part("n", Some(PART_FROM_NODES - 1)), None);
        let part = first_part("n", Some(1000)).expect("a part for 1000 nodes");
        assert!((part.share - 0.1).abs() < 1e-9);
        assert_eq!(
            first_part("n", Some(PART_FROM_NODES)).map(|p| p.share),
            Some(0.5)
        );
    }

    #[test]
    fn nodes_spread_their_parts_by_name() {
        // The provider picks a part from the seed's low digits: ten names, several parts.
        let digits: std::collections::BTreeSet<u64> = (0..10)
            .filter_map(|i| first_part(&format!("node-{i}"), Some(1000)))
            .map(|p| p.seed % 10)
            .collect();
        assert!(digits.len() >= 4, "{digits:?}");
    }

    #[test]
    fn a_fresh_node_walks_its_part_as_it_would_walk_the_pool() {
        let part = vec![
            pool_address("192.0.2.1", Some("i-other")),
            pool_address("192.0.2.11", None),
            pool_address("192.0.2.21", None),
        ];
        let PartialChoice::Try(tried) = part_choice(&part, "node-a", false, false, false) else {
            panic!("a fresh node tries its part");
        };
        assert_eq!(tried, candidates(&part, "node-a", false, None));
        assert_eq!(tried.len(), 2);
    }

    #[test]
    fn a_node_that_may_hold_an_address_elsewhere_or_finds_none_reads_the_whole_pool() {
        let part = vec![pool_address("192.0.2.1", None)];
        let whole = |claim, had, outside| {
            matches!(
                part_choice(&part, "n", claim, had, outside),
                PartialChoice::Decline(_)
            )
        };
        assert!(whole(true, false, false));
        assert!(whole(false, true, false));
        assert!(whole(false, false, true));
        assert!(!whole(false, false, false));
        let spent = vec![pool_address("192.0.2.1", Some("i-other"))];
        assert!(matches!(
            part_choice(&spent, "n", false, false, false),
            PartialChoice::Decline("no free address in the part")
        ));
    }

    #[test]
    fn only_reserved_addresses_the_part_does_not_show_are_outside_it() {
        let part = vec![pool_address("192.0.2.1", Some("i-1"))];
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        assert!(!carried_outside(&[], &part));
        assert!(!carried_outside(&[ip("192.0.2.1")], &part));
        assert!(carried_outside(
            &[ip("192.0.2.1"), ip("198.51.100.7")],
            &part
        ));
    }
}
