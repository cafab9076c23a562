//! What tests and `pinip simulate` read back from the OCI simulator: the public IPs as
//! the API shows them now, who holds what, invariant breaches and request counts.

use std::net::Ipv4Addr;

use tokio::time::Instant;

use std::collections::BTreeMap;

use super::model::{Lifetime, PipState};
use super::{lock, OciSim, WRITE_OPERATIONS};

/// Requests served so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every HTTP request, unknown paths included.
    pub total: u64,
    /// By operation, every one of [`OPERATIONS`](super::OPERATIONS) listed.
    pub by_operation: BTreeMap<String, u64>,
    /// Answered with an injected fault (random, scripted or denied).
    pub injected: u64,
    /// Refused with 401 (bad or missing signature).
    pub unauthenticated: u64,
}

impl RequestCounts {
    pub fn operation(&self, op: &str) -> u64 {
        self.by_operation.get(op).copied().unwrap_or(0)
    }

    pub fn writes(&self) -> u64 {
        WRITE_OPERATIONS.iter().map(|o| self.operation(o)).sum()
    }
}

/// One public IP as the API shows it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicIpSnapshot {
    pub id: String,
    pub ip: Ipv4Addr,
    pub lifetime: Lifetime,
    /// `lifecycleState`: AVAILABLE, ASSIGNING, ASSIGNED, …
    pub state: String,
    pub private_ip_id: Option<String>,
    /// The instance behind that private IP.
    pub instance_id: Option<String>,
    pub freeform_tags: BTreeMap<String, String>,
}

impl OciSim {
    /// Every public IP not TERMINATED, transitions settled to now.
    pub fn public_ips(&self) -> Vec<PublicIpSnapshot> {
        let mut state = self.shared.state();
        state.settle(Instant::now());
        state
            .public_ips
            .values()
            .filter(|p| p.state != PipState::Terminated)
            .map(|p| PublicIpSnapshot {
                id: p.id.clone(),
                ip: p.ip,
                lifetime: p.lifetime,
                state: p.state.api_name().to_string(),
                private_ip_id: p.private_ip.clone(),
                instance_id: p
                    .private_ip
                    .as_deref()
                    .and_then(|t| state.instance_of_private_ip(t))
                    .map(|i| i.id.clone()),
                freeform_tags: p.freeform_tags.clone(),
            })
            .collect()
    }

    /// The public IP (ASSIGNING or ASSIGNED) on the instance's primary private IP.
    pub fn public_ip_of(&self, instance: &str) -> Option<(Ipv4Addr, Lifetime)> {
        let mut state = self.shared.state();
        state.settle(Instant::now());
        let target = state.primary_private_ip(instance)?.id.clone();
        state.occupant(&target).map(|p| (p.ip, p.lifetime))
    }

    /// The reserved public IPs of every instance that holds one, in one look.
    pub fn attachments(&self) -> BTreeMap<String, Vec<Ipv4Addr>> {
        let mut state = self.shared.state();
        state.settle(Instant::now());
        let mut out: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for p in state.public_ips.values() {
            if p.lifetime != Lifetime::Reserved || !p.state.occupies() {
                continue;
            }
            let holder = p
                .private_ip
                .as_deref()
                .and_then(|t| state.private_ips.get(t))
                .and_then(|pip| state.vnics.get(&pip.vnic_id));
            if let Some(vnic) = holder {
                out.entry(vnic.instance_id.clone()).or_default().push(p.ip);
            }
        }
        out
    }

    /// Reserved public IPs on the instance.
    pub fn attached_to(&self, instance: &str) -> Vec<Ipv4Addr> {
        // Without a snapshot of everything: a cloud controller asks this for every node
        // several times a second, and requests wait for the same lock.
        let mut state = self.shared.state();
        state.settle(Instant::now());
        let on_instance = |private_ip: &str| {
            state
                .private_ips
                .get(private_ip)
                .and_then(|p| state.vnics.get(&p.vnic_id))
                .is_some_and(|v| v.instance_id == instance)
        };
        state
            .public_ips
            .values()
            .filter(|p| p.lifetime == Lifetime::Reserved && p.state.occupies())
            .filter(|p| p.private_ip.as_deref().is_some_and(on_instance))
            .map(|p| p.ip)
            .collect()
    }

    /// Managed, running instances without any public IP right now (a swap cut in half,
    /// a failed restore). Point in time: meaningful once no swap is in flight.
    pub fn managed_without_public_ip(&self) -> Vec<String> {
        let ids: Vec<String> = {
            let state = self.shared.state();
            state
                .instances
                .values()
                .filter(|i| i.managed && !i.terminated)
                .map(|i| i.id.clone())
                .collect()
        };
        ids.into_iter()
            .filter(|i| self.public_ip_of(i).is_none())
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.state().violations.clone()
    }

    pub fn request_counts(&self) -> RequestCounts {
        lock(&self.shared.counts).clone()
    }
}
