//! The real GCP provider (reqwest, static token) against the Compute simulator over
//! HTTP: the IPv4 swap and its failure paths (the node must always end with an
//! external IP), IPv6, ownership labels, fingerprints, error classes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::gcp::{GcpProvider, GcpSettings, TokenSource};
use pinip_providers::{
    ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolRead, PoolSpec, Provider,
};
use pinip_sim::clock::ManualClock;
use pinip_sim::compute::{ComputeRateLimits, ComputeSim, Failure};

const PROJECT: &str = "p";
const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";

struct Setup {
    sim: ComputeSim,
    provider: GcpProvider,
}

async fn setup(family: IpFamily) -> Setup {
    let sim = ComputeSim::start(PROJECT).await.expect("simulator starts");
    sim.add_address(
        REGION,
        "pool-1",
        ip("203.0.113.10"),
        &[("kubeip", "reserved")],
    );
    sim.add_address(
        REGION,
        "pool-2",
        ip("203.0.113.11"),
        &[("kubeip", "reserved")],
    );
    sim.add_address(
        REGION,
        "v6-1",
        ip("2600:1900:4000:abcd::"),
        &[("kubeip", "reserved")],
    );
    sim.add_address(
        REGION,
        "v6-2",
        ip("2600:1900:4000:abce::"),
        &[("kubeip", "reserved")],
    );
    sim.add_address(
        REGION,
        "not-pool",
        ip("203.0.113.99"),
        &[("kubeip", "other")],
    );
    sim.add_instance(ZONE, "node-1", true);
    sim.add_instance(ZONE, "node-2", true);
    let provider = GcpProvider::new(GcpSettings {
        project: PROJECT.into(),
        region: REGION.into(),
        endpoint: Some(sim.url()),
        token: TokenSource::Static("test-token".into()),
        pool: PoolSpec {
            filter: vec!["labels.kubeip=reserved".into()],
            order_by: Some("name".into()),
            family,
        },
    })
    .expect("provider");
    Setup { sim, provider }
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

fn labels(sim: &ComputeSim, name: &str) -> BTreeMap<String, String> {
    sim.addresses()
        .into_iter()
        .find(|a| a.name == name)
        .unwrap()
        .labels
}

fn has_external_v4(sim: &ComputeSim, instance: &str) -> bool {
    sim.external_ips(instance).iter().any(IpAddr::is_ipv4)
}

async fn described(s: &Setup, name: &str) -> Instance {
    s.provider
        .describe_instance(&reference(name))
        .await
        .expect("describe")
}

#[tokio::test]
async fn the_ipv4_swap_attaches_records_ownership_and_is_idempotent() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    assert_eq!(me.nic.as_deref(), Some("nic0"));
    assert!(me.private_ip.is_some());
    let pool = s.provider.list_pool().await.unwrap();
    assert_eq!(
        pool.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["pool-1", "pool-2"]
    );
    assert!(pool.iter().all(|a| a.is_free()));
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(
        s.sim.external_ips("node-1")[0],
        ip("203.0.113.10"),
        "the static IPv4 replaced the ephemeral one"
    );
    assert_eq!(labels(&s.sim, "pool-1")["pinip-node"], "node-1");
    // Idempotent: no further write.
    let writes = s.sim.request_counts().writes();
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.request_counts().writes(), writes);
    // The listing now shows it held by node-1, with its owner.
    let pool = s.provider.list_pool().await.unwrap();
    let held = pool.iter().find(|a| a.id == "pool-1").unwrap();
    assert_eq!(held.attached_to.as_deref(), Some("node-1"));
    assert_eq!(held.owner, Some(owner("node-1")));
    assert_eq!(held.labels["kubeip"], "reserved");
    assert!(s.sim.violations().is_empty());
}

