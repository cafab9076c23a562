//! The Compute semantics the simulator enforces, on plain data (no HTTP here):
//! one external IPv4 access config per NIC ("At most one access config currently
//! supported"), a static address used by one resource at a time (the operation ends in
//! `IP_IN_USE_BY_ANOTHER_RESOURCE` otherwise), fingerprints checked on NIC updates and
//! label changes (412 when stale), ephemeral addresses handed out when none is named.
//! Every change to an unmanaged instance's static address is recorded as a violation.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::errors::ApiError;
use super::fingerprint;
use super::model::{
    region_of_zone, OperationError, SimAccessConfig, SimAddress, SimInstance, SimNic,
};

const V4_NAME: &str = "external-nat";
pub(super) const V6_NAME: &str = "external-ipv6";

#[derive(Clone, Default)]
pub struct State {
    /// Keyed by (region, name). Shared values: every write is first tried on a copy of
    /// the state (`operations`), which copies the maps' pointers, not every address
    /// and instance; a write clones the one it changes (`Arc::make_mut`).
    pub addresses: BTreeMap<(String, String), Arc<SimAddress>>,
    /// Keyed by name (names are unique in this simulator).
    pub instances: BTreeMap<String, Arc<SimInstance>>,
    pub violations: Vec<String>,
    next_id: u64,
    ephemeral_v4: u32,
    ephemeral_v6: u32,
}

/// What a mutating call did: nothing to report, or an operation that ends in error.
pub type Applied = Result<Option<OperationError>, ApiError>;

fn op_error(code: &str, status: u16, message: String) -> Applied {
    Ok(Some(OperationError {
        code: code.into(),
        message,
        http_status: status,
    }))
}

