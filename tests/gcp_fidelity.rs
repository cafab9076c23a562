//! The GCP provider does what real Compute accepts, against a simulator that refuses
//! what Compute refuses (issue 15): `ORDER_BY` sorted on the client (the API refuses
//! `orderBy` next to a filter), the two-step IPv6 swap, IPv6 addresses that cannot go
//! on the node skipped, the error classes of `resourceNotReady`, `QUOTA_EXCEEDED` and
//! `403 rateLimitExceeded`, and operations that complete later than they are accepted
//! (a best-effort `wait`, a delete landing after a failed wait).

use std::net::IpAddr;
use std::time::Duration;

use pinip_providers::gcp::{GcpProvider, GcpSettings, TokenSource};
use pinip_providers::{ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolSpec, Provider};
use pinip_sim::compute::{ComputeSim, Failure, Faults};

const PROJECT: &str = "p";
const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";

async fn sim() -> ComputeSim {
    let sim = ComputeSim::start(PROJECT).await.expect("simulator starts");
    for (name, address) in [
        ("pool-b", "203.0.113.11"),
        ("pool-a", "203.0.113.10"),
        ("pool-c", "203.0.113.12"),
    ] {
        sim.add_address(REGION, name, ip(address), &[("kubeip", "reserved")]);
    }
    sim.add_address(
        REGION,
        "v6-good",
        ip("2600:1900:4000:abcd::"),
        &[("kubeip", "reserved")],
    );
    sim.add_ipv6_address(
        REGION,
        "v6-a-lb",
        ip("2600:1900:4000:abce::"),
        &[("kubeip", "reserved")],
        "NETLB",
        "default",
    );
    sim.add_ipv6_address(
        REGION,
        "v6-b-elsewhere",
        ip("2600:1900:4000:abcf::"),
        &[("kubeip", "reserved")],
        "VM",
        "other",
    );
    sim.add_instance(ZONE, "node-1", true);
    sim.add_instance(ZONE, "node-2", true);
    sim
}

