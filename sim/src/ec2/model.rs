//! The simulated region: subnets, instances, their ENIs, Elastic IPs and IPv6
//! addresses, with EC2's rules where pinip's safety depends on them (and where moto
//! is lax):
//!
//! - an Elastic IP has one association; `AllowReassociation=false` refuses to move it
//!   (`Resource.AlreadyAssociated`);
//! - a private IP carries at most one Elastic IP: associating a second one displaces
//!   the first;
//! - `PrivateIpAddress` must be one of the ENI's private addresses;
//! - an IPv6 address lies in its subnet's block and sits on one ENI at most
//!   (`InvalidIPAddress.InUse`);
//! - releasing an associated Elastic IP fails (`InvalidIPAddress.InUse`);
//! - terminating an instance drops its associations and ENIs but leaves tags.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

use super::error::Ec2Error;

pub const OWNER_ID: &str = "123456789012";

#[derive(Clone, Debug)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub zone: String,
    pub cidr: String,
    pub ipv6: Option<Ipv6Net>,
    pub next_host: u32,
}

#[derive(Clone, Debug)]
pub struct Eni {
    pub id: String,
    pub subnet_id: String,
    pub instance_id: Option<String>,
    pub attachment_id: String,
    pub device_index: i32,
    /// The first is the primary private IP.
    pub private_ips: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub zone: String,
    pub state: &'static str,
    /// A node pinip manages; anything else must never lose an address to pinip.
    pub managed: bool,
    /// Primary first.
    pub enis: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Association {
    pub id: String,
    pub eni: String,
    pub private_ip: Ipv4Addr,
}

#[derive(Clone, Debug)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: Ipv4Addr,
    pub tags: BTreeMap<String, String>,
    pub association: Option<Association>,
}

/// One address as the simulator holds it (for reports and assertions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldAddress {
    /// Allocation ID, or the IPv6 address itself for a pool IPv6 address.
    pub id: String,
    pub ip: IpAddr,
    /// The instance it is on, if any.
    pub instance: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What `add_instance` created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    pub eni: String,
    pub private_ip: Ipv4Addr,
    pub subnet_id: String,
}

/// Who asked for a change: the API (checked for invariant breaches) or a test's hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Api,
    Hand,
}

#[derive(Default)]
pub struct Region {
    pub subnets: BTreeMap<String, Subnet>,
    pub instances: BTreeMap<String, Instance>,
    pub enis: BTreeMap<String, Eni>,
    pub addresses: BTreeMap<String, Address>,
    /// IPv6 addresses a simulation treats as its pool (EC2 has no such object; kept
    /// only to report who holds which and to spot a node holding two).
    pub ipv6_pool: BTreeMap<Ipv6Addr, BTreeMap<String, String>>,
    pub violations: Vec<String>,
    counter: u64,
    next_public: u32,
}

