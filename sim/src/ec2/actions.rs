//! One function per EC2 action: read the Query parameters, apply the action to the
//! [`Region`], write the response body in EC2's XML.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::Ec2Error;
use super::filters::{check_names, matches, Subject};
use super::model::{Actor, Address, Eni, Instance, Region, OWNER_ID};
use super::query::Params;
use super::xml::Xml;

/// Every action the simulator serves, as named in `Action=`.
pub const ACTIONS: &[&str] = &[
    "AllocateAddress",
    "AssignIpv6Addresses",
    "AssociateAddress",
    "CreateTags",
    "DeleteTags",
    "DescribeAddresses",
    "DescribeInstances",
    "DescribeNetworkInterfaces",
    "DescribeSubnets",
    "DisassociateAddress",
    "ReleaseAddress",
    "UnassignIpv6Addresses",
];

/// Actions that change state.
pub const WRITES: &[&str] = &[
    "AllocateAddress",
    "AssignIpv6Addresses",
    "AssociateAddress",
    "CreateTags",
    "DeleteTags",
    "DisassociateAddress",
    "ReleaseAddress",
    "UnassignIpv6Addresses",
];

const REGION_NAME: &str = "sim-1";

/// Serve `action`: the XML body inside `<{action}Response>`, or the EC2 error.
pub fn serve(action: &str, params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    if params.flag("DryRun")? {
        return Err(Ec2Error::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    match action {
        "AllocateAddress" => allocate_address(params, region),
        "AssignIpv6Addresses" => assign_ipv6(params, region),
        "AssociateAddress" => associate_address(params, region),
        "CreateTags" => create_tags(params, region),
        "DeleteTags" => delete_tags(params, region),
        "DescribeAddresses" => describe_addresses(params, region),
        "DescribeInstances" => describe_instances(params, region),
        "DescribeNetworkInterfaces" => describe_network_interfaces(params, region),
        "DescribeSubnets" => describe_subnets(params, region),
        "DisassociateAddress" => disassociate_address(params, region),
        "ReleaseAddress" => release_address(params, region),
        "UnassignIpv6Addresses" => unassign_ipv6(params, region),
        other => Err(Ec2Error::new(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

fn parse_v4(text: &str, parameter: &str) -> Result<Ipv4Addr, Ec2Error> {
    text.parse().map_err(|_| {
        Ec2Error::invalid_value(format!(
            "Invalid value '{text}' for {parameter}: not an IPv4 address"
        ))
    })
}

fn parse_v6(text: &str) -> Result<Ipv6Addr, Ec2Error> {
    text.parse()
        .map_err(|_| Ec2Error::invalid_value(format!("Invalid IPv6 address '{text}'")))
}

fn allocate_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    if let Some(domain) = params.get("Domain") {
        if domain != "vpc" && domain != "standard" {
            return Err(Ec2Error::invalid_value(format!(
                "Invalid value '{domain}' for domain."
            )));
        }
    }
    let tags: BTreeMap<String, String> = params
        .tag_specifications("elastic-ip")
        .into_iter()
        .collect();
    let (id, ip) = region.allocate(tags);
    let mut x = Xml::default();
    x.leaf("publicIp", ip)
        .leaf("domain", "vpc")
        .leaf("allocationId", id)
        .leaf("publicIpv4Pool", "amazon")
        .leaf("networkBorderGroup", REGION_NAME);
    Ok(x)
}

fn associate_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let allocation_id = match (params.get("AllocationId"), params.get("PublicIp")) {
        (Some(id), _) if !id.is_empty() => id.to_string(),
        (_, Some(ip)) => {
            let ip = parse_v4(ip, "PublicIp")?;
            region
                .addresses
                .values()
                .find(|a| a.public_ip == ip)
                .map(|a| a.allocation_id.clone())
                .ok_or_else(|| {
                    Ec2Error::new(
                        "InvalidAddress.NotFound",
                        format!("Address '{ip}' not found."),
                    )
                })?
        }
        _ => return Err(Ec2Error::missing("AllocationId")),
    };
    let private_ip = params
        .get("PrivateIpAddress")
        .filter(|p| !p.is_empty())
        .map(|p| parse_v4(p, "PrivateIpAddress"))
        .transpose()?;
    let association = region.associate(
        &allocation_id,
        params.get("InstanceId").filter(|s| !s.is_empty()),
        params.get("NetworkInterfaceId").filter(|s| !s.is_empty()),
        private_ip,
        params.flag("AllowReassociation")?,
        Actor::Api,
    )?;
    let mut x = Xml::default();
    x.leaf("return", true).leaf("associationId", association);
    Ok(x)
}

fn disassociate_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let association = match (params.get("AssociationId"), params.get("PublicIp")) {
        (Some(id), _) if !id.is_empty() => id.to_string(),
        (_, Some(ip)) => {
            let ip = parse_v4(ip, "PublicIp")?;
            region
                .addresses
                .values()
                .find(|a| a.public_ip == ip)
                .and_then(|a| a.association.as_ref().map(|s| s.id.clone()))
                .ok_or_else(|| {
                    Ec2Error::new(
                        "InvalidAddress.NotFound",
                        format!("Address '{ip}' is not associated."),
                    )
                })?
        }
        _ => return Err(Ec2Error::missing("AssociationId")),
    };
    region.disassociate(&association, Actor::Api)?;
    let mut x = Xml::default();
    x.leaf("return", true);
    Ok(x)
}

fn release_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    region.release(params.require("AllocationId")?)?;
    let mut x = Xml::default();
    x.leaf("return", true);
    Ok(x)
}

const ADDRESS_FILTERS: &[&str] = &[
    "allocation-id",
    "association-id",
    "domain",
    "instance-id",
    "network-border-group",
    "network-interface-id",
    "network-interface-owner-id",
    "private-ip-address",
    "public-ip",
];

fn describe_addresses(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let filters = params.filters();
    check_names(&filters, ADDRESS_FILTERS, "DescribeAddresses")?;
    let ids = params.list("AllocationId");
    let ips = params.list("PublicIp");
    for id in &ids {
        if !region.addresses.contains_key(id) {
            return Err(Ec2Error::not_found(
                "InvalidAllocationID.NotFound",
                "allocation ID",
                id,
            ));
        }
    }
    for ip in &ips {
        if !region
            .addresses
            .values()
            .any(|a| a.public_ip.to_string() == *ip)
        {
            return Err(Ec2Error::new(
                "InvalidAddress.NotFound",
                format!("Address '{ip}' not found."),
            ));
        }
    }
    let selected: Vec<&Address> = region
        .addresses
        .values()
        .filter(|a| ids.is_empty() || ids.contains(&a.allocation_id))
        .filter(|a| ips.is_empty() || ips.contains(&a.public_ip.to_string()))
        .filter(|a| matches(&filters, &address_subject(a, region)))
        .collect();
    let mut x = Xml::default();
    x.set("addressesSet", selected, |x, a| write_address(x, a, region));
    Ok(x)
}

fn address_instance<'a>(a: &Address, region: &'a Region) -> Option<&'a Instance> {
    region.instance_of_eni(&a.association.as_ref()?.eni)
}

