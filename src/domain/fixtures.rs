//! Test builders for the domain's records, shared by every unit test in the crate
//! (one place instead of a `claim()` per test module). Compiled for tests only.

use std::net::IpAddr;
use std::time::Duration;

use pinip_providers::{Ownership, PoolAddress};

use crate::domain::claim_record::{lease_name, ClaimRecord, Phase};

/// A claim record as the store reads it: named after its address, version "1",
/// a 5 s duration.
pub(crate) fn claim(holder: &str, instance: &str, ip: &str, phase: Phase) -> ClaimRecord {
    let ip: IpAddr = ip.parse().expect("a test address");
    ClaimRecord {
        name: lease_name(&ip),
        holder: holder.into(),
        instance: instance.into(),
        address: Some(ip),
        phase,
        resource_version: "1".into(),
        duration: Duration::from_secs(5),
    }
}

/// An ownership record on a cloud address.
pub(crate) fn owner(cluster: &str, node: &str, instance: &str) -> Ownership {
    Ownership {
        cluster: cluster.into(),
        node: node.into(),
        instance: instance.into(),
    }
}

/// A pool address, attached to `attached` when it names an instance, carrying `owned`.
pub(crate) fn address(ip: &str, attached: Option<&str>, owned: Option<Ownership>) -> PoolAddress {
    PoolAddress {
        id: format!("id-{ip}"),
        ip: ip.parse().expect("a test address"),
        attached_to: attached.map(String::from),
        owner: owned,
        labels: Default::default(),
    }
}

/// An unowned pool address.
pub(crate) fn pool_address(ip: &str, attached: Option<&str>) -> PoolAddress {
    address(ip, attached, None)
}