impl Region {
    /// A fresh resource ID: `prefix-` and 17 hex digits, like EC2's.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:017x}", self.counter.wrapping_mul(0x9E37_79B9))
    }

    pub fn add_subnet(&mut self, id: &str, zone: &str, ipv6: Option<Ipv6Net>) {
        let index = self.subnets.len() as u32;
        self.subnets.insert(
            id.to_string(),
            Subnet {
                id: id.to_string(),
                vpc_id: "vpc-0000000000000sim".into(),
                zone: zone.to_string(),
                cidr: format!("10.{}.0.0/16", index % 250),
                ipv6,
                next_host: 4,
            },
        );
    }

    /// The subnet instances of `zone` land in when none is named: created on first use,
    /// with an IPv6 /64 of 2001:db8::/32 (documentation range).
    pub fn default_subnet(&mut self, zone: &str) -> String {
        if let Some(subnet) = self.subnets.values().find(|s| s.zone == zone) {
            return subnet.id.clone();
        }
        let index = self.subnets.len() as u16;
        let id = format!("subnet-{zone}");
        let block = Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0, index, 0, 0, 0, 0), 64).ok();
        self.add_subnet(&id, zone, block);
        id
    }

    pub fn add_instance(
        &mut self,
        id: &str,
        zone: &str,
        managed: bool,
        subnet_id: Option<&str>,
    ) -> InstanceInfo {
        let subnet_id = match subnet_id {
            Some(s) if self.subnets.contains_key(s) => s.to_string(),
            _ => self.default_subnet(zone),
        };
        let private_ip = self.next_private_ip(&subnet_id);
        let eni = self.new_id("eni");
        let attachment_id = self.new_id("eni-attach");
        self.enis.insert(
            eni.clone(),
            Eni {
                id: eni.clone(),
                subnet_id: subnet_id.clone(),
                instance_id: Some(id.to_string()),
                attachment_id,
                device_index: 0,
                private_ips: vec![private_ip],
                ipv6: Vec::new(),
                tags: BTreeMap::new(),
            },
        );
        self.instances.insert(
            id.to_string(),
            Instance {
                id: id.to_string(),
                zone: zone.to_string(),
                state: "running",
                managed,
                enis: vec![eni.clone()],
                tags: BTreeMap::new(),
            },
        );
        InstanceInfo {
            id: id.to_string(),
            eni,
            private_ip,
            subnet_id,
        }
    }

    /// A secondary private IP on an ENI (to test `PrivateIpAddress` handling).
    pub fn add_private_ip(&mut self, eni: &str) -> Option<Ipv4Addr> {
        let subnet = self.enis.get(eni)?.subnet_id.clone();
        let ip = self.next_private_ip(&subnet);
        self.enis.get_mut(eni)?.private_ips.push(ip);
        Some(ip)
    }

    fn next_private_ip(&mut self, subnet_id: &str) -> Ipv4Addr {
        let (index, host) = match self.subnets.get_mut(subnet_id) {
            Some(subnet) => {
                subnet.next_host += 1;
                let index = subnet
                    .cidr
                    .split('.')
                    .nth(1)
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0u8);
                (index, subnet.next_host)
            }
            None => (0, 4),
        };
        Ipv4Addr::new(10, index, (host >> 8) as u8, host as u8)
    }

    pub fn add_address(&mut self, id: &str, ip: Ipv4Addr, tags: BTreeMap<String, String>) {
        self.addresses.insert(
            id.to_string(),
            Address {
                allocation_id: id.to_string(),
                public_ip: ip,
                tags,
                association: None,
            },
        );
    }

    /// AllocateAddress: the next public address of 198.19.128.0/17.
    pub fn allocate(&mut self, tags: BTreeMap<String, String>) -> (String, Ipv4Addr) {
        loop {
            self.next_public += 1;
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 128, 0)) + self.next_public);
            if self.addresses.values().all(|a| a.public_ip != ip) {
                let id = self.new_id("eipalloc");
                self.add_address(&id, ip, tags);
                return (id, ip);
            }
        }
    }

    /// The instance an ENI is attached to.
    pub fn instance_of_eni(&self, eni: &str) -> Option<&Instance> {
        let id = self.enis.get(eni)?.instance_id.as_deref()?;
        self.instances.get(id)
    }

    fn primary_eni(&self, instance: &str) -> Result<String, Ec2Error> {
        let found = self.instances.get(instance).ok_or_else(|| {
            Ec2Error::not_found("InvalidInstanceID.NotFound", "instance ID", instance)
        })?;
        if found.state != "running" {
            return Err(Ec2Error::new(
                "IncorrectInstanceState",
                format!("The instance '{instance}' is not in a valid state for this operation."),
            ));
        }
        found.enis.first().cloned().ok_or_else(|| {
            Ec2Error::new(
                "InvalidInstanceID",
                format!("The instance '{instance}' has no network interface"),
            )
        })
    }

    /// AssociateAddress with EC2's rules. Returns the association ID.
    pub fn associate(
        &mut self,
        allocation_id: &str,
        instance: Option<&str>,
        eni: Option<&str>,
        private_ip: Option<Ipv4Addr>,
        allow_reassociation: bool,
        actor: Actor,
    ) -> Result<String, Ec2Error> {
        let eni_id = match (eni, instance) {
            (Some(eni), _) => {
                if !self.enis.contains_key(eni) {
                    return Err(Ec2Error::not_found(
                        "InvalidNetworkInterfaceID.NotFound",
                        "networkInterface ID",
                        eni,
                    ));
                }
                eni.to_string()
            }
            (None, Some(instance)) => self.primary_eni(instance)?,
            (None, None) => {
                return Err(Ec2Error::new(
                    "InvalidParameterCombination",
                    "Either an instance ID or a network interface ID must be specified",
                ))
            }
        };
        let eni_record = self.enis.get(&eni_id).cloned().ok_or_else(|| {
            Ec2Error::not_found(
                "InvalidNetworkInterfaceID.NotFound",
                "networkInterface ID",
                &eni_id,
            )
        })?;
        let target_ip = match private_ip {
            Some(ip) if eni_record.private_ips.contains(&ip) => ip,
            Some(ip) => {
                return Err(Ec2Error::invalid_value(format!(
                    "The private IP address {ip} is not associated with the network interface {eni_id}."
                )))
            }
            None => *eni_record.private_ips.first().ok_or_else(|| {
                Ec2Error::invalid_value(format!("The network interface {eni_id} has no private IP address."))
            })?,
        };
        let address = self.addresses.get(allocation_id).cloned().ok_or_else(|| {
            Ec2Error::not_found(
                "InvalidAllocationID.NotFound",
                "allocation ID",
                allocation_id,
            )
        })?;
        if let Some(current) = &address.association {
            if current.eni == eni_id && current.private_ip == target_ip {
                return Ok(current.id.clone());
            }
            if !allow_reassociation {
                return Err(Ec2Error::new(
                    "Resource.AlreadyAssociated",
                    format!("Resource {} is already associated.", address.public_ip),
                ));
            }
            if actor == Actor::Api {
                let from = self
                    .instance_of_eni(&current.eni)
                    .map(|i| i.id.clone())
                    .unwrap_or_else(|| current.eni.clone());
                self.violations.push(format!(
                    "Elastic IP {} moved from {from} to {eni_id} (AllowReassociation=true)",
                    address.public_ip
                ));
            }
        }
        // One Elastic IP per private IP: a second one displaces the first.
        let displaced: Vec<String> = self
            .addresses
            .values()
            .filter(|a| a.allocation_id != allocation_id)
            .filter(|a| {
                a.association
                    .as_ref()
                    .is_some_and(|s| s.eni == eni_id && s.private_ip == target_ip)
            })
            .map(|a| a.allocation_id.clone())
            .collect();
        for other in displaced {
            if let Some(a) = self.addresses.get_mut(&other) {
                a.association = None;
                if actor == Actor::Api && self.instance_of_eni(&eni_id).is_some_and(|i| i.managed) {
                    let ip = self.addresses.get(&other).map(|a| a.public_ip);
                    self.violations.push(format!(
                        "instance {} was given a second Elastic IP: {} displaced {ip:?}",
                        self.instance_of_eni(&eni_id)
                            .map(|i| i.id.as_str())
                            .unwrap_or("?"),
                        address.public_ip
                    ));
                }
            }
        }
        let association_id = self.new_id("eipassoc");
        if let Some(a) = self.addresses.get_mut(allocation_id) {
            a.association = Some(Association {
                id: association_id.clone(),
                eni: eni_id,
                private_ip: target_ip,
            });
        }
        Ok(association_id)
    }

    /// DisassociateAddress by association ID.
    pub fn disassociate(&mut self, association_id: &str, actor: Actor) -> Result<(), Ec2Error> {
        let found = self
            .addresses
            .values()
            .find(|a| {
                a.association
                    .as_ref()
                    .is_some_and(|s| s.id == association_id)
            })
            .map(|a| (a.allocation_id.clone(), a.public_ip, a.association.clone()));
        let Some((allocation_id, ip, Some(association))) = found else {
            return Err(Ec2Error::not_found(
                "InvalidAssociationID.NotFound",
                "association ID",
                association_id,
            ));
        };
        if actor == Actor::Api {
            if let Some(instance) = self
                .instance_of_eni(&association.eni)
                .filter(|i| !i.managed)
            {
                self.violations.push(format!(
                    "Elastic IP {ip} detached from instance {} which pinip does not manage",
                    instance.id
                ));
            }
        }
        if let Some(a) = self.addresses.get_mut(&allocation_id) {
            a.association = None;
        }
        Ok(())
    }

    /// ReleaseAddress: only an unassociated address can be released.
    pub fn release(&mut self, allocation_id: &str) -> Result<(), Ec2Error> {
        let address = self.addresses.get(allocation_id).ok_or_else(|| {
            Ec2Error::not_found(
                "InvalidAllocationID.NotFound",
                "allocation ID",
                allocation_id,
            )
        })?;
        if address.association.is_some() {
            return Err(Ec2Error::new(
                "InvalidIPAddress.InUse",
                format!("Address {} is in use.", address.public_ip),
            ));
        }
        self.addresses.remove(allocation_id);
        Ok(())
    }

    /// AssignIpv6Addresses: specific addresses, or `count` new ones.
    pub fn assign_ipv6(
        &mut self,
        eni_id: &str,
        wanted: &[Ipv6Addr],
        count: usize,
    ) -> Result<Vec<Ipv6Addr>, Ec2Error> {
        let eni = self.enis.get(eni_id).cloned().ok_or_else(|| {
            Ec2Error::not_found(
                "InvalidNetworkInterfaceID.NotFound",
                "networkInterface ID",
                eni_id,
            )
        })?;
        let block = self
            .subnets
            .get(&eni.subnet_id)
            .and_then(|s| s.ipv6)
            .ok_or_else(|| {
                Ec2Error::invalid_value(format!(
                    "The subnet {} has no IPv6 CIDR block.",
                    eni.subnet_id
                ))
            })?;
        let mut assigned = Vec::new();
        for ip in wanted {
            let offset = u128::from(*ip).wrapping_sub(u128::from(block.network()));
            if !block.contains(ip) {
                return Err(Ec2Error::invalid_value(format!(
                    "Address {ip} does not fall within the subnet's address range {block}."
                )));
            }
            if offset < 4 || *ip == block.broadcast() {
                return Err(Ec2Error::invalid_value(format!(
                    "Address {ip} is reserved by AWS."
                )));
            }
            if let Some(holder) = self
                .enis
                .values()
                .find(|e| e.id != eni_id && e.ipv6.contains(ip))
            {
                return Err(Ec2Error::new(
                    "InvalidIPAddress.InUse",
                    format!("Address {ip} is in use by {}.", holder.id),
                ));
            }
            if !eni.ipv6.contains(ip) {
                assigned.push(*ip);
            }
        }
        if wanted.is_empty() {
            let mut candidate = u128::from(block.network()) + 0x100;
            while assigned.len() < count {
                let ip = Ipv6Addr::from(candidate);
                candidate += 1;
                if !block.contains(&ip) {
                    return Err(Ec2Error::new(
                        "InsufficientFreeAddressesInSubnet",
                        "The subnet has no free IPv6 address.",
                    ));
                }
                if self.enis.values().all(|e| !e.ipv6.contains(&ip))
                    && !self.ipv6_pool.contains_key(&ip)
                {
                    assigned.push(ip);
                }
            }
        }
        if let Some(e) = self.enis.get_mut(eni_id) {
            e.ipv6.extend(assigned.iter().copied());
        }
        self.check_ipv6_pool_per_instance(eni_id);
        Ok(assigned)
    }

    /// A managed instance holding two pool IPv6 addresses is a breach.
    fn check_ipv6_pool_per_instance(&mut self, eni_id: &str) {
        let Some(eni) = self.enis.get(eni_id) else {
            return;
        };
        let held: Vec<Ipv6Addr> = eni
            .ipv6
            .iter()
            .filter(|ip| self.ipv6_pool.contains_key(ip))
            .copied()
            .collect();
        let managed = self.instance_of_eni(eni_id).is_some_and(|i| i.managed);
        if held.len() > 1 && managed {
            let instance = eni.instance_id.clone().unwrap_or_default();
            self.violations.push(format!(
                "instance {instance} holds several pool IPv6 addresses: {held:?}"
            ));
        }
    }

    /// UnassignIpv6Addresses: returns the addresses that were on the ENI.
    pub fn unassign_ipv6(
        &mut self,
        eni_id: &str,
        addresses: &[Ipv6Addr],
    ) -> Result<Vec<Ipv6Addr>, Ec2Error> {
        let eni = self.enis.get_mut(eni_id).ok_or_else(|| {
            Ec2Error::not_found(
                "InvalidNetworkInterfaceID.NotFound",
                "networkInterface ID",
                eni_id,
            )
        })?;
        let removed: Vec<Ipv6Addr> = addresses
            .iter()
            .filter(|ip| eni.ipv6.contains(ip))
            .copied()
            .collect();
        eni.ipv6.retain(|ip| !removed.contains(ip));
        Ok(removed)
    }

    /// The instance is terminated: its ENIs go (and with them every association and IPv6
    /// address); the Elastic IPs and their tags stay.
    pub fn terminate(&mut self, id: &str) {
        let Some(instance) = self.instances.get_mut(id) else {
            return;
        };
        instance.state = "terminated";
        let enis = std::mem::take(&mut instance.enis);
        for eni in &enis {
            self.enis.remove(eni);
        }
        for address in self.addresses.values_mut() {
            if address
                .association
                .as_ref()
                .is_some_and(|a| enis.contains(&a.eni))
            {
                address.association = None;
            }
        }
    }

    /// Tag map of a resource, by ID prefix.
    pub fn tags_mut(&mut self, resource: &str) -> Result<&mut BTreeMap<String, String>, Ec2Error> {
        if resource.starts_with("eipalloc-") {
            return self
                .addresses
                .get_mut(resource)
                .map(|a| &mut a.tags)
                .ok_or_else(|| {
                    Ec2Error::not_found("InvalidAllocationID.NotFound", "allocation ID", resource)
                });
        }
        if resource.starts_with("eni-") {
            return self
                .enis
                .get_mut(resource)
                .map(|e| &mut e.tags)
                .ok_or_else(|| {
                    Ec2Error::not_found(
                        "InvalidNetworkInterfaceID.NotFound",
                        "networkInterface ID",
                        resource,
                    )
                });
        }
        if resource.starts_with("i-") {
            return self
                .instances
                .get_mut(resource)
                .map(|i| &mut i.tags)
                .ok_or_else(|| {
                    Ec2Error::not_found("InvalidInstanceID.NotFound", "instance ID", resource)
                });
        }
        Err(Ec2Error::new(
            "InvalidID",
            format!("The ID '{resource}' is not valid"),
        ))
    }

    /// Where each Elastic IP and each pool IPv6 address is: (id, ip, instance, tags).
    pub fn holdings(&self) -> Vec<HeldAddress> {
        let mut out: Vec<_> = self
            .addresses
            .values()
            .map(|a| {
                let instance = a
                    .association
                    .as_ref()
                    .and_then(|s| self.enis.get(&s.eni))
                    .and_then(|e| e.instance_id.clone());
                HeldAddress {
                    id: a.allocation_id.clone(),
                    ip: IpAddr::V4(a.public_ip),
                    instance,
                    tags: a.tags.clone(),
                }
            })
            .collect();
        // Which ENI holds each IPv6 address, in one pass over the ENIs (the first one,
        // as a search per address would find).
        let mut on_eni: BTreeMap<Ipv6Addr, Option<&String>> = BTreeMap::new();
        for eni in self.enis.values() {
            for ip in &eni.ipv6 {
                on_eni.entry(*ip).or_insert(eni.instance_id.as_ref());
            }
        }
        for (ip, tags) in &self.ipv6_pool {
            let holder = on_eni.get(ip).copied().flatten().cloned();
            out.push(HeldAddress {
                id: ip.to_string(),
                ip: IpAddr::V6(*ip),
                instance: holder,
                tags: tags.clone(),
            });
        }
        out
    }

    /// IPv6 addresses that sit on more than one ENI (EC2 refuses that; so does this).
    pub fn ipv6_duplicates(&self) -> usize {
        let mut seen: BTreeMap<Ipv6Addr, usize> = BTreeMap::new();
        for eni in self.enis.values() {
            for ip in &eni.ipv6 {
                *seen.entry(*ip).or_default() += 1;
            }
        }
        seen.values().filter(|n| **n > 1).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> (Region, InstanceInfo, InstanceInfo) {
        let mut r = Region::default();
        let a = r.add_instance("i-a", "z1", true, None);
        let b = r.add_instance("i-b", "z1", true, None);
        r.add_address(
            "eipalloc-1",
            Ipv4Addr::new(198, 51, 100, 1),
            BTreeMap::new(),
        );
        r.add_address(
            "eipalloc-2",
            Ipv4Addr::new(198, 51, 100, 2),
            BTreeMap::new(),
        );
        (r, a, b)
    }

    #[test]
    fn no_reassociation_without_permission_and_same_target_is_idempotent() {
        let (mut r, a, b) = region();
        let first = r
            .associate(
                "eipalloc-1",
                None,
                Some(&a.eni),
                Some(a.private_ip),
                false,
                Actor::Api,
            )
            .unwrap();
        let again = r
            .associate(
                "eipalloc-1",
                None,
                Some(&a.eni),
                Some(a.private_ip),
                false,
                Actor::Api,
            )
            .unwrap();
        assert_eq!(first, again);
        let err = r
            .associate("eipalloc-1", None, Some(&b.eni), None, false, Actor::Api)
            .unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.status),
            ("Resource.AlreadyAssociated", 400)
        );
        assert!(r.violations.is_empty());
    }

    #[test]
    fn a_second_eip_on_one_private_ip_displaces_the_first_and_is_a_breach() {
        let (mut r, a, _) = region();
        r.associate("eipalloc-1", None, Some(&a.eni), None, false, Actor::Api)
            .unwrap();
        r.associate("eipalloc-2", Some("i-a"), None, None, false, Actor::Api)
            .unwrap();
        assert!(r.addresses["eipalloc-1"].association.is_none());
        assert!(r.addresses["eipalloc-2"].association.is_some());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }

    #[test]
    fn private_ip_must_be_on_the_eni() {
        let (mut r, a, b) = region();
        let err = r
            .associate(
                "eipalloc-1",
                None,
                Some(&a.eni),
                Some(b.private_ip),
                false,
                Actor::Api,
            )
            .unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
        let secondary = r.add_private_ip(&a.eni).unwrap();
        r.associate(
            "eipalloc-1",
            None,
            Some(&a.eni),
            Some(secondary),
            false,
            Actor::Api,
        )
        .unwrap();
    }

    #[test]
    fn release_of_an_associated_address_is_refused() {
        let (mut r, a, _) = region();
        r.associate("eipalloc-1", None, Some(&a.eni), None, false, Actor::Hand)
            .unwrap();
        assert_eq!(
            r.release("eipalloc-1").unwrap_err().code,
            "InvalidIPAddress.InUse"
        );
        assert!(r.release("eipalloc-2").is_ok());
    }

    #[test]
    fn an_ipv6_address_sits_on_one_eni_inside_its_subnet() {
        let (mut r, a, b) = region();
        let block = r.subnets[&a.subnet_id].ipv6.unwrap();
        let ip = Ipv6Addr::from(u128::from(block.network()) + 0x10);
        assert_eq!(r.assign_ipv6(&a.eni, &[ip], 0).unwrap(), vec![ip]);
        assert!(r.assign_ipv6(&a.eni, &[ip], 0).unwrap().is_empty());
        assert_eq!(
            r.assign_ipv6(&b.eni, &[ip], 0).unwrap_err().code,
            "InvalidIPAddress.InUse"
        );
        let outside: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
        assert_eq!(
            r.assign_ipv6(&b.eni, &[outside], 0).unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            r.assign_ipv6(&b.eni, &[block.network()], 0)
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(r.unassign_ipv6(&a.eni, &[ip]).unwrap(), vec![ip]);
        assert!(r.unassign_ipv6(&a.eni, &[ip]).unwrap().is_empty());
        assert_eq!(r.ipv6_duplicates(), 0);
    }

    #[test]
    fn termination_frees_addresses_but_keeps_tags() {
        let (mut r, a, _) = region();
        r.addresses
            .get_mut("eipalloc-1")
            .unwrap()
            .tags
            .insert("pinip.dev/node".into(), "n".into());
        r.associate("eipalloc-1", None, Some(&a.eni), None, false, Actor::Api)
            .unwrap();
        r.terminate("i-a");
        assert!(r.addresses["eipalloc-1"].association.is_none());
        assert_eq!(r.addresses["eipalloc-1"].tags.len(), 1);
        assert_eq!(r.instances["i-a"].state, "terminated");
    }

    #[test]
    fn api_detach_from_an_unmanaged_instance_is_a_breach() {
        let (mut r, _, _) = region();
        let x = r.add_instance("i-x", "z1", false, None);
        let association = r
            .associate("eipalloc-1", None, Some(&x.eni), None, false, Actor::Hand)
            .unwrap();
        r.disassociate(&association, Actor::Api).unwrap();
        assert_eq!(r.violations.len(), 1);
        assert_eq!(
            r.disassociate(&association, Actor::Api).unwrap_err().code,
            "InvalidAssociationID.NotFound"
        );
    }
}
