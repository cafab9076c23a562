//! Static external IPv6 (`IPV6=true`), in the two documented steps KubeIP uses in
//! production on GKE (`instances.updateNetworkInterface` "can only update an
//! interface's alias IP range and attached network"; gcloud's
//! `--external-ipv6-address` is "applicable only to dual-stack instances with
//! stack-type=IPV4_ONLY"):
//!
//! 1. PATCH the primary NIC to `stackType: IPV4_ONLY` (its IPv6, and with it the
//!    ephemeral external IPv6, goes away), waited on;
//! 2. read the NIC again (its fingerprint changed) and PATCH it to `IPV4_IPV6` with
//!    one `DIRECT_IPV6` access config carrying the static `externalIpv6`, its prefix
//!    length and tier, waited on.
//!
//! The node has no external IPv6 from the end of step 1 to the end of step 2: one
//! `instances.get` plus one update operation, the least the API allows (the
//! fingerprint of step 2 only exists once step 1 is done). IPv4 is never touched. If
//! step 2 fails (the address was taken meanwhile, a quota, an outage) the NIC is left
//! `IPV4_ONLY`; an ephemeral IPv6 is then restored the same way (step 2 without an
//! address, a few attempts with backoff), and if even that fails the next attempt of
//! the agent starts from the `IPV4_ONLY` NIC (step 1 is skipped). Release is the same
//! two steps ending with an ephemeral IPv6.
//!
//! A static IPv6 only fits a NIC if it is `ipv6EndpointType: VM` and was reserved from
//! the NIC's subnetwork; [`fits`] says so before anything is changed (a misfit is a
//! conflict: the agent moves on to the next candidate).
//!
//! Needs `compute.instances.updateNetworkInterface` (KubeIP's role forgets it).

use std::net::IpAddr;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::{ErrorClass, ProviderError};

use super::client::ComputeClient;
use super::errors::is_stale_fingerprint;
use super::permissions::method;
use super::wire::{resource_path, AccessConfig, Address, Instance, NetworkInterface};

pub const DIRECT_IPV6: &str = "DIRECT_IPV6";
pub const DEFAULT_NAME: &str = "external-ipv6";
pub const IPV4_ONLY: &str = "IPV4_ONLY";
pub const IPV4_IPV6: &str = "IPV4_IPV6";
/// What GCE hands out for a VM: a /96.
pub const DEFAULT_PREFIX_LENGTH: u8 = 96;
const FINGERPRINT_ATTEMPTS: usize = 3;
const RESTORE_ATTEMPTS: u32 = 4;
const RESTORE_FIRST_DELAY: Duration = Duration::from_millis(250);

/// The NIC's external IPv6, if it has one.
pub fn external_v6(nic: &NetworkInterface) -> Option<IpAddr> {
    nic.ipv6_access_configs
        .iter()
        .filter_map(|ac| ac.external_ipv6.as_deref())
        .find_map(|ip| ip.parse().ok())
}

/// Pure: can `address` go on `nic`? Err says why not. Unknown fields are left to the API.
pub fn fits(address: &Address, nic: &NetworkInterface) -> Result<(), String> {
    if let Some(kind) = address
        .ipv6_endpoint_type
        .as_deref()
        .filter(|k| !k.is_empty() && *k != "VM")
    {
        return Err(format!(
            "{} is an IPv6 address of endpoint type {kind}; only VM addresses go on a node",
            address.name
        ));
    }
    if let (Some(theirs), Some(ours)) = (&address.subnetwork, &nic.subnetwork) {
        if resource_path(theirs) != resource_path(ours) {
            return Err(format!(
                "{} belongs to subnetwork {}, the node's NIC is on {}",
                address.name,
                resource_path(theirs),
                resource_path(ours)
            ));
        }
    }
    Ok(())
}