#[tokio::test]
async fn add_access_config_failing_after_the_ephemeral_ip_was_removed_leaves_the_node_with_an_external_ip(
) {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    // The static add ends in error, and so does the first attempt to restore.
    s.sim.fail_next(
        "instances.addAccessConfig",
        Failure::Operation {
            code: "INTERNAL_ERROR".into(),
            message: "backend failure".into(),
        },
    );
    s.sim.fail_next(
        "instances.addAccessConfig",
        Failure::Http {
            status: 503,
            reason: "backendError",
            message: "unavailable".into(),
        },
    );
    let error = s
        .provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient, "{error}");
    assert!(error.message.contains("backend failure"), "{error}");
    let counts = s.sim.request_counts();
    assert_eq!(
        counts.method("instances.deleteAccessConfig"),
        1,
        "the ephemeral IP was removed"
    );
    assert_eq!(
        counts.method("instances.addAccessConfig"),
        3,
        "static add, failed restore, restore"
    );
    assert!(
        has_external_v4(&s.sim, "node-1"),
        "the node must end with an external IP: {:?}",
        s.sim.external_ips("node-1")
    );
    assert!(!s.sim.attached_to("node-1").contains(&ip("203.0.113.10")));
    assert!(
        !labels(&s.sim, "pool-1").contains_key("pinip-node"),
        "no ownership recorded for a failed attach"
    );
    // The next attempt succeeds.
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.attached_to("node-1"), vec![ip("203.0.113.10")]);
}

#[tokio::test]
async fn a_throttled_add_after_the_delete_is_retried_with_the_static_address_not_an_ephemeral_one()
{
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    // The quota refuses the static add twice (what a spent window answers).
    for _ in 0..2 {
        s.sim.fail_next(
            "instances.addAccessConfig",
            Failure::Http {
                status: 403,
                reason: "rateLimitExceeded",
                message: "Quota exceeded for quota metric 'Queries'".into(),
            },
        );
    }
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.attached_to("node-1"), vec![ip("203.0.113.10")]);
    let counts = s.sim.request_counts();
    assert_eq!(counts.method("instances.deleteAccessConfig"), 1);
    assert_eq!(
        counts.method("instances.addAccessConfig"),
        3,
        "two refused static adds, then the static add; no ephemeral restore between"
    );
    assert_eq!(labels(&s.sim, "pool-1")["pinip-node"], "node-1");
}

#[tokio::test]
async fn a_failed_re_attach_to_a_nic_left_without_an_external_ip_gives_it_an_ephemeral_one() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    // Someone removes the address by hand: the NIC has no external IPv4 at all.
    s.sim.detach_by_hand("pool-1");
    assert!(!has_external_v4(&s.sim, "node-1"));
    let me = described(&s, "node-1").await;
    s.sim.fail_next(
        "instances.addAccessConfig",
        Failure::Http {
            status: 503,
            reason: "backendError",
            message: "unavailable".into(),
        },
    );
    let error = s
        .provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient, "{error}");
    // Without this, a node whose address then goes to another node waits on an
    // exhausted pool with no egress at all.
    assert!(
        has_external_v4(&s.sim, "node-1"),
        "the node must end with an external IP: {:?}",
        s.sim.external_ips("node-1")
    );
    assert!(!s.sim.attached_to("node-1").contains(&ip("203.0.113.10")));
    // The next attempt swaps the ephemeral one for the static address.
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.attached_to("node-1"), vec![ip("203.0.113.10")]);
}

#[tokio::test]
async fn an_address_taken_meanwhile_is_a_conflict_and_the_node_keeps_an_external_ip() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    // Someone else takes pool-1 after we listed it.
    s.sim.attach_by_hand("pool-1", "node-2");
    let error = s
        .provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Conflict, "{error}");
    assert_eq!(error.code.as_deref(), Some("IP_IN_USE_BY_ANOTHER_RESOURCE"));
    assert!(has_external_v4(&s.sim, "node-1"));
    assert_eq!(
        s.sim.attached_to("node-2"),
        vec![ip("203.0.113.10")],
        "nothing moved"
    );
    assert_eq!(s.sim.duplicates(), 0);
    // The next candidate works.
    s.provider
        .attach(&pool[1], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.attached_to("node-1"), vec![ip("203.0.113.11")]);
}

#[tokio::test]
async fn detach_restores_an_ephemeral_ip_and_clears_the_ownership() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    s.provider.detach(&pool[0], &me.reference).await.unwrap();
    assert!(s.sim.attached_to("node-1").is_empty());
    assert!(
        has_external_v4(&s.sim, "node-1"),
        "an ephemeral IPv4 is back"
    );
    let after = labels(&s.sim, "pool-1");
    assert!(
        !after.contains_key("pinip-node") && after["kubeip"] == "reserved",
        "{after:?}"
    );
    // Idempotent: again, and for an instance that is gone.
    s.provider.detach(&pool[0], &me.reference).await.unwrap();
    s.sim.terminate_instance("node-1");
    s.provider.detach(&pool[0], &me.reference).await.unwrap();
    // Never from another instance.
    let other = described(&s, "node-2").await;
    s.provider
        .attach(&pool[1], &other, &owner("node-2"))
        .await
        .unwrap();
    s.provider.detach(&pool[1], &me.reference).await.unwrap();
    assert_eq!(s.sim.attached_to("node-2"), vec![ip("203.0.113.11")]);
    assert_eq!(labels(&s.sim, "pool-2")["pinip-node"], "node-2");
    assert!(s.sim.violations().is_empty());
}

