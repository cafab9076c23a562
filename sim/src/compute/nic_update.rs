//! `instances.updateNetworkInterface` (PATCH) for the stack type and the external
//! IPv6, as documented: the method "can only update an interface's alias IP range and
//! attached network", and gcloud's `--external-ipv6-address` is "applicable only to
//! dual-stack instances with stack-type=IPV4_ONLY". So an external IPv6 is changed in
//! two steps, as KubeIP does in production:
//!
//! 1. `stackType: IPV4_ONLY` drops the NIC's IPv6 (its external IPv6 goes with it);
//! 2. `stackType: IPV4_IPV6` with one `DIRECT_IPV6` access config gives it back: the
//!    static `externalIpv6` (and its prefix length), or an ephemeral one when omitted.
//!
//! A PATCH that keeps `IPV4_IPV6` and names a different external IPv6 (the one-step
//! swap) is refused with 400. A static IPv6 must be `ipv6EndpointType: VM` and belong to
//! the NIC's subnetwork (400 otherwise), and be free (the operation ends in
//! `IP_IN_USE_BY_ANOTHER_RESOURCE` otherwise). The fingerprint is required (400) and
//! must be current (412).

use std::net::{IpAddr, Ipv6Addr};

use serde_json::{Map, Value};

use super::errors::ApiError;
use super::fingerprint;
use super::model::{SimAccessConfig, SimInstance};
use super::state::{Applied, State, V6_NAME};

const CONFIGS: &str = "resource.ipv6AccessConfigs";
const EXTERNAL: &str = "resource.ipv6AccessConfigs[0].externalIpv6";

impl State {
    pub fn update_network_interface(
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
        check_fingerprint(&instance, body)?;
        let current = instance.nic.stack_type.as_str();
        let stack = body
            .get("stackType")
            .and_then(Value::as_str)
            .unwrap_or(current)
            .to_string();
        let wanted: Option<&Vec<Value>> = body.get("ipv6AccessConfigs").and_then(Value::as_array);
        if wanted.is_some_and(|list| list.len() > 1) {
            return Err(ApiError::bad_request(
                "At most one IPv6 access config currently supported.",
            ));
        }
        let wanted = wanted.map(|list| list.first());
        let next_v6 = match (current, stack.as_str()) {
            (_, "IPV4_ONLY") => {
                if wanted.flatten().is_some() {
                    return Err(ApiError::invalid_field(
                        CONFIGS,
                        "",
                        "An IPV4_ONLY network interface cannot have IPv6 access configs.",
                    ));
                }
                None
            }
            ("IPV4_ONLY", "IPV4_IPV6") => match wanted.flatten() {
                None => None,
                Some(config) => Some(self.external_v6(&instance, config)?),
            },
            ("IPV4_IPV6", "IPV4_IPV6") => {
                let keeps = match wanted {
                    None => true,
                    Some(config) => same_config(instance.nic.ipv6_access_config.as_ref(), config),
                };
                if !keeps {
                    return Err(ApiError::invalid_field(
                        CONFIGS,
                        "",
                        "The external IPv6 of a network interface can only be set while its stack type changes from IPV4_ONLY to IPV4_IPV6: update the stack type to IPV4_ONLY first.",
                    ));
                }
                instance.nic.ipv6_access_config.clone().map(Ok)
            }
            (_, "IPV4_IPV6" | "IPV6_ONLY") => {
                return Err(ApiError::invalid_field(
                    "resource.stackType",
                    &stack,
                    &format!("Changing the stack type from {current} to {stack} is not supported."),
                ))
            }
            _ => {
                return Err(ApiError::invalid_field(
                    "resource.stackType",
                    &stack,
                    "Unknown stack type.",
                ))
            }
        };
        // An operation that would end in error changes nothing.
        let next_v6 = match next_v6 {
            Some(Err(failed)) => return failed,
            Some(Ok(config)) => Some(config),
            None => None,
        };
        let removed = instance
            .nic
            .ipv6_access_config
            .as_ref()
            .map(|c| c.ip)
            .filter(|ip| next_v6.as_ref().is_none_or(|n| n.ip != *ip));
        let target = self.instance_mut(zone, name, project_path)?;
        target.nic.stack_type = stack;
        target.nic.ipv6_access_config = next_v6;
        target.nic.generation += 1;
        self.note_removal(name, removed);
        Ok(None)
    }