impl State {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        1_000_000 + self.next_id
    }

    pub fn add_address(
        &mut self,
        region: &str,
        name: &str,
        ip: IpAddr,
        labels: BTreeMap<String, String>,
        created: String,
    ) {
        let id = self.next_id();
        self.addresses.insert(
            (region.to_string(), name.to_string()),
            Arc::new(SimAddress {
                id,
                name: name.to_string(),
                region: region.to_string(),
                ip,
                tier: "PREMIUM".into(),
                prefix_length: ip.is_ipv6().then_some(96),
                endpoint_type: ip.is_ipv6().then(|| "VM".to_string()),
                subnetwork: ip.is_ipv6().then(|| "default".to_string()),
                labels,
                label_generation: 1,
                created,
            }),
        );
    }

    /// A VM with one dual-stack NIC holding ephemeral external IPv4 and IPv6.
    pub fn add_instance(
        &mut self,
        zone: &str,
        name: &str,
        managed: bool,
        subnetwork: &str,
        created: String,
    ) {
        let id = self.next_id();
        let n = self.instances.len() as u32 + 2;
        let nic = SimNic {
            name: "nic0".into(),
            subnetwork: subnetwork.to_string(),
            network_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + n),
            stack_type: "IPV4_IPV6".into(),
            access_config: Some(self.ephemeral_access_config(V4_NAME, false, "PREMIUM")),
            ipv6_access_config: Some(self.ephemeral_access_config(V6_NAME, true, "PREMIUM")),
            generation: 1,
        };
        self.instances.insert(
            name.to_string(),
            Arc::new(SimInstance {
                id,
                name: name.to_string(),
                zone: zone.to_string(),
                managed,
                nic,
                created,
            }),
        );
    }

    pub(super) fn ephemeral_access_config(
        &mut self,
        name: &str,
        v6: bool,
        tier: &str,
    ) -> SimAccessConfig {
        let ip = if v6 {
            self.ephemeral_v6 += 1;
            IpAddr::V6(Ipv6Addr::new(
                0x2600,
                0x1900,
                0x4000,
                self.ephemeral_v6 as u16,
                0,
                0,
                0,
                0,
            ))
        } else {
            self.ephemeral_v4 += 1;
            // 100.64.0.0/10, far from any pool the tests reserve.
            IpAddr::V4(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(100, 64, 0, 0)) + self.ephemeral_v4,
            ))
        };
        SimAccessConfig {
            name: name.into(),
            ip,
            tier: tier.into(),
            prefix_length: v6.then_some(96),
            extra: Map::new(),
        }
    }

    /// Instance names holding each IP, from the NICs (the one source of truth).
    pub fn holders(&self) -> HashMap<IpAddr, Vec<String>> {
        let mut map: HashMap<IpAddr, Vec<String>> = HashMap::new();
        for instance in self.instances.values() {
            for ip in instance.external_ips() {
                map.entry(ip).or_default().push(instance.name.clone());
            }
        }
        map
    }

    pub fn zone_of(&self, instance: &str) -> String {
        self.instances
            .get(instance)
            .map(|i| i.zone.clone())
            .unwrap_or_default()
    }

    pub fn instance(
        &self,
        zone: &str,
        name: &str,
        project_path: &str,
    ) -> Result<&SimInstance, ApiError> {
        self.instances
            .get(name)
            .map(|i| &**i)
            .filter(|i| i.zone == zone)
            .ok_or_else(|| {
                ApiError::not_found(&format!("{project_path}/zones/{zone}/instances/{name}"))
            })
    }

    pub(super) fn instance_mut(
        &mut self,
        zone: &str,
        name: &str,
        project_path: &str,
    ) -> Result<&mut SimInstance, ApiError> {
        self.instances
            .get_mut(name)
            .filter(|i| i.zone == zone)
            .map(Arc::make_mut)
            .ok_or_else(|| {
                ApiError::not_found(&format!("{project_path}/zones/{zone}/instances/{name}"))
            })
    }

    /// The static address with this IP in `region`, if any.
    pub(super) fn static_address(&self, ip: IpAddr) -> Option<&SimAddress> {
        self.addresses.values().map(|a| &**a).find(|a| a.ip == ip)
    }

    /// A static address leaving an instance pinip must not touch.
    pub(super) fn note_removal(&mut self, instance: &str, removed: Option<IpAddr>) {
        let Some(ip) = removed else { return };
        let managed = self.instances.get(instance).is_none_or(|i| i.managed);
        if !managed && self.static_address(ip).is_some() {
            self.violations.push(format!(
                "static address {ip} removed from instance {instance}, which pinip does not manage"
            ));
        }
    }

    /// Can `ip` (a static address) go on `instance`? None: yes; Some: the operation error.
    pub(super) fn check_static(
        &self,
        instance: &SimInstance,
        ip: IpAddr,
        tier: Option<&str>,
    ) -> Option<Applied> {
        let region = region_of_zone(&instance.zone);
        let Some(address) = self.static_address(ip) else {
            // Only reserved addresses (or none, for an ephemeral one) can be named.
            return Some(op_error(
                "INVALID_USAGE",
                400,
                format!("The IP address {ip} is not reserved in this project."),
            ));
        };
        if address.region != region {
            return Some(op_error(
                "INVALID_USAGE",
                400,
                format!(
                    "The address {} is in region {}, the instance in {region}.",
                    address.name, address.region
                ),
            ));
        }
        if let Some(tier) = tier {
            if tier != address.tier {
                return Some(op_error(
                    "INVALID_USAGE",
                    400,
                    format!(
                        "The network tier {tier} does not match the tier {} of address {}.",
                        address.tier, address.name
                    ),
                ));
            }
        }
        let users = self.holders().remove(&ip).unwrap_or_default();
        if users.iter().any(|u| u != &instance.name) {
            return Some(op_error(
                "IP_IN_USE_BY_ANOTHER_RESOURCE",
                400,
                format!("IP '{ip}' is already being used by another resource."),
            ));
        }
        None
    }

    pub fn add_access_config(
        &mut self,
        zone: &str,
        name: &str,
        nic: &str,
        body: &Value,
        project_path: &str,
    ) -> Applied {
        let instance = self.instance(zone, name, project_path)?.clone();
        if instance.nic.name != nic {
            return Err(ApiError::invalid_field(
                "networkInterface",
                nic,
                "No such network interface.",
            ));
        }
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ONE_TO_ONE_NAT");
        if kind != "ONE_TO_ONE_NAT" {
            return Err(ApiError::invalid_field(
                "resource.type",
                kind,
                "Only ONE_TO_ONE_NAT is supported in accessConfigs.",
            ));
        }
        if instance.nic.access_config.is_some() {
            return Err(ApiError::bad_request(
                "Invalid value for field 'resource': ''. At most one access config currently supported.",
            ));
        }
        let tier = body.get("networkTier").and_then(Value::as_str);
        let access_name = body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(V4_NAME)
            .to_string();
        let config = match body
            .get("natIP")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(text) => {
                let ip: Ipv4Addr = text.parse().map_err(|_| {
                    ApiError::invalid_field("resource.natIP", text, "Must be an IPv4 address.")
                })?;
                let ip = IpAddr::V4(ip);
                if let Some(failed) = self.check_static(&instance, ip, tier) {
                    return failed;
                }
                let tier = self
                    .static_address(ip)
                    .map(|a| a.tier.clone())
                    .unwrap_or_else(|| "PREMIUM".into());
                SimAccessConfig {
                    name: access_name,
                    ip,
                    tier,
                    prefix_length: None,
                    extra: Map::new(),
                }
            }
            None => {
                let mut c =
                    self.ephemeral_access_config(&access_name, false, tier.unwrap_or("PREMIUM"));
                c.name = access_name;
                c
            }
        };
        let instance = self.instance_mut(zone, name, project_path)?;
        instance.nic.access_config = Some(config);
        instance.nic.generation += 1;
        Ok(None)
    }

    pub fn delete_access_config(
        &mut self,
        zone: &str,
        name: &str,
        nic: &str,
        access: &str,
        project_path: &str,
    ) -> Applied {
        let instance = self.instance_mut(zone, name, project_path)?;
        if instance.nic.name != nic {
            return Err(ApiError::invalid_field(
                "networkInterface",
                nic,
                "No such network interface.",
            ));
        }
        match &instance.nic.access_config {
            Some(ac) if ac.name == access => {}
            _ => {
                return Err(ApiError::invalid_field(
                    "accessConfig",
                    access,
                    "The network interface has no access config of that name.",
                ))
            }
        }
        let removed = instance.nic.access_config.take().map(|ac| ac.ip);
        instance.nic.generation += 1;
        self.note_removal(name, removed);
        Ok(None)
    }

    /// `updateAccessConfig`: the PTR record and the tier; the address itself cannot change.
    pub fn update_access_config(
        &mut self,
        zone: &str,
        name: &str,
        nic: &str,
        body: &Value,
        project_path: &str,
    ) -> Applied {
        let instance = self.instance_mut(zone, name, project_path)?;
        if instance.nic.name != nic {
            return Err(ApiError::invalid_field(
                "networkInterface",
                nic,
                "No such network interface.",
            ));
        }
        let wanted = body.get("name").and_then(Value::as_str);
        let Some(config) = instance
            .nic
            .access_config
            .as_mut()
            .filter(|ac| wanted.is_none_or(|w| w == ac.name))
        else {
            return Err(ApiError::invalid_field(
                "resource.name",
                wanted.unwrap_or(""),
                "No such access config.",
            ));
        };
        if let Some(nat) = body.get("natIP").and_then(Value::as_str) {
            if nat.parse::<IpAddr>().ok() != Some(config.ip) {
                return Err(ApiError::invalid_field(
                    "resource.natIP",
                    nat,
                    "The natIP of an access config cannot be updated.",
                ));
            }
        }
        for key in ["publicPtrDomainName", "setPublicPtr"] {
            if let Some(v) = body.get(key) {
                config.extra.insert(key.into(), v.clone());
            }
        }
        if let Some(tier) = body.get("networkTier").and_then(Value::as_str) {
            config.tier = tier.into();
        }
        instance.nic.generation += 1;
        Ok(None)
    }

    /// `setLabels`: the fingerprint must be valid and current; keys and values must
    /// follow GCP's label rules.
    pub fn set_labels(
        &mut self,
        region: &str,
        name: &str,
        body: &Value,
        project_path: &str,
    ) -> Applied {
        let key = (region.to_string(), name.to_string());
        let address = self
            .addresses
            .get_mut(&key)
            .map(Arc::make_mut)
            .ok_or_else(|| {
                ApiError::not_found(&format!("{project_path}/regions/{region}/addresses/{name}"))
            })?;
        let Some(given) = body.get("labelFingerprint").and_then(Value::as_str) else {
            return Err(ApiError::bad_request(
                "Required field 'labelFingerprint' not specified",
            ));
        };
        if !fingerprint::is_valid(given) {
            return Err(ApiError::invalid_field(
                "labelFingerprint",
                given,
                "Must be base64.",
            ));
        }
        if given != address.label_fingerprint() {
            return Err(ApiError::stale_fingerprint("label"));
        }
        let mut labels = BTreeMap::new();
        if let Some(map) = body.get("labels").and_then(Value::as_object) {
            for (k, v) in map {
                let v = v.as_str().unwrap_or_default();
                if !valid_label(k, true) || !valid_label(v, false) {
                    return Err(ApiError::invalid_field(&format!("labels.{k}"), v, "Label keys and values may only contain lowercase letters, digits, '_' and '-', at most 63 characters; keys start with a letter."));
                }
                labels.insert(k.clone(), v.to_string());
            }
        }
        address.labels = labels;
        address.label_generation += 1;
        Ok(None)
    }
}

