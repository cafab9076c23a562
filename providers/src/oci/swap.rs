//! Putting a reserved public IP on a node's primary private IP, and taking it off.
//!
//! OCI allows one public IP per private IP, so a node's ephemeral public IP has to go
//! before the reserved one can come. **The node must never be left without a public
//! IP** (it would lose egress, to the OCI API too, unless a NAT gateway is set up):
//! - nothing is deleted before the address is checked (AVAILABLE, reserved) and the
//!   agent holds its claim;
//! - the assignment is `UpdatePublicIp` with `if-match` of the ETag read while the
//!   address was AVAILABLE, so an address someone else took in between is refused with
//!   412 instead of being moved off its new holder (the API itself would move it);
//! - if anything fails after the ephemeral IP was deleted, an ephemeral one is restored
//!   (re-checked, re-created, a few attempts with backoff) before the error is returned;
//! - the swap runs on its own task (see `mod.rs`), so a caller that stops waiting does
//!   not cut it in half.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{info, warn};

use crate::restore_schedule::restore_on_schedule;
use crate::{ErrorClass, Ownership, ProviderError};

use super::client::CoreClient;
use super::permissions::op;
use super::tags;
use super::wire::{PublicIp, UpdatePublicIp};

const TAG_ATTEMPTS: usize = 3;
/// How long an assignment may stay ASSIGNING before attach reports it as not done yet.
const ASSIGN_WAIT: Duration = Duration::from_secs(60);
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);

/// The node side of an assignment: its primary VNIC's primary private IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub instance: String,
    pub vnic: String,
    pub private_ip: String,
    /// The private IP's compartment (where an ephemeral public IP is created).
    pub compartment: String,
    /// The private IP's address.
    pub ip_address: String,
}

fn occupies(ip: &PublicIp) -> bool {
    matches!(ip.lifecycle_state.as_str(), "ASSIGNED" | "ASSIGNING")
}

/// Put reserved public IP `id` on `target`, recording `owner` in the same write.
pub async fn attach(
    client: &CoreClient,
    target: &Target,
    id: &str,
    owner: &Ownership,
) -> Result<(), ProviderError> {
    let (ip, etag) = client.get_public_ip(id).await?;
    if !ip.is_reserved() {
        return Err(ProviderError::new(
            ErrorClass::Permanent,
            op::UPDATE_PUBLIC_IP,
            format!(
                "{} is an {} public IP, not a reserved one",
                ip.ip_address, ip.lifetime
            ),
        ));
    }
    if ip.private_ip() == Some(target.private_ip.as_str()) && occupies(&ip) {
        // Already ours (attach is idempotent): make sure the record is there too.
        let desired = tags::with_owner(&ip.freeform_tags, owner, &target.private_ip);
        set_tags(
            client,
            ip.clone(),
            etag,
            |t| tags::with_owner(t, owner, &target.private_ip),
            desired,
        )
        .await?;
        return wait_assigned(client, id, &target.private_ip).await;
    }
    if ip.lifecycle_state != "AVAILABLE" {
        let holder = ip.private_ip().or(ip.held_by_other_entity()).unwrap_or("");
        return Err(ProviderError::new(
            ErrorClass::Conflict,
            op::UPDATE_PUBLIC_IP,
            format!(
                "{} is {} {holder}; pinip never moves an address off its holder",
                ip.ip_address, ip.lifecycle_state
            ),
        ));
    }
    // From here on the node has no public IP (its ephemeral one deleted below, or none
    // at all: its reserved IP unassigned by hand): a failed assignment must leave it
    // with an ephemeral one.
    match client.public_ip_on(&target.private_ip).await? {
        None => {}
        Some(current) if current.is_reserved() => {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                op::UPDATE_PUBLIC_IP,
                format!(
                    "the node's private IP already holds reserved public IP {}; pinip does not take a reserved address off a node (unassign it, or add it to the pool)",
                    current.ip_address
                ),
            ));
        }
        Some(ephemeral) => {
            if let Err(e) = client.delete_public_ip(&ephemeral.id).await {
                // The delete may have happened although the answer was lost.
                restore(client, target).await;
                return Err(e);
            }
        }
    }
    let details = UpdatePublicIp {
        private_ip_id: Some(target.private_ip.clone()),
        freeform_tags: Some(tags::with_owner(
            &ip.freeform_tags,
            owner,
            &target.private_ip,
        )),
    };
    let assigned = match client.update_public_ip(id, &details, &etag).await {
        Ok(_) => wait_assigned(client, id, &target.private_ip).await,
        Err(e) => Err(e),
    };
    if let Err(e) = assigned {
        warn!(instance = %target.instance, address = %ip.ip_address, error = %e,
            "assigning the reserved IP failed while the node had no public IP; restoring an ephemeral public IP");
        restore(client, target).await;
        return Err(e);
    }
    info!(instance = %target.instance, address = %ip.ip_address, "reserved public IP assigned");
    Ok(())
}

