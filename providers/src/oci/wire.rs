//! The Core Services (20160918) JSON pinip reads and writes, field names as the API
//! spells them. Absent, `null` and `""` fields are all "not set" (see [`set`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Some("")` is `None`: the API (and moto-style emulators) may send either.
pub fn set(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PublicIp {
    pub id: String,
    pub ip_address: String,
    pub lifecycle_state: String,
    pub lifetime: String,
    pub scope: String,
    pub compartment_id: String,
    pub private_ip_id: Option<String>,
    pub assigned_entity_id: Option<String>,
    pub assigned_entity_type: Option<String>,
    pub availability_domain: Option<String>,
    pub freeform_tags: BTreeMap<String, String>,
    pub defined_tags: BTreeMap<String, BTreeMap<String, Value>>,
}

impl PublicIp {
    pub fn is_reserved(&self) -> bool {
        self.lifetime == "RESERVED"
    }

    /// The private IP it is on or moving to (`assignedEntityId`, else the deprecated
    /// `privateIpId`), when that entity is a private IP.
    pub fn private_ip(&self) -> Option<&str> {
        let entity = set(&self.assigned_entity_id).or(set(&self.private_ip_id))?;
        match set(&self.assigned_entity_type) {
            None | Some("PRIVATE_IP") => Some(entity),
            Some(_) => None,
        }
    }

    /// Assigned to something that is not a private IP (a NAT gateway).
    pub fn held_by_other_entity(&self) -> Option<&str> {
        match set(&self.assigned_entity_type) {
            Some("PRIVATE_IP") | None => None,
            Some(_) => set(&self.assigned_entity_id),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Instance {
    pub id: String,
    pub compartment_id: String,
    pub availability_domain: String,
    pub lifecycle_state: String,
    pub display_name: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct VnicAttachment {
    pub id: String,
    pub instance_id: String,
    pub vnic_id: Option<String>,
    pub lifecycle_state: String,
    pub nic_index: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Vnic {
    pub id: String,
    pub compartment_id: String,
    pub is_primary: Option<bool>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct PrivateIp {
    pub id: String,
    pub vnic_id: String,
    pub ip_address: String,
    pub is_primary: Option<bool>,
    pub compartment_id: String,
}

/// `UpdatePublicIpDetails`: only the fields set are sent. `private_ip_id: Some("")`
/// unassigns (the API's documented spelling).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePublicIp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeform_tags: Option<BTreeMap<String, String>>,
}

/// `CreatePublicIpDetails` for an ephemeral public IP on a primary private IP.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreatePublicIp {
    pub compartment_id: String,
    pub lifetime: String,
    pub private_ip_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ByPrivateIp<'a> {
    pub private_ip_id: &'a str,
}

/// The API's error body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assigned_private_ip_reads_from_either_field() {
        let p: PublicIp = serde_json::from_value(serde_json::json!({
            "id": "ocid1.publicip.x", "ipAddress": "203.0.113.1", "lifecycleState": "ASSIGNED",
            "lifetime": "RESERVED", "assignedEntityId": "ocid1.privateip.a",
            "assignedEntityType": "PRIVATE_IP", "privateIpId": null, "freeformTags": {"a": "b"},
            "definedTags": {"ns": {"k": "v"}}, "unknownField": 1
        }))
        .unwrap();
        assert_eq!(p.private_ip(), Some("ocid1.privateip.a"));
        let legacy: PublicIp = serde_json::from_value(
            serde_json::json!({"privateIpId": "ocid1.privateip.b", "assignedEntityId": ""}),
        )
        .unwrap();
        assert_eq!(legacy.private_ip(), Some("ocid1.privateip.b"));
        let nat: PublicIp = serde_json::from_value(serde_json::json!({
            "assignedEntityId": "ocid1.natgateway.x", "assignedEntityType": "NAT_GATEWAY"}))
        .unwrap();
        assert_eq!(nat.private_ip(), None);
        assert_eq!(nat.held_by_other_entity(), Some("ocid1.natgateway.x"));
        let unassign = serde_json::to_value(UpdatePublicIp {
            private_ip_id: Some(String::new()),
            freeform_tags: None,
        })
        .unwrap();
        assert_eq!(unassign, serde_json::json!({"privateIpId": ""}));
    }
}
