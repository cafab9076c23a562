//! The IPv4 swap: a GCE NIC has at most one `ONE_TO_ONE_NAT` access config, so
//! attaching a static address means `deleteAccessConfig` (the ephemeral one) then
//! `addAccessConfig` with the static `natIP`, each waited on.
//!
//! **The node must never be left without an external IP** (it would lose egress,
//! including to the Compute API itself, unless Private Google Access or Cloud NAT is
//! set up — KubeIP issues #34, #84, #110):
//! - nothing is deleted before a candidate is claimed (the agent claims before it calls
//!   `attach`, and `attach` is never called without a claim);
//! - if adding the static address fails after the ephemeral one was removed, or on a
//!   NIC that had no external IPv4 at all (its address removed by hand), an ephemeral
//!   one is restored (re-read, re-added, a few attempts with backoff) before the error
//!   is returned;
//! - the swap runs to its end even if the caller gives up waiting (see `mod.rs`);
//! - a change lands when its operation completes, not when it is accepted: a delete
//!   whose end was not seen (its wait failed) may still land after the restore looked
//!   at the NIC, so the restore first settles any such write ([`ComputeClient::settle`])
//!   and never trusts a read taken while one is pending.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::window_retry::WindowRetry;
use crate::{ErrorClass, ProviderError};

use super::client::ComputeClient;
use super::errors::is_rate_limited;
use super::wire::{AccessConfig, Address, Instance, NetworkInterface};
use crate::restore_schedule::restore_on_schedule;

pub const ONE_TO_ONE_NAT: &str = "ONE_TO_ONE_NAT";
/// gcloud's and GKE's name for the external access config.
pub const DEFAULT_NAME: &str = "external-nat";
/// Compute's rate quotas refill in windows of one minute, at whole minutes.
pub const QUOTA_WINDOW: Duration = Duration::from_secs(60);

/// What attaching `target` to a NIC takes, given its current access configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The NIC already has it: nothing to do (attach is idempotent).
    AlreadyAttached,
    /// No external IPv4 yet: add the static one.
    Add,
    /// Another external IPv4 (normally the ephemeral one) is there: delete, then add.
    Replace(AccessConfig),
}

/// Pure: decide the swap from the NIC as it is now.
pub fn plan(nic: &NetworkInterface, target: IpAddr) -> Plan {
    match external_v4(nic) {
        None => Plan::Add,
        Some(current) if nat_ip(current) == Some(target) => Plan::AlreadyAttached,
        Some(current) => Plan::Replace(current.clone()),
    }
}

/// The NIC's external IPv4 access config (there is at most one).
pub fn external_v4(nic: &NetworkInterface) -> Option<&AccessConfig> {
    nic.access_configs
        .iter()
        .find(|ac| ac.kind.as_deref().unwrap_or(ONE_TO_ONE_NAT) == ONE_TO_ONE_NAT)
}

fn nat_ip(ac: &AccessConfig) -> Option<IpAddr> {
    ac.nat_ip.as_deref().and_then(|ip| ip.parse().ok())
}

/// The access config that puts `address` on a NIC, named like the one it replaces.
fn static_config(address: &Address, replaced: Option<&AccessConfig>) -> AccessConfig {
    AccessConfig {
        name: Some(
            replaced
                .and_then(|ac| ac.name.clone())
                .unwrap_or_else(|| DEFAULT_NAME.to_string()),
        ),
        kind: Some(ONE_TO_ONE_NAT.into()),
        nat_ip: Some(address.address.clone()),
        // The access config's tier must match the address's.
        network_tier: address.network_tier.clone(),
        ..AccessConfig::default()
    }
}

/// An ephemeral external IPv4 like the one that was there (same name and tier).
fn ephemeral_config(like: Option<&AccessConfig>) -> AccessConfig {
    AccessConfig {
        name: Some(
            like.and_then(|ac| ac.name.clone())
                .unwrap_or_else(|| DEFAULT_NAME.to_string()),
        ),
        kind: Some(ONE_TO_ONE_NAT.into()),
        nat_ip: None,
        network_tier: like.and_then(|ac| ac.network_tier.clone()),
        ..AccessConfig::default()
    }
}