#[tokio::test]
async fn stale_label_fingerprints_are_reread() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.sim.relabel_by_hand("pool-1", "team", "edge");
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    let after = labels(&s.sim, "pool-1");
    assert_eq!(
        (after["team"].as_str(), after["pinip-instance"].as_str()),
        ("edge", "node-1")
    );
    assert_eq!(
        s.sim.request_counts().method("addresses.get"),
        1,
        "one re-read after the 412"
    );
}

#[tokio::test]
async fn ipv6_swaps_in_two_steps_after_a_stale_fingerprint_and_release_restores_one() {
    let s = setup(IpFamily::V6).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    assert_eq!(
        pool.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["v6-1", "v6-2"]
    );
    // Someone touches the NIC after we read it: the fingerprint is stale, re-read, retry.
    s.sim.attach_by_hand("v6-2", "node-1");
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(
        s.sim.attached_to("node-1"),
        vec![ip("2600:1900:4000:abcd::")]
    );
    let counts = s.sim.request_counts();
    assert_eq!(
        counts.method("instances.updateNetworkInterface"),
        3,
        "one 412, then the two documented steps (IPV4_ONLY, then IPV4_IPV6 with the address)"
    );
    assert_eq!(
        counts.method("instances.deleteAccessConfig"),
        0,
        "IPv4 untouched"
    );
    assert!(has_external_v4(&s.sim, "node-1"));
    s.provider.detach(&pool[0], &me.reference).await.unwrap();
    let ips = s.sim.external_ips("node-1");
    assert!(
        ips.iter().any(IpAddr::is_ipv6),
        "an ephemeral IPv6 is back: {ips:?}"
    );
    assert!(s.sim.attached_to("node-1").is_empty());
    assert!(!labels(&s.sim, "v6-1").contains_key("pinip-node"));
}

#[tokio::test]
async fn ipv6_conflicts_and_failures_keep_an_external_ipv6() {
    let s = setup(IpFamily::V6).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.sim.attach_by_hand("v6-1", "node-2");
    let error = s
        .provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Conflict);
    assert!(s.sim.external_ips("node-1").iter().any(IpAddr::is_ipv6));
    s.sim.fail_next(
        "instances.updateNetworkInterface",
        Failure::Operation {
            code: "INTERNAL_ERROR".into(),
            message: "x".into(),
        },
    );
    assert!(s
        .provider
        .attach(&pool[1], &me, &owner("node-1"))
        .await
        .is_err());
    assert!(s.sim.external_ips("node-1").iter().any(IpAddr::is_ipv6));
}

#[tokio::test]
async fn errors_are_classified_for_the_agent() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.sim.deny("instances.deleteAccessConfig");
    let error = s
        .provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap_err();
    assert_eq!(
        error.class,
        ErrorClass::PermissionDenied {
            action: "compute.instances.deleteAccessConfig".into()
        }
    );
    assert!(
        error
            .to_string()
            .contains("grant the permission `compute.instances.deleteAccessConfig`"),
        "{error}"
    );
    assert!(
        has_external_v4(&s.sim, "node-1"),
        "a refused delete changes nothing"
    );
    s.sim.allow("instances.deleteAccessConfig");

    s.sim.fail_next(
        "addresses.list",
        Failure::Http {
            status: 429,
            reason: "rateLimitExceeded",
            message: "slow down".into(),
        },
    );
    assert_eq!(
        s.provider.list_pool().await.unwrap_err().class,
        ErrorClass::Throttled
    );
    s.sim.fail_next(
        "addresses.list",
        Failure::Http {
            status: 403,
            reason: "rateLimitExceeded",
            message: "Rate Limit Exceeded".into(),
        },
    );
    assert_eq!(
        s.provider.list_pool().await.unwrap_err().class,
        ErrorClass::Throttled
    );

    let bad = GcpProvider::new(GcpSettings {
        project: PROJECT.into(),
        region: REGION.into(),
        endpoint: Some(s.sim.url()),
        token: TokenSource::Static("t".into()),
        pool: PoolSpec {
            filter: vec!["(labels.kubeip=reserved) OR (labels.x=y)".into()],
            order_by: None,
            family: IpFamily::V4,
        },
    })
    .unwrap();
    let error = bad.list_pool().await.unwrap_err();
    assert_eq!(error.class, ErrorClass::InvalidInput);
    assert!(error.message.contains("filter"), "{error}");
    let missing = s
        .provider
        .describe_instance(&reference("nope"))
        .await
        .unwrap_err();
    assert_eq!(missing.class, ErrorClass::NotFound);
}