fn provider(sim: &ComputeSim, family: IpFamily, order_by: Option<&str>) -> GcpProvider {
    GcpProvider::new(GcpSettings {
        project: PROJECT.into(),
        region: REGION.into(),
        endpoint: Some(sim.url()),
        token: TokenSource::Static("test-token".into()),
        pool: PoolSpec {
            filter: vec!["labels.kubeip=reserved".into()],
            order_by: order_by.map(String::from),
            family,
        },
    })
    .expect("provider")
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn reference(name: &str) -> InstanceRef {
    InstanceRef {
        cloud: "gce".into(),
        project: Some(PROJECT.into()),
        zone: ZONE.into(),
        id: name.into(),
    }
}

fn owner(node: &str) -> Ownership {
    Ownership {
        cluster: "prod".into(),
        node: node.into(),
        instance: node.into(),
    }
}

async fn described(p: &GcpProvider, name: &str) -> Instance {
    p.describe_instance(&reference(name))
        .await
        .expect("describe")
}

fn has_external(sim: &ComputeSim, instance: &str, v6: bool) -> bool {
    sim.external_ips(instance).iter().any(|i| i.is_ipv6() == v6)
}

/// Until every accepted write has landed (bounded; not a timing assertion).
async fn settled(sim: &ComputeSim) {
    for _ in 0..200 {
        if sim.running_operations() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("operations still running: {}", sim.running_operations());
}

fn ids(pool: &[pinip_providers::PoolAddress]) -> Vec<&str> {
    pool.iter().map(|a| a.id.as_str()).collect()
}

#[tokio::test]
async fn order_by_is_applied_by_the_provider_because_compute_refuses_it_with_a_filter() {
    let sim = sim().await;
    let by_name = provider(&sim, IpFamily::V4, Some("name"));
    assert_eq!(
        ids(&by_name.list_pool().await.unwrap()),
        ["pool-a", "pool-b", "pool-c"]
    );
    let newest_first = provider(&sim, IpFamily::V4, Some("creationTimestamp desc"));
    // Created within one millisecond, so the tie keeps the API's (name) order, unless
    // the clock ticked between them: either way pool-c (last) is never after pool-a.
    let pool = newest_first.list_pool().await.unwrap();
    assert_eq!(pool.len(), 3);
    let by_ip = provider(&sim, IpFamily::V4, Some("address desc"));
    assert_eq!(
        ids(&by_ip.list_pool().await.unwrap()),
        ["pool-c", "pool-b", "pool-a"]
    );
    sim.relabel_by_hand("pool-c", "rank", "1");
    sim.relabel_by_hand("pool-a", "rank", "2");
    let by_label = provider(&sim, IpFamily::V4, Some("labels.rank"));
    assert_eq!(
        ids(&by_label.list_pool().await.unwrap()),
        ["pool-c", "pool-a", "pool-b"],
        "unlabelled last"
    );
    let bad = GcpProvider::new(GcpSettings {
        project: PROJECT.into(),
        region: REGION.into(),
        endpoint: Some(sim.url()),
        token: TokenSource::Static("t".into()),
        pool: PoolSpec {
            filter: vec![],
            order_by: Some("colour".into()),
            family: IpFamily::V4,
        },
    });
    assert_eq!(bad.err().map(|e| e.class), Some(ErrorClass::InvalidInput));
    sim.shutdown();
}

#[tokio::test]
async fn the_ipv6_swap_takes_the_two_documented_steps_and_release_too() {
    let sim = sim().await;
    let p = provider(&sim, IpFamily::V6, Some("name"));
    let me = described(&p, "node-1").await;
    let pool = p.list_pool().await.unwrap();
    assert_eq!(
        ids(&pool),
        ["v6-good"],
        "the misfits are skipped once the NIC is known"
    );
    p.attach(&pool[0], &me, &owner("node-1")).await.unwrap();
    assert_eq!(sim.attached_to("node-1"), vec![ip("2600:1900:4000:abcd::")]);
    assert_eq!(sim.stack_type("node-1").as_deref(), Some("IPV4_IPV6"));
    assert_eq!(
        sim.request_counts()
            .method("instances.updateNetworkInterface"),
        2,
        "IPV4_ONLY, then IPV4_IPV6 with the static address"
    );
    assert!(has_external(&sim, "node-1", false), "IPv4 untouched");
    p.detach(&pool[0], &me.reference).await.unwrap();
    assert!(sim.attached_to("node-1").is_empty());
    assert!(
        has_external(&sim, "node-1", true),
        "an ephemeral IPv6 is back"
    );
    assert_eq!(
        sim.request_counts()
            .method("instances.updateNetworkInterface"),
        4
    );
    assert!(sim.violations().is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn an_ipv6_address_that_cannot_fit_is_a_conflict_and_changes_nothing() {
    let sim = sim().await;
    let p = provider(&sim, IpFamily::V6, Some("name"));
    // Listed before the NIC is known (the agent's first pass): a load balancer's range
    // is never offered, a range of another subnetwork still is.
    let pool = p.list_pool().await.unwrap();
    assert_eq!(ids(&pool), ["v6-b-elsewhere", "v6-good"]);
    let me = described(&p, "node-1").await;
    let netlb = pinip_providers::PoolAddress {
        id: "v6-a-lb".into(),
        ip: ip("2600:1900:4000:abce::"),
        attached_to: None,
        owner: None,
        labels: Default::default(),
    };
    for misfit in [&netlb, &pool[0]] {
        let e = p.attach(misfit, &me, &owner("node-1")).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    }
    assert_eq!(sim.request_counts().writes(), 0, "nothing was touched");
    p.attach(&pool[1], &me, &owner("node-1")).await.unwrap();
    assert_eq!(sim.attached_to("node-1"), vec![ip("2600:1900:4000:abcd::")]);
    sim.shutdown();
}

#[tokio::test]
async fn a_failed_second_ipv6_step_restores_an_ephemeral_ipv6() {
    let sim = sim().await;
    let p = provider(&sim, IpFamily::V6, None);
    let me = described(&p, "node-1").await;
    let pool = p.list_pool().await.unwrap();
    let good = pool.iter().find(|a| a.id == "v6-good").unwrap().clone();
    sim.attach_by_hand("v6-good", "node-2");
    let e = p.attach(&good, &me, &owner("node-1")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    assert!(
        has_external(&sim, "node-1", true),
        "an ephemeral IPv6 again: {:?}",
        sim.external_ips("node-1")
    );
    assert_eq!(sim.stack_type("node-1").as_deref(), Some("IPV4_IPV6"));
    assert!(sim.managed_without_external_ipv6().is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn not_ready_is_transient_quota_is_throttling_and_403_rate_limits_are_throttling() {
    let sim = sim().await;
    let p = provider(&sim, IpFamily::V4, None);
    let me = described(&p, "node-1").await;
    let pool = p.list_pool().await.unwrap();
    sim.fail_next(
        "instances.deleteAccessConfig",
        Failure::not_ready("projects/p/zones/us-central1-a/instances/node-1"),
    );
    let e = p.attach(&pool[0], &me, &owner("node-1")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert!(has_external(&sim, "node-1", false));
    sim.fail_next("instances.addAccessConfig", Failure::quota_exceeded());
    let e = p.attach(&pool[0], &me, &owner("node-1")).await.unwrap_err();
    assert_eq!(
        e.class,
        ErrorClass::Throttled,
        "not a missing permission: {e}"
    );
    assert!(e.message.contains("IN_USE_ADDRESSES"), "{e}");
    assert!(
        has_external(&sim, "node-1", false),
        "an ephemeral IPv4 was restored"
    );
    sim.fail_next("addresses.list", Failure::rate_limited());
    assert_eq!(
        p.list_pool().await.unwrap_err().class,
        ErrorClass::Throttled
    );
    p.attach(&pool[0], &me, &owner("node-1")).await.unwrap();
    assert_eq!(sim.attached_to("node-1").len(), 1);
    sim.shutdown();
}

#[tokio::test]
async fn a_wait_that_answers_early_is_waited_on_again() {
    let sim = sim().await;
    sim.set_faults(Faults {
        operation_time: Duration::from_millis(400),
        wait_early_rate: 1.0,
        ..Faults::default()
    });
    let p = provider(&sim, IpFamily::V4, None);
    let me = described(&p, "node-1").await;
    let pool = p.list_pool().await.unwrap();
    p.attach(&pool[0], &me, &owner("node-1")).await.unwrap();
    assert_eq!(sim.attached_to("node-1"), vec![pool[0].ip]);
    assert!(sim.request_counts().method("zoneOperations.wait") >= 3);
    sim.shutdown();
}

#[tokio::test]
async fn a_delete_that_lands_after_its_wait_failed_still_leaves_an_external_ip() {
    let sim = sim().await;
    sim.set_faults(Faults {
        operation_time: Duration::from_millis(300),
        ..Faults::default()
    });
    let p = provider(&sim, IpFamily::V4, None);
    let me = described(&p, "node-1").await;
    let pool = p.list_pool().await.unwrap();
    // A blip on the wait: the delete is still RUNNING and lands later.
    sim.fail_next(
        "zoneOperations.wait",
        Failure::Http {
            status: 503,
            reason: "backendError",
            message: "unavailable".into(),
        },
    );
    p.attach(&pool[0], &me, &owner("node-1")).await.unwrap();
    settled(&sim).await;
    assert_eq!(sim.attached_to("node-1"), vec![pool[0].ip]);

    // The wait refused outright: the outcome of the delete is not seen, the restore
    // must wait for it before it looks at the NIC.
    let other = described(&p, "node-2").await;
    sim.deny("zoneOperations.wait");
    let e = p.attach(&pool[1], &other, &owner("node-2")).await;
    settled(&sim).await;
    assert!(
        has_external(&sim, "node-2", false),
        "node-2 must keep an external IPv4 ({e:?}): {:?}",
        sim.external_ips("node-2")
    );
    assert!(sim.managed_without_external_ipv4().is_empty());
    assert!(sim.violations().is_empty());
    sim.shutdown();
}