/// Pure: step 1, the PATCH body that drops the NIC's IPv6.
pub fn to_ipv4_only(nic: &NetworkInterface) -> NetworkInterface {
    NetworkInterface {
        fingerprint: nic.fingerprint.clone(),
        stack_type: Some(IPV4_ONLY.into()),
        ..NetworkInterface::default()
    }
}

/// Pure: step 2, the PATCH body that makes an `IPV4_ONLY` NIC dual-stack with one
/// external IPv6: `address` (static), or an ephemeral one when None. `like` is the
/// access config that was there before step 1 (its name and tier are kept).
pub fn to_dual_stack(
    nic: &NetworkInterface,
    address: Option<&Address>,
    like: Option<&AccessConfig>,
) -> NetworkInterface {
    let config = AccessConfig {
        name: Some(
            like.and_then(|ac| ac.name.clone())
                .unwrap_or_else(|| DEFAULT_NAME.to_string()),
        ),
        kind: Some(DIRECT_IPV6.into()),
        external_ipv6: address.map(|a| a.address.clone()),
        external_ipv6_prefix_length: address
            .map(|a| a.prefix_length.unwrap_or(DEFAULT_PREFIX_LENGTH)),
        network_tier: Some(
            address
                .and_then(|a| a.network_tier.clone())
                .or_else(|| like.and_then(|ac| ac.network_tier.clone()))
                .unwrap_or_else(|| "PREMIUM".into()),
        ),
        ..AccessConfig::default()
    };
    NetworkInterface {
        fingerprint: nic.fingerprint.clone(),
        stack_type: Some(IPV4_IPV6.into()),
        ipv6_access_configs: vec![config],
        ..NetworkInterface::default()
    }
}

/// Put `address` on the instance's primary NIC (`instance` is a recent read).
pub async fn attach(
    client: &ComputeClient,
    zone: &str,
    instance: Instance,
    address: &Address,
    target: IpAddr,
) -> Result<(), ProviderError> {
    let nic = primary_nic(&instance)?.clone();
    if external_v6(&nic) == Some(target) {
        return Ok(());
    }
    if let Err(why) = fits(address, &nic) {
        return Err(ProviderError::new(
            ErrorClass::Conflict,
            method::UPDATE_NETWORK_INTERFACE,
            why,
        ));
    }
    if nic.stack_type.as_deref() == Some("IPV6_ONLY") {
        return Err(ProviderError::new(
            ErrorClass::Permanent,
            method::UPDATE_NETWORK_INTERFACE,
            format!(
                "{} has an IPV6_ONLY network interface; pinip swaps IPv6 on dual-stack (IPV4_IPV6) NICs only",
                instance.name
            ),
        ));
    }
    let like = nic.ipv6_access_configs.first().cloned();
    let name = instance.name.clone();
    let result = async {
        let single = drop_ipv6(client, zone, instance).await?;
        set_dual_stack(client, zone, single, Some(address), like.as_ref()).await
    }
    .await;
    match result {
        Ok(()) => {
            info!(instance = %name, address = %target, "static IPv6 attached");
            Ok(())
        }
        Err(e) => {
            warn!(instance = %name, address = %target, error = %e, "attaching the static IPv6 failed; making sure the node has an external IPv6");
            ensure_external_v6(client, zone, &name, &nic.name, like.as_ref()).await;
            Err(e)
        }
    }
}

/// Replace `target` with an ephemeral IPv6 if it is still on the instance. Returns
/// whether it was attached.
pub async fn detach(
    client: &ComputeClient,
    zone: &str,
    instance: Instance,
    target: IpAddr,
) -> Result<bool, ProviderError> {
    let nic = primary_nic(&instance)?.clone();
    if external_v6(&nic) != Some(target) {
        return Ok(false);
    }
    let like = nic.ipv6_access_configs.first().cloned();
    let name = instance.name.clone();
    let result = async {
        let single = drop_ipv6(client, zone, instance).await?;
        set_dual_stack(client, zone, single, None, like.as_ref()).await
    }
    .await;
    if let Err(e) = result {
        ensure_external_v6(client, zone, &name, &nic.name, like.as_ref()).await;
        return Err(e);
    }
    Ok(true)
}

