//! The reads of instances, network interfaces and subnets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::ec2::error::Ec2Error;
use crate::ec2::filters::{check_names, matches, Subject};
use crate::ec2::model::{Eni, Instance, Region, OWNER_ID};
use crate::ec2::query::Params;
use crate::ec2::xml::Xml;

const INSTANCE_FILTERS: &[&str] = &[
    "availability-zone",
    "instance-id",
    "instance-state-name",
    "network-interface.network-interface-id",
    "private-ip-address",
    "subnet-id",
];

pub(super) fn describe_instances(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let filters = params.filters();
    check_names(&filters, INSTANCE_FILTERS, "DescribeInstances")?;
    let ids = params.list("InstanceId");
    for id in &ids {
        if !id.starts_with("i-") {
            return Err(Ec2Error::new(
                "InvalidInstanceID.Malformed",
                format!("Invalid id: \"{id}\""),
            ));
        }
        if !region.instances.contains_key(id) {
            return Err(Ec2Error::not_found(
                "InvalidInstanceID.NotFound",
                "instance ID",
                id,
            ));
        }
    }
    // An `instance-id` filter without wildcards names its instances: those are looked
    // up, not every instance's fields built and matched (a thousand agents describing
    // their own instance made that the simulator's O(nodes²)).
    let named: Option<BTreeSet<&str>> = filters
        .iter()
        .find(|f| f.name == "instance-id" && f.values.iter().all(|v| !v.contains(['*', '?', '\\'])))
        .map(|f| f.values.iter().map(String::as_str).collect());
    let scope: Box<dyn Iterator<Item = &Instance>> = match &named {
        Some(named) => Box::new(named.iter().filter_map(|id| region.instances.get(*id))),
        None => Box::new(region.instances.values()),
    };
    let selected: Vec<&Instance> = scope
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
        .filter(|i| {
            let primary = i.enis.first().and_then(|e| region.enis.get(e));
            let mut fields: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
            fields.insert("instance-id", vec![i.id.clone()]);
            fields.insert("availability-zone", vec![i.zone.clone()]);
            fields.insert("instance-state-name", vec![i.state.into()]);
            fields.insert("network-interface.network-interface-id", i.enis.clone());
            if let Some(eni) = primary {
                fields.insert(
                    "private-ip-address",
                    eni.private_ips
                        .iter()
                        .take(1)
                        .map(|p| p.to_string())
                        .collect(),
                );
                fields.insert("subnet-id", vec![eni.subnet_id.clone()]);
            }
            matches(
                &filters,
                &Subject {
                    fields,
                    tags: &i.tags,
                },
            )
        })
        .collect();
    let mut x = Xml::default();
    x.set("reservationSet", selected, |x, instance| {
        x.leaf(
            "reservationId",
            format!("r-{}", instance.id.trim_start_matches("i-")),
        )
        .leaf("ownerId", OWNER_ID)
        .set("instancesSet", [instance], |x, i| {
            write_instance(x, i, region)
        });
    });
    Ok(x)
}

fn public_ip_of(eni: &Eni, private_ip: Ipv4Addr, region: &Region) -> Option<Ipv4Addr> {
    region
        .addresses
        .values()
        .find(|a| {
            a.association
                .as_ref()
                .is_some_and(|s| s.eni == eni.id && s.private_ip == private_ip)
        })
        .map(|a| a.public_ip)
}

fn write_instance(x: &mut Xml, i: &Instance, region: &Region) {
    let code = if i.state == "running" { 16 } else { 48 };
    let enis: Vec<&Eni> = i.enis.iter().filter_map(|e| region.enis.get(e)).collect();
    let primary = enis.first().copied();
    let primary_ip = primary.and_then(|e| e.private_ips.first().copied());
    x.leaf("instanceId", &i.id)
        .leaf("imageId", "ami-00000000000000sim")
        .open("instanceState")
        .leaf("code", code)
        .leaf("name", i.state)
        .close("instanceState")
        .leaf("instanceType", "m5.large")
        .maybe("privateIpAddress", primary_ip)
        .maybe(
            "ipAddress",
            primary
                .zip(primary_ip)
                .and_then(|(e, ip)| public_ip_of(e, ip, region)),
        )
        .open("placement")
        .leaf("availabilityZone", &i.zone)
        .leaf("tenancy", "default")
        .close("placement");
    if let Some(eni) = primary {
        x.leaf("subnetId", &eni.subnet_id).maybe(
            "vpcId",
            region
                .subnets
                .get(&eni.subnet_id)
                .map(|s| s.vpc_id.as_str()),
        );
    }
    x.set("networkInterfaceSet", enis, |x, eni| {
        write_eni(x, eni, region, false)
    });
    x.tag_set(&i.tags);
}