fn address_subject<'a>(a: &'a Address, region: &Region) -> Subject<'a> {
    let mut fields: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    fields.insert("allocation-id", vec![a.allocation_id.clone()]);
    fields.insert("public-ip", vec![a.public_ip.to_string()]);
    fields.insert("domain", vec!["vpc".into()]);
    fields.insert("network-border-group", vec![REGION_NAME.into()]);
    if let Some(s) = &a.association {
        fields.insert("association-id", vec![s.id.clone()]);
        fields.insert("network-interface-id", vec![s.eni.clone()]);
        fields.insert("network-interface-owner-id", vec![OWNER_ID.into()]);
        fields.insert("private-ip-address", vec![s.private_ip.to_string()]);
        if let Some(instance) = address_instance(a, region) {
            fields.insert("instance-id", vec![instance.id.clone()]);
        }
    }
    Subject {
        fields,
        tags: &a.tags,
    }
}

fn write_address(x: &mut Xml, a: &Address, region: &Region) {
    x.leaf("publicIp", a.public_ip)
        .leaf("allocationId", &a.allocation_id)
        .leaf("domain", "vpc");
    if let Some(s) = &a.association {
        x.leaf("associationId", &s.id)
            .maybe(
                "instanceId",
                address_instance(a, region).map(|i| i.id.as_str()),
            )
            .leaf("networkInterfaceId", &s.eni)
            .leaf("networkInterfaceOwnerId", OWNER_ID)
            .leaf("privateIpAddress", s.private_ip);
    }
    x.tag_set(&a.tags)
        .leaf("publicIpv4Pool", "amazon")
        .leaf("networkBorderGroup", REGION_NAME);
}

