//! One function per EC2 action: read the Query parameters, apply the action to the
//! [`Region`], write the response body in EC2's XML.

use std::net::{Ipv4Addr, Ipv6Addr};

mod addresses;
mod describe;
mod ipv6;
mod tags;

use addresses::{
    allocate_address, associate_address, describe_addresses, disassociate_address, release_address,
};
use describe::{describe_instances, describe_network_interfaces, describe_subnets};
use ipv6::{assign_ipv6, unassign_ipv6};
use tags::{create_tags, delete_tags};

use super::error::Ec2Error;
use super::model::Region;
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