/// Step 1 (skipped on an `IPV4_ONLY` NIC): returns the instance read after it.
async fn drop_ipv6(
    client: &ComputeClient,
    zone: &str,
    mut instance: Instance,
) -> Result<Instance, ProviderError> {
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        let nic = primary_nic(&instance)?.clone();
        if nic.stack_type.as_deref() == Some(IPV4_ONLY) {
            return Ok(instance);
        }
        match client
            .update_network_interface(zone, &instance.name, &nic.name, &to_ipv4_only(&nic))
            .await
        {
            // The fingerprint changed: step 2 needs the new one.
            Ok(()) => return client.get_instance(zone, &instance.name).await,
            Err(e) if is_stale_fingerprint(&e) && attempt < FINGERPRINT_ATTEMPTS => {
                instance = client.get_instance(zone, &instance.name).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(stale(&instance.name))
}

/// Step 2 on an `IPV4_ONLY` NIC: dual-stack again with `address` (or an ephemeral one).
async fn set_dual_stack(
    client: &ComputeClient,
    zone: &str,
    mut instance: Instance,
    address: Option<&Address>,
    like: Option<&AccessConfig>,
) -> Result<(), ProviderError> {
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        let nic = primary_nic(&instance)?.clone();
        if nic.stack_type.as_deref() != Some(IPV4_ONLY) {
            // Someone made it dual-stack meanwhile; start over from a fresh read.
            return Err(ProviderError::new(
                ErrorClass::Transient,
                method::UPDATE_NETWORK_INTERFACE,
                format!(
                    "the network interface of {} changed under us between the two steps",
                    instance.name
                ),
            ));
        }
        match client
            .update_network_interface(
                zone,
                &instance.name,
                &nic.name,
                &to_dual_stack(&nic, address, like),
            )
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if is_stale_fingerprint(&e) && attempt < FINGERPRINT_ATTEMPTS => {
                instance = client.get_instance(zone, &instance.name).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(stale(&instance.name))
}

/// After a failed swap: if the NIC has no external IPv6 any more, give it an
/// ephemeral one (a few attempts with backoff, after any write on the instance whose
/// end was not seen has settled). Failures are logged loudly, not returned: the caller
/// reports its own (first) error.
async fn ensure_external_v6(
    client: &ComputeClient,
    zone: &str,
    instance: &str,
    nic_name: &str,
    like: Option<&AccessConfig>,
) {
    let mut delay = RESTORE_FIRST_DELAY;
    for attempt in 1..=RESTORE_ATTEMPTS {
        if client.settle(zone, instance).await {
            match restore_once(client, zone, instance, nic_name, like).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(instance, attempt, error = %e, "restoring an ephemeral external IPv6 failed")
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    error!(instance, "the node may be left WITHOUT an external IPv6: restoring an ephemeral one failed {RESTORE_ATTEMPTS} times; the next attempt of the agent tries again");
}

async fn restore_once(
    client: &ComputeClient,
    zone: &str,
    instance: &str,
    nic_name: &str,
    like: Option<&AccessConfig>,
) -> Result<(), ProviderError> {
    let current = client.get_instance(zone, instance).await?;
    let Some(nic) = current
        .network_interfaces
        .iter()
        .find(|n| n.name == nic_name)
    else {
        return Ok(());
    };
    // Any IPv6 access config (static, or ephemeral being allocated) will do.
    if !nic.ipv6_access_configs.is_empty() {
        return Ok(());
    }
    let single = drop_ipv6(client, zone, current).await?;
    set_dual_stack(client, zone, single, None, like).await?;
    info!(instance, "ephemeral external IPv6 restored");
    Ok(())
}

fn stale(instance: &str) -> ProviderError {
    ProviderError::new(
        ErrorClass::Transient,
        method::UPDATE_NETWORK_INTERFACE,
        format!("the network interface of {instance} kept changing under us (stale fingerprint {FINGERPRINT_ATTEMPTS} times)"),
    )
}

fn primary_nic(instance: &Instance) -> Result<&NetworkInterface, ProviderError> {
    instance.primary_nic().ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Permanent,
            method::INSTANCES_GET,
            format!("instance {} has no network interface", instance.name),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dual_stack(ipv6: Option<&str>) -> NetworkInterface {
        NetworkInterface {
            name: "nic0".into(),
            fingerprint: Some("bmljZnA=".into()),
            stack_type: Some(IPV4_IPV6.into()),
            subnetwork: Some(
                "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/a".into(),
            ),
            ipv6_access_configs: vec![AccessConfig {
                name: Some("External IPv6".into()),
                kind: Some(DIRECT_IPV6.into()),
                external_ipv6: ipv6.map(String::from),
                external_ipv6_prefix_length: Some(96),
                network_tier: Some("PREMIUM".into()),
                ..AccessConfig::default()
            }],
            ..NetworkInterface::default()
        }
    }

    fn v6(subnet: &str, kind: &str) -> Address {
        Address {
            name: "v6-1".into(),
            address: "2600:1900:4000:abcd:0:0:0:0".into(),
            prefix_length: Some(96),
            network_tier: Some("PREMIUM".into()),
            ipv6_endpoint_type: Some(kind.into()),
            subnetwork: Some(format!(
                "http://127.0.0.1:1/compute/v1/projects/p/regions/r/subnetworks/{subnet}"
            )),
            ..Address::default()
        }
    }

    #[test]
    fn step_one_drops_ipv6_and_step_two_carries_address_prefix_and_tier() {
        let nic = dual_stack(Some("2600:1900:4000:1::"));
        assert_eq!(
            serde_json::to_value(to_ipv4_only(&nic)).unwrap(),
            serde_json::json!({"fingerprint": "bmljZnA=", "stackType": "IPV4_ONLY"})
        );
        let like = nic.ipv6_access_configs.first();
        assert_eq!(
            serde_json::to_value(to_dual_stack(&nic, Some(&v6("a", "VM")), like)).unwrap(),
            serde_json::json!({
                "fingerprint": "bmljZnA=",
                "stackType": "IPV4_IPV6",
                "ipv6AccessConfigs": [{
                    "name": "External IPv6", "type": "DIRECT_IPV6",
                    "externalIpv6": "2600:1900:4000:abcd:0:0:0:0",
                    "externalIpv6PrefixLength": 96, "networkTier": "PREMIUM"
                }]
            })
        );
        let ephemeral = to_dual_stack(&nic, None, None);
        assert_eq!(ephemeral.ipv6_access_configs[0].external_ipv6, None);
        assert_eq!(
            ephemeral.ipv6_access_configs[0].name.as_deref(),
            Some(DEFAULT_NAME)
        );
    }

    #[test]
    fn only_vm_addresses_of_the_nics_subnetwork_fit() {
        let nic = dual_stack(None);
        assert!(fits(&v6("a", "VM"), &nic).is_ok());
        assert!(fits(&v6("b", "VM"), &nic)
            .unwrap_err()
            .contains("subnetworks/b"));
        assert!(fits(&v6("a", "NETLB"), &nic).unwrap_err().contains("NETLB"));
        let unknown = Address {
            name: "x".into(),
            ..Address::default()
        };
        assert!(
            fits(&unknown, &nic).is_ok(),
            "unknown fields: the API decides"
        );
    }

    #[test]
    fn addresses_compare_as_addresses() {
        let nic = dual_stack(Some("2600:1900:4000:abcd:0:0:0:0"));
        assert_eq!(
            external_v6(&nic),
            Some("2600:1900:4000:abcd::".parse().unwrap())
        );
        assert_eq!(external_v6(&dual_stack(None)), None);
    }
}
