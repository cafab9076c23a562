//! Static external IPv6 (`IPV6=true`): the primary NIC's `ipv6AccessConfigs` is
//! replaced with one `DIRECT_IPV6` config carrying the address, its prefix length
//! and its tier, through `PATCH updateNetworkInterface` with the NIC's fingerprint
//! (412 when stale → re-read, retry). One PATCH swaps the ephemeral IPv6 for the
//! static one, so there is no moment without an external IPv6; if the update ends in
//! error and the NIC has lost its external IPv6, an ephemeral one is restored.
//! Release puts an ephemeral IPv6 back the same way.
//!
//! Needs `compute.instances.updateNetworkInterface` (KubeIP's role forgets it).

use std::net::IpAddr;

use tracing::{info, warn};

use crate::{ErrorClass, ProviderError};

use super::client::ComputeClient;
use super::errors::is_stale_fingerprint;
use super::permissions::method;
use super::wire::{AccessConfig, Address, Instance, NetworkInterface};

pub const DIRECT_IPV6: &str = "DIRECT_IPV6";
pub const DEFAULT_NAME: &str = "external-ipv6";
/// What GCE hands out for a VM: a /96.
pub const DEFAULT_PREFIX_LENGTH: u8 = 96;
const FINGERPRINT_ATTEMPTS: usize = 3;

/// The NIC's external IPv6, if it has one.
pub fn external_v6(nic: &NetworkInterface) -> Option<IpAddr> {
    nic.ipv6_access_configs
        .iter()
        .filter_map(|ac| ac.external_ipv6.as_deref())
        .find_map(|ip| ip.parse().ok())
}

/// Pure: the PATCH body that gives `nic` exactly one external IPv6 — `address`
/// (static), or an ephemeral one when None.
pub fn update_for(nic: &NetworkInterface, address: Option<&Address>) -> NetworkInterface {
    let existing = nic.ipv6_access_configs.first();
    let config = AccessConfig {
        name: Some(
            existing
                .and_then(|ac| ac.name.clone())
                .unwrap_or_else(|| DEFAULT_NAME.to_string()),
        ),
        kind: Some(DIRECT_IPV6.into()),
        external_ipv6: address.map(|a| a.address.clone()),
        external_ipv6_prefix_length: address
            .map(|a| a.prefix_length.unwrap_or(DEFAULT_PREFIX_LENGTH)),
        network_tier: Some(
            address
                .and_then(|a| a.network_tier.clone())
                .or_else(|| existing.and_then(|ac| ac.network_tier.clone()))
                .unwrap_or_else(|| "PREMIUM".into()),
        ),
        ..AccessConfig::default()
    };
    NetworkInterface {
        fingerprint: nic.fingerprint.clone(),
        // An IPv6-only NIC stays so; anything else becomes dual-stack.
        stack_type: Some(match nic.stack_type.as_deref() {
            Some("IPV6_ONLY") => "IPV6_ONLY".into(),
            _ => "IPV4_IPV6".into(),
        }),
        ipv6_access_configs: vec![config],
        ..NetworkInterface::default()
    }
}

/// Put `address` on the instance's primary NIC (`instance` is a recent read).
pub async fn attach(
    client: &ComputeClient,
    zone: &str,
    mut instance: Instance,
    address: &Address,
    target: IpAddr,
) -> Result<(), ProviderError> {
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        let nic = primary_nic(&instance)?.clone();
        if external_v6(&nic) == Some(target) {
            return Ok(());
        }
        let update = update_for(&nic, Some(address));
        match client
            .update_network_interface(zone, &instance.name, &nic.name, &update)
            .await
        {
            Ok(()) => {
                info!(instance = %instance.name, address = %target, "static IPv6 attached");
                return Ok(());
            }
            Err(e) if is_stale_fingerprint(&e) && attempt < FINGERPRINT_ATTEMPTS => {
                instance = client.get_instance(zone, &instance.name).await?;
            }
            Err(e) => {
                ensure_external_v6(client, zone, &instance.name, &nic.name).await;
                return Err(e);
            }
        }
    }
    Err(stale(&instance.name))
}

/// Replace `target` with an ephemeral IPv6 if it is still on the instance. Returns
/// whether it was attached.
pub async fn detach(
    client: &ComputeClient,
    zone: &str,
    mut instance: Instance,
    target: IpAddr,
) -> Result<bool, ProviderError> {
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        let nic = primary_nic(&instance)?.clone();
        if external_v6(&nic) != Some(target) {
            return Ok(false);
        }
        match client
            .update_network_interface(zone, &instance.name, &nic.name, &update_for(&nic, None))
            .await
        {
            Ok(()) => return Ok(true),
            Err(e) if is_stale_fingerprint(&e) && attempt < FINGERPRINT_ATTEMPTS => {
                instance = client.get_instance(zone, &instance.name).await?;
            }
            Err(e) => {
                ensure_external_v6(client, zone, &instance.name, &nic.name).await;
                return Err(e);
            }
        }
    }
    Err(stale(&instance.name))
}

/// After a failed update: if the NIC has no external IPv6 any more, give it an
/// ephemeral one (best effort, logged).
async fn ensure_external_v6(client: &ComputeClient, zone: &str, instance: &str, nic_name: &str) {
    for _ in 0..FINGERPRINT_ATTEMPTS {
        let current = match client.get_instance(zone, instance).await {
            Ok(current) => current,
            Err(e) => {
                warn!(instance, error = %e, "could not read the instance to check its external IPv6");
                return;
            }
        };
        let Some(nic) = current
            .network_interfaces
            .iter()
            .find(|n| n.name == nic_name)
        else {
            return;
        };
        // Any IPv6 access config (static, or ephemeral being allocated) will do.
        if !nic.ipv6_access_configs.is_empty() {
            return;
        }
        match client
            .update_network_interface(zone, instance, nic_name, &update_for(nic, None))
            .await
        {
            Ok(()) => {
                info!(instance, "ephemeral external IPv6 restored");
                return;
            }
            Err(e) if is_stale_fingerprint(&e) => continue,
            Err(e) => {
                warn!(instance, error = %e, "restoring an ephemeral external IPv6 failed; the next attempt of the agent tries again");
                return;
            }
        }
    }
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
            stack_type: Some("IPV4_IPV6".into()),
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

    #[test]
    fn the_update_carries_fingerprint_prefix_and_tier() {
        let address = Address {
            name: "v6-1".into(),
            address: "2600:1900:4000:abcd:0:0:0:0".into(),
            prefix_length: Some(96),
            network_tier: Some("PREMIUM".into()),
            ..Address::default()
        };
        let update = update_for(&dual_stack(Some("2600:1900:4000:1::")), Some(&address));
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
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
    }

    #[test]
    fn release_asks_for_an_ephemeral_ipv6() {
        let update = update_for(
            &NetworkInterface {
                name: "nic0".into(),
                ..NetworkInterface::default()
            },
            None,
        );
        let config = &update.ipv6_access_configs[0];
        assert_eq!(config.external_ipv6, None);
        assert_eq!(config.name.as_deref(), Some(DEFAULT_NAME));
        assert_eq!(update.stack_type.as_deref(), Some("IPV4_IPV6"));
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
