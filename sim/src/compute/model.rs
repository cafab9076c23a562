//! What the Compute simulator stores, and how it renders it as the API's JSON
//! (`compute#address`, `compute#instance`, `compute#operation`).
//!
//! An address's `status` and `users` are never stored: they are derived from the
//! instances' NICs every time, so they cannot disagree with what is attached.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::fingerprint::fingerprint;

/// Top-level fields of `compute#address` a filter may name.
pub const ADDRESS_FIELDS: &[&str] = &[
    "address",
    "addressType",
    "creationTimestamp",
    "description",
    "id",
    "ipVersion",
    "ipv6EndpointType",
    "kind",
    "labelFingerprint",
    "labels",
    "name",
    "network",
    "networkTier",
    "prefixLength",
    "purpose",
    "region",
    "selfLink",
    "status",
    "subnetwork",
    "users",
];

#[derive(Clone, Debug)]
pub struct SimAddress {
    pub id: u64,
    pub name: String,
    pub region: String,
    pub ip: IpAddr,
    pub tier: String,
    /// IPv6 addresses are /96 ranges for a VM.
    pub prefix_length: Option<u8>,
    /// IPv6 only: `VM` (can go on a NIC) or `NETLB` (a load balancer's, never a VM's).
    pub endpoint_type: Option<String>,
    /// IPv6 only: the dual-stack subnetwork (name, in the address's region) the
    /// range was reserved from; only a NIC on that subnetwork can take it.
    pub subnetwork: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Bumped on every label change; the label fingerprint is derived from it.
    pub label_generation: u64,
    pub created: String,
}

impl SimAddress {
    pub fn label_fingerprint(&self) -> String {
        fingerprint(self.id.wrapping_mul(1_000_003) ^ self.label_generation)
    }
}

/// An external address on a NIC (`ONE_TO_ONE_NAT` IPv4 or `DIRECT_IPV6`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimAccessConfig {
    pub name: String,
    pub ip: IpAddr,
    pub tier: String,
    /// For IPv6.
    pub prefix_length: Option<u8>,
    /// Fields kept as given (`publicPtrDomainName`, `setPublicPtr`).
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct SimNic {
    pub name: String,
    /// The subnetwork's name (in the instance's region); every subnetwork is dual-stack
    /// with external IPv6 here.
    pub subnetwork: String,
    pub network_ip: Ipv4Addr,
    pub stack_type: String,
    pub access_config: Option<SimAccessConfig>,
    pub ipv6_access_config: Option<SimAccessConfig>,
    /// Bumped on every change; the NIC fingerprint is derived from it.
    pub generation: u64,
}

#[derive(Clone, Debug)]
pub struct SimInstance {
    pub id: u64,
    pub name: String,
    pub zone: String,
    /// A node pinip manages; anything else must never lose an address to pinip.
    pub managed: bool,
    pub nic: SimNic,
    pub created: String,
}

impl SimInstance {
    pub fn nic_fingerprint(&self) -> String {
        fingerprint(self.id.wrapping_mul(7_919) ^ (self.nic.generation << 20))
    }

    /// The external IPs on the NIC (IPv4 first).
    pub fn external_ips(&self) -> Vec<IpAddr> {
        [&self.nic.access_config, &self.nic.ipv6_access_config]
            .into_iter()
            .flatten()
            .map(|ac| ac.ip)
            .collect()
    }
}

/// How an operation ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationError {
    pub code: String,
    pub message: String,
    pub http_status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Zone(String),
    Region(String),
}

#[derive(Clone, Debug)]
pub struct SimOperation {
    pub id: u64,
    pub name: String,
    pub scope: Scope,
    pub operation_type: String,
    pub target_link: String,
    pub target_id: u64,
    pub inserted: String,
    /// When the operation is due to complete (its change is applied then, not before).
    pub done_at: Instant,
    /// None while RUNNING; once DONE, how it ended.
    pub result: Option<Option<OperationError>>,
}

/// `https://…/compute/v1/` of this server, for selfLinks.
#[derive(Clone, Debug)]
pub struct Links {
    pub base: String,
    pub project: String,
}

impl Links {
    pub fn project(&self) -> String {
        format!("{}projects/{}", self.base, self.project)
    }
    pub fn region(&self, region: &str) -> String {
        format!("{}/regions/{region}", self.project())
    }
    pub fn zone(&self, zone: &str) -> String {
        format!("{}/zones/{zone}", self.project())
    }
    pub fn address(&self, region: &str, name: &str) -> String {
        format!("{}/addresses/{name}", self.region(region))
    }
    pub fn instance(&self, zone: &str, name: &str) -> String {
        format!("{}/instances/{name}", self.zone(zone))
    }
    pub fn subnetwork(&self, region: &str, name: &str) -> String {
        format!("{}/subnetworks/{name}", self.region(region))
    }
}

