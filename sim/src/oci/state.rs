//! The Core Services semantics the simulator enforces, on plain data (no HTTP here):
//!
//! - a private IP holds at most one public IP in ASSIGNING or ASSIGNED; assigning a
//!   second one is 409 `Conflict` ("the target private IP must not already have a public
//!   IP with lifecycleState ASSIGNING or ASSIGNED");
//! - `UpdatePublicIp(privateIpId)` **moves** a reserved public IP that is assigned
//!   elsewhere (the API has no guard): the simulator lets it, and records a violation,
//!   because pinip must never do that;
//! - assigning and unassigning are asynchronous: ASSIGNING → ASSIGNED, UNASSIGNING →
//!   AVAILABLE after the transition time; an assignment whose target private IP was
//!   deleted or taken in the interim ends AVAILABLE, silently, as documented;
//! - an ephemeral public IP is created on a primary private IP, cannot be moved or
//!   unassigned (only deleted), and dies with its private IP; a reserved one returns to
//!   AVAILABLE, its tags kept, when its private IP is deleted (instance terminated);
//! - free-form tags: at most 10, keys of 1–100 characters without `.` or spaces,
//!   values of at most 256 characters; an update replaces the whole map.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::errors::ApiError;
use super::model::{
    DefinedTags, Lifetime, PipState, SimInstance, SimPrivateIp, SimPublicIp, SimVnic,
};

const MAX_FREEFORM_TAGS: usize = 10;
const MAX_TAG_KEY: usize = 100;
const MAX_TAG_VALUE: usize = 256;

pub struct State {
    pub region: String,
    /// The short region key in OCIDs (`iad` for us-ashburn-1).
    pub region_key: String,
    pub tenancy: String,
    pub compartments: BTreeSet<String>,
    pub tag_namespaces: BTreeSet<String>,
    /// Keyed by OCID; OCIDs carry a counter, so the order is creation order.
    pub public_ips: BTreeMap<String, SimPublicIp>,
    pub instances: BTreeMap<String, SimInstance>,
    pub vnics: BTreeMap<String, SimVnic>,
    pub private_ips: BTreeMap<String, SimPrivateIp>,
    pub violations: Vec<String>,
    next: u64,
    ephemeral: u32,
}

impl State {
    pub fn new(region: &str, region_key: &str) -> State {
        let tenancy = "ocid1.tenancy.oc1..aaaaaaaapinipsimtenancy".to_string();
        State {
            region: region.into(),
            region_key: region_key.into(),
            compartments: BTreeSet::from([tenancy.clone()]),
            tenancy,
            tag_namespaces: BTreeSet::new(),
            public_ips: BTreeMap::new(),
            instances: BTreeMap::new(),
            vnics: BTreeMap::new(),
            private_ips: BTreeMap::new(),
            violations: Vec::new(),
            next: 0,
            ephemeral: 0,
        }
    }

    pub fn ocid(&mut self, kind: &str) -> String {
        self.next += 1;
        let n = self.next;
        match kind {
            "compartment" => format!("ocid1.compartment.oc1..aaaaaaaa{n:016x}"),
            _ => format!("ocid1.{kind}.oc1.{}.aaaaaaaa{n:016x}", self.region_key),
        }
    }

    /// Finish every transition whose time has come.
    pub fn settle(&mut self, now: Instant) {
        let ids: Vec<String> = self.public_ips.keys().cloned().collect();
        for id in ids {
            let Some(p) = self.public_ips.get(&id) else {
                continue;
            };
            let next = match p.state {
                PipState::Assigning { until } if now >= until => {
                    let target = p.private_ip.clone().unwrap_or_default();
                    let alive = self.private_ips.contains_key(&target);
                    let taken = self.occupant_other_than(&target, &id).is_some();
                    if alive && !taken {
                        Some((PipState::Assigned, p.private_ip.clone()))
                    } else {
                        // Documented: the move fails silently and the IP stays unassigned.
                        Some((PipState::Available, None))
                    }
                }
                PipState::Unassigning { until } if now >= until => {
                    Some((PipState::Available, None))
                }
                PipState::Terminating { until } if now >= until => {
                    Some((PipState::Terminated, None))
                }
                _ => None,
            };
            if let (Some((state, private_ip)), Some(p)) = (next, self.public_ips.get_mut(&id)) {
                p.state = state;
                p.private_ip = private_ip;
                p.generation += 1;
            }
        }
    }

