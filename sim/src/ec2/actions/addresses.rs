//! Elastic IPs: allocate, associate, disassociate, release, describe.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{parse_v4, REGION_NAME};
use crate::ec2::error::Ec2Error;
use crate::ec2::filters::{check_names, matches_lazily};
use crate::ec2::model::{Actor, Address, Instance, Region, OWNER_ID};
use crate::ec2::query::Params;
use crate::ec2::xml::Xml;

pub(super) fn allocate_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

pub(super) fn associate_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

pub(super) fn disassociate_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

pub(super) fn release_address(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

pub(super) fn describe_addresses(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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
        .filter(|a| {
            matches_lazily(&filters, &a.tags, |name, test| {
                address_field(a, region, name, test)
            })
        })
        .collect();
    let mut x = Xml::default();
    x.set("addressesSet", selected, |x, a| write_address(x, a, region));
    Ok(x)
}

fn address_instance<'a>(a: &Address, region: &'a Region) -> Option<&'a Instance> {
    region.instance_of_eni(&a.association.as_ref()?.eni)
}

/// Whether a value of `a` that the `DescribeAddresses` filter `name` matches against
/// passes `test`.
fn address_field(
    a: &Address,
    region: &Region,
    name: &str,
    test: &mut dyn FnMut(&str) -> bool,
) -> bool {
    let association = a.association.as_ref();
    let mut text = [0u8; 15];
    match name {
        "allocation-id" => test(&a.allocation_id),
        "public-ip" => test(ipv4_text(a.public_ip, &mut text)),
        "domain" => test("vpc"),
        "network-border-group" => test(REGION_NAME),
        "association-id" => association.is_some_and(|s| test(&s.id)),
        "network-interface-id" => association.is_some_and(|s| test(&s.eni)),
        "network-interface-owner-id" => association.is_some_and(|_| test(OWNER_ID)),
        "private-ip-address" => {
            association.is_some_and(|s| test(ipv4_text(s.private_ip, &mut text)))
        }
        "instance-id" => address_instance(a, region).is_some_and(|i| test(&i.id)),
        _ => false,
    }
}

/// `ip` in dotted form, written into `buf` (a filter tries every address: no copy).
fn ipv4_text(ip: Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let written = std::io::Write::write_fmt(&mut cursor, format_args!("{ip}")).is_ok();
    let len = if written {
        cursor.position() as usize
    } else {
        0
    };
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
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