pub fn render_address(
    a: &SimAddress,
    users: &[String],
    links: &Links,
    zone_of: impl Fn(&str) -> String,
) -> Value {
    let v6 = a.ip.is_ipv6();
    let mut out = json!({
        "kind": "compute#address",
        "id": a.id.to_string(),
        "creationTimestamp": a.created,
        "name": a.name,
        "description": "",
        "address": a.ip.to_string(),
        "status": if users.is_empty() { "RESERVED" } else { "IN_USE" },
        "region": links.region(&a.region),
        "selfLink": links.address(&a.region, &a.name),
        "networkTier": a.tier,
        "labels": a.labels,
        "labelFingerprint": a.label_fingerprint(),
        "addressType": "EXTERNAL",
        "ipVersion": if v6 { "IPV6" } else { "IPV4" },
    });
    if !users.is_empty() {
        out["users"] = json!(users
            .iter()
            .map(|i| links.instance(&zone_of(i), i))
            .collect::<Vec<_>>());
    }
    if v6 {
        out["prefixLength"] = json!(a.prefix_length.unwrap_or(96));
        if let Some(kind) = &a.endpoint_type {
            out["ipv6EndpointType"] = json!(kind);
        }
        if let Some(subnet) = &a.subnetwork {
            out["subnetwork"] = json!(links.subnetwork(&a.region, subnet));
        }
    }
    out
}

fn render_access_config(ac: &SimAccessConfig) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("compute#accessConfig"));
    out.insert("name".into(), json!(ac.name));
    out.insert("networkTier".into(), json!(ac.tier));
    match ac.ip {
        IpAddr::V4(ip) => {
            out.insert("type".into(), json!("ONE_TO_ONE_NAT"));
            out.insert("natIP".into(), json!(ip.to_string()));
        }
        IpAddr::V6(ip) => {
            out.insert("type".into(), json!("DIRECT_IPV6"));
            out.insert("externalIpv6".into(), json!(ip.to_string()));
            out.insert(
                "externalIpv6PrefixLength".into(),
                json!(ac.prefix_length.unwrap_or(96)),
            );
        }
    }
    for (k, v) in &ac.extra {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

pub fn render_instance(i: &SimInstance, links: &Links) -> Value {
    let region = region_of_zone(&i.zone);
    let mut nic = json!({
        "kind": "compute#networkInterface",
        "name": i.nic.name,
        "network": format!("{}/global/networks/default", links.project()),
        "subnetwork": links.subnetwork(&region, &i.nic.subnetwork),
        "networkIP": i.nic.network_ip.to_string(),
        "fingerprint": i.nic_fingerprint(),
        "stackType": i.nic.stack_type,
    });
    if let Some(ac) = &i.nic.access_config {
        nic["accessConfigs"] = json!([render_access_config(ac)]);
    }
    if let Some(ac) = &i.nic.ipv6_access_config {
        nic["ipv6AccessConfigs"] = json!([render_access_config(ac)]);
        nic["ipv6AccessType"] = json!("EXTERNAL");
    }
    json!({
        "kind": "compute#instance",
        "id": i.id.to_string(),
        "creationTimestamp": i.created,
        "name": i.name,
        "machineType": format!("{}/machineTypes/e2-small", links.zone(&i.zone)),
        "status": "RUNNING",
        "zone": links.zone(&i.zone),
        "networkInterfaces": [nic],
        "selfLink": links.instance(&i.zone, &i.name),
        "labels": {},
        "labelFingerprint": fingerprint(0),
        "fingerprint": fingerprint(i.id),
        "cpuPlatform": "Intel Broadwell",
        "canIpForward": false,
    })
}

pub fn render_operation(op: &SimOperation, links: &Links) -> Value {
    let done = op.result.is_some();
    let (scope_key, scope_link, self_link) = match &op.scope {
        Scope::Zone(z) => (
            "zone",
            links.zone(z),
            format!("{}/operations/{}", links.zone(z), op.name),
        ),
        Scope::Region(r) => (
            "region",
            links.region(r),
            format!("{}/operations/{}", links.region(r), op.name),
        ),
    };
    let mut out = json!({
        "kind": "compute#operation",
        "id": op.id.to_string(),
        "name": op.name,
        "operationType": op.operation_type,
        "targetLink": op.target_link,
        "targetId": op.target_id.to_string(),
        "status": if done { "DONE" } else { "RUNNING" },
        "user": "pinip-sim@example.invalid",
        "progress": if done { 100 } else { 0 },
        "insertTime": op.inserted,
        "startTime": op.inserted,
        "selfLink": self_link,
    });
    out[scope_key] = json!(scope_link);
    if done {
        out["endTime"] = json!(op.inserted);
        if let Some(Some(e)) = &op.result {
            out["error"] = json!({"errors": [{"code": e.code, "message": e.message}]});
            out["httpErrorStatusCode"] = json!(e.http_status);
            out["httpErrorMessage"] = json!(http_reason(e.http_status));
        }
    }
    out
}

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "BAD REQUEST",
        403 => "FORBIDDEN",
        404 => "NOT FOUND",
        409 => "CONFLICT",
        412 => "PRECONDITION FAILED",
        _ => "INTERNAL SERVER ERROR",
    }
}

/// `us-central1-a` → `us-central1`; `sim-1a` → `sim-1`.
pub fn region_of_zone(zone: &str) -> String {
    if let Some((region, suffix)) = zone.rsplit_once('-') {
        if suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_lowercase()) {
            return region.to_string();
        }
    }
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_zones() {
        assert_eq!(region_of_zone("us-central1-a"), "us-central1");
        assert_eq!(region_of_zone("sim-1a"), "sim-1");
    }
}