fn valid_label(text: &str, key: bool) -> bool {
    text.len() <= 63
        && (!key || text.starts_with(|c: char| c.is_ascii_lowercase()))
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &str = "projects/p";

    fn state() -> State {
        let mut s = State::default();
        s.add_address(
            "us-central1",
            "pool-1",
            "203.0.113.10".parse().unwrap(),
            BTreeMap::new(),
            "t".into(),
        );
        s.add_address(
            "us-central1",
            "v6-1",
            "2600:1900:4000:abcd::".parse().unwrap(),
            BTreeMap::new(),
            "t".into(),
        );
        s.add_instance("us-central1-a", "node-1", true, "default", "t".into());
        s.add_instance("us-central1-a", "node-2", true, "default", "t".into());
        s
    }

    fn ok(applied: Applied) {
        assert_eq!(applied, Ok(None));
    }

    #[test]
    fn the_ipv4_swap_and_its_guards() {
        let mut s = state();
        let add =
            json!({"name": "external-nat", "type": "ONE_TO_ONE_NAT", "natIP": "203.0.113.10"});
        // One access config per NIC.
        assert_eq!(
            s.add_access_config("us-central1-a", "node-1", "nic0", &add, P)
                .unwrap_err()
                .status,
            400
        );
        ok(s.delete_access_config("us-central1-a", "node-1", "nic0", "external-nat", P));
        ok(s.add_access_config("us-central1-a", "node-1", "nic0", &add, P));
        assert_eq!(
            s.holders()[&"203.0.113.10".parse::<IpAddr>().unwrap()],
            vec!["node-1"]
        );
        // The other instance cannot take it: the operation ends in error.
        ok(s.delete_access_config("us-central1-a", "node-2", "nic0", "external-nat", P));
        let failed = s
            .add_access_config("us-central1-a", "node-2", "nic0", &add, P)
            .unwrap()
            .unwrap();
        assert_eq!(failed.code, "IP_IN_USE_BY_ANOTHER_RESOURCE");
        // An ephemeral one is always possible.
        ok(s.add_access_config(
            "us-central1-a",
            "node-2",
            "nic0",
            &json!({"type": "ONE_TO_ONE_NAT"}),
            P,
        ));
        assert!(s.instances["node-2"].nic.access_config.is_some());
        assert!(s.violations.is_empty());
    }

    #[test]
    fn labels_need_the_current_fingerprint_and_valid_text() {
        let mut s = state();
        let fp =
            s.addresses[&("us-central1".to_string(), "pool-1".to_string())].label_fingerprint();
        ok(s.set_labels(
            "us-central1",
            "pool-1",
            &json!({"labels": {"pinip-node": "node-1"}, "labelFingerprint": fp}),
            P,
        ));
        assert_eq!(
            s.set_labels(
                "us-central1",
                "pool-1",
                &json!({"labels": {}, "labelFingerprint": fp}),
                P
            )
            .unwrap_err()
            .status,
            412
        );
        let fp =
            s.addresses[&("us-central1".to_string(), "pool-1".to_string())].label_fingerprint();
        assert_eq!(
            s.set_labels(
                "us-central1",
                "pool-1",
                &json!({"labels": {"Bad": "x"}, "labelFingerprint": fp}),
                P
            )
            .unwrap_err()
            .status,
            400
        );
    }

    #[test]
    fn taking_a_static_address_off_an_unmanaged_instance_is_a_violation() {
        let mut s = state();
        s.add_instance("us-central1-a", "foreign", false, "default", "t".into());
        ok(s.delete_access_config("us-central1-a", "foreign", "nic0", "external-nat", P));
        assert!(
            s.violations.is_empty(),
            "an ephemeral address is not a violation"
        );
        ok(s.add_access_config(
            "us-central1-a",
            "foreign",
            "nic0",
            &json!({"natIP": "203.0.113.10"}),
            P,
        ));
        ok(s.delete_access_config("us-central1-a", "foreign", "nic0", "external-nat", P));
        assert_eq!(s.violations.len(), 1);
    }
}