    /// The access config `config` asks for on a NIC becoming dual-stack: Ok(Ok(..)) to
    /// set, Ok(Err(..)) when the operation is to end in error, Err when refused outright.
    fn external_v6(
        &mut self,
        instance: &SimInstance,
        config: &Value,
    ) -> Result<Result<SimAccessConfig, Applied>, ApiError> {
        let kind = config
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("DIRECT_IPV6");
        if kind != "DIRECT_IPV6" {
            return Err(ApiError::invalid_field(
                "resource.ipv6AccessConfigs[0].type",
                kind,
                "Only DIRECT_IPV6 is supported.",
            ));
        }
        let access_name = config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(V6_NAME)
            .to_string();
        let tier = config.get("networkTier").and_then(Value::as_str);
        let Some(text) = config
            .get("externalIpv6")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            let mut c = self.ephemeral_access_config(&access_name, true, tier.unwrap_or("PREMIUM"));
            c.name = access_name;
            return Ok(Ok(c));
        };
        let ip: Ipv6Addr = text
            .parse()
            .map_err(|_| ApiError::invalid_field(EXTERNAL, text, "Must be an IPv6 address."))?;
        let ip = IpAddr::V6(ip);
        let (expected, endpoint, subnetwork, address_name) = match self.static_address(ip) {
            Some(a) => (
                a.prefix_length.unwrap_or(96),
                a.endpoint_type.clone(),
                a.subnetwork.clone(),
                a.name.clone(),
            ),
            None => (96, None, None, String::new()),
        };
        let given = config
            .get("externalIpv6PrefixLength")
            .and_then(Value::as_u64);
        if given.is_some_and(|p| p != u64::from(expected)) {
            return Err(ApiError::invalid_field(
                "resource.ipv6AccessConfigs[0].externalIpv6PrefixLength",
                &given.unwrap_or_default().to_string(),
                "It must match the prefix length of the address.",
            ));
        }
        if let Some(kind) = endpoint.as_deref().filter(|k| *k != "VM") {
            return Err(ApiError::invalid_field(
                EXTERNAL,
                text,
                &format!("The address '{address_name}' has ipv6EndpointType {kind}; only an address of endpoint type VM can be assigned to an instance."),
            ));
        }
        if let Some(subnet) = subnetwork.filter(|s| *s != instance.nic.subnetwork) {
            return Err(ApiError::invalid_field(
                EXTERNAL,
                text,
                &format!(
                    "The address '{address_name}' belongs to subnetwork '{subnet}', not to the subnetwork '{}' of the network interface.",
                    instance.nic.subnetwork
                ),
            ));
        }
        if let Some(failed) = self.check_static(instance, ip, tier) {
            return Ok(Err(failed));
        }
        let tier = self
            .static_address(ip)
            .map(|a| a.tier.clone())
            .unwrap_or_else(|| "PREMIUM".into());
        Ok(Ok(SimAccessConfig {
            name: access_name,
            ip,
            tier,
            prefix_length: Some(expected),
            extra: Map::new(),
        }))
    }
}

fn check_fingerprint(instance: &SimInstance, body: &Value) -> Result<(), ApiError> {
    let Some(given) = body.get("fingerprint").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "Required field 'resource.fingerprint' not specified",
        ));
    };
    if !fingerprint::is_valid(given) {
        return Err(ApiError::invalid_field(
            "resource.fingerprint",
            given,
            "Must be base64.",
        ));
    }
    if given != instance.nic_fingerprint() {
        return Err(ApiError::stale_fingerprint("network interface"));
    }
    Ok(())
}