/// Put `address` on the instance's primary NIC. `instance` is a recent read.
pub async fn attach(
    client: &ComputeClient,
    zone: &str,
    instance: &Instance,
    address: &Address,
    target: IpAddr,
) -> Result<(), ProviderError> {
    let nic = primary_nic(instance)?;
    let name = instance.name.as_str();
    match plan(nic, target) {
        Plan::AlreadyAttached => Ok(()),
        Plan::Add => {
            // The NIC has no external IPv4 (removed by hand, or a restore that failed):
            // if the static address cannot be added either, give it an ephemeral one,
            // so a node that then waits (its address taken, the pool exhausted) is not
            // left without egress.
            let added = client
                .add_access_config(zone, name, &nic.name, &static_config(address, None))
                .await;
            if let Err(e) = &added {
                warn!(instance = name, address = %target, error = %e,
                    "adding the static address to a NIC without an external IPv4 failed; giving it an ephemeral one");
                restore_ephemeral(client, zone, name, &nic.name, None, false).await;
            }
            added
        }
        Plan::Replace(current) => {
            if let Err(e) = client
                .delete_access_config(
                    zone,
                    name,
                    &nic.name,
                    current.name.as_deref().unwrap_or(DEFAULT_NAME),
                )
                .await
            {
                // The delete may have happened even though the call failed (its
                // operation ended in error late, or the answer was lost).
                restore_ephemeral(client, zone, name, &nic.name, Some(&current), false).await;
                return Err(e);
            }
            let config = static_config(address, Some(&current));
            let mut added = client
                .add_access_config(zone, name, &nic.name, &config)
                .await;
            if added.as_ref().is_err_and(is_rate_limited) {
                added = retry_throttled_add(client, zone, name, &nic.name, &config, target).await;
            }
            if let Err(e) = added {
                warn!(instance = name, address = %target, error = %e,
                    "adding the static address failed after the ephemeral one was removed; restoring an ephemeral address");
                restore_ephemeral(client, zone, name, &nic.name, Some(&current), true).await;
                return Err(e);
            }
            info!(instance = name, address = %target, replaced = ?current.nat_ip, "static address attached");
            Ok(())
        }
    }
}