/// `count` more pool addresses, `bulk-0000` on.
fn add_bulk(sim: &ComputeSim, count: u32) {
    for i in 0..count {
        sim.add_address(
            REGION,
            &format!("bulk-{i:04}"),
            IpAddr::from([198, 18, (i / 250) as u8, (i % 250) as u8 + 1]),
            &[("kubeip", "reserved")],
        );
    }
}

#[tokio::test]
async fn every_page_is_read() {
    let s = setup(IpFamily::V4).await;
    add_bulk(&s.sim, 620);
    let pool = s.provider.list_pool().await.unwrap();
    assert_eq!(pool.len(), 622);
    assert_eq!(
        s.sim.request_counts().method("addresses.list"),
        2,
        "one listing of every status, in two pages"
    );
}

/// A listing the list quota refuses on its third page resumes at that page in the next
/// window: the two pages read are not read again (at a thousand agents, starting over
/// spent most of the list quota on pages thrown away).
#[tokio::test]
async fn a_listing_cut_short_by_the_list_quota_resumes_where_it_stopped() {
    let s = setup(IpFamily::V4).await;
    add_bulk(&s.sim, 1100);
    // bulk-0000, on the first page (pages go by name), is in use: a resumed listing does not trust a page
    // that old for an address in use (it may have moved since), only for free ones.
    let me = described(&s, "node-1").await;
    let first = s.provider.list_pool().await.unwrap();
    let held = first.iter().find(|a| a.id == "bulk-0000").unwrap();
    s.provider
        .attach(held, &me, &owner("node-1"))
        .await
        .unwrap();
    let listed_before = s.sim.request_counts().method("addresses.list");
    let clock = ManualClock::at(0);
    s.sim.set_rate_clock(Arc::new(clock.clone()));
    s.sim
        .set_rate_limits(Some(ComputeRateLimits::uniform(Duration::from_secs(60), 2)));
    let refused = s.provider.list_pool().await.unwrap_err();
    assert_eq!(refused.class, ErrorClass::Throttled);

    clock.advance_ms(60_000);
    let pool = s.provider.list_pool().await.unwrap();
    assert_eq!(pool.len(), 1101);
    assert!(pool.iter().all(|a| a.id != "bulk-0000" && a.is_free()));
    let admitted = s.sim.request_counts().method("addresses.list")
        - listed_before
        - s.sim.throttled_counts()["addresses.list"];
    assert_eq!(admitted, 3, "pages 1 and 2, then page 3 alone");

    // A complete listing is not resumed: the next one reads from the first page.
    s.sim.set_rate_limits(None);
    let before = s.sim.request_counts().method("addresses.list");
    let fresh = s.provider.list_pool().await.unwrap();
    assert_eq!(fresh.len(), 1102);
    assert!(fresh.iter().any(|a| a.id == "bulk-0000" && !a.is_free()));
    assert_eq!(s.sim.request_counts().method("addresses.list") - before, 3);
}

/// The agent's listing and its sweep's, started together under a spent list quota, do
/// not each keep a partial listing over the other's: the pages one read are the next
/// listing's (1000-node Compute runs: the sweep's start cost one or two list calls of a
/// window that had none to spare).
#[tokio::test]
async fn two_listings_cut_short_together_lose_no_page() {
    let s = setup(IpFamily::V4).await;
    add_bulk(&s.sim, 1100);
    let listed_before = s.sim.request_counts().method("addresses.list");
    let clock = ManualClock::at(0);
    s.sim.set_rate_clock(Arc::new(clock.clone()));
    s.sim
        .set_rate_limits(Some(ComputeRateLimits::uniform(Duration::from_secs(60), 2)));
    let (agent, sweep) = tokio::join!(s.provider.list_pool(), s.provider.list_pool());
    assert_eq!(agent.unwrap_err().class, ErrorClass::Throttled);
    assert_eq!(sweep.unwrap_err().class, ErrorClass::Throttled);

    clock.advance_ms(60_000);
    let pool = s.provider.list_pool().await.unwrap();
    assert_eq!(pool.len(), 1102);
    let admitted = s.sim.request_counts().method("addresses.list")
        - listed_before
        - s.sim.throttled_counts()["addresses.list"];
    assert_eq!(admitted, 3, "the two pages read first, then page 3 alone");
}

