//! The ownership record on an OCI public IP: four free-form tags. OCI free-form tag
//! keys cannot contain periods or spaces, so the `pinip.dev/…` keys of AWS and the fake
//! cloud become `pinip-cluster`, `pinip-node`, `pinip-instance` (as on GCP), plus
//! `pinip-private-ip`: the private IP the address was put on, written in the same
//! `UpdatePublicIp` as the assignment. A listed address whose `assignedEntityId` is that
//! private IP is on the recorded instance (private IP OCIDs are never reused and a
//! primary private IP lives and dies with its instance), so `list_pool` needs no extra
//! calls to say who holds pinip's addresses. Values are kept exactly (OCI allows 256
//! characters, node names have at most 253).

use std::collections::BTreeMap;

use crate::Ownership;

pub const CLUSTER_TAG: &str = "pinip-cluster";
pub const NODE_TAG: &str = "pinip-node";
pub const INSTANCE_TAG: &str = "pinip-instance";
pub const PRIVATE_IP_TAG: &str = "pinip-private-ip";
pub const OWNER_TAGS: [&str; 4] = [CLUSTER_TAG, NODE_TAG, INSTANCE_TAG, PRIVATE_IP_TAG];

/// `tags` with the record of `owner` on `private_ip` written in (other tags kept).
pub fn with_owner(
    tags: &BTreeMap<String, String>,
    owner: &Ownership,
    private_ip: &str,
) -> BTreeMap<String, String> {
    let mut next = tags.clone();
    next.insert(CLUSTER_TAG.into(), owner.cluster.clone());
    next.insert(NODE_TAG.into(), owner.node.clone());
    next.insert(INSTANCE_TAG.into(), owner.instance.clone());
    next.insert(PRIVATE_IP_TAG.into(), private_ip.to_string());
    next
}

pub fn without_owner(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !OWNER_TAGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The record, when cluster, node and instance are there.
pub fn owner_of(tags: &BTreeMap<String, String>) -> Option<Ownership> {
    Some(Ownership {
        cluster: tags.get(CLUSTER_TAG)?.clone(),
        node: tags.get(NODE_TAG)?.clone(),
        instance: tags.get(INSTANCE_TAG)?.clone(),
    })
}

/// The instance the record says holds `private_ip`, if the record is about that private IP.
pub fn recorded_holder<'a>(
    tags: &'a BTreeMap<String, String>,
    private_ip: &str,
) -> Option<&'a str> {
    (tags.get(PRIVATE_IP_TAG).map(String::as_str) == Some(private_ip))
        .then(|| tags.get(INSTANCE_TAG).map(String::as_str))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_clears() {
        let owner = Ownership {
            cluster: "prod".into(),
            node: "10.0.10.7".into(),
            instance: "ocid1.instance.oc1.iad.x".into(),
        };
        let base = BTreeMap::from([("kubeip".to_string(), "reserved".to_string())]);
        let tags = with_owner(&base, &owner, "ocid1.privateip.oc1.iad.p");
        assert_eq!(owner_of(&tags), Some(owner));
        assert_eq!(
            recorded_holder(&tags, "ocid1.privateip.oc1.iad.p"),
            Some("ocid1.instance.oc1.iad.x")
        );
        assert_eq!(recorded_holder(&tags, "ocid1.privateip.oc1.iad.q"), None);
        assert_eq!(without_owner(&tags), base);
        assert!(OWNER_TAGS.iter().all(|k| !k.contains(['.', ' '])));
    }
}
