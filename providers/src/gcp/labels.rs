//! The ownership record on a GCP address: three labels carrying what the fake's and
//! AWS's tags carry (`pinip.dev/cluster`, `pinip.dev/node`, `pinip.dev/instance`).
//!
//! GCP label keys and values allow only lowercase letters, digits, `_` and `-`, at
//! most 63 characters, so:
//! - keys are `pinip-cluster`, `pinip-node`, `pinip-instance`;
//! - values map `.` to `_` (node names are DNS subdomains, `[a-z0-9.-]`, which never
//!   contain `_`, so the mapping reverses exactly); any other character outside the
//!   alphabet (upper case in a `CLUSTER_NAME`) is lowered or becomes `_`, and values are
//!   cut at 63 characters. The instance name is always exact (GCE names are RFC 1035
//!   labels), so a sweep matches on `pinip-instance`.

use std::collections::BTreeMap;

use crate::Ownership;

pub const CLUSTER_LABEL: &str = "pinip-cluster";
pub const NODE_LABEL: &str = "pinip-node";
pub const INSTANCE_LABEL: &str = "pinip-instance";
pub const OWNER_LABELS: [&str; 3] = [CLUSTER_LABEL, NODE_LABEL, INSTANCE_LABEL];

const MAX_VALUE: usize = 63;

/// A GCP label value for `text` (see the module notes).
pub fn encode_value(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(MAX_VALUE)
        .collect()
}

/// The inverse of [`encode_value`] for DNS names: `_` back to `.`.
pub fn decode_value(value: &str) -> String {
    value.replace('_', ".")
}

/// `labels` with the ownership record of `owner` written in (other labels kept).
pub fn with_owner(
    labels: &BTreeMap<String, String>,
    owner: &Ownership,
) -> BTreeMap<String, String> {
    let mut next = labels.clone();
    next.insert(CLUSTER_LABEL.into(), encode_value(&owner.cluster));
    next.insert(NODE_LABEL.into(), encode_value(&owner.node));
    next.insert(INSTANCE_LABEL.into(), encode_value(&owner.instance));
    next
}

/// `labels` without the ownership record.
pub fn without_owner(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !OWNER_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The ownership record, when all three labels are there.
pub fn owner_of(labels: &BTreeMap<String, String>) -> Option<Ownership> {
    Some(Ownership {
        cluster: decode_value(labels.get(CLUSTER_LABEL)?),
        node: decode_value(labels.get(NODE_LABEL)?),
        instance: labels.get(INSTANCE_LABEL)?.clone(),
    })
}

/// Does the ownership record name `instance`?
pub fn owned_by_instance(labels: &BTreeMap<String, String>, instance: &str) -> bool {
    labels.get(INSTANCE_LABEL).map(String::as_str) == Some(encode_value(instance).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(cluster: &str, node: &str, instance: &str) -> Ownership {
        Ownership {
            cluster: cluster.into(),
            node: node.into(),
            instance: instance.into(),
        }
    }

    #[test]
    fn dns_node_names_round_trip() {
        let o = owner(
            "prod-eu",
            "ip-10-0-0-1.eu-west-1.compute.internal",
            "gke-prod-pool-1-abcd",
        );
        let labels = with_owner(&BTreeMap::from([("kubeip".into(), "reserved".into())]), &o);
        assert_eq!(
            labels["pinip-node"],
            "ip-10-0-0-1_eu-west-1_compute_internal"
        );
        assert_eq!(owner_of(&labels), Some(o));
        assert_eq!(labels["kubeip"], "reserved");
        assert!(owned_by_instance(&labels, "gke-prod-pool-1-abcd"));
        let cleared = without_owner(&labels);
        assert_eq!(cleared.len(), 1);
        assert_eq!(owner_of(&cleared), None);
    }

    #[test]
    fn values_always_fit_gcp_rules() {
        for text in ["Prod_Cluster.1", &"x".repeat(100), "ünï"] {
            let v = encode_value(text);
            assert!(v.len() <= 63, "{v}");
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
                "{v}"
            );
        }
    }
}
