//! Which address should this node take? Pure functions over the pool as the cloud
//! listed it.

use std::net::IpAddr;

use pinip_providers::PoolAddress;

/// Pool addresses attached to this instance (normally zero or one).
pub fn held_by<'a>(pool: &'a [PoolAddress], instance_id: &str) -> Vec<&'a PoolAddress> {
    pool.iter()
        .filter(|a| a.attached_to.as_deref() == Some(instance_id))
        .collect()
}

/// Free addresses in the order this node should try them.
///
/// - `preferred` (the address this node held before, e.g. after someone detached it) first;
/// - with `ORDER_BY` set, the cloud's order is the user's wish and is kept;
/// - otherwise each node walks the pool in its own pseudo-random order (a hash of its
///   name and the address: rendezvous hashing), so N nodes starting together neither
///   fight for the head of the list nor, after a lost claim, for the next address
///   (lost claims then depend on how full the pool is, not on the cluster's size;
///   docs/design.md, "Why the cluster is not serialised").
pub fn candidates<'a>(
    pool: &'a [PoolAddress],
    node_name: &str,
    ordered: bool,
    preferred: Option<IpAddr>,
) -> Vec<&'a PoolAddress> {
    // Borrowed, not copied: an agent ranks the whole pool on every pass, and a thousand
    // simulated agents copying a thousand addresses (and their tags) each was most of
    // the harness's allocation.
    let mut free: Vec<&PoolAddress> = pool.iter().filter(|a| a.is_free()).collect();
    if !ordered {
        free.sort_by_cached_key(|a| (rendezvous_rank(node_name, &a.ip), a.ip));
    }
    if let Some(ip) = preferred {
        if let Some(pos) = free.iter().position(|a| a.ip == ip) {
            let wanted = free.remove(pos);
            free.insert(0, wanted);
        }
    }
    free
}

/// How many free addresses of a cut-short listing a node tries before it waits for the
/// rest of the pool. A thousand nodes starting together meet on the first page: a few
/// tries each fill it, and a node that lost them all reads on rather than spending
/// claim writes on addresses its peers took a moment ago.
pub const PREFIX_TRIES: usize = 4;

/// What a node does with less than the whole pool (the pages a rate limit let it read,
/// or its part of the pool: `domain::pool_part`).
#[derive(Debug, PartialEq, Eq)]
pub enum PartialChoice<'a> {
    /// Try these free addresses in turn (fresh claims only).
    Try(Vec<&'a PoolAddress>),
    /// Try none, for this reason: the node waits for, or reads, the whole pool.
    Decline(&'static str),
}

/// Pure: whether a node may take an address from a listing's first pages.
///
/// - with `ORDER_BY`, the first free address in its order may be on a page not read;
/// - a node that holds a claim, or had an address (`had_address`), may hold one on such
///   a page: taking another would churn it (a restart under a throttled stampede);
/// - otherwise a free address of the pages read is as good as any: the claim and the
///   cloud's refusal keep it from a second node, as on a whole listing.
pub fn prefix_choice<'a>(
    read: &'a [PoolAddress],
    node_name: &str,
    ordered: bool,
    holds_claim: bool,
    had_address: bool,
) -> PartialChoice<'a> {
    if ordered {
        return PartialChoice::Decline("ORDER_BY's first free address may be on a page not read");
    }
    if holds_claim || had_address {
        return PartialChoice::Decline("this node may hold an address on a page not read");
    }
    let mut free = candidates(read, node_name, false, None);
    free.truncate(PREFIX_TRIES);
    match free.is_empty() {
        true => PartialChoice::Decline("no free address on the pages read"),
        false => PartialChoice::Try(free),
    }
}

