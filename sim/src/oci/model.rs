//! The objects of the OCI simulator and their JSON, field for field as the Core
//! Services API 20160918 shows them (camelCase; the `oci` SDK's models): `PublicIp`,
//! `Instance`, `VnicAttachment`, `Vnic`, `PrivateIp`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    Ephemeral,
    Reserved,
}

impl Lifetime {
    pub fn api_name(self) -> &'static str {
        match self {
            Lifetime::Ephemeral => "EPHEMERAL",
            Lifetime::Reserved => "RESERVED",
        }
    }
}

/// Where a public IP is in its life. Transitional states end at their deadline
/// (evaluated lazily by `State::settle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipState {
    Available,
    Assigning { until: Instant },
    Assigned,
    Unassigning { until: Instant },
    Terminating { until: Instant },
    Terminated,
}

impl PipState {
    pub fn api_name(self) -> &'static str {
        match self {
            PipState::Available => "AVAILABLE",
            PipState::Assigning { .. } => "ASSIGNING",
            PipState::Assigned => "ASSIGNED",
            PipState::Unassigning { .. } => "UNASSIGNING",
            PipState::Terminating { .. } => "TERMINATING",
            PipState::Terminated => "TERMINATED",
        }
    }

    /// ASSIGNING or ASSIGNED: the public IP occupies its private IP (the API refuses a
    /// second one there).
    pub fn occupies(self) -> bool {
        matches!(self, PipState::Assigning { .. } | PipState::Assigned)
    }
}

pub type DefinedTags = BTreeMap<String, BTreeMap<String, Value>>;

#[derive(Clone, Debug)]
pub struct SimPublicIp {
    pub id: String,
    pub ip: Ipv4Addr,
    pub lifetime: Lifetime,
    pub compartment: String,
    pub display_name: String,
    pub freeform_tags: BTreeMap<String, String>,
    pub defined_tags: DefinedTags,
    /// The private IP it is assigned to, being assigned to, or leaving (UNASSIGNING).
    pub private_ip: Option<String>,
    /// Ephemeral public IPs live in their private IP's availability domain.
    pub availability_domain: Option<String>,
    pub state: PipState,
    /// Bumped on every change: the ETag.
    pub generation: u64,
    pub time_created: String,
}

#[derive(Clone, Debug)]
pub struct SimInstance {
    pub id: String,
    pub display_name: String,
    pub compartment: String,
    pub availability_domain: String,
    /// A node pinip manages; anything else must never lose its public IP to pinip.
    pub managed: bool,
    pub terminated: bool,
    pub generation: u64,
    pub time_created: String,
}

#[derive(Clone, Debug)]
pub struct SimVnic {
    pub id: String,
    pub attachment_id: String,
    pub instance_id: String,
    pub compartment: String,
    pub availability_domain: String,
    pub subnet_id: String,
    pub is_primary: bool,
    pub nic_index: u32,
    pub mac: String,
    pub hostname_label: String,
    /// False once its instance terminated (the attachment shows DETACHED).
    pub attached: bool,
    pub time_created: String,
}

#[derive(Clone, Debug)]
pub struct SimPrivateIp {
    pub id: String,
    pub vnic_id: String,
    pub subnet_id: String,
    pub compartment: String,
    pub availability_domain: String,
    pub ip: Ipv4Addr,
    pub is_primary: bool,
    pub hostname_label: String,
    pub time_created: String,
}