/// An ENI, as nested in an instance or (`standalone`) described on its own.
fn write_eni(x: &mut Xml, eni: &Eni, region: &Region, standalone: bool) {
    let subnet = region.subnets.get(&eni.subnet_id);
    x.leaf("networkInterfaceId", &eni.id)
        .leaf("subnetId", &eni.subnet_id)
        .maybe("vpcId", subnet.map(|s| s.vpc_id.as_str()));
    if standalone {
        x.maybe("availabilityZone", subnet.map(|s| s.zone.as_str()))
            .leaf("interfaceType", "interface");
    }
    x.leaf("ownerId", OWNER_ID)
        .leaf(
            "status",
            if eni.instance_id.is_some() {
                "in-use"
            } else {
                "available"
            },
        )
        .maybe("privateIpAddress", eni.private_ips.first())
        .leaf("sourceDestCheck", true);
    if let Some(instance) = &eni.instance_id {
        x.open("attachment")
            .leaf("attachmentId", &eni.attachment_id);
        if standalone {
            x.leaf("instanceId", instance)
                .leaf("instanceOwnerId", OWNER_ID);
        }
        x.leaf("deviceIndex", eni.device_index)
            .leaf("networkCardIndex", 0)
            .leaf("status", "attached")
            .leaf("deleteOnTermination", true)
            .close("attachment");
    }
    if let Some(public) = eni
        .private_ips
        .first()
        .and_then(|ip| public_ip_of(eni, *ip, region))
    {
        x.open("association")
            .leaf("publicIp", public)
            .leaf("ipOwnerId", OWNER_ID)
            .close("association");
    }
    if standalone {
        x.tag_set(&eni.tags);
    }
    x.set(
        "privateIpAddressesSet",
        eni.private_ips.iter().enumerate(),
        |x, (n, ip)| {
            x.leaf("privateIpAddress", ip).leaf("primary", n == 0);
            if let Some(public) = public_ip_of(eni, *ip, region) {
                x.open("association")
                    .leaf("publicIp", public)
                    .leaf("ipOwnerId", OWNER_ID)
                    .close("association");
            }
        },
    );
    x.set("ipv6AddressesSet", &eni.ipv6, |x, ip| {
        x.leaf("ipv6Address", ip);
    });
}

const ENI_FILTERS: &[&str] = &[
    "addresses.private-ip-address",
    "attachment.instance-id",
    "availability-zone",
    "ipv6-addresses.ipv6-address",
    "network-interface-id",
    "private-ip-address",
    "subnet-id",
    "vpc-id",
];

pub(super) fn describe_network_interfaces(
    params: &Params,
    region: &mut Region,
) -> Result<Xml, Ec2Error> {
    let filters = params.filters();
    check_names(&filters, ENI_FILTERS, "DescribeNetworkInterfaces")?;
    let ids = params.list("NetworkInterfaceId");
    for id in &ids {
        if !region.enis.contains_key(id) {
            return Err(Ec2Error::not_found(
                "InvalidNetworkInterfaceID.NotFound",
                "networkInterface ID",
                id,
            ));
        }
    }
    let selected: Vec<&Eni> = region
        .enis
        .values()
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .filter(|e| {
            let subnet = region.subnets.get(&e.subnet_id);
            let private: Vec<String> = e.private_ips.iter().map(|p| p.to_string()).collect();
            let mut fields: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
            fields.insert("network-interface-id", vec![e.id.clone()]);
            fields.insert("subnet-id", vec![e.subnet_id.clone()]);
            fields.insert(
                "vpc-id",
                subnet.map(|s| s.vpc_id.clone()).into_iter().collect(),
            );
            fields.insert(
                "availability-zone",
                subnet.map(|s| s.zone.clone()).into_iter().collect(),
            );
            fields.insert(
                "attachment.instance-id",
                e.instance_id.clone().into_iter().collect(),
            );
            fields.insert("private-ip-address", private.clone());
            fields.insert("addresses.private-ip-address", private);
            fields.insert(
                "ipv6-addresses.ipv6-address",
                e.ipv6.iter().map(|i| i.to_string()).collect(),
            );
            matches(
                &filters,
                &Subject {
                    fields,
                    tags: &e.tags,
                },
            )
        })
        .collect();
    let mut x = Xml::default();
    x.set("networkInterfaceSet", selected, |x, eni| {
        write_eni(x, eni, region, true)
    });
    Ok(x)
}

pub(super) fn describe_subnets(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let filters = params.filters();
    check_names(
        &filters,
        &["availability-zone", "subnet-id", "vpc-id"],
        "DescribeSubnets",
    )?;
    let ids = params.list("SubnetId");
    for id in &ids {
        if !region.subnets.contains_key(id) {
            return Err(Ec2Error::not_found(
                "InvalidSubnetID.NotFound",
                "subnet ID",
                id,
            ));
        }
    }
    let no_tags = BTreeMap::new();
    let selected: Vec<_> = region
        .subnets
        .values()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .filter(|s| {
            let fields = [
                ("subnet-id", vec![s.id.clone()]),
                ("vpc-id", vec![s.vpc_id.clone()]),
                ("availability-zone", vec![s.zone.clone()]),
            ]
            .into_iter()
            .collect();
            matches(
                &filters,
                &Subject {
                    fields,
                    tags: &no_tags,
                },
            )
        })
        .collect();
    let mut x = Xml::default();
    x.set("subnetSet", selected, |x, s| {
        x.leaf("subnetId", &s.id)
            .leaf("state", "available")
            .leaf("vpcId", &s.vpc_id)
            .leaf("cidrBlock", &s.cidr)
            .leaf("availabilityZone", &s.zone)
            .leaf("ownerId", OWNER_ID)
            .set("ipv6CidrBlockAssociationSet", s.ipv6, |x, block| {
                x.leaf("ipv6CidrBlock", block)
                    .leaf(
                        "associationId",
                        format!("subnet-cidr-assoc-{}", s.id.trim_start_matches("subnet-")),
                    )
                    .open("ipv6CidrBlockState")
                    .leaf("state", "associated")
                    .close("ipv6CidrBlockState");
            });
    });
    Ok(x)
}
