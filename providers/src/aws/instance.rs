//! What pinip needs to know about an EC2 instance: its primary ENI (device index 0 on
//! network card 0), that ENI's primary private IPv4, its subnet, its IPv6 addresses, and
//! every ENI it has (an address associated through any of them is on the instance).

use std::net::{Ipv4Addr, Ipv6Addr};

use aws_sdk_ec2::types::{
    Instance as Ec2Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAssociation,
};

use super::eip::present;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    pub id: String,
    pub zone: Option<String>,
    pub state: Option<String>,
    pub primary_eni: Option<String>,
    pub primary_private_ip: Option<Ipv4Addr>,
    pub subnet_id: Option<String>,
    /// IPv6 addresses on the primary ENI.
    pub ipv6_addresses: Vec<Ipv6Addr>,
    /// Every ENI attached to the instance.
    pub enis: Vec<String>,
    /// Public addresses on its ENIs that are not `amazon`'s ephemeral ones: Elastic IPs
    /// (an association without an owner counts as one).
    pub reserved_ips: Vec<Ipv4Addr>,
}

impl InstanceFacts {
    pub fn from_sdk(instance: &Ec2Instance) -> InstanceFacts {
        let interfaces = instance.network_interfaces();
        let primary = interfaces.iter().find(|eni| is_primary(eni));
        let primary_private_ip = primary
            .and_then(|eni| {
                eni.private_ip_addresses()
                    .iter()
                    .find(|p| p.primary() == Some(true))
                    .and_then(|p| present(p.private_ip_address()))
                    .or_else(|| present(eni.private_ip_address()))
            })
            .or_else(|| present(instance.private_ip_address()))
            .and_then(|ip| ip.parse().ok());
        InstanceFacts {
            id: present(instance.instance_id()).unwrap_or_default(),
            zone: instance
                .placement()
                .and_then(|p| present(p.availability_zone())),
            state: instance
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string()),
            primary_eni: primary.and_then(|eni| present(eni.network_interface_id())),
            primary_private_ip,
            subnet_id: primary
                .and_then(|eni| present(eni.subnet_id()))
                .or_else(|| present(instance.subnet_id())),
            ipv6_addresses: primary
                .map(|eni| {
                    eni.ipv6_addresses()
                        .iter()
                        .filter_map(|a| present(a.ipv6_address())?.parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
            enis: interfaces
                .iter()
                .filter_map(|eni| present(eni.network_interface_id()))
                .collect(),
            reserved_ips: reserved_ips(interfaces),
        }
    }

    pub fn owns_eni(&self, eni: &str) -> bool {
        self.enis.iter().any(|e| e == eni)
    }
}

/// The public addresses of `interfaces`' associations (per ENI and per private
/// address) that the account owns: `amazon` owns the ephemeral ones.
fn reserved_ips(interfaces: &[InstanceNetworkInterface]) -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut note = |association: Option<&InstanceNetworkInterfaceAssociation>| {
        let Some(association) = association else {
            return;
        };
        if association.ip_owner_id() == Some("amazon") {
            return;
        }
        if let Some(ip) = present(association.public_ip()).and_then(|ip| ip.parse().ok()) {
            if !found.contains(&ip) {
                found.push(ip);
            }
        }
    };
    for eni in interfaces {
        note(eni.association());
        for private in eni.private_ip_addresses() {
            note(private.association());
        }
    }
    found
}

/// Device index 0 on network card 0 (or no card index: single-card instance types).
fn is_primary(eni: &InstanceNetworkInterface) -> bool {
    eni.attachment()
        .is_some_and(|a| a.device_index() == Some(0) && a.network_card_index().unwrap_or(0) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        InstanceIpv6Address, InstanceNetworkInterfaceAttachment, InstancePrivateIpAddress,
        Placement,
    };

    fn eni(id: &str, index: i32, ip: &str, ipv6: Option<&str>) -> InstanceNetworkInterface {
        let mut builder = InstanceNetworkInterface::builder();
        if let Some(v6) = ipv6 {
            builder =
                builder.ipv6_addresses(InstanceIpv6Address::builder().ipv6_address(v6).build());
        }
        builder
            .network_interface_id(id)
            .subnet_id("subnet-1")
            .attachment(
                InstanceNetworkInterfaceAttachment::builder()
                    .device_index(index)
                    .build(),
            )
            .private_ip_address(ip)
            .private_ip_addresses(
                InstancePrivateIpAddress::builder()
                    .private_ip_address("10.0.0.99")
                    .primary(false)
                    .build(),
            )
            .private_ip_addresses(
                InstancePrivateIpAddress::builder()
                    .private_ip_address(ip)
                    .primary(true)
                    .build(),
            )
            .build()
    }

    #[test]
    fn the_primary_eni_is_device_index_zero_whatever_the_listing_order() {
        let instance = Ec2Instance::builder()
            .instance_id("i-1")
            .placement(Placement::builder().availability_zone("us-east-1a").build())
            .network_interfaces(eni("eni-secondary", 1, "10.0.0.8", None))
            .network_interfaces(eni("eni-primary", 0, "10.0.0.7", Some("2001:db8::7")))
            .build();
        let facts = InstanceFacts::from_sdk(&instance);
        assert_eq!(facts.primary_eni.as_deref(), Some("eni-primary"));
        assert_eq!(facts.primary_private_ip, Some(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(facts.zone.as_deref(), Some("us-east-1a"));
        assert_eq!(facts.subnet_id.as_deref(), Some("subnet-1"));
        assert_eq!(
            facts.ipv6_addresses,
            vec!["2001:db8::7".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(facts.owns_eni("eni-secondary") && facts.owns_eni("eni-primary"));
    }

    #[test]
    fn elastic_ips_count_as_reserved_and_amazons_ephemeral_ones_do_not() {
        let association = |ip: &str, owner: Option<&str>| {
            let builder = InstanceNetworkInterfaceAssociation::builder().public_ip(ip);
            match owner {
                Some(owner) => builder.ip_owner_id(owner).build(),
                None => builder.build(),
            }
        };
        let mut secondary = eni("eni-secondary", 1, "10.0.0.8", None);
        secondary.association = Some(association("198.51.100.2", Some("123456789012")));
        let mut primary = eni("eni-primary", 0, "10.0.0.7", None);
        primary.association = Some(association("3.3.3.3", Some("amazon")));
        if let Some(private) = primary.private_ip_addresses.as_mut() {
            private[1].association = Some(association("198.51.100.9", None));
        }
        let instance = Ec2Instance::builder()
            .instance_id("i-1")
            .network_interfaces(primary)
            .network_interfaces(secondary)
            .build();
        assert_eq!(
            InstanceFacts::from_sdk(&instance).reserved_ips,
            vec![
                Ipv4Addr::new(198, 51, 100, 9),
                Ipv4Addr::new(198, 51, 100, 2)
            ]
        );
    }

    #[test]
    fn an_instance_without_interfaces_has_no_primary_and_no_panic() {
        let facts = InstanceFacts::from_sdk(&Ec2Instance::builder().instance_id("i-2").build());
        assert_eq!(facts.primary_eni, None);
        assert_eq!(facts.primary_private_ip, None);
    }
}