#[tokio::test]
async fn a_blip_on_set_labels_after_the_swap_does_not_lose_the_ownership_record() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.sim.fail_next(
        "addresses.setLabels",
        Failure::Http {
            status: 503,
            reason: "backendError",
            message: "unavailable".into(),
        },
    );
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(labels(&s.sim, "pool-1")["pinip-node"], "node-1");
    assert_eq!(s.sim.request_counts().method("addresses.setLabels"), 2);
}

/// A listing the list quota cuts short gives the pages it read: a node takes a free
/// address from them (its record is there, so the attach reads no address), and the
/// attach drops the kept pages, which show that address free, so the next listing reads
/// from the first page rather than resuming them.
#[tokio::test]
async fn a_listing_cut_short_gives_its_first_pages_and_an_attach_from_them_starts_the_next_afresh()
{
    let s = setup(IpFamily::V4).await;
    add_bulk(&s.sim, 1100);
    let me = described(&s, "node-1").await;
    let clock = ManualClock::at(0);
    s.sim.set_rate_clock(Arc::new(clock.clone()));
    s.sim.set_rate_limits(Some(ComputeRateLimits {
        list: 2,
        ..ComputeRateLimits::uniform(Duration::from_secs(60), 100)
    }));
    let (read, refusal) = match s.provider.list_pool_prefix().await.unwrap() {
        PoolRead::Prefix { addresses, refusal } => (addresses, refusal),
        PoolRead::Whole(pool) | PoolRead::Part(pool) => {
            panic!("the third page is refused, yet {} were listed", pool.len())
        }
    };
    assert_eq!(refusal.class, ErrorClass::Throttled);
    assert_eq!(read.len(), 1000, "two pages of 500");
    // `list_pool` keeps its contract: the whole pool or the error.
    clock.advance_ms(60_000);
    s.sim.set_rate_limits(Some(ComputeRateLimits {
        list: 1,
        ..ComputeRateLimits::uniform(Duration::from_secs(60), 100)
    }));
    assert_eq!(
        s.provider.list_pool().await.unwrap().len(),
        1102,
        "the kept pages and page 3"
    );
    clock.advance_ms(60_000);
    let read = match s.provider.list_pool_prefix().await.unwrap() {
        PoolRead::Prefix { addresses, .. } => addresses,
        PoolRead::Whole(_) | PoolRead::Part(_) => {
            panic!("one list call a window cannot read three pages")
        }
    };
    assert_eq!(read.len(), 500);

    let gets = s.sim.request_counts().method("addresses.get");
    let taken = read.iter().find(|a| a.is_free()).unwrap();
    s.provider
        .attach(taken, &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.request_counts().method("addresses.get"), gets);
    assert_eq!(labels(&s.sim, &taken.id)["pinip-node"], "node-1");

    s.sim.set_rate_limits(None);
    let before = s.sim.request_counts().method("addresses.list");
    let pool = s.provider.list_pool().await.unwrap();
    assert_eq!(s.sim.request_counts().method("addresses.list") - before, 3);
    let ours = pool.iter().find(|a| a.id == taken.id).unwrap();
    assert_eq!(ours.attached_to.as_deref(), Some(me.reference.id.as_str()));
}

/// A throttled attach is tried again without a listing: the address's record is kept
/// for it, not read again from the quota that refused it.
#[tokio::test]
async fn a_throttled_attach_keeps_the_address_record_for_its_retry() {
    let s = setup(IpFamily::V4).await;
    let me = described(&s, "node-1").await;
    let pool = s.provider.list_pool().await.unwrap();
    s.sim.fail_next(
        "instances.deleteAccessConfig",
        Failure::Http {
            status: 429,
            reason: "rateLimitExceeded",
            message: "Quota exceeded for quota metric 'Queries per minute'".into(),
        },
    );
    let refused = s
        .provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.class, ErrorClass::Throttled, "{refused}");
    let gets = s.sim.request_counts().method("addresses.get");
    s.provider
        .attach(&pool[0], &me, &owner("node-1"))
        .await
        .unwrap();
    assert_eq!(s.sim.request_counts().method("addresses.get"), gets);
    assert_eq!(labels(&s.sim, &pool[0].id)["pinip-node"], "node-1");
}
