//! [`AwsProvider`]: the [`Provider`] contract on EC2.
//!
//! - IPv4: the pool is the Elastic IPs `DescribeAddresses` returns for `FILTER`; attach
//!   associates one with the primary ENI and its primary private IP, refusing to move it
//!   (`AllowReassociation=false`), then records the owner in tags.
//! - IPv6 (`IPV6=true`): the pool is `IPV6_POOL` ∩ the node subnet's IPv6 blocks; attach
//!   assigns the address to the primary ENI, release unassigns it; the owner is recorded
//!   in the ENI's tags.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, Tag};
use aws_sdk_ec2::Client;
use ipnet::Ipv6Net;
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use super::eip::{present, EipRecord};
use super::errors::from_sdk;
use super::filters::address_filters;
use super::instance::InstanceFacts;
use super::ipv6::Ipv6Pool;
use super::ordering::{AwsOrder, AwsOrderField};
use super::pool_part::part_filters;
use crate::{
    AssignmentRateLimit, ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolAddress,
    PoolPart, PoolRead, PoolSpec, Provider, ProviderError,
};
use crate::{OWNER_CLUSTER_TAG, OWNER_INSTANCE_TAG, OWNER_NODE_TAG};

/// On an ENI: which pool IPv6 address the ownership tags are about.
pub const OWNER_IPV6_TAG: &str = "pinip.dev/ipv6-address";

/// The AWS side of the agent's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub pool: PoolSpec,
    /// `IPV6_POOL`: required when `pool.family` is IPv6.
    pub ipv6_pool: Option<Ipv6Pool>,
}

/// One node's view of EC2.
pub struct AwsProvider {
    client: Client,
    /// The instance of the node this agent serves.
    node: InstanceRef,
    filters: Vec<Filter>,
    order: Option<AwsOrder>,
    family: IpFamily,
    ipv6_pool: Option<Ipv6Pool>,
    /// The node's own instance, described once (its ENIs never change).
    own: OnceCell<InstanceFacts>,
    /// IPv6 blocks of the node's subnet, read once.
    subnet_blocks: OnceCell<Vec<Ipv6Net>>,
}