/// The add after the delete was refused by the rate quota. The NIC has no external IPv4 until an add
/// lands, and an ephemeral one spends the same quota, so the static one is retried on
/// the quota window's schedule ([`WindowRetry`]): restoring an ephemeral address
/// instead cost a second swap later, three mutations more per cut swap in a spent
/// window. Ok once the NIC has the address; the last error otherwise (the caller then
/// restores an ephemeral IPv4).
async fn retry_throttled_add(
    client: &ComputeClient,
    zone: &str,
    instance: &str,
    nic_name: &str,
    config: &AccessConfig,
    target: IpAddr,
) -> Result<(), ProviderError> {
    let schedule = WindowRetry::new(QUOTA_WINDOW, wall_clock());
    let mut attempt = 0;
    let mut last = None;
    while let Some(pause) = schedule.pause(attempt + 1, wall_clock(), fastrand::f64()) {
        attempt += 1;
        tokio::time::sleep(pause).await;
        if client.has_unfinished(instance) {
            // What was refused was the wait, not the add: it may land. Settle, read, and
            // add again only if the NIC still has no external IPv4.
            if !client.settle(zone, instance).await {
                continue;
            }
            let current = match client.get_instance(zone, instance).await {
                Ok(current) => current,
                Err(e) if e.class == ErrorClass::Throttled => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match plan(primary_nic(&current)?, target) {
                Plan::AlreadyAttached => return Ok(()),
                Plan::Replace(other) => {
                    return Err(ProviderError::new(
                        ErrorClass::Conflict,
                        "instances.addAccessConfig",
                        format!(
                            "{instance} got another external IPv4 ({:?}) meanwhile",
                            other.nat_ip
                        ),
                    ))
                }
                Plan::Add => {}
            }
        }
        match client
            .add_access_config(zone, instance, nic_name, config)
            .await
        {
            Ok(()) => {
                info!(instance, address = %target, attempt, "static address added once the quota allowed");
                return Ok(());
            }
            Err(e) if is_rate_limited(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        ProviderError::new(
            ErrorClass::Throttled,
            "instances.addAccessConfig",
            "the quota window turned and the add is still refused",
        )
    }))
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Take `target` off the instance if it is still there, and give the NIC an ephemeral
/// IPv4 back (KubeIP's release semantics). Returns whether it was attached.
pub async fn detach(
    client: &ComputeClient,
    zone: &str,
    instance: &Instance,
    target: IpAddr,
) -> Result<bool, ProviderError> {
    let nic = primary_nic(instance)?;
    let Some(current) = external_v4(nic).filter(|ac| nat_ip(ac) == Some(target)) else {
        return Ok(false);
    };
    let name = instance.name.as_str();
    let current = current.clone();
    if let Err(e) = client
        .delete_access_config(
            zone,
            name,
            &nic.name,
            current.name.as_deref().unwrap_or(DEFAULT_NAME),
        )
        .await
    {
        restore_ephemeral(client, zone, name, &nic.name, Some(&current), false).await;
        return Err(e);
    }
    restore_ephemeral(client, zone, name, &nic.name, Some(&current), true).await;
    Ok(true)
}

/// A NIC without any external IPv4 (its address removed by hand) gets an ephemeral one.
pub async fn ensure_external_v4(client: &ComputeClient, zone: &str, instance: &Instance) {
    let Ok(nic) = primary_nic(instance) else {
        return;
    };
    if external_v4(nic).is_some() {
        return;
    }
    warn!(instance = %instance.name, "the node waits without any external IPv4; giving it an ephemeral one");
    restore_ephemeral(client, zone, &instance.name, &nic.name, None, true).await;
}

/// Make sure the NIC has an external IPv4 again: re-read it, and add an ephemeral one
/// if none is there, a few times with backoff. Failures are logged loudly, not
/// returned: the caller reports its own (first) error. `known_missing`: the delete
/// just succeeded, so the first re-read is skipped. If every attempt fails, a task of
/// its own keeps trying until the NIC has one: the agent may not attach again soon (its
/// address gone to another node, the pool exhausted), and a node must not wait without
/// egress.
async fn restore_ephemeral(
    client: &ComputeClient,
    zone: &str,
    instance: &str,
    nic_name: &str,
    like: Option<&AccessConfig>,
    known_missing: bool,
) {
    let (client, zone, name, nic_name, like) = (
        client.clone(),
        zone.to_string(),
        instance.to_string(),
        nic_name.to_string(),
        like.cloned(),
    );
    let lifetime = client.lifetime.clone();
    restore_on_schedule(instance, "an external IPv4", lifetime, move |attempt| {
        let (client, zone, name, nic_name, like) = (
            client.clone(),
            zone.clone(),
            name.clone(),
            nic_name.clone(),
            like.clone(),
        );
        let skip_read = known_missing && attempt == 1;
        async move {
            restore_once(
                &client,
                &zone,
                &name,
                &nic_name,
                like.as_ref(),
                skip_read,
                attempt,
            )
            .await
        }
    })
    .await;
}

/// One restore attempt: true once the NIC has an external IPv4 (or the instance is
/// gone), false to try again.
async fn restore_once(
    client: &ComputeClient,
    zone: &str,
    instance: &str,
    nic_name: &str,
    like: Option<&AccessConfig>,
    skip_read: bool,
    attempt: u32,
) -> bool {
    if !client.settle(zone, instance).await {
        warn!(
            instance,
            attempt,
            "an earlier write on the instance is not seen done yet; the restore waits for it"
        );
        return false;
    }
    if !skip_read {
        match client.get_instance(zone, instance).await {
            Ok(current) => {
                let has_one = current
                    .network_interfaces
                    .iter()
                    .find(|n| n.name == nic_name)
                    .is_some_and(|n| external_v4(n).is_some());
                if has_one {
                    return true;
                }
            }
            Err(e) if e.class == ErrorClass::NotFound => return true,
            Err(e) => {
                warn!(instance, attempt, error = %e, "could not read the instance while restoring its external IP");
            }
        }
    }
    match client
        .add_access_config(zone, instance, nic_name, &ephemeral_config(like))
        .await
    {
        Ok(()) => {
            info!(instance, "ephemeral external IP restored");
            true
        }
        Err(e) => {
            warn!(instance, attempt, error = %e, "restoring an ephemeral external IP failed");
            false
        }
    }
}

fn primary_nic(instance: &Instance) -> Result<&NetworkInterface, ProviderError> {
    instance.primary_nic().ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Permanent,
            super::permissions::method::INSTANCES_GET,
            format!("instance {} has no network interface", instance.name),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(access: &[(&str, Option<&str>)]) -> NetworkInterface {
        NetworkInterface {
            name: "nic0".into(),
            access_configs: access
                .iter()
                .map(|(name, ip)| AccessConfig {
                    name: Some(name.to_string()),
                    kind: Some(ONE_TO_ONE_NAT.into()),
                    nat_ip: ip.map(String::from),
                    network_tier: Some("PREMIUM".into()),
                    ..AccessConfig::default()
                })
                .collect(),
            ..NetworkInterface::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plans_follow_the_nic() {
        assert_eq!(plan(&nic(&[]), ip("203.0.113.10")), Plan::Add);
        assert_eq!(
            plan(
                &nic(&[("external-nat", Some("203.0.113.10"))]),
                ip("203.0.113.10")
            ),
            Plan::AlreadyAttached
        );
        match plan(
            &nic(&[("External NAT", Some("34.1.2.3"))]),
            ip("203.0.113.10"),
        ) {
            Plan::Replace(current) => assert_eq!(current.name.as_deref(), Some("External NAT")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_static_config_keeps_the_name_and_takes_the_address_tier() {
        let address = Address {
            name: "pool-1".into(),
            address: "203.0.113.10".into(),
            network_tier: Some("STANDARD".into()),
            ..Address::default()
        };
        let current = nic(&[("External NAT", Some("34.1.2.3"))]).access_configs[0].clone();
        let config = static_config(&address, Some(&current));
        assert_eq!(config.name.as_deref(), Some("External NAT"));
        assert_eq!(config.nat_ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(config.network_tier.as_deref(), Some("STANDARD"));
        let ephemeral = ephemeral_config(Some(&current));
        assert_eq!(ephemeral.nat_ip, None);
        assert_eq!(ephemeral.network_tier.as_deref(), Some("PREMIUM"));
        assert_eq!(ephemeral_config(None).name.as_deref(), Some(DEFAULT_NAME));
    }
}