/// This node's rank for `ip`: FNV-1a over both, then a finaliser (SplitMix64's) so
/// that addresses differing in one byte land far apart.
fn rendezvous_rank(node_name: &str, ip: &IpAddr) -> u64 {
    let mut hash = stable_hash(node_name);
    let (v4, v6);
    let octets: &[u8] = match ip {
        IpAddr::V4(ip) => {
            v4 = ip.octets();
            &v4
        }
        IpAddr::V6(ip) => {
            v6 = ip.octets();
            &v6
        }
    };
    for &byte in octets {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    finalise(hash)
}

/// SplitMix64's finaliser: inputs differing in one bit land far apart.
pub fn finalise(mut hash: u64) -> u64 {
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// FNV-1a: stable across runs and Rust versions (std's hasher is not).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn pool(n: usize) -> Vec<PoolAddress> {
        (0..n)
            .map(|i| PoolAddress {
                id: format!("a-{i}"),
                ip: IpAddr::from([192, 0, 2, i as u8 + 1]),
                attached_to: None,
                owner: None,
                labels: Default::default(),
            })
            .collect()
    }

    #[test]
    fn a_cut_short_listing_is_tried_a_few_addresses_deep_by_a_node_with_nothing_to_lose() {
        let mut p = pool(10);
        p[0].attached_to = Some("i-other".into());
        let PartialChoice::Try(tried) = prefix_choice(&p, "node-a", false, false, false) else {
            panic!("a fresh node tries the pages read");
        };
        assert_eq!(tried.len(), PREFIX_TRIES);
        assert!(tried.iter().all(|a| a.is_free()));
        // The same walk as on a whole listing: its first few steps.
        let whole = candidates(&p, "node-a", false, None);
        assert_eq!(tried, whole[..PREFIX_TRIES]);
    }

    #[test]
    fn a_cut_short_listing_waits_where_an_unread_page_could_matter() {
        let p = pool(10);
        let wait = |ordered, claim, had| {
            matches!(
                prefix_choice(&p, "node-a", ordered, claim, had),
                PartialChoice::Decline(_)
            )
        };
        assert!(wait(true, false, false), "ORDER_BY");
        assert!(wait(false, true, false), "a held claim");
        assert!(wait(false, false, true), "an address held before");
        let mut taken = pool(2);
        for a in &mut taken {
            a.attached_to = Some("i-other".into());
        }
        assert_eq!(
            prefix_choice(&taken, "node-a", false, false, false),
            PartialChoice::Decline("no free address on the pages read")
        );
    }

    #[test]
    fn only_free_addresses_are_candidates() {
        let mut p = pool(3);
        p[1].attached_to = Some("i-other".into());
        let c = candidates(&p, "node-a", true, None);
        assert_eq!(
            c.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["a-0", "a-2"]
        );
    }

    #[test]
    fn order_by_is_respected() {
        let p = pool(5);
        let c = candidates(&p, "node-xyz", true, None);
        assert_eq!(c[0].id, "a-0");
    }

    #[test]
    fn nodes_spread_over_the_pool_without_order_by() {
        let p = pool(10);
        let starts: BTreeSet<String> = (0..50)
            .map(|i| {
                candidates(&p, &format!("node-{i}"), false, None)[0]
                    .id
                    .clone()
            })
            .collect();
        // 50 nodes over 10 addresses: many different starting points, not one hot head.
        assert!(starts.len() >= 6, "{starts:?}");
        // Every candidate exactly once.
        let c = candidates(&p, "node-1", false, None);
        assert_eq!(c.iter().map(|a| &a.id).collect::<BTreeSet<_>>().len(), 10);
    }

    #[test]
    fn nodes_that_lose_the_same_first_choice_go_different_ways_after_it() {
        // With a rotation of one order, nodes with the same first choice shared every
        // later one: the loser of the first claim lost the second one too.
        let p = pool(100);
        let mut by_first: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in 0..300 {
            let c = candidates(&p, &format!("node-{i}"), false, None);
            by_first
                .entry(c[0].id.clone())
                .or_default()
                .push(c[1].id.clone());
        }
        let (mut pairs, mut same_second) = (0, 0);
        for seconds in by_first.values() {
            for (i, a) in seconds.iter().enumerate() {
                for b in &seconds[i + 1..] {
                    pairs += 1;
                    same_second += usize::from(a == b);
                }
            }
        }
        assert!(pairs > 100, "{pairs} colliding pairs");
        assert!(
            same_second * 20 <= pairs,
            "{same_second} of {pairs} colliding pairs share the second choice"
        );
    }

    #[test]
    fn a_node_walks_the_pool_in_the_same_order_on_every_pass() {
        let p = pool(20);
        assert_eq!(
            candidates(&p, "node-7", false, None),
            candidates(&p, "node-7", false, None)
        );
        // An address that went away changes nobody's order of the others.
        let mut fewer = p.clone();
        fewer.remove(3);
        let before: Vec<_> = candidates(&p, "node-7", false, None)
            .into_iter()
            .filter(|a| a.id != "a-3")
            .collect();
        assert_eq!(candidates(&fewer, "node-7", false, None), before);
    }

    #[test]
    fn the_previous_address_comes_first() {
        let p = pool(4);
        let c = candidates(&p, "node-1", false, Some(p[2].ip));
        assert_eq!(c[0].ip, p[2].ip);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn held_by_finds_the_instance_addresses() {
        let mut p = pool(3);
        p[2].attached_to = Some("i-me".into());
        assert_eq!(held_by(&p, "i-me").len(), 1);
        assert!(held_by(&p, "i-you").is_empty());
    }
}
