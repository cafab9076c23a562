//! A listed Compute address as the agent sees it (pure).

use std::net::IpAddr;

use crate::{IpFamily, PoolAddress};

use super::labels;
use super::wire::{instance_of_user, Address};

/// Pure: a listed address as the agent sees it. None for an address of the wrong family
/// or with an unreadable IP.
pub fn pool_address(address: &Address, family: IpFamily) -> Option<PoolAddress> {
    let ip: IpAddr = address.address.parse().ok()?;
    if !family.matches(&ip) {
        return None;
    }
    let attached_to = match address.is_reserved() {
        true => None,
        // IN_USE (or RESERVING): held by an instance, or by something else (a
        // forwarding rule, a NAT) that must never be taken from.
        false => Some(
            address
                .users
                .iter()
                .find_map(|u| instance_of_user(u))
                .map(String::from)
                .or_else(|| address.users.first().cloned())
                .unwrap_or_else(|| format!("({})", address.status.to_lowercase())),
        ),
    };
    Some(PoolAddress {
        id: address.name.clone(),
        ip,
        attached_to,
        owner: labels::owner_of(&address.labels),
        labels: address.labels.clone().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn address(status: &str, ip: &str, users: &[&str]) -> Address {
        Address {
            name: "pool-1".into(),
            address: ip.into(),
            status: status.into(),
            users: users.iter().map(|u| u.to_string()).collect(),
            labels: BTreeMap::from([
                ("kubeip".into(), "reserved".into()),
                ("pinip-cluster".into(), "c".into()),
                ("pinip-node".into(), "node-1".into()),
                ("pinip-instance".into(), "node-1".into()),
            ]),
            ..Address::default()
        }
    }

    #[test]
    fn listed_addresses_become_pool_addresses() {
        let free = pool_address(&address("RESERVED", "203.0.113.10", &[]), IpFamily::V4).unwrap();
        assert!(free.is_free());
        assert_eq!(free.owner.unwrap().node, "node-1");
        let used = pool_address(
            &address(
                "IN_USE",
                "203.0.113.10",
                &["https://x/compute/v1/projects/p/zones/z/instances/node-1"],
            ),
            IpFamily::V4,
        )
        .unwrap();
        assert_eq!(used.attached_to.as_deref(), Some("node-1"));
        let by_a_rule = pool_address(
            &address(
                "IN_USE",
                "203.0.113.10",
                &["https://x/compute/v1/projects/p/regions/r/forwardingRules/fr"],
            ),
            IpFamily::V4,
        )
        .unwrap();
        assert!(!by_a_rule.is_free());
        let reserving =
            pool_address(&address("RESERVING", "203.0.113.10", &[]), IpFamily::V4).unwrap();
        assert!(!reserving.is_free());
        assert!(pool_address(&address("RESERVED", "2600:1900::", &[]), IpFamily::V4).is_none());
        assert!(pool_address(&address("RESERVED", "", &[]), IpFamily::V4).is_none());
    }
}