/// Does `wanted` (one entry of `ipv6AccessConfigs`, or none) describe the NIC's
/// current external IPv6?
fn same_config(current: Option<&SimAccessConfig>, wanted: Option<&Value>) -> bool {
    let wanted_ip = wanted
        .and_then(|w| w.get("externalIpv6"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<IpAddr>().ok());
    match (current, wanted) {
        (None, None) => true,
        (Some(c), Some(_)) => wanted_ip == Some(c.ip),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    const P: &str = "projects/p";
    const Z: &str = "us-central1-a";

    fn state() -> State {
        let mut s = State::default();
        for (name, ip) in [
            ("v6-1", "2600:1900:4000:abcd::"),
            ("v6-lb", "2600:1900:4000:abce::"),
            ("v6-other", "2600:1900:4000:abcf::"),
        ] {
            s.add_address(
                "us-central1",
                name,
                ip.parse().unwrap(),
                BTreeMap::new(),
                "t".into(),
            );
        }
        let key = |n: &str| ("us-central1".to_string(), n.to_string());
        if let Some(a) = s.addresses.get_mut(&key("v6-lb")).map(Arc::make_mut) {
            a.endpoint_type = Some("NETLB".into());
        }
        if let Some(a) = s.addresses.get_mut(&key("v6-other")).map(Arc::make_mut) {
            a.subnetwork = Some("other".into());
        }
        s.add_instance(Z, "node-1", true, "default", "t".into());
        s.add_instance(Z, "node-2", true, "default", "t".into());
        s
    }

    fn fp(s: &State, name: &str) -> String {
        s.instances[name].nic_fingerprint()
    }

    fn assign(fp: &str, ip: &str) -> Value {
        json!({"fingerprint": fp, "stackType": "IPV4_IPV6", "ipv6AccessConfigs": [
            {"type": "DIRECT_IPV6", "name": "external-ipv6", "externalIpv6": ip,
             "externalIpv6PrefixLength": 96, "networkTier": "PREMIUM"}]})
    }

    fn update(s: &mut State, name: &str, body: &Value) -> Applied {
        s.update_network_interface(Z, name, "nic0", body, P)
    }

    fn to_ipv4_only(s: &mut State, name: &str) {
        let body = json!({"fingerprint": fp(s, name), "stackType": "IPV4_ONLY"});
        assert_eq!(update(s, name, &body), Ok(None));
    }

    #[test]
    fn the_one_step_swap_is_refused_and_the_two_step_one_works() {
        let mut s = state();
        let body = assign(&fp(&s, "node-1"), "2600:1900:4000:abcd::");
        let one_step = update(&mut s, "node-1", &body);
        assert_eq!(one_step.unwrap_err().status, 400);
        to_ipv4_only(&mut s, "node-1");
        assert_eq!(s.instances["node-1"].nic.ipv6_access_config, None);
        let body = assign(&fp(&s, "node-1"), "2600:1900:4000:abcd::");
        assert_eq!(update(&mut s, "node-1", &body), Ok(None));
        let nic = &s.instances["node-1"].nic;
        assert_eq!(nic.stack_type, "IPV4_IPV6");
        assert_eq!(
            nic.ipv6_access_config.as_ref().map(|c| c.ip),
            Some("2600:1900:4000:abcd::".parse().unwrap())
        );
        // Keeping what is there (no ipv6AccessConfigs, or the same one) is fine.
        let keep = json!({"fingerprint": fp(&s, "node-1"), "stackType": "IPV4_IPV6"});
        assert_eq!(update(&mut s, "node-1", &keep), Ok(None));
        let same = assign(&fp(&s, "node-1"), "2600:1900:4000:abcd:0:0:0:0");
        assert_eq!(update(&mut s, "node-1", &same), Ok(None));
    }

    #[test]
    fn fingerprints_are_required_and_checked() {
        let mut s = state();
        let stale = fp(&s, "node-1");
        to_ipv4_only(&mut s, "node-1");
        let again = json!({"fingerprint": stale, "stackType": "IPV4_ONLY"});
        assert_eq!(update(&mut s, "node-1", &again).unwrap_err().status, 412);
        let bad = json!({"fingerprint": "nicfp=", "stackType": "IPV4_ONLY"});
        assert_eq!(update(&mut s, "node-1", &bad).unwrap_err().status, 400);
        let none = json!({"stackType": "IPV4_ONLY"});
        assert_eq!(update(&mut s, "node-1", &none).unwrap_err().status, 400);
    }

    #[test]
    fn only_free_vm_addresses_of_the_nics_subnetwork_fit() {
        let mut s = state();
        to_ipv4_only(&mut s, "node-1");
        for ip in ["2600:1900:4000:abce::", "2600:1900:4000:abcf::"] {
            let body = assign(&fp(&s, "node-1"), ip);
            let refused = update(&mut s, "node-1", &body).unwrap_err();
            assert_eq!((refused.status, refused.reason), (400, "invalid"), "{ip}");
        }
        let body = assign(&fp(&s, "node-1"), "2600:1900:4000:abcd::");
        assert_eq!(update(&mut s, "node-1", &body), Ok(None));
        to_ipv4_only(&mut s, "node-2");
        let body = assign(&fp(&s, "node-2"), "2600:1900:4000:abcd::");
        let taken = update(&mut s, "node-2", &body);
        assert_eq!(
            taken.unwrap().unwrap().code,
            "IP_IN_USE_BY_ANOTHER_RESOURCE"
        );
        assert_eq!(
            s.instances["node-2"].nic.stack_type, "IPV4_ONLY",
            "a failed operation changes nothing"
        );
        // Without an address: an ephemeral one.
        let ephemeral = json!({"fingerprint": fp(&s, "node-2"), "stackType": "IPV4_IPV6",
            "ipv6AccessConfigs": [{"type": "DIRECT_IPV6", "networkTier": "PREMIUM"}]});
        assert_eq!(update(&mut s, "node-2", &ephemeral), Ok(None));
        assert!(s.instances["node-2"].nic.ipv6_access_config.is_some());
    }
}
