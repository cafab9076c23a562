//! Every Core Services operation the OCI provider calls, and the IAM permissions each
//! one needs (from the Core Services policy reference). **A new call in the provider
//! means a new row here**: `deploy/iam/oci-policy.txt` must grant each permission, and a
//! 404 `NotAuthorizedOrNotFound` on a list (which OCI also sends for a missing policy)
//! is explained from this table.

/// Operation names as they appear in errors, logs and the simulator's counters.
pub mod op {
    pub const LIST_PUBLIC_IPS: &str = "ListPublicIps";
    pub const GET_PUBLIC_IP: &str = "GetPublicIp";
    pub const GET_PUBLIC_IP_BY_PRIVATE_IP: &str = "GetPublicIpByPrivateIpId";
    pub const UPDATE_PUBLIC_IP: &str = "UpdatePublicIp";
    pub const CREATE_PUBLIC_IP: &str = "CreatePublicIp";
    pub const DELETE_PUBLIC_IP: &str = "DeletePublicIp";
    pub const GET_INSTANCE: &str = "GetInstance";
    pub const LIST_VNIC_ATTACHMENTS: &str = "ListVnicAttachments";
    pub const GET_VNIC: &str = "GetVnic";
    pub const LIST_PRIVATE_IPS: &str = "ListPrivateIps";
    pub const GET_PRIVATE_IP: &str = "GetPrivateIp";
}

/// Which compartment a permission is checked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The reserved public IPs' compartment (`PROJECT`).
    Pool,
    /// The worker nodes' compartment (instances, VNICs, private IPs, ephemeral IPs).
    Nodes,
}

use Place::{Nodes, Pool};

/// `(operation, [(permission, where it is checked)])`.
pub const REQUIRED: &[(&str, &[(&str, Place)])] = &[
    // list_pool: the reserved public IPs of the compartment, every page.
    (op::LIST_PUBLIC_IPS, &[("PUBLIC_IP_READ", Pool)]),
    // attach/detach: the state and ETag of the address right before writing.
    (op::GET_PUBLIC_IP, &[("PUBLIC_IP_READ", Pool)]),
    // attach/restore: what public IP the node's private IP holds now.
    (
        op::GET_PUBLIC_IP_BY_PRIVATE_IP,
        &[
            ("PUBLIC_IP_READ", Nodes),
            ("PUBLIC_IP_READ", Pool),
            ("PRIVATE_IP_READ", Nodes),
        ],
    ),
    // attach (assign + ownership tags in one write), detach (unassign + clear), tag fixes.
    (
        op::UPDATE_PUBLIC_IP,
        &[
            ("PUBLIC_IP_UPDATE", Pool),
            ("PUBLIC_IP_ASSIGN_PRIVATE_IP", Pool),
            ("PUBLIC_IP_UNASSIGN_PRIVATE_IP", Pool),
            ("PRIVATE_IP_ASSIGN_PUBLIC_IP", Nodes),
            ("PRIVATE_IP_UNASSIGN_PUBLIC_IP", Nodes),
        ],
    ),
    // restore/release: a new ephemeral public IP on the node's primary private IP.
    (
        op::CREATE_PUBLIC_IP,
        &[("PRIVATE_IP_ASSIGN_PUBLIC_IP", Nodes)],
    ),
    // attach: the node's ephemeral public IP goes first (one public IP per private IP).
    (
        op::DELETE_PUBLIC_IP,
        &[("PRIVATE_IP_UNASSIGN_PUBLIC_IP", Nodes)],
    ),
    // describe_instance: compartment, state.
    (op::GET_INSTANCE, &[("INSTANCE_READ", Nodes)]),
    // describe_instance, and who holds an address pinip has no record for.
    (
        op::LIST_VNIC_ATTACHMENTS,
        &[("VNIC_ATTACHMENT_READ", Nodes)],
    ),
    (op::GET_VNIC, &[("VNIC_READ", Nodes)]),
    (op::LIST_PRIVATE_IPS, &[("PRIVATE_IP_READ", Nodes)]),
    (op::GET_PRIVATE_IP, &[("PRIVATE_IP_READ", Nodes)]),
];

/// The policy resource type a permission belongs to.
pub fn resource_of(permission: &str) -> &'static str {
    match permission {
        p if p.starts_with("PUBLIC_IP_") => "public-ips",
        p if p.starts_with("PRIVATE_IP_") => "private-ips",
        p if p.starts_with("INSTANCE_") => "instances",
        p if p.starts_with("VNIC_ATTACHMENT_") => "vnic-attachments",
        p if p.starts_with("VNIC_") => "vnics",
        _ => "",
    }
}

/// The permissions `operation` needs (empty for an unknown one).
pub fn needed_by(operation: &str) -> Vec<&'static str> {
    REQUIRED
        .iter()
        .filter(|(o, _)| *o == operation)
        .flat_map(|(_, grants)| grants.iter().map(|(p, _)| *p))
        .collect()
}

/// What to grant for `operation`, for error messages.
pub fn explain(operation: &str) -> String {
    let Some((_, grants)) = REQUIRED.iter().find(|(o, _)| *o == operation) else {
        return format!("the permissions of {operation}");
    };
    let parts: Vec<String> = grants
        .iter()
        .map(|(p, place)| {
            let place = match place {
                Pool => "the reserved IPs' compartment (PROJECT)",
                Nodes => "the nodes' compartment",
            };
            format!("{p} on {} in {place}", resource_of(p))
        })
        .collect();
    format!("{} (see deploy/iam/oci-policy.txt)", parts.join(", "))
}

/// Every permission the provider needs, sorted, without repeats.
pub fn all() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = REQUIRED
        .iter()
        .flat_map(|(_, g)| g.iter().map(|(p, _)| *p))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_listed_once_with_permissions() {
        let mut names: Vec<&str> = REQUIRED.iter().map(|(o, _)| *o).collect();
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before);
        assert!(REQUIRED
            .iter()
            .all(|(_, g)| !g.is_empty() && g.iter().all(|(p, _)| !resource_of(p).is_empty())));
        assert!(explain(op::LIST_PUBLIC_IPS).contains("PUBLIC_IP_READ"));
        assert!(needed_by("nope").is_empty());
        assert!(all().contains(&"PRIVATE_IP_UNASSIGN_PUBLIC_IP"));
    }
}