    /// The public IP occupying `private_ip` (ASSIGNING or ASSIGNED), if any.
    pub fn occupant(&self, private_ip: &str) -> Option<&SimPublicIp> {
        self.public_ips
            .values()
            .find(|p| p.state.occupies() && p.private_ip.as_deref() == Some(private_ip))
    }

    fn occupant_other_than(&self, private_ip: &str, id: &str) -> Option<&SimPublicIp> {
        self.public_ips.values().find(|p| {
            p.id != id && p.state.occupies() && p.private_ip.as_deref() == Some(private_ip)
        })
    }

    /// The instance behind a private IP (private IP → VNIC → attachment).
    pub fn instance_of_private_ip(&self, private_ip: &str) -> Option<&SimInstance> {
        let vnic = self.vnics.get(&self.private_ips.get(private_ip)?.vnic_id)?;
        self.instances.get(&vnic.instance_id)
    }

    /// The primary private IP of an instance's primary VNIC.
    pub fn primary_private_ip(&self, instance: &str) -> Option<&SimPrivateIp> {
        let vnic = self
            .vnics
            .values()
            .find(|v| v.instance_id == instance && v.is_primary && v.attached)?;
        self.private_ips
            .values()
            .find(|p| p.vnic_id == vnic.id && p.is_primary)
    }