/// Poll until the address is ASSIGNED to `private_ip`. AVAILABLE (or elsewhere) means
/// the assignment failed silently, as the API documents it can.
async fn wait_assigned(
    client: &CoreClient,
    id: &str,
    private_ip: &str,
) -> Result<(), ProviderError> {
    let deadline = tokio::time::Instant::now() + ASSIGN_WAIT;
    let mut delay = POLL_FIRST;
    loop {
        match client.get_public_ip(id).await {
            Ok((ip, _))
                if ip.lifecycle_state == "ASSIGNED" && ip.private_ip() == Some(private_ip) =>
            {
                return Ok(())
            }
            Ok((ip, _))
                if ip.lifecycle_state == "ASSIGNING" && ip.private_ip() == Some(private_ip) => {}
            Ok((ip, _)) => {
                return Err(ProviderError::new(
                    ErrorClass::Transient,
                    op::UPDATE_PUBLIC_IP,
                    format!(
                        "the assignment of {} did not hold: it is {}",
                        ip.ip_address, ip.lifecycle_state
                    ),
                ))
            }
            Err(e) if e.is_retryable() => warn!(error = %e, "polling the assignment"),
            Err(e) => return Err(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProviderError::new(
                ErrorClass::Transient,
                op::UPDATE_PUBLIC_IP,
                format!("the address is still ASSIGNING after {ASSIGN_WAIT:?}"),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}

/// Poll until the address is AVAILABLE again (so the next node can take it at once);
/// still UNASSIGNING after the wait is fine: it is on its way.
async fn wait_available(client: &CoreClient, id: &str) {
    let deadline = tokio::time::Instant::now() + ASSIGN_WAIT;
    let mut delay = POLL_FIRST;
    while tokio::time::Instant::now() < deadline {
        match client.get_public_ip(id).await {
            Ok((ip, _)) if ip.lifecycle_state != "UNASSIGNING" => return,
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(_) => return,
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}

/// Take public IP `id` off `target`'s private IP if it is there, clear the record, and
/// give the node an ephemeral public IP back. Returns whether it was there.
pub async fn detach(client: &CoreClient, target: &Target, id: &str) -> Result<bool, ProviderError> {
    for _ in 0..TAG_ATTEMPTS {
        let (ip, etag) = match client.get_public_ip(id).await {
            Ok(read) => read,
            Err(e) if e.class == ErrorClass::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if !(occupies(&ip) && ip.private_ip() == Some(target.private_ip.as_str())) {
            return Ok(false);
        }
        let details = UpdatePublicIp {
            private_ip_id: Some(String::new()),
            freeform_tags: Some(tags::without_owner(&ip.freeform_tags)),
        };
        match client.update_public_ip(id, &details, &etag).await {
            Ok(_) => {
                // UNASSIGNING does not hold the private IP: the ephemeral one can come now.
                restore(client, target).await;
                wait_available(client, id).await;
                return Ok(true);
            }
            // Changed since the read (a tag edit, a transition): read again.
            Err(e) if e.class == ErrorClass::Conflict => continue,
            Err(e) => {
                // The unassignment may have landed although the answer was lost.
                restore(client, target).await;
                return Err(e);
            }
        }
    }
    Err(ProviderError::new(
        ErrorClass::Transient,
        op::UPDATE_PUBLIC_IP,
        "the address kept changing under us",
    ))
}

/// Write the free-form tags `change` makes of the current ones, re-reading on a stale ETag.
pub async fn set_tags(
    client: &CoreClient,
    mut ip: PublicIp,
    mut etag: String,
    change: impl Fn(&BTreeMap<String, String>) -> BTreeMap<String, String>,
    mut desired: BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    for attempt in 1..=TAG_ATTEMPTS {
        if desired == ip.freeform_tags {
            return Ok(());
        }
        let details = UpdatePublicIp {
            private_ip_id: None,
            freeform_tags: Some(desired.clone()),
        };
        match client.update_public_ip(&ip.id, &details, &etag).await {
            Ok(_) => return Ok(()),
            Err(e)
                if (e.class == ErrorClass::Conflict || e.is_retryable())
                    && attempt < TAG_ATTEMPTS =>
            {
                (ip, etag) = client.get_public_ip(&ip.id).await?;
                desired = change(&ip.freeform_tags);
            }
            Err(e) => return Err(e),
        }
    }
    Err(ProviderError::new(
        ErrorClass::Transient,
        op::UPDATE_PUBLIC_IP,
        "the tags kept changing under us",
    ))
}

/// Make sure `target` has a public IP again: re-check, and create an ephemeral one if
/// none is there, a few times with backoff. Failures are logged loudly, not returned:
/// the caller reports its own (first) error. If every attempt fails, a task of its own
/// keeps trying until the node has one: the agent may not assign again soon (its
/// address gone to another node, the pool exhausted), and a node must not wait without
/// a public IP.
pub async fn restore(client: &CoreClient, target: &Target) {
    let (client, owned) = (client.clone(), target.clone());
    let lifetime = client.lifetime.clone();
    restore_on_schedule(&target.instance, "a public IP", lifetime, move |attempt| {
        let (client, target) = (client.clone(), owned.clone());
        async move { restore_once(&client, &target, attempt).await }
    })
    .await;
}

/// One restore attempt: true once the node's private IP has a public IP (or is gone).
async fn restore_once(client: &CoreClient, target: &Target, attempt: u32) -> bool {
    match client.public_ip_on(&target.private_ip).await {
        Ok(Some(_)) => true,
        Ok(None) => match client
            .create_ephemeral(&target.compartment, &target.private_ip)
            .await
        {
            Ok(_) => {
                info!(instance = %target.instance, "ephemeral public IP restored");
                true
            }
            Err(e) => {
                warn!(instance = %target.instance, attempt, error = %e, "restoring an ephemeral public IP failed");
                false
            }
        },
        Err(e) if e.class == ErrorClass::NotFound => true,
        Err(e) => {
            warn!(instance = %target.instance, attempt, error = %e, "could not read the node's public IP while restoring it");
            false
        }
    }
}
