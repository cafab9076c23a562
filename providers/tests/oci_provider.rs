//! pinip's OCI provider against the OCI simulator, over HTTP with signed requests:
//! paging, filters, the ephemeral swap and its failure paths, idempotence, the
//! never-take-from-another-node rule, adoption and sweep-style release.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use pinip_providers::oci::{OciProvider, OciSettings, SigningKey};
use pinip_providers::{
    ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolAddress, PoolSpec, Provider,
};
use pinip_sim::oci::{Failure, Faults, Lifetime, OciSim, SeededInstance, TEST_PRIVATE_KEY_PEM};

struct World {
    sim: OciSim,
    compartment: String,
}

async fn world(pool: u32) -> World {
    let sim = OciSim::start().await.expect("simulator starts");
    sim.set_faults(Faults {
        transition_time: Duration::from_millis(50),
        ..Faults::default()
    });
    let compartment = sim.add_compartment();
    for i in 0..pool {
        sim.add_reserved_ip(&compartment, pool_ip(i), &[("kubeip", "reserved")], &[]);
    }
    World { sim, compartment }
}

fn pool_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 10)) + i)
}

fn settings(w: &World, filter: &[&str]) -> OciSettings {
    OciSettings {
        compartment: Some(w.compartment.clone()),
        region: w.sim.region(),
        endpoint: Some(w.sim.url()),
        credentials: SigningKey::new(&w.sim.test_key_id(), TEST_PRIVATE_KEY_PEM)
            .expect("the test key loads")
            .into(),
        pool: PoolSpec {
            filter: filter.iter().map(|s| s.to_string()).collect(),
            ..PoolSpec::default()
        },
    }
}

fn provider(w: &World) -> OciProvider {
    OciProvider::new(settings(w, &["freeformTags.kubeip=reserved"])).expect("provider builds")
}

fn reference(node: &SeededInstance) -> InstanceRef {
    InstanceRef {
        cloud: "oci".into(),
        project: None,
        zone: String::new(),
        id: node.instance_id.clone(),
    }
}

fn owner(node: &SeededInstance, name: &str) -> Ownership {
    Ownership {
        cluster: "prod".into(),
        node: name.into(),
        instance: node.instance_id.clone(),
    }
}

async fn describe(p: &OciProvider, node: &SeededInstance) -> Instance {
    p.describe_instance(&reference(node))
        .await
        .expect("describe")
}

async fn address(p: &OciProvider, ip: Ipv4Addr) -> PoolAddress {
    p.list_pool()
        .await
        .expect("list")
        .into_iter()
        .find(|a| a.ip == IpAddr::V4(ip))
        .expect("in the pool")
}

#[tokio::test]
async fn a_node_resolved_by_two_calls_at_once_is_read_once() {
    let w = world(2).await;
    let node = w.sim.add_instance(&w.compartment, "node-1", true, true);
    // Without PROJECT the pool's compartment is the node's: the listing resolves the
    // instance too, while the agent's first pass describes it side by side.
    let mut unscoped = settings(&w, &["freeformTags.kubeip=reserved"]);
    unscoped.compartment = None;
    let p = OciProvider::new(unscoped)
        .expect("provider builds")
        .for_instance(&node.instance_id);
    let me = reference(&node);
    let (pool, described) = tokio::join!(p.list_pool(), p.describe_instance(&me));
    assert_eq!(pool.expect("list").len(), 2);
    described.expect("describe");
    let counts = w.sim.request_counts();
    for op in [
        "GetInstance",
        "ListVnicAttachments",
        "GetVnic",
        "ListPrivateIps",
    ] {
        assert_eq!(counts.operation(op), 1, "{op}");
    }
}

