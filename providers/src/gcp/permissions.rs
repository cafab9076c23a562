//! Every Compute method the GCP provider calls, and the IAM permissions each one
//! needs. **A new call in the provider means a new row here**: the custom role in
//! `deploy/iam/gcp-role.yaml` must grant exactly the union of this table (a test
//! renders both and fails on anything missing or extra), and a 403 without a
//! permission in its message is explained from it.

/// Method names as they appear in errors, logs and the simulator's counters.
pub mod method {
    pub const ADDRESSES_LIST: &str = "addresses.list";
    pub const ADDRESSES_GET: &str = "addresses.get";
    pub const ADDRESSES_SET_LABELS: &str = "addresses.setLabels";
    pub const INSTANCES_GET: &str = "instances.get";
    pub const ADD_ACCESS_CONFIG: &str = "instances.addAccessConfig";
    pub const DELETE_ACCESS_CONFIG: &str = "instances.deleteAccessConfig";
    pub const UPDATE_NETWORK_INTERFACE: &str = "instances.updateNetworkInterface";
    pub const ZONE_OPERATIONS_WAIT: &str = "zoneOperations.wait";
    pub const REGION_OPERATIONS_WAIT: &str = "regionOperations.wait";
    pub const ZONE_OPERATIONS_GET: &str = "zoneOperations.get";
    pub const REGION_OPERATIONS_GET: &str = "regionOperations.get";
}

/// `(method, permissions it needs)`.
pub const REQUIRED: &[(&str, &[&str])] = &[
    // list_pool: the regional list with the pool filter (all pages).
    (method::ADDRESSES_LIST, &["compute.addresses.list"]),
    // attach: re-read an address whose fingerprint, tier or prefix length is not known.
    (method::ADDRESSES_GET, &["compute.addresses.get"]),
    // attach/detach: the ownership labels (cluster, node, instance).
    (
        method::ADDRESSES_SET_LABELS,
        &["compute.addresses.setLabels"],
    ),
    // describe_instance, and the NIC state before every swap.
    (method::INSTANCES_GET, &["compute.instances.get"]),
    // IPv4 attach (static natIP) and restore (ephemeral): using a reserved address on
    // a VM needs `addresses.use`; an external IP in a subnet needs `subnetworks.useExternalIp`.
    // (Legacy networks without subnets would need `networks.useExternalIp`, KubeIP PR #56;
    // legacy networks are deprecated and GKE always uses subnets, so the role leaves it out.)
    (
        method::ADD_ACCESS_CONFIG,
        &[
            "compute.instances.addAccessConfig",
            "compute.addresses.use",
            "compute.subnetworks.useExternalIp",
        ],
    ),
    // IPv4 swap and release: remove the current ONE_TO_ONE_NAT access config.
    (
        method::DELETE_ACCESS_CONFIG,
        &["compute.instances.deleteAccessConfig"],
    ),
    // IPv6 attach and release (KubeIP's role forgets this one).
    (
        method::UPDATE_NETWORK_INTERFACE,
        &[
            "compute.instances.updateNetworkInterface",
            "compute.addresses.use",
            "compute.subnetworks.useExternalIp",
        ],
    ),
    // Waiting on the instance operations (`operations/{op}/wait`).
    (
        method::ZONE_OPERATIONS_WAIT,
        &["compute.zoneOperations.get"],
    ),
    // Waiting on setLabels (a regional operation).
    (
        method::REGION_OPERATIONS_WAIT,
        &["compute.regionOperations.get"],
    ),
    // Polling an operation when `wait` is refused, and settling a write whose end was
    // not seen (same permissions as `wait`).
    (method::ZONE_OPERATIONS_GET, &["compute.zoneOperations.get"]),
    (
        method::REGION_OPERATIONS_GET,
        &["compute.regionOperations.get"],
    ),
];

/// The permissions `method` needs (empty for an unknown method).
pub fn needed_by(method: &str) -> &'static [&'static str] {
    REQUIRED
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, p)| *p)
        .unwrap_or(&[])
}

/// Every permission the provider needs, sorted and without repeats.
pub fn all() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = REQUIRED
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_its_own_permission_first() {
        for (method, permissions) in REQUIRED {
            let (resource, verb) = method.split_once('.').unwrap();
            let verb = if verb == "wait" { "get" } else { verb };
            assert!(
                permissions[0] == format!("compute.{resource}.{verb}"),
                "{method}: {permissions:?}"
            );
        }
    }

    #[test]
    fn ipv6_needs_update_network_interface() {
        assert!(all().contains(&"compute.instances.updateNetworkInterface"));
        assert!(needed_by("nope").is_empty());
    }
}
