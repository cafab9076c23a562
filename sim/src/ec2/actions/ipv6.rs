//! IPv6 addresses on a network interface.

use super::parse_v6;
use crate::ec2::error::Ec2Error;
use crate::ec2::model::Region;
use crate::ec2::query::Params;
use crate::ec2::xml::Xml;

pub(super) fn assign_ipv6(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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

pub(super) fn unassign_ipv6(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
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
