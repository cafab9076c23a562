//! The contract every [`Provider`] keeps, as one function a new cloud runs against its
//! own test cloud: `check_provider_contract(&setup)`. It uses nothing but the trait,
//! so what it proves is what the agent relies on (`provider.rs` states the rules).
//!
//! Feature `contract`: a test-only dependency (the fake cloud, AWS on the EC2 simulator
//! and on moto, GCP on the Compute simulator and the example's made-up cloud run it).

use async_trait::async_trait;

use crate::{ErrorClass, InstanceRef, Ownership, PoolAddress, ProviderHandle};

/// A fresh cloud for one run of the contract.
pub struct ContractWorld {
    /// A provider whose pool is the seeded pool addresses (not the decoy).
    pub provider: ProviderHandle,
    /// Two instances pinip manages, holding no pool address.
    pub instances: [InstanceRef; 2],
    /// How many pool addresses were seeded (at least 2), all free; besides them the cloud
    /// holds at least one address outside the pool.
    pub pool_size: usize,
    /// Whatever keeps the test cloud running until the contract is done.
    pub guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// How a cloud's tests set up a [`ContractWorld`].
#[async_trait]
pub trait ContractSetup: Send + Sync {
    async fn world(&self) -> Result<ContractWorld, String>;
}

/// What a run checked, for the test's output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ContractReport {
    pub provider: String,
    pub checks: Vec<&'static str>,
}

fn owner(instance: &InstanceRef, node: &str) -> Ownership {
    Ownership {
        cluster: "contract".into(),
        node: node.into(),
        instance: instance.id.clone(),
    }
}