const INSTANCE_FILTERS: &[&str] = &[
    "availability-zone",
    "instance-id",
    "instance-state-name",
    "network-interface.network-interface-id",
    "private-ip-address",
    "subnet-id",
];

fn describe_instances(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

fn describe_network_interfaces(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

fn describe_subnets(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

fn create_tags(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let resources = params.list("ResourceId");
    if resources.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    let tags = params.tags("Tag");
    if tags.is_empty() {
        return Err(Ec2Error::missing("Tag"));
    }
    // All or nothing: check every resource first.
    for resource in &resources {
        region.tags_mut(resource)?;
    }
    for resource in &resources {
        let map = region.tags_mut(resource)?;
        for (key, value) in &tags {
            map.insert(key.clone(), value.clone().unwrap_or_default());
        }
    }
    let mut x = Xml::default();
    x.leaf("return", true);
    Ok(x)
}

fn delete_tags(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let resources = params.list("ResourceId");
    if resources.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    let tags = params.tags("Tag");
    for resource in &resources {
        region.tags_mut(resource)?;
    }
    for resource in &resources {
        let map = region.tags_mut(resource)?;
        if tags.is_empty() {
            map.clear();
        }
        for (key, value) in &tags {
            // With a value, the tag goes only if it still has that value.
            let matches = value.as_ref().is_none_or(|v| map.get(key) == Some(v));
            if matches {
                map.remove(key);
            }
        }
    }
    let mut x = Xml::default();
    x.leaf("return", true);
    Ok(x)
}

fn assign_ipv6(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let eni = params.require("NetworkInterfaceId")?.to_string();
    let wanted = params
        .list("Ipv6Addresses")
        .iter()
        .map(|a| parse_v6(a))
        .collect::<Result<Vec<_>, _>>()?;
    let count = match params.get("Ipv6AddressCount") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Ec2Error::invalid_value(format!("Invalid Ipv6AddressCount '{n}'")))?,
        None => 0,
    };
    if wanted.is_empty() && count == 0 {
        return Err(Ec2Error::missing("Ipv6Addresses"));
    }
    if !wanted.is_empty() && count > 0 {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "Ipv6Addresses and Ipv6AddressCount cannot both be specified",
        ));
    }
    let assigned = region.assign_ipv6(&eni, &wanted, count)?;
    let mut x = Xml::default();
    x.leaf("networkInterfaceId", &eni)
        .set("assignedIpv6Addresses", assigned, |x, ip| {
            // EC2 lists plain values as <item>value</item>.
            x.leaf_text(ip);
        });
    Ok(x)
}

fn unassign_ipv6(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let eni = params.require("NetworkInterfaceId")?.to_string();
    let addresses = params
        .list("Ipv6Addresses")
        .iter()
        .map(|a| parse_v6(a))
        .collect::<Result<Vec<_>, _>>()?;
    if addresses.is_empty() {
        return Err(Ec2Error::missing("Ipv6Addresses"));
    }
    let removed = region.unassign_ipv6(&eni, &addresses)?;
    let mut x = Xml::default();
    x.leaf("networkInterfaceId", &eni)
        .set("unassignedIpv6Addresses", removed, |x, ip| {
            x.leaf_text(ip);
        });
    Ok(x)
}