#[tokio::test]
async fn the_pool_is_every_page_narrowed_by_the_filter() {
    let w = world(0).await;
    let namespace_filtered = 7;
    for i in 0..1205 {
        let tag = if i % 2 == 0 { "reserved" } else { "other" };
        let defined: &[(&str, &str, &str)] = if i < namespace_filtered {
            &[("ops", "pool", "edge")]
        } else {
            &[]
        };
        w.sim
            .add_reserved_ip(&w.compartment, pool_ip(i), &[("kubeip", tag)], defined);
    }
    let p = provider(&w);
    let pool = p.list_pool().await.expect("list");
    assert_eq!(
        pool.len(),
        603,
        "every page is read (1205 addresses, pages of 1000)"
    );
    assert_eq!(w.sim.request_counts().operation("ListPublicIps"), 2);
    assert!(pool
        .iter()
        .all(|a| a.is_free() && a.labels["kubeip"] == "reserved"));
    let both = OciProvider::new(settings(
        &w,
        &["freeformTags.kubeip=reserved", "definedTags.ops.pool=edge"],
    ))
    .unwrap();
    assert_eq!(
        both.list_pool().await.unwrap().len(),
        4,
        "filters are ANDed (indexes 0, 2, 4, 6)"
    );
}

#[tokio::test]
async fn attach_swaps_out_the_ephemeral_ip_and_detach_brings_one_back() {
    let w = world(3).await;
    let node = w.sim.add_instance(&w.compartment, "node-1", true, true);
    let p = provider(&w);
    let instance = describe(&p, &node).await;
    assert_eq!(instance.nic.as_deref(), Some(node.vnic_id.as_str()));
    assert_eq!(instance.private_ip, Some(IpAddr::V4(node.private_ip)));
    let target = address(&p, pool_ip(1)).await;
    p.attach(&target, &instance, &owner(&node, "node-1.example"))
        .await
        .expect("attach");
    assert_eq!(
        w.sim.public_ip_of(&node.instance_id),
        Some((pool_ip(1), Lifetime::Reserved))
    );
    let listed = address(&p, pool_ip(1)).await;
    assert_eq!(
        listed.attached_to.as_deref(),
        Some(node.instance_id.as_str())
    );
    assert_eq!(listed.owner, Some(owner(&node, "node-1.example")));
    // Idempotent: attaching again writes nothing.
    let writes = w.sim.request_counts().writes();
    p.attach(&listed, &instance, &owner(&node, "node-1.example"))
        .await
        .expect("attach again");
    assert_eq!(w.sim.request_counts().writes(), writes);

    p.detach(&listed, &reference(&node)).await.expect("detach");
    assert!(matches!(
        w.sim.public_ip_of(&node.instance_id),
        Some((_, Lifetime::Ephemeral))
    ));
    let freed = address(&p, pool_ip(1)).await;
    assert!(freed.is_free() && freed.owner.is_none(), "{freed:?}");
    assert!(
        freed.labels.keys().all(|k| !k.starts_with("pinip-")),
        "the record is cleared"
    );
    let writes = w.sim.request_counts().writes();
    p.detach(&freed, &reference(&node))
        .await
        .expect("detach again");
    assert_eq!(
        w.sim.request_counts().writes(),
        writes,
        "detaching a free address writes nothing"
    );
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[tokio::test]
async fn an_address_on_another_node_is_never_taken() {
    let w = world(1).await;
    let (a, b) = (
        w.sim.add_instance(&w.compartment, "node-a", true, true),
        w.sim.add_instance(&w.compartment, "node-b", true, true),
    );
    let p = provider(&w);
    let (ia, ib) = (describe(&p, &a).await, describe(&p, &b).await);
    let free = address(&p, pool_ip(0)).await;
    p.attach(&free, &ia, &owner(&a, "node-a"))
        .await
        .expect("a attaches");
    // B acts on a stale listing that still shows the address free.
    let e = p
        .attach(&free, &ib, &owner(&b, "node-b"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    assert_eq!(w.sim.attached_to(&a.instance_id), [pool_ip(0)]);
    assert!(
        matches!(
            w.sim.public_ip_of(&b.instance_id),
            Some((_, Lifetime::Ephemeral))
        ),
        "B keeps its ephemeral IP"
    );
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[tokio::test]
async fn a_failed_swap_and_a_failed_first_restore_still_leave_a_public_ip() {
    let w = world(1).await;
    let node = w.sim.add_instance(&w.compartment, "node-1", true, true);
    let p = provider(&w);
    let instance = describe(&p, &node).await;
    let target = address(&p, pool_ip(0)).await;
    w.sim.fail_next("UpdatePublicIp", Failure::internal());
    w.sim.fail_next("CreatePublicIp", Failure::internal());
    let e = p
        .attach(&target, &instance, &owner(&node, "node-1"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert_eq!(
        w.sim.request_counts().operation("CreatePublicIp"),
        2,
        "the first restore failed, the second worked"
    );
    assert!(matches!(
        w.sim.public_ip_of(&node.instance_id),
        Some((_, Lifetime::Ephemeral))
    ));
    assert!(w.sim.managed_without_public_ip().is_empty());
    let after = address(&p, pool_ip(0)).await;
    assert!(after.is_free() && after.owner.is_none());
    // The next attempt succeeds.
    p.attach(&after, &instance, &owner(&node, "node-1"))
        .await
        .expect("retry");
    assert_eq!(w.sim.attached_to(&node.instance_id), [pool_ip(0)]);
}

#[tokio::test]
async fn a_failed_re_assignment_to_a_node_left_without_a_public_ip_gives_it_an_ephemeral_one() {
    let w = world(1).await;
    let node = w.sim.add_instance(&w.compartment, "node-1", true, true);
    let p = provider(&w);
    let instance = describe(&p, &node).await;
    let target = address(&p, pool_ip(0)).await;
    p.attach(&target, &instance, &owner(&node, "node-1"))
        .await
        .expect("attach");
    // Someone unassigns the reserved IP by hand: the node has no public IP at all.
    w.sim.unassign_by_hand(&target.id);
    let freed = address(&p, pool_ip(0)).await;
    w.sim.fail_next("UpdatePublicIp", Failure::internal());
    let e = p
        .attach(&freed, &instance, &owner(&node, "node-1"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    // Without this, a node whose address then goes to another node waits on an
    // exhausted pool without any public IP.
    assert!(matches!(
        w.sim.public_ip_of(&node.instance_id),
        Some((_, Lifetime::Ephemeral))
    ));
    assert!(w.sim.managed_without_public_ip().is_empty());
}

#[tokio::test]
async fn an_assignment_that_landed_but_answered_an_error_is_kept_and_adopted() {
    let w = world(1).await;
    let node = w.sim.add_instance(&w.compartment, "node-1", true, true);
    let p = provider(&w);
    let instance = describe(&p, &node).await;
    let target = address(&p, pool_ip(0)).await;
    w.sim.fail_next(
        "UpdatePublicIp",
        Failure::LandedThenFailed {
            status: 504,
            code: "GatewayTimeout",
            message: "timed out".into(),
        },
    );
    assert!(p
        .attach(&target, &instance, &owner(&node, "node-1"))
        .await
        .is_err());
    assert_eq!(
        w.sim.request_counts().operation("CreatePublicIp"),
        0,
        "the restore saw the node had a public IP"
    );
    assert_eq!(w.sim.attached_to(&node.instance_id), [pool_ip(0)]);
    p.attach(&target, &instance, &owner(&node, "node-1"))
        .await
        .expect("the retry finds it already attached");
}

#[tokio::test]
async fn a_restarted_agent_adopts_from_the_record_and_finds_unrecorded_holders() {
    let w = world(2).await;
    let node = w.sim.add_instance(&w.compartment, "node-1", true, true);
    let other = w.sim.add_instance(&w.compartment, "by-hand", false, false);
    let p = provider(&w);
    let instance = describe(&p, &node).await;
    p.attach(
        &address(&p, pool_ip(0)).await,
        &instance,
        &owner(&node, "node-1"),
    )
    .await
    .unwrap();
    let hand = w
        .sim
        .public_ips()
        .into_iter()
        .find(|x| x.ip == pool_ip(1))
        .unwrap();
    w.sim.assign_by_hand(&hand.id, &other.instance_id);
    // A fresh provider (the pod restarted) knows nothing yet.
    let fresh = provider(&w);
    let before = w.sim.request_counts();
    let pool = fresh.list_pool().await.unwrap();
    let ours = pool
        .iter()
        .find(|a| a.ip == IpAddr::V4(pool_ip(0)))
        .unwrap();
    assert_eq!(ours.attached_to.as_deref(), Some(node.instance_id.as_str()));
    assert_eq!(ours.owner, Some(owner(&node, "node-1")));
    let theirs = pool
        .iter()
        .find(|a| a.ip == IpAddr::V4(pool_ip(1)))
        .unwrap();
    assert_eq!(
        theirs.attached_to.as_deref(),
        Some(other.instance_id.as_str())
    );
    let after = w.sim.request_counts();
    assert_eq!(after.writes(), before.writes(), "adoption writes nothing");
    assert_eq!(
        after.operation("GetPrivateIp") - before.operation("GetPrivateIp"),
        1,
        "only the unrecorded holder is looked up"
    );
}

#[tokio::test]
async fn a_sweep_frees_the_address_of_a_vanished_owner() {
    let w = world(2).await;
    let (gone, alive) = (
        w.sim.add_instance(&w.compartment, "gone", true, true),
        w.sim
            .add_instance(&w.compartment, "node-deleted-vm-alive", true, true),
    );
    let p = provider(&w);
    for (i, node) in [&gone, &alive].into_iter().enumerate() {
        let instance = describe(&p, node).await;
        p.attach(
            &address(&p, pool_ip(i as u32)).await,
            &instance,
            &owner(node, "x"),
        )
        .await
        .unwrap();
    }
    w.sim.terminate_instance(&gone.instance_id);
    // Another node's agent runs the sweep.
    let sweeper = provider(&w);
    let stale = address(&sweeper, pool_ip(0)).await;
    assert!(
        stale.is_free() && stale.owner.is_some(),
        "OCI freed it with the instance, the record stayed"
    );
    sweeper
        .detach(&stale, &reference(&gone))
        .await
        .expect("sweep detach");
    assert!(address(&sweeper, pool_ip(0)).await.owner.is_none());
    // The node object is gone but its VM runs: the address comes off, an ephemeral IP goes on.
    let held = address(&sweeper, pool_ip(1)).await;
    sweeper
        .detach(&held, &reference(&alive))
        .await
        .expect("sweep detach");
    let freed = address(&sweeper, pool_ip(1)).await;
    assert!(freed.is_free() && freed.owner.is_none());
    assert!(matches!(
        w.sim.public_ip_of(&alive.instance_id),
        Some((_, Lifetime::Ephemeral))
    ));
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[tokio::test]
async fn configuration_and_permission_errors_are_clear() {
    let w = world(1).await;
    let mut v6 = settings(&w, &[]);
    v6.pool.family = IpFamily::V6;
    let e = OciProvider::new(v6).err().expect("IPv6 is refused");
    assert!(
        e.class == ErrorClass::InvalidInput && e.message.contains("IPv6"),
        "{e}"
    );
    let e = OciProvider::new(settings(&w, &["labels.kubeip=reserved"]))
        .err()
        .expect("a GCP filter is refused");
    assert!(e.message.contains("freeformTags."), "{e}");
    w.sim.deny("ListPublicIps");
    let e = provider(&w).list_pool().await.unwrap_err();
    assert!(
        matches!(&e.class, ErrorClass::PermissionDenied { action } if action.contains("PUBLIC_IP_READ")),
        "{e}"
    );
    w.sim.allow("ListPublicIps");
    w.sim.remove_api_key(&w.sim.test_key_id());
    let e = provider(&w).list_pool().await.unwrap_err();
    assert!(
        matches!(e.class, ErrorClass::PermissionDenied { .. })
            && e.code.as_deref() == Some("NotAuthenticated"),
        "{e}"
    );
}