    pub fn next_ephemeral_ip(&mut self) -> Ipv4Addr {
        self.ephemeral += 1;
        // 100.64.0.0/10, far from any pool the tests reserve.
        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + self.ephemeral)
    }

    /// `CreatePublicIp`. Returns the new OCID.
    pub fn create_public_ip(
        &mut self,
        body: &Map<String, Value>,
        now: Instant,
        transition: Duration,
        created: String,
    ) -> Result<String, ApiError> {
        let compartment = required_str(body, "compartmentId")?;
        if !self.compartments.contains(&compartment) {
            return Err(related_not_found("compartmentId"));
        }
        let lifetime = match required_str(body, "lifetime")?.as_str() {
            "EPHEMERAL" => Lifetime::Ephemeral,
            "RESERVED" => Lifetime::Reserved,
            other => {
                return Err(ApiError::invalid_parameter(format!(
                    "lifetime must be EPHEMERAL or RESERVED, not {other}"
                )))
            }
        };
        let (freeform, defined) = self.tags_of(body)?;
        let target = optional_str(body, "privateIpId").filter(|s| !s.is_empty());
        let mut availability_domain = None;
        if let Some(target) = &target {
            let private_ip = self
                .private_ips
                .get(target)
                .ok_or_else(|| related_not_found("privateIpId"))?;
            if lifetime == Lifetime::Ephemeral && !private_ip.is_primary {
                return Err(ApiError::invalid_parameter(
                    "An ephemeral public IP can only be assigned to a primary private IP.",
                ));
            }
            if lifetime == Lifetime::Ephemeral {
                availability_domain = Some(private_ip.availability_domain.clone());
            }
            if self.occupant(target).is_some() {
                return Err(ApiError::conflict(format!(
                    "The private IP {target} already has a public IP assigned."
                )));
            }
        } else if lifetime == Lifetime::Ephemeral {
            return Err(ApiError::missing_parameter("privateIpId"));
        }
        let ip = self.next_ephemeral_ip();
        let id = self.ocid("publicip");
        let state = match target {
            Some(_) => PipState::Assigning {
                until: now + transition,
            },
            None => PipState::Available,
        };
        self.public_ips.insert(
            id.clone(),
            SimPublicIp {
                id: id.clone(),
                ip,
                lifetime,
                compartment,
                display_name: optional_str(body, "displayName")
                    .unwrap_or_else(|| format!("publicip{}", self.next)),
                freeform_tags: freeform.unwrap_or_default(),
                defined_tags: defined.unwrap_or_default(),
                private_ip: target,
                availability_domain,
                state,
                generation: 1,
                time_created: created,
            },
        );
        self.check_invariants();
        Ok(id)
    }

    /// `UpdatePublicIp`: assign, move, unassign, rename, retag.
    pub fn update_public_ip(
        &mut self,
        id: &str,
        body: &Map<String, Value>,
        now: Instant,
        transition: Duration,
    ) -> Result<(), ApiError> {
        let (freeform, defined) = self.tags_of(body)?;
        let current = self.live(id)?.clone();
        if let Some(value) = body.get("privateIpId") {
            let target = value.as_str().unwrap_or_default().to_string();
            self.reassign(&current, &target, now, transition)?;
        }
        let Some(p) = self.public_ips.get_mut(id) else {
            return Err(ApiError::not_authorized_or_not_found());
        };
        if let Some(name) = optional_str(body, "displayName") {
            p.display_name = name;
        }
        if let Some(tags) = freeform {
            p.freeform_tags = tags;
        }
        if let Some(tags) = defined {
            p.defined_tags = tags;
        }
        p.generation += 1;
        self.check_invariants();
        Ok(())
    }

    fn reassign(
        &mut self,
        current: &SimPublicIp,
        target: &str,
        now: Instant,
        transition: Duration,
    ) -> Result<(), ApiError> {
        let on = current
            .private_ip
            .as_deref()
            .filter(|_| current.state.occupies());
        if on == Some(target)
            || (target.is_empty() && on.is_none() && current.state == PipState::Available)
        {
            return Ok(());
        }
        if current.lifetime == Lifetime::Ephemeral {
            return Err(ApiError::invalid_parameter(
                "An ephemeral public IP cannot be moved or unassigned; delete it instead.",
            ));
        }
        if matches!(
            current.state,
            PipState::Assigning { .. }
                | PipState::Unassigning { .. }
                | PipState::Terminating { .. }
        ) {
            return Err(ApiError::incorrect_state(format!(
                "The public IP {} is {}; try again when it is done.",
                current.id,
                current.state.api_name()
            )));
        }
        let source = on.and_then(|p| self.instance_of_private_ip(p)).cloned();
        if target.is_empty() {
            if let Some(instance) = source.as_ref().filter(|i| !i.managed) {
                self.violations.push(format!(
                    "reserved public IP {} unassigned from instance {}, which pinip does not manage",
                    current.ip, instance.id
                ));
            }
            if let Some(p) = self.public_ips.get_mut(&current.id) {
                p.state = PipState::Unassigning {
                    until: now + transition,
                };
            }
            return Ok(());
        }
        if !self.private_ips.contains_key(target) {
            return Err(related_not_found("privateIpId"));
        }
        if self.occupant(target).is_some() {
            return Err(ApiError::conflict(format!(
                "The private IP {target} already has a public IP with lifecycleState ASSIGNING or ASSIGNED."
            )));
        }
        if let Some(from) = source {
            let to = self.instance_of_private_ip(target).map(|i| i.id.clone());
            if to.as_deref() != Some(from.id.as_str()) {
                self.violations.push(format!(
                    "reserved public IP {} moved from instance {} to {} (UpdatePublicIp takes it from its holder)",
                    current.ip,
                    from.id,
                    to.unwrap_or_default()
                ));
            }
        }
        if let Some(p) = self.public_ips.get_mut(&current.id) {
            p.private_ip = Some(target.to_string());
            p.state = PipState::Assigning {
                until: now + transition,
            };
        }
        Ok(())
    }

    /// `DeletePublicIp`: TERMINATING, then TERMINATED; the private IP is free at once.
    pub fn delete_public_ip(
        &mut self,
        id: &str,
        now: Instant,
        transition: Duration,
    ) -> Result<(), ApiError> {
        let current = self.live(id)?.clone();
        if matches!(current.state, PipState::Terminating { .. }) {
            return Ok(());
        }
        let holder = current
            .private_ip
            .as_deref()
            .filter(|_| current.state.occupies())
            .and_then(|p| self.instance_of_private_ip(p));
        if let Some(instance) = holder.filter(|i| !i.managed) {
            self.violations.push(format!(
                "public IP {} deleted from instance {}, which pinip does not manage",
                current.ip, instance.id
            ));
        }
        if let Some(p) = self.public_ips.get_mut(id) {
            p.state = PipState::Terminating {
                until: now + transition,
            };
            p.generation += 1;
        }
        Ok(())
    }

    /// A public IP that exists and is not TERMINATED, else 404.
    pub fn live(&self, id: &str) -> Result<&SimPublicIp, ApiError> {
        self.public_ips
            .get(id)
            .filter(|p| p.state != PipState::Terminated)
            .ok_or_else(ApiError::not_authorized_or_not_found)
    }

    /// The instance is terminated: VNICs detach, private IPs go, ephemeral public IPs
    /// die with them, reserved ones return to AVAILABLE with their tags.
    pub fn terminate_instance(&mut self, id: &str) {
        let Some(instance) = self.instances.get_mut(id) else {
            return;
        };
        instance.terminated = true;
        instance.generation += 1;
        let vnics: Vec<String> = self
            .vnics
            .values_mut()
            .filter(|v| v.instance_id == id)
            .map(|v| {
                v.attached = false;
                v.id.clone()
            })
            .collect();
        let gone: Vec<String> = self
            .private_ips
            .values()
            .filter(|p| vnics.contains(&p.vnic_id))
            .map(|p| p.id.clone())
            .collect();
        for private_ip in &gone {
            self.private_ips.remove(private_ip);
        }
        for p in self.public_ips.values_mut() {
            if p.private_ip.as_ref().is_some_and(|t| gone.contains(t)) {
                p.private_ip = None;
                p.state = match p.lifetime {
                    Lifetime::Ephemeral => PipState::Terminated,
                    Lifetime::Reserved => PipState::Available,
                };
                p.generation += 1;
            }
        }
    }

    /// One public IP per private IP; anything else is a breach of the API's own rule.
    fn check_invariants(&mut self) {
        let mut per_private: BTreeMap<&str, Vec<Ipv4Addr>> = BTreeMap::new();
        for p in self.public_ips.values().filter(|p| p.state.occupies()) {
            if let Some(target) = p.private_ip.as_deref() {
                per_private.entry(target).or_default().push(p.ip);
            }
        }
        let breaches: Vec<String> = per_private
            .into_iter()
            .filter(|(_, ips)| ips.len() > 1)
            .map(|(target, ips)| {
                format!(
                    "private IP {target} holds {} public IPs: {ips:?}",
                    ips.len()
                )
            })
            .collect();
        self.violations.extend(breaches);
    }

    /// `freeformTags` and `definedTags` of a create/update body, validated (None: absent).
    #[allow(clippy::type_complexity)]
    fn tags_of(
        &self,
        body: &Map<String, Value>,
    ) -> Result<(Option<BTreeMap<String, String>>, Option<DefinedTags>), ApiError> {
        let freeform = match body.get("freeformTags") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let tags: BTreeMap<String, String> = serde_json::from_value(value.clone())
                    .map_err(|_| {
                        ApiError::invalid_parameter("freeformTags must map strings to strings.")
                    })?;
                validate_freeform(&tags)?;
                Some(tags)
            }
        };
        let defined = match body.get("definedTags") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let tags: DefinedTags = serde_json::from_value(value.clone()).map_err(|_| {
                    ApiError::invalid_parameter("definedTags must map namespaces to tag maps.")
                })?;
                if let Some(unknown) = tags.keys().find(|ns| !self.tag_namespaces.contains(*ns)) {
                    return Err(ApiError::invalid_parameter(format!(
                        "The tag namespace {unknown} does not exist."
                    )));
                }
                Some(tags)
            }
        };
        Ok((freeform, defined))
    }
}

