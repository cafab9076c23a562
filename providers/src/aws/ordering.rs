//! `ORDER_BY` on AWS: every field KubeIP accepts (`AllocationId`, `AssociationId`,
//! `Domain`, `InstanceId`, `NetworkInterfaceId`, `NetworkInterfaceOwnerId`,
//! `PrivateIpAddress`, `PublicIp`, `PublicIpv4Pool`, `Tag:<key>`), plus
//! `NetworkBorderGroup`, plus ` desc`. A field an address does not have sorts last in
//! either direction (KubeIP dereferences it and panics as soon as two free addresses
//! lack it), and ties keep the API's order.

use std::cmp::Ordering;

use crate::order::{absent_last, split_direction};

use super::eip::EipRecord;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsOrderField {
    Tag(String),
    AllocationId,
    AssociationId,
    Domain,
    InstanceId,
    NetworkBorderGroup,
    NetworkInterfaceId,
    NetworkInterfaceOwnerId,
    PrivateIpAddress,
    PublicIp,
    PublicIpv4Pool,
}

/// The field names, as written in `ORDER_BY`.
pub const ORDER_FIELDS: &[&str] = &[
    "AllocationId",
    "AssociationId",
    "Domain",
    "InstanceId",
    "NetworkBorderGroup",
    "NetworkInterfaceId",
    "NetworkInterfaceOwnerId",
    "PrivateIpAddress",
    "PublicIp",
    "PublicIpv4Pool",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsOrder {
    pub field: AwsOrderField,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ORDER_BY {input:?} is not understood: {reason}; use Tag:<key> or one of {fields}, optionally followed by ` desc`", fields = ORDER_FIELDS.join(", "))]
pub struct AwsOrderError {
    pub input: String,
    pub reason: String,
}

impl AwsOrder {
    /// `Tag:env`, `PublicIp desc`, `AllocationId asc`. Field names are matched without
    /// regard to case (`publicip` works too).
    pub fn parse(input: &str) -> Result<AwsOrder, AwsOrderError> {
        let fail = |reason: String| AwsOrderError {
            input: input.to_string(),
            reason,
        };
        let (field, descending) = split_direction(input).map_err(fail)?;
        let field = match field.split_once(':') {
            Some((prefix, key)) if prefix.eq_ignore_ascii_case("tag") => {
                if key.is_empty() {
                    return Err(fail("the tag key is empty".into()));
                }
                AwsOrderField::Tag(key.to_string())
            }
            _ => match field.to_ascii_lowercase().as_str() {
                "allocationid" => AwsOrderField::AllocationId,
                "associationid" => AwsOrderField::AssociationId,
                "domain" => AwsOrderField::Domain,
                "instanceid" => AwsOrderField::InstanceId,
                "networkbordergroup" => AwsOrderField::NetworkBorderGroup,
                "networkinterfaceid" => AwsOrderField::NetworkInterfaceId,
                "networkinterfaceownerid" => AwsOrderField::NetworkInterfaceOwnerId,
                "privateipaddress" => AwsOrderField::PrivateIpAddress,
                "publicip" => AwsOrderField::PublicIp,
                "publicipv4pool" => AwsOrderField::PublicIpv4Pool,
                _ => return Err(fail(format!("unknown field `{field}`"))),
            },
        };
        Ok(AwsOrder { field, descending })
    }

    /// Stable sort (a total order: absent values last, then the API's order).
    pub fn sort(&self, records: &mut [EipRecord]) {
        records.sort_by(|a, b| self.compare(a, b));
    }

    fn compare(&self, a: &EipRecord, b: &EipRecord) -> Ordering {
        let directed = self.descending;
        let text = |r: &EipRecord| -> Option<String> {
            match &self.field {
                AwsOrderField::Tag(key) => r.tags.get(key).cloned(),
                AwsOrderField::AllocationId => r.allocation_id.clone(),
                AwsOrderField::AssociationId => r.association_id.clone(),
                AwsOrderField::Domain => r.domain.clone(),
                AwsOrderField::InstanceId => r.instance_id.clone(),
                AwsOrderField::NetworkBorderGroup => r.network_border_group.clone(),
                AwsOrderField::NetworkInterfaceId => r.network_interface_id.clone(),
                AwsOrderField::NetworkInterfaceOwnerId => r.network_interface_owner_id.clone(),
                AwsOrderField::PrivateIpAddress => r.private_ip_address.clone(),
                AwsOrderField::PublicIpv4Pool => r.public_ipv4_pool.clone(),
                AwsOrderField::PublicIp => None,
            }
        };
        match &self.field {
            // Numeric, not textual: 198.51.100.9 before 198.51.100.10.
            AwsOrderField::PublicIp => absent_last(a.public_ip, b.public_ip, directed),
            AwsOrderField::PrivateIpAddress => {
                let ip = |r: &EipRecord| {
                    r.private_ip_address
                        .as_deref()
                        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
                };
                absent_last(ip(a), ip(b), directed)
            }
            _ => absent_last(text(a), text(b), directed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, ip: &str) -> EipRecord {
        EipRecord {
            allocation_id: Some(id.into()),
            public_ip: ip.parse().ok(),
            ..EipRecord::default()
        }
    }

    fn ids(list: &[EipRecord]) -> Vec<&str> {
        list.iter()
            .map(|r| r.allocation_id.as_deref().unwrap_or("-"))
            .collect()
    }

    #[test]
    fn every_kubeip_field_parses() {
        for field in ORDER_FIELDS {
            assert!(AwsOrder::parse(field).is_ok(), "{field}");
            assert!(
                AwsOrder::parse(&format!("{field} desc"))
                    .unwrap()
                    .descending
            );
        }
        assert_eq!(
            AwsOrder::parse("Tag:rank").unwrap().field,
            AwsOrderField::Tag("rank".into())
        );
        assert_eq!(
            AwsOrder::parse("publicip").unwrap().field,
            AwsOrderField::PublicIp
        );
        for bad in [
            "",
            "Tag:",
            "Colour",
            "PublicIp sideways",
            "PublicIp desc now",
        ] {
            let err = AwsOrder::parse(bad).unwrap_err();
            assert!(err.to_string().contains("PublicIpv4Pool"), "{err}");
        }
    }

    #[test]
    fn unset_fields_sort_last_in_both_directions_without_panicking() {
        // KubeIP crashes here: two free addresses have no AssociationId.
        let mut list = vec![
            record("a", "198.51.100.1"),
            record("b", "198.51.100.2"),
            record("c", "198.51.100.3"),
        ];
        list[1].association_id = Some("eipassoc-2".into());
        for order in [
            "AssociationId",
            "AssociationId desc",
            "InstanceId",
            "PrivateIpAddress desc",
            "NetworkInterfaceOwnerId",
        ] {
            AwsOrder::parse(order).unwrap().sort(&mut list);
        }
        AwsOrder::parse("AssociationId desc")
            .unwrap()
            .sort(&mut list);
        assert_eq!(ids(&list)[0], "b");
    }

    #[test]
    fn tags_sort_by_value_and_missing_tags_go_last() {
        let mut list = vec![
            record("a", "198.51.100.1"),
            record("b", "198.51.100.2"),
            record("c", "198.51.100.3"),
        ];
        list[1].tags.insert("rank".into(), "2".into());
        list[2].tags.insert("rank".into(), "1".into());
        AwsOrder::parse("Tag:rank").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["c", "b", "a"]);
        AwsOrder::parse("Tag:rank desc").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["b", "c", "a"]);
    }

    #[test]
    fn public_ip_sorts_numerically_both_ways() {
        let mut list = vec![
            record("x", "198.51.100.10"),
            record("y", "198.51.100.9"),
            record("z", "bad"),
        ];
        AwsOrder::parse("PublicIp").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["y", "x", "z"]);
        AwsOrder::parse("PublicIp desc").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["x", "y", "z"]);
    }
}
