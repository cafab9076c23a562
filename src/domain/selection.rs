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
/// - otherwise each node starts at its own point of the list (a hash of its name), so
///   N nodes starting together do not all fight for the head of the list.
pub fn candidates(
    pool: &[PoolAddress],
    node_name: &str,
    ordered: bool,
    preferred: Option<IpAddr>,
) -> Vec<PoolAddress> {
    let mut free: Vec<PoolAddress> = pool.iter().filter(|a| a.is_free()).cloned().collect();
    if !ordered && !free.is_empty() {
        let start = (stable_hash(node_name) % free.len() as u64) as usize;
        free.rotate_left(start);
    }
    if let Some(ip) = preferred {
        if let Some(pos) = free.iter().position(|a| a.ip == ip) {
            let wanted = free.remove(pos);
            free.insert(0, wanted);
        }
    }
    free
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
                labels: BTreeMap::new(),
            })
            .collect()
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
        let c = candidates(&pool(5), "node-xyz", true, None);
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
        // Rotation keeps every candidate exactly once.
        let c = candidates(&p, "node-1", false, None);
        assert_eq!(c.iter().map(|a| &a.id).collect::<BTreeSet<_>>().len(), 10);
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