pub fn validate_freeform(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > MAX_FREEFORM_TAGS {
        return Err(ApiError::invalid_parameter(format!(
            "A resource can have at most {MAX_FREEFORM_TAGS} free-form tags."
        )));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > MAX_TAG_KEY || key.contains(['.', ' ']) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid free-form tag key {key:?}: 1 to {MAX_TAG_KEY} characters, no periods or spaces."
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE {
            return Err(ApiError::invalid_parameter(format!(
                "The value of free-form tag {key} is longer than {MAX_TAG_VALUE} characters."
            )));
        }
    }
    Ok(())
}

fn related_not_found(field: &str) -> ApiError {
    ApiError::new(
        400,
        "RelatedResourceNotAuthorizedOrNotFound",
        format!("The resource in {field} was not found or you are not authorized to use it."),
    )
}

fn required_str(body: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    optional_str(body, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing_parameter(key))
}

fn optional_str(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeform_tag_rules() {
        let ok = BTreeMap::from([("pinip-node".to_string(), "ip-10-0-0-1.internal".to_string())]);
        assert!(validate_freeform(&ok).is_ok());
        for bad in ["pinip.dev/node", "has space", ""] {
            let tags = BTreeMap::from([(bad.to_string(), "v".to_string())]);
            assert_eq!(
                validate_freeform(&tags).unwrap_err().code,
                "InvalidParameter",
                "{bad}"
            );
        }
        let many: BTreeMap<String, String> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(validate_freeform(&many).is_err());
    }
}