async fn find(world: &ContractWorld, id: &str) -> Result<PoolAddress, String> {
    let pool = world
        .provider
        .list_pool()
        .await
        .map_err(|e| format!("list_pool: {e}"))?;
    pool.into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| format!("address {id} vanished from the pool"))
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// Run the contract; Err says which rule broke and how.
pub async fn check_provider_contract(setup: &dyn ContractSetup) -> Result<ContractReport, String> {
    let world = setup.world().await?;
    let p = &world.provider;
    let [i0, i1] = &world.instances;
    let mut report = ContractReport {
        provider: p.name().to_string(),
        checks: Vec::new(),
    };

    let pool = p.list_pool().await.map_err(|e| format!("list_pool: {e}"))?;
    ensure(pool.len() == world.pool_size, || {
        format!(
            "list_pool returned {} addresses, the pool has {} (is FILTER applied, decoys left out?): {pool:?}",
            pool.len(),
            world.pool_size
        )
    })?;
    ensure(
        pool.iter().all(|a| a.is_free() && a.owner.is_none()),
        || format!("a fresh pool is free and unowned: {pool:?}"),
    )?;
    report
        .checks
        .push("list_pool: exactly the filtered pool, free and unowned");

    // Nothing refuses a page here, so the prefix listing is the whole pool.
    let read = p
        .list_pool_prefix()
        .await
        .map_err(|e| format!("list_pool_prefix: {e}"))?;
    ensure(read == crate::PoolRead::Whole(pool.clone()), || {
        format!("list_pool_prefix without a refusal is list_pool's whole pool: {read:?}")
    })?;
    report
        .checks
        .push("list_pool_prefix: the whole pool when no page is refused");

    // Parts: each address of a part as the whole listing shows it; a provider without
    // parts answers with the whole pool.
    let part = crate::PoolPart {
        seed: 7,
        share: 0.1,
    };
    let read = p
        .list_pool_part(&part)
        .await
        .map_err(|e| format!("list_pool_part: {e}"))?;
    match &read {
        crate::PoolRead::Part(addresses) => ensure(
            p.reads_pool_parts() && addresses.iter().all(|a| pool.contains(a)),
            || format!("a part holds addresses of the pool, as listed: {read:?}"),
        )?,
        other => ensure(*other == crate::PoolRead::Whole(pool.clone()), || {
            format!("list_pool_part without a part is the whole pool: {read:?}")
        })?,
    }
    report
        .checks
        .push("list_pool_part: a part of the pool, or the whole pool");

    let d0 = p
        .describe_instance(i0)
        .await
        .map_err(|e| format!("describe_instance({i0}): {e}"))?;
    let d1 = p
        .describe_instance(i1)
        .await
        .map_err(|e| format!("describe_instance({i1}): {e}"))?;
    ensure(d0.reference.id == i0.id && d1.reference.id == i1.id, || {
        format!("describe_instance names another instance: {d0:?} {d1:?}")
    })?;
    report
        .checks
        .push("describe_instance: the instance asked for");

    let (a0, a1) = (&pool[0], &pool[1]);
    let o0 = owner(i0, "node-0");
    p.attach(a0, &d0, &o0)
        .await
        .map_err(|e| format!("attach {} to {i0}: {e}", a0.ip))?;
    p.attach(a0, &d0, &o0).await.map_err(|e| {
        format!(
            "attach is idempotent, but attaching {} again failed: {e}",
            a0.ip
        )
    })?;
    let listed = find(&world, &a0.id).await?;
    ensure(
        listed.attached_to.as_deref() == Some(i0.id.as_str()),
        || {
            format!(
                "after attach, list_pool shows {} on {:?}",
                a0.ip, listed.attached_to
            )
        },
    )?;
    ensure(listed.owner.as_ref() == Some(&o0), || {
        format!("attach records the owner: {:?}", listed.owner)
    })?;
    report
        .checks
        .push("attach: idempotent, attached and owner recorded");

    let stolen = p.attach(&listed, &d1, &owner(i1, "node-1")).await;
    ensure(
        matches!(&stolen, Err(e) if e.class == ErrorClass::Conflict),
        || {
            format!(
                "attaching an address another instance holds must fail with Conflict: {stolen:?}"
            )
        },
    )?;
    let after = find(&world, &a0.id).await?;
    ensure(after.attached_to.as_deref() == Some(i0.id.as_str()), || {
        format!(
            "a refused attach moved the address: now on {:?}",
            after.attached_to
        )
    })?;
    report
        .checks
        .push("attach: never moves an address another instance holds");

    p.detach(&after, i1)
        .await
        .map_err(|e| format!("detach from an instance that does not hold it is a success: {e}"))?;
    let kept = find(&world, &a0.id).await?;
    ensure(kept.attached_to.as_deref() == Some(i0.id.as_str()), || {
        format!(
            "detach for {i1} took the address off {i0}: {:?}",
            kept.attached_to
        )
    })?;
    report.checks.push("detach: only from the instance named");

    p.detach(&kept, i0)
        .await
        .map_err(|e| format!("detach {} from {i0}: {e}", a0.ip))?;
    let freed = find(&world, &a0.id).await?;
    ensure(freed.is_free() && freed.owner.is_none(), || {
        format!("detach frees the address and clears its owner: {freed:?}")
    })?;
    p.detach(&freed, i0)
        .await
        .map_err(|e| format!("detach is idempotent, but a second detach failed: {e}"))?;
    report
        .checks
        .push("detach: frees, clears the owner, idempotent");

    // The agent's way: attach without the record, then the record beside the publication.
    let o1 = owner(i1, "node-1");
    p.attach_unrecorded(a1, &d1, &o1)
        .await
        .map_err(|e| format!("attach_unrecorded {} to {i1}: {e}", a1.ip))?;
    p.record_owner(a1, &d1, &o1)
        .await
        .map_err(|e| format!("record_owner {} on {i1}: {e}", a1.ip))?;
    let pool = p.list_pool().await.map_err(|e| format!("list_pool: {e}"))?;
    let on = |instance: &InstanceRef| -> Vec<String> {
        pool.iter()
            .filter(|a| a.attached_to.as_deref() == Some(instance.id.as_str()))
            .map(|a| a.ip.to_string())
            .collect()
    };
    ensure(
        on(i1) == vec![a1.ip.to_string()] && on(i0).is_empty(),
        || {
            format!(
                "after the second attach: {i0} holds {:?}, {i1} holds {:?}",
                on(i0),
                on(i1)
            )
        },
    )?;
    let listed = pool
        .iter()
        .find(|a| a.id == a1.id)
        .ok_or_else(|| format!("address {} vanished from the pool", a1.id))?;
    ensure(listed.owner.as_ref() == Some(&o1), || {
        format!(
            "attach_unrecorded then record_owner records the owner: {:?}",
            listed.owner
        )
    })?;
    report
        .checks
        .push("attach_unrecorded + record_owner: attached and owner recorded");
    p.detach(listed, i1)
        .await
        .map_err(|e| format!("detach {} from {i1}: {e}", a1.ip))?;
    report
        .checks
        .push("a freed address is the same as a fresh one");
    Ok(report)
}