/// The ETag of an object at `generation` (opaque to clients, changes on every change).
pub fn etag(id: &str, generation: u64) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{id}#{generation}").as_bytes(),
    );
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn render_public_ip(p: &SimPublicIp) -> Value {
    let assigned = p.private_ip.as_ref().filter(|_| {
        !matches!(
            p.state,
            PipState::Available | PipState::Terminated | PipState::Terminating { .. }
        )
    });
    json!({
        "assignedEntityId": assigned,
        "assignedEntityType": assigned.map(|_| "PRIVATE_IP"),
        "availabilityDomain": p.availability_domain,
        "compartmentId": p.compartment,
        "definedTags": p.defined_tags,
        "displayName": p.display_name,
        "freeformTags": p.freeform_tags,
        "id": p.id,
        "ipAddress": p.ip.to_string(),
        "lifecycleState": p.state.api_name(),
        "lifetime": p.lifetime.api_name(),
        "privateIpId": assigned,
        "publicIpPoolId": Value::Null,
        "scope": match p.lifetime {
            Lifetime::Ephemeral => "AVAILABILITY_DOMAIN",
            Lifetime::Reserved => "REGION",
        },
        "timeCreated": p.time_created,
    })
}

pub fn render_instance(i: &SimInstance, region: &str) -> Value {
    json!({
        "availabilityDomain": i.availability_domain,
        "compartmentId": i.compartment,
        "definedTags": {},
        "displayName": i.display_name,
        "extendedMetadata": {},
        "faultDomain": "FAULT-DOMAIN-1",
        "freeformTags": {},
        "id": i.id,
        "imageId": "ocid1.image.oc1.sim.aaaaaaaaimage",
        "launchMode": "PARAVIRTUALIZED",
        "lifecycleState": if i.terminated { "TERMINATED" } else { "RUNNING" },
        "metadata": {},
        "region": region,
        "shape": "VM.Standard.E4.Flex",
        "timeCreated": i.time_created,
    })
}

pub fn render_attachment(v: &SimVnic) -> Value {
    json!({
        "availabilityDomain": v.availability_domain,
        "compartmentId": v.compartment,
        "displayName": Value::Null,
        "id": v.attachment_id,
        "instanceId": v.instance_id,
        "lifecycleState": if v.attached { "ATTACHED" } else { "DETACHED" },
        "nicIndex": v.nic_index,
        "subnetId": v.subnet_id,
        "timeCreated": v.time_created,
        "vlanId": Value::Null,
        "vlanTag": 0,
        "vnicId": if v.attached { Value::from(v.id.clone()) } else { Value::Null },
    })
}

/// `private_ip`/`public_ip`: the addresses of the VNIC's primary private IP.
pub fn render_vnic(
    v: &SimVnic,
    private_ip: Option<Ipv4Addr>,
    public_ip: Option<Ipv4Addr>,
) -> Value {
    json!({
        "availabilityDomain": v.availability_domain,
        "compartmentId": v.compartment,
        "definedTags": {},
        "displayName": format!("vnic-{}", v.nic_index),
        "freeformTags": {},
        "hostnameLabel": v.hostname_label,
        "id": v.id,
        "ipv6Addresses": [],
        "isPrimary": v.is_primary,
        "lifecycleState": if v.attached { "AVAILABLE" } else { "TERMINATED" },
        "macAddress": v.mac,
        "nsgIds": [],
        "privateIp": private_ip.map(|ip| ip.to_string()),
        "publicIp": public_ip.map(|ip| ip.to_string()),
        "skipSourceDestCheck": false,
        "subnetId": v.subnet_id,
        "timeCreated": v.time_created,
        "vlanId": Value::Null,
    })
}

pub fn render_private_ip(p: &SimPrivateIp) -> Value {
    json!({
        "availabilityDomain": p.availability_domain,
        "compartmentId": p.compartment,
        "definedTags": {},
        "displayName": p.hostname_label,
        "freeformTags": {},
        "hostnameLabel": p.hostname_label,
        "id": p.id,
        "ipAddress": p.ip.to_string(),
        "isPrimary": p.is_primary,
        "subnetId": p.subnet_id,
        "timeCreated": p.time_created,
        "vlanId": Value::Null,
        "vnicId": p.vnic_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_change_with_the_generation() {
        assert_eq!(etag("a", 1), etag("a", 1));
        assert_ne!(etag("a", 1), etag("a", 2));
        assert_eq!(etag("a", 1).len(), 32);
    }
}
