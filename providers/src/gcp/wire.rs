//! The Compute v1 JSON shapes pinip reads and writes (the subset it needs; unknown
//! fields are ignored on read and never sent). Field names follow the discovery
//! document (`compute.v1.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `compute#address` (regional).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: String,
    /// The IP itself (`203.0.113.10`, or the first address of an IPv6 range).
    #[serde(default)]
    pub address: String,
    /// RESERVING, RESERVED or IN_USE.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub address_type: Option<String>,
    #[serde(default)]
    pub ip_version: Option<String>,
    #[serde(default)]
    pub network_tier: Option<String>,
    #[serde(default)]
    pub prefix_length: Option<u8>,
    /// URLs of the resources using it (an instance's selfLink for a VM address).
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub label_fingerprint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// IPv6: `VM` (can go on a NIC) or `NETLB` (for a load balancer only).
    #[serde(default)]
    pub ipv6_endpoint_type: Option<String>,
    /// IPv6: the subnetwork the range belongs to; only a NIC there can take it.
    #[serde(default)]
    pub subnetwork: Option<String>,
}

impl Address {
    /// Free: reserved and used by nothing (IN_USE and RESERVING are held).
    pub fn is_reserved(&self) -> bool {
        self.status == "RESERVED"
    }
}

/// `compute#addressList`: one page of `addresses.list`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressList {
    #[serde(default)]
    pub items: Vec<Address>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `compute#instance` (what pinip reads of it).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub name: String,
    #[serde(default)]
    pub self_link: String,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
}

impl Instance {
    /// The NIC pinip manages: `nic0`, else the first one.
    pub fn primary_nic(&self) -> Option<&NetworkInterface> {
        self.network_interfaces
            .iter()
            .find(|n| n.name == "nic0")
            .or_else(|| self.network_interfaces.first())
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "networkIP")]
    pub network_ip: Option<String>,
    /// Base64; required (and checked, 412 when stale) by `updateNetworkInterface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_type: Option<String>,
    /// Read only here (never sent: an update would move the NIC).
    #[serde(default, skip_serializing)]
    pub subnetwork: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_configs: Vec<AccessConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_access_configs: Vec<AccessConfig>,
}

/// `compute#accessConfig`: an external IPv4 (`ONE_TO_ONE_NAT`) or IPv6 (`DIRECT_IPV6`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Static or ephemeral external IPv4; absent on add means "an ephemeral one".
    #[serde(rename = "natIP", default, skip_serializing_if = "Option::is_none")]
    pub nat_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ipv6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ipv6_prefix_length: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_tier: Option<String>,
}

/// `compute#operation` (zonal or regional).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    /// PENDING, RUNNING or DONE.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub error: Option<OperationErrors>,
    #[serde(default)]
    pub http_error_status_code: Option<u16>,
    #[serde(default)]
    pub http_error_message: Option<String>,
}

impl Operation {
    pub fn is_done(&self) -> bool {
        self.status == "DONE"
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct OperationErrors {
    #[serde(default)]
    pub errors: Vec<OperationError>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct OperationError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// `RegionSetLabelsRequest`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetLabelsRequest {
    pub labels: BTreeMap<String, String>,
    pub label_fingerprint: String,
}

/// The body of a failed call: `{"error": {"code", "message", "errors": [{"reason", ...}]}}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub reason: String,
}

/// A resource URL without its endpoint: `…/compute/v1/projects/p/regions/r/subnetworks/s`
/// → `projects/p/regions/r/subnetworks/s` (the API's hosts and versions differ).
pub fn resource_path(url: &str) -> &str {
    match url.find("projects/") {
        Some(at) => url[at..].trim_end_matches('/'),
        None => url.trim_end_matches('/'),
    }
}

/// The instance name in a `users[]` entry, when the user is an instance.
pub fn instance_of_user(url: &str) -> Option<&str> {
    let (_, rest) = url.rsplit_once("/instances/")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// The zone of an instance URL in an address's `users`.
pub fn zone_of_user(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("/zones/")?;
    let (zone, _) = rest.split_once('/')?;
    (!zone.is_empty()).then_some(zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_address_as_the_api_sends_it() {
        let json = r#"{"kind":"compute#address","name":"pool-1","address":"203.0.113.10",
            "status":"IN_USE","addressType":"EXTERNAL","networkTier":"PREMIUM",
            "users":["https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/node-1"],
            "labels":{"kubeip":"reserved"},"labelFingerprint":"42WmSpB8rSM=","somethingNew":1}"#;
        let a: Address = serde_json::from_str(json).unwrap();
        assert_eq!(zone_of_user(&a.users[0]), Some("us-central1-a"));
        assert_eq!(instance_of_user(&a.users[0]), Some("node-1"));
        assert_eq!(zone_of_user("projects/p/instances/x"), None);
        assert_eq!(a.status, "IN_USE");
        assert_eq!(instance_of_user(&a.users[0]), Some("node-1"));
        assert_eq!(a.label_fingerprint.as_deref(), Some("42WmSpB8rSM="));
    }

    #[test]
    fn access_configs_serialise_without_empty_fields() {
        let ac = AccessConfig {
            name: Some("external-nat".into()),
            kind: Some("ONE_TO_ONE_NAT".into()),
            nat_ip: Some("203.0.113.10".into()),
            ..AccessConfig::default()
        };
        assert_eq!(
            serde_json::to_value(&ac).unwrap(),
            serde_json::json!({"name": "external-nat", "type": "ONE_TO_ONE_NAT", "natIP": "203.0.113.10"})
        );
    }

    #[test]
    fn resource_paths_ignore_the_endpoint() {
        assert_eq!(
            resource_path(
                "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/s"
            ),
            resource_path("http://127.0.0.1:9/compute/v1/projects/p/regions/r/subnetworks/s/")
        );
        assert_eq!(
            resource_path("regions/r/subnetworks/s"),
            "regions/r/subnetworks/s"
        );
    }

    #[test]
    fn users_that_are_not_instances_are_recognised() {
        assert_eq!(
            instance_of_user("https://x/compute/v1/projects/p/regions/r/forwardingRules/fr"),
            None
        );
    }
}
