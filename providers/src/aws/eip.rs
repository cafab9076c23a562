//! An Elastic IP as pinip reads it: the SDK's `Address` with every empty string turned
//! into "absent" (moto answers `<instanceId/>` for an unassociated address, which the
//! SDK hands over as `Some("")`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use aws_sdk_ec2::types::Address;

/// `Some("")` and `None` mean the same thing in EC2 answers.
pub fn present(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// One Elastic IP, every field optional as in the API (KubeIP dereferenced them blindly).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EipRecord {
    pub allocation_id: Option<String>,
    pub public_ip: Option<IpAddr>,
    pub association_id: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub network_interface_owner_id: Option<String>,
    pub private_ip_address: Option<String>,
    pub domain: Option<String>,
    pub public_ipv4_pool: Option<String>,
    pub network_border_group: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl EipRecord {
    pub fn from_sdk(address: &Address) -> EipRecord {
        EipRecord {
            allocation_id: present(address.allocation_id()),
            public_ip: present(address.public_ip()).and_then(|ip| ip.parse().ok()),
            association_id: present(address.association_id()),
            instance_id: present(address.instance_id()),
            network_interface_id: present(address.network_interface_id()),
            network_interface_owner_id: present(address.network_interface_owner_id()),
            private_ip_address: present(address.private_ip_address()),
            domain: address
                .domain()
                .map(|d| d.as_str())
                .and_then(|d| present(Some(d))),
            public_ipv4_pool: present(address.public_ipv4_pool()),
            network_border_group: present(address.network_border_group()),
            tags: address
                .tags()
                .iter()
                .filter_map(|t| Some((present(t.key())?, t.value().unwrap_or("").to_string())))
                .collect(),
        }
    }

    /// Associated with anything at all (an instance, an ENI, a NAT gateway)?
    pub fn is_associated(&self) -> bool {
        self.association_id.is_some()
            || self.instance_id.is_some()
            || self.network_interface_id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{DomainType, Tag};

    #[test]
    fn empty_strings_from_moto_are_absent() {
        let unassociated = Address::builder()
            .allocation_id("eipalloc-1")
            .public_ip("127.0.0.9")
            .instance_id("")
            .network_interface_id("")
            .domain(DomainType::Vpc)
            .tags(Tag::builder().key("kubeip").value("reserved").build())
            .tags(Tag::builder().key("").value("ignored").build())
            .build();
        let record = EipRecord::from_sdk(&unassociated);
        assert_eq!(record.instance_id, None);
        assert_eq!(record.network_interface_id, None);
        assert!(!record.is_associated());
        assert_eq!(record.domain.as_deref(), Some("vpc"));
        assert_eq!(record.public_ip, Some("127.0.0.9".parse().unwrap()));
        assert_eq!(record.tags.len(), 1);
    }

    #[test]
    fn an_eni_association_without_instance_counts_as_associated() {
        let on_eni = Address::builder()
            .allocation_id("eipalloc-2")
            .public_ip("198.51.100.2")
            .association_id("eipassoc-1")
            .network_interface_id("eni-1")
            .instance_id("")
            .build();
        let record = EipRecord::from_sdk(&on_eni);
        assert!(record.is_associated());
        assert_eq!(record.instance_id, None);
    }

    #[test]
    fn an_unparsable_public_ip_is_absent_not_a_panic() {
        let odd = Address::builder().public_ip("not-an-ip").build();
        assert_eq!(EipRecord::from_sdk(&odd).public_ip, None);
    }
}