impl AwsProvider {
    /// Check the settings (a bad `FILTER`, `ORDER_BY` or `IPV6_POOL` is refused here, before
    /// any call) and build the provider for the node on `node`.
    pub fn new(
        client: Client,
        node: InstanceRef,
        settings: &AwsSettings,
    ) -> Result<AwsProvider, ProviderError> {
        let filters = address_filters(&settings.pool.filter)
            .map_err(|e| ProviderError::invalid_input("ParseFilter", e.to_string()))?;
        let order = match settings.pool.order_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                AwsOrder::parse(text)
                    .map_err(|e| ProviderError::invalid_input("ParseOrderBy", e.to_string()))?,
            ),
        };
        let family = settings.pool.family;
        let ipv6_pool = settings.ipv6_pool.clone().filter(|p| !p.is_empty());
        if family == IpFamily::V6 {
            if ipv6_pool.is_none() {
                return Err(ProviderError::invalid_input(
                    "ParseIpv6Pool",
                    "IPV6=true on AWS needs IPV6_POOL: the IPv6 addresses (or a CIDR) of the node subnet that pinip may assign, e.g. IPV6_POOL=2600:1f18:aa:bb00::100/120",
                ));
            }
            if !settings.pool.filter.is_empty() {
                warn!("FILTER selects Elastic IPs and is ignored with IPV6=true; the pool is IPV6_POOL");
            }
        }
        Ok(AwsProvider {
            client,
            node,
            filters,
            order,
            family,
            ipv6_pool,
            own: OnceCell::new(),
            subnet_blocks: OnceCell::new(),
        })
    }

    /// `DescribeInstances` for one instance. Terminated or absent: NotFound. By an
    /// `instance-id` filter rather than `InstanceIds`: a call without a filter spends
    /// from the smaller "unfiltered" bucket (50 burst, 10 a second, against 100 and 20),
    /// and an unknown id is an empty answer instead of an error.
    async fn describe(&self, id: &str) -> Result<InstanceFacts, ProviderError> {
        const OP: &str = "DescribeInstances";
        let out = self
            .client
            .describe_instances()
            .filters(Filter::builder().name("instance-id").values(id).build())
            .send()
            .await
            .map_err(|e| from_sdk(OP, e))?;
        let found = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(InstanceFacts::from_sdk)
            .find(|facts| facts.id == id);
        match found {
            Some(facts) if facts.state.as_deref() == Some("terminated") => Err(ProviderError::new(
                ErrorClass::NotFound,
                OP,
                format!("instance {id} is terminated"),
            )),
            Some(facts) => Ok(facts),
            None => Err(ProviderError::new(
                ErrorClass::NotFound,
                OP,
                format!("EC2 returned no instance {id}"),
            )),
        }
    }

    /// The node's own instance, described on first use.
    async fn own_facts(&self) -> Result<&InstanceFacts, ProviderError> {
        self.own
            .get_or_try_init(|| async {
                let facts = self.describe(&self.node.id).await?;
                if let Some(zone) = facts.zone.as_deref() {
                    if zone != self.node.zone {
                        warn!(instance = %self.node.id, %zone, provider_id_zone = %self.node.zone, "the node's providerID names another zone than EC2 does");
                    }
                }
                Ok(facts)
            })
            .await
    }

    /// Facts about `instance`: cached for the node's own instance, fresh otherwise.
    async fn facts_of(&self, instance: &str) -> Result<InstanceFacts, ProviderError> {
        if instance == self.node.id {
            self.own_facts().await.cloned()
        } else {
            self.describe(instance).await
        }
    }

    /// `DescribeAddresses` with `filters` (the pool's, or a part's), in `ORDER_BY` order.
    async fn eip_records(&self, filters: &[Filter]) -> Result<Vec<EipRecord>, ProviderError> {
        let out = self
            .client
            .describe_addresses()
            .set_filters(Some(filters.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk("DescribeAddresses", e))?;
        let mut records: Vec<EipRecord> = out
            .addresses()
            .iter()
            .map(EipRecord::from_sdk)
            .filter(|r| r.allocation_id.is_some() && r.public_ip.is_some_and(|ip| ip.is_ipv4()))
            .collect();
        if let Some(order) = &self.order {
            order.sort(&mut records);
        }
        Ok(records)
    }

    /// One Elastic IP by allocation ID; None if it no longer exists.
    async fn eip(&self, allocation_id: &str) -> Result<Option<EipRecord>, ProviderError> {
        match self
            .client
            .describe_addresses()
            .allocation_ids(allocation_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.addresses().first().map(EipRecord::from_sdk)),
            Err(e) => match from_sdk("DescribeAddresses", e) {
                gone if gone.class == ErrorClass::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The Elastic IPs that `filters` select, each with the instance it is on.
    async fn list_eips(&self, filters: &[Filter]) -> Result<Vec<PoolAddress>, ProviderError> {
        let records = self.eip_records(filters).await?;
        // EC2 names the instance of an association made through its ENI; moto does not.
        // Then the ENI tells whether it is this node's.
        let needs_eni_lookup = records
            .iter()
            .any(|r| r.instance_id.is_none() && r.network_interface_id.is_some());
        let own = if needs_eni_lookup {
            Some(self.own_facts().await?)
        } else {
            None
        };
        // Other interfaces are resolved to their instances too (one call for all of
        // them): an association the cloud reports by interface only is that instance's,
        // never "another instance" (the sweep dropped live nodes' claims over it).
        let foreign_enis: Vec<String> = records
            .iter()
            .filter(|r| r.instance_id.is_none())
            .filter_map(|r| r.network_interface_id.clone())
            .filter(|eni| !own.is_some_and(|o| o.owns_eni(eni)))
            .collect();
        let eni_instances = self.instances_of(&foreign_enis).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| {
                let attached_to = r
                    .network_interface_id
                    .as_ref()
                    .filter(|_| r.instance_id.is_none())
                    .and_then(|eni| eni_instances.get(eni).cloned())
                    .or_else(|| holder_of(&r, own));
                Some(PoolAddress {
                    id: r.allocation_id?,
                    ip: r.public_ip?,
                    attached_to,
                    owner: ownership_of(&r.tags),
                    labels: r.tags.into(),
                })
            })
            .collect())
    }

    /// The instance each of `enis` is attached to (`DescribeNetworkInterfaces`, one
    /// paginated call); an interface attached to no instance is left out.
    async fn instances_of(
        &self,
        enis: &[String],
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut found = BTreeMap::new();
        if enis.is_empty() {
            return Ok(found);
        }
        let mut pages = self
            .client
            .describe_network_interfaces()
            .set_network_interface_ids(Some(enis.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                // An interface deleted since the addresses were read: nothing to resolve.
                Err(e) => match from_sdk("DescribeNetworkInterfaces", e) {
                    gone if gone.class == ErrorClass::NotFound => return Ok(found),
                    other => return Err(other),
                },
            };
            for eni in page.network_interfaces() {
                let instance = eni.attachment().and_then(|a| present(a.instance_id()));
                if let (Some(id), Some(instance)) = (present(eni.network_interface_id()), instance)
                {
                    found.insert(id, instance);
                }
            }
        }
        Ok(found)
    }

    /// IPv6 blocks of a subnet (`DescribeSubnets`, once).
    async fn subnet_blocks(&self, subnet: &str) -> Result<&Vec<Ipv6Net>, ProviderError> {
        self.subnet_blocks
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .describe_subnets()
                    .subnet_ids(subnet)
                    .send()
                    .await
                    .map_err(|e| from_sdk("DescribeSubnets", e))?;
                let blocks: Vec<Ipv6Net> = out
                    .subnets()
                    .iter()
                    .flat_map(|s| s.ipv6_cidr_block_association_set())
                    .filter(|a| {
                        let state = a
                            .ipv6_cidr_block_state()
                            .and_then(|s| s.state())
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default();
                        !matches!(state.as_str(), "disassociated" | "disassociating" | "failed" | "failing")
                    })
                    .filter_map(|a| present(a.ipv6_cidr_block())?.parse().ok())
                    .collect();
                if blocks.is_empty() {
                    warn!(%subnet, "the node's subnet has no IPv6 block; no IPv6 address can be assigned");
                }
                Ok(blocks)
            })
            .await
    }

    async fn list_ipv6(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        let Some(pool) = &self.ipv6_pool else {
            return Ok(Vec::new());
        };
        let own = self.own_facts().await?;
        let subnet = own.subnet_id.clone().ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Permanent,
                "DescribeInstances",
                format!(
                    "instance {} has no subnet on its primary network interface",
                    own.id
                ),
            )
        })?;
        let blocks = self.subnet_blocks(&subnet).await?;
        let mut wanted = pool.addresses_in(blocks);
        if wanted.is_empty() {
            warn!(%subnet, pool = %pool, "no address of IPV6_POOL lies in this node's subnet");
            return Ok(Vec::new());
        }
        // Who holds what: every ENI of the subnet (one call, paginated).
        let mut holders: BTreeMap<Ipv6Addr, (String, BTreeMap<String, String>)> = BTreeMap::new();
        let mut pages = self
            .client
            .describe_network_interfaces()
            .filters(Filter::builder().name("subnet-id").values(&subnet).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("DescribeNetworkInterfaces", e))?;
            for eni in page.network_interfaces() {
                let holder = eni
                    .attachment()
                    .and_then(|a| present(a.instance_id()))
                    .or_else(|| present(eni.network_interface_id()))
                    .unwrap_or_else(|| "unknown-eni".into());
                let tags: BTreeMap<String, String> = eni
                    .tag_set()
                    .iter()
                    .filter_map(|t| Some((present(t.key())?, t.value().unwrap_or("").to_string())))
                    .collect();
                for address in eni.ipv6_addresses() {
                    if let Some(ip) = present(address.ipv6_address()).and_then(|a| a.parse().ok()) {
                        holders.insert(ip, (holder.clone(), tags.clone()));
                    }
                }
            }
        }
        if self
            .order
            .as_ref()
            .is_some_and(|o| o.field == AwsOrderField::PublicIp)
        {
            wanted.sort();
            if self.order.as_ref().is_some_and(|o| o.descending) {
                wanted.reverse();
            }
        }
        Ok(wanted
            .into_iter()
            .map(|ip| {
                let held = holders.get(&ip);
                let owner = held
                    .filter(|(_, tags)| {
                        tags.get(OWNER_IPV6_TAG).map(String::as_str)
                            == Some(ip.to_string().as_str())
                    })
                    .and_then(|(_, tags)| ownership_of(tags));
                PoolAddress {
                    id: ip.to_string(),
                    ip: IpAddr::V6(ip),
                    attached_to: held.map(|(holder, _)| holder.clone()),
                    owner,
                    labels: Default::default(),
                }
            })
            .collect())
    }

    async fn create_tags(&self, resource: &str, tags: Vec<Tag>) -> Result<(), ProviderError> {
        self.client
            .create_tags()
            .resources(resource)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("CreateTags", e))
    }

    /// DeleteTags; a tag with a value is deleted only while it still has that value.
    async fn delete_tags(&self, resource: &str, tags: Vec<Tag>) -> Result<(), ProviderError> {
        match self
            .client
            .delete_tags()
            .resources(resource)
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match from_sdk("DeleteTags", e) {
                gone if gone.class == ErrorClass::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn attach_eip(
        &self,
        address: &PoolAddress,
        instance: &Instance,
    ) -> Result<(), ProviderError> {
        const OP: &str = "AssociateAddress";
        let nic = primary_nic(instance, OP)?;
        let private_ip = match instance.private_ip {
            Some(IpAddr::V4(ip)) => ip,
            _ => {
                return Err(ProviderError::new(
                    ErrorClass::Permanent,
                    OP,
                    format!(
                        "instance {} has no primary private IPv4 address on {nic}",
                        instance.reference.id
                    ),
                ))
            }
        };
        let associated = self
            .client
            .associate_address()
            .allocation_id(&address.id)
            .network_interface_id(nic)
            .private_ip_address(private_ip.to_string())
            .allow_reassociation(false)
            .send()
            .await;
        match associated {
            Ok(out) => {
                info!(address = %address.ip, allocation = %address.id, association = out.association_id().unwrap_or(""), eni = %nic, "Elastic IP associated")
            }
            Err(e) => {
                let error = from_sdk(OP, e);
                // "Already associated" may be with us (an earlier attempt whose answer was lost).
                let ours = error.class == ErrorClass::Conflict
                    && self.eip(&address.id).await?.is_some_and(|r| {
                        r.instance_id.as_deref() == Some(instance.reference.id.as_str())
                            || r.network_interface_id.as_deref() == Some(nic)
                    });
                if !ours {
                    return Err(error);
                }
                debug!(address = %address.ip, "already associated with this instance");
            }
        }
        Ok(())
    }

    async fn detach_eip(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        let Some(record) = self.eip(&address.id).await? else {
            debug!(allocation = %address.id, "the Elastic IP no longer exists");
            return Ok(());
        };
        let on_instance = match (&record.instance_id, &record.network_interface_id) {
            (Some(holder), _) => holder == &instance.id,
            (None, Some(eni)) => match self.facts_of(&instance.id).await {
                Ok(facts) => facts.owns_eni(eni),
                Err(e) if e.class == ErrorClass::NotFound => false,
                Err(e) => return Err(e),
            },
            (None, None) => false,
        };
        if on_instance {
            if let Some(association) = &record.association_id {
                match self
                    .client
                    .disassociate_address()
                    .association_id(association)
                    .send()
                    .await
                {
                    Ok(_) => {
                        info!(address = %address.ip, instance = %instance.id, "Elastic IP disassociated")
                    }
                    Err(e) => match from_sdk("DisassociateAddress", e) {
                        gone if gone.class == ErrorClass::NotFound => {
                            debug!(address = %address.ip, "the association was already gone")
                        }
                        other => return Err(other),
                    },
                }
            }
        }
        let held_elsewhere = record.is_associated() && !on_instance;
        let names_us = record.tags.get(OWNER_INSTANCE_TAG) == Some(&instance.id);
        if names_us && !held_elsewhere {
            // Conditional on the values read: a new owner's tags are never deleted.
            let tags = [OWNER_CLUSTER_TAG, OWNER_NODE_TAG, OWNER_INSTANCE_TAG]
                .iter()
                .filter_map(|key| {
                    let value = record.tags.get(*key)?;
                    Some(Tag::builder().key(*key).value(value).build())
                })
                .collect();
            self.delete_tags(&address.id, tags).await?;
        }
        Ok(())
    }

    async fn attach_ipv6(
        &self,
        address: &PoolAddress,
        instance: &Instance,
    ) -> Result<(), ProviderError> {
        const OP: &str = "AssignIpv6Addresses";
        let nic = primary_nic(instance, OP)?;
        let assigned = self
            .client
            .assign_ipv6_addresses()
            .network_interface_id(nic)
            .ipv6_addresses(address.ip.to_string())
            .send()
            .await;
        match assigned {
            Ok(_) => info!(address = %address.ip, eni = %nic, "IPv6 address assigned"),
            Err(e) => {
                let error = from_sdk(OP, e);
                let ours = error.class == ErrorClass::Conflict
                    && matches!(address.ip, IpAddr::V6(ip) if self.describe(&instance.reference.id).await?.ipv6_addresses.contains(&ip));
                if !ours {
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    async fn detach_ipv6(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        const OP: &str = "UnassignIpv6Addresses";
        let IpAddr::V6(ip) = address.ip else {
            return Ok(());
        };
        // Fresh: what is on the ENI now decides.
        let facts = match self.describe(&instance.id).await {
            Ok(facts) => facts,
            Err(e) if e.class == ErrorClass::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(eni) = facts.primary_eni.clone() else {
            return Ok(());
        };
        if facts.ipv6_addresses.contains(&ip) {
            match self
                .client
                .unassign_ipv6_addresses()
                .network_interface_id(&eni)
                .ipv6_addresses(ip.to_string())
                .send()
                .await
            {
                Ok(_) => info!(address = %ip, %eni, "IPv6 address unassigned"),
                Err(e) => match from_sdk(OP, e) {
                    gone if gone.class == ErrorClass::NotFound => {}
                    other => return Err(other),
                },
            }
        }
        let tags = vec![
            Tag::builder()
                .key(OWNER_IPV6_TAG)
                .value(ip.to_string())
                .build(),
            Tag::builder()
                .key(OWNER_INSTANCE_TAG)
                .value(&instance.id)
                .build(),
            Tag::builder().key(OWNER_NODE_TAG).build(),
            Tag::builder().key(OWNER_CLUSTER_TAG).build(),
        ];
        self.delete_tags(&eni, tags).await
    }
}

/// Which instance an Elastic IP is on, as the agent compares it: the instance ID EC2
/// gives; else this node's instance if the ENI is one of its own; else the ENI (or the
/// association) itself, so that the address is not free.
fn holder_of(record: &EipRecord, own: Option<&InstanceFacts>) -> Option<String> {
    if let Some(instance) = &record.instance_id {
        return Some(instance.clone());
    }
    if let (Some(eni), Some(own)) = (&record.network_interface_id, own) {
        if own.owns_eni(eni) {
            return Some(own.id.clone());
        }
    }
    record
        .network_interface_id
        .clone()
        .or_else(|| record.association_id.clone())
}

fn ownership_of(tags: &BTreeMap<String, String>) -> Option<Ownership> {
    Ownership::from_tags(tags)
}

fn owner_tags(owner: &Ownership, ipv6: Option<IpAddr>) -> Vec<Tag> {
    let mut tags = vec![
        Tag::builder()
            .key(OWNER_CLUSTER_TAG)
            .value(&owner.cluster)
            .build(),
        Tag::builder()
            .key(OWNER_NODE_TAG)
            .value(&owner.node)
            .build(),
        Tag::builder()
            .key(OWNER_INSTANCE_TAG)
            .value(&owner.instance)
            .build(),
    ];
    if let Some(ip) = ipv6 {
        tags.push(
            Tag::builder()
                .key(OWNER_IPV6_TAG)
                .value(ip.to_string())
                .build(),
        );
    }
    tags
}

fn primary_nic<'a>(
    instance: &'a Instance,
    operation: &'static str,
) -> Result<&'a str, ProviderError> {
    instance
        .nic
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Permanent,
                operation,
                format!(
                    "instance {} has no primary network interface (device index 0)",
                    instance.reference.id
                ),
            )
        })
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    /// EC2's published default buckets ("Request throttling for the Amazon EC2 API"):
    /// `AssociateAddress` is a mutating action (50 burst, 5 a second);
    /// `AssignIpv6Addresses` has its own (100, 5). One call per assignment; the reads and
    /// `CreateTags` have larger buckets. An account with raised limits is throttled
    /// later, and paces by these numbers only once it is.
    fn assignment_rate_limit(&self) -> Option<AssignmentRateLimit> {
        Some(match self.family {
            IpFamily::V4 => AssignmentRateLimit::bucket(50, 5, 1),
            IpFamily::V6 => AssignmentRateLimit::bucket(100, 5, 1),
        })
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        let facts = self.facts_of(&instance.id).await?;
        let nic = facts.primary_eni.clone().ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Permanent,
                "DescribeInstances",
                format!(
                    "instance {} has no primary network interface (device index 0)",
                    instance.id
                ),
            )
        })?;
        Ok(Instance {
            reference: instance.clone(),
            nic: Some(nic),
            private_ip: facts.primary_private_ip.map(IpAddr::V4),
            reserved_ips: facts.reserved_ips.iter().copied().map(IpAddr::V4).collect(),
        })
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        match self.family {
            IpFamily::V4 => self.list_eips(&self.filters).await,
            IpFamily::V6 => self.list_ipv6().await,
        }
    }

    fn reads_pool_parts(&self) -> bool {
        self.family == IpFamily::V4
    }

    /// The Elastic IPs whose last digit `part` chose (`aws::pool_part`); the whole pool
    /// for IPv6 (read from the subnet, not listed) or when `FILTER` names `public-ip`.
    async fn list_pool_part(&self, part: &PoolPart) -> Result<PoolRead, ProviderError> {
        match part_filters(&self.filters, part).filter(|_| self.reads_pool_parts()) {
            Some(filters) => self.list_eips(&filters).await.map(PoolRead::Part),
            None => self.list_pool().await.map(PoolRead::Whole),
        }
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.attach_unrecorded(address, instance, owner).await?;
        self.record_owner(address, instance, owner).await
    }

    /// `AssociateAddress` or `AssignIpv6Addresses`; `CreateTags` is `record_owner`.
    async fn attach_unrecorded(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        _owner: &Ownership,
    ) -> Result<(), ProviderError> {
        match address.ip {
            IpAddr::V4(_) => self.attach_eip(address, instance).await,
            IpAddr::V6(_) => self.attach_ipv6(address, instance).await,
        }
    }

    /// Tags on the Elastic IP, or for IPv6 on the ENI that carries the address.
    async fn record_owner(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        match address.ip {
            IpAddr::V4(_) => self.create_tags(&address.id, owner_tags(owner, None)).await,
            IpAddr::V6(_) => {
                let nic = primary_nic(instance, "CreateTags")?;
                self.create_tags(nic, owner_tags(owner, Some(address.ip)))
                    .await
            }
        }
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        match address.ip {
            IpAddr::V4(_) => self.detach_eip(address, instance).await,
            IpAddr::V6(_) => self.detach_ipv6(address, instance).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EipRecord {
        EipRecord {
            allocation_id: Some("eipalloc-1".into()),
            public_ip: Some("198.51.100.1".parse().unwrap()),
            ..EipRecord::default()
        }
    }

    fn own() -> InstanceFacts {
        InstanceFacts {
            id: "i-me".into(),
            enis: vec!["eni-me".into()],
            ..InstanceFacts::default()
        }
    }

    #[test]
    fn the_holder_is_the_instance_ec2_names() {
        let mut r = record();
        r.instance_id = Some("i-other".into());
        r.network_interface_id = Some("eni-me".into());
        assert_eq!(holder_of(&r, Some(&own())).as_deref(), Some("i-other"));
    }

    #[test]
    fn an_eni_association_without_instance_is_resolved_through_the_eni() {
        let mut r = record();
        r.association_id = Some("eipassoc-1".into());
        r.network_interface_id = Some("eni-me".into());
        assert_eq!(holder_of(&r, Some(&own())).as_deref(), Some("i-me"));
        r.network_interface_id = Some("eni-nat-gateway".into());
        assert_eq!(
            holder_of(&r, Some(&own())).as_deref(),
            Some("eni-nat-gateway")
        );
        assert_eq!(holder_of(&record(), Some(&own())), None);
    }

    #[test]
    fn ownership_needs_all_three_tags() {
        let tags: BTreeMap<String, String> = [(OWNER_CLUSTER_TAG, "c"), (OWNER_NODE_TAG, "n")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(ownership_of(&tags), None);
        let owner = Ownership {
            cluster: "c".into(),
            node: "n".into(),
            instance: "i".into(),
        };
        let written: BTreeMap<String, String> = owner_tags(&owner, None)
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or("").to_string(),
                    t.value().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(ownership_of(&written), Some(owner));
    }

    #[test]
    fn ipv6_without_a_pool_is_refused_at_construction() {
        let client = super::super::client_for_endpoint("http://127.0.0.1:9", "us-east-1", 1);
        let node = InstanceRef {
            cloud: "aws".into(),
            project: None,
            zone: "us-east-1a".into(),
            id: "i-1".into(),
        };
        let settings = AwsSettings {
            pool: PoolSpec {
                family: IpFamily::V6,
                ..PoolSpec::default()
            },
            ipv6_pool: None,
        };
        let err = AwsProvider::new(client.clone(), node.clone(), &settings)
            .err()
            .unwrap();
        assert_eq!(err.class, ErrorClass::InvalidInput);
        assert!(err.message.contains("IPV6_POOL"), "{err}");
        let bad_filter = AwsSettings {
            pool: PoolSpec {
                filter: vec!["Name=colour,Values=red".into()],
                ..PoolSpec::default()
            },
            ipv6_pool: None,
        };
        let err = AwsProvider::new(client, node, &bad_filter).err().unwrap();
        assert!(err.message.contains("Name=colour,Values=red"), "{err}");
    }
}
