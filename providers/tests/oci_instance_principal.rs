//! pinip's OCI provider with instance principals, against the OCI simulator: the
//! node's certificate from its metadata service, a session token from the federation
//! endpoint, every Core Services call signed `ST$<token>` with the session key; a token
//! that expires mid-run renewed once (however many calls wait for it), a metadata
//! service that is down at start a transient failure, a certificate the auth service
//! does not trust refused.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pinip_providers::oci::{Credentials, InstanceSettings, OciProvider, OciSettings, Principal};
use pinip_providers::{ErrorClass, InstanceRef, Ownership, PoolSpec, Provider};
use pinip_sim::oci::{Faults, Lifetime, OciSim, SeededInstance};

struct World {
    sim: OciSim,
    node: SeededInstance,
}

async fn world() -> World {
    let sim = OciSim::start().await.expect("simulator starts");
    sim.set_faults(Faults {
        transition_time: Duration::from_millis(20),
        ..Faults::default()
    });
    let compartment = sim.add_compartment();
    for i in 0..3 {
        sim.add_reserved_ip(
            &compartment,
            Ipv4Addr::new(198, 18, 0, 10 + i),
            &[("kubeip", "reserved")],
            &[],
        );
    }
    let node = sim.add_instance(&compartment, "node-1", true, true);
    World { sim, node }
}

/// The node's instance principal, judged by `clock` (Unix seconds ahead of the real
/// clock), with the simulator's metadata service and auth endpoint.
fn principal(sim: &OciSim, metadata: String, ahead: Arc<AtomicU64>) -> Arc<Principal> {
    let settings = InstanceSettings {
        metadata_base_url: Some(metadata),
        federation_endpoint: Some(sim.federation_endpoint()),
        region: None,
    };
    let clock = move || SystemTime::now() + Duration::from_secs(ahead.load(Ordering::Relaxed));
    Arc::new(
        Principal::instance(settings)
            .expect("settings are valid")
            .with_clock(Arc::new(clock)),
    )
}

fn provider(sim: &OciSim, principal: &Arc<Principal>, node: &SeededInstance) -> OciProvider {
    OciProvider::new(OciSettings {
        // PROJECT unset: the pool is in the node's compartment.
        compartment: None,
        region: String::new(),
        endpoint: Some(sim.url()),
        credentials: Credentials::Principal(Arc::clone(principal)),
        pool: PoolSpec {
            filter: vec!["freeformTags.kubeip=reserved".into()],
            ..PoolSpec::default()
        },
    })
    .expect("provider builds")
    .for_instance(&node.instance_id)
}

fn reference(node: &SeededInstance) -> InstanceRef {
    InstanceRef {
        cloud: "oci".into(),
        project: None,
        zone: String::new(),
        id: node.instance_id.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_signs_every_call_with_the_instance_principal_session_token() {
    let w = world().await;
    let ahead = Arc::new(AtomicU64::new(0));
    let ip = principal(&w.sim, w.sim.metadata_base_url(&w.node.instance_id), ahead);
    let p = provider(&w.sim, &ip, &w.node);
    assert_eq!(
        w.sim.request_counts().operation("InstanceMetadata"),
        0,
        "nothing is contacted before the first call"
    );
    let pool = p.list_pool().await.expect("list");
    assert_eq!(pool.len(), 3);
    let instance = p
        .describe_instance(&reference(&w.node))
        .await
        .expect("describe");
    let owner = Ownership {
        cluster: "prod".into(),
        node: "node-1".into(),
        instance: w.node.instance_id.clone(),
    };
    p.attach(&pool[0], &instance, &owner).await.expect("attach");
    assert_eq!(
        w.sim.public_ip_of(&w.node.instance_id),
        Some((Ipv4Addr::new(198, 18, 0, 10), Lifetime::Reserved))
    );
    assert_eq!(ip.region().await.expect("region"), "us-ashburn-1");
    let counts = w.sim.request_counts();
    assert_eq!(
        (ip.federations(), w.sim.session_tokens_issued()),
        (1, 1),
        "one token for the whole attach"
    );
    assert_eq!(counts.unauthenticated, 0);
    assert_eq!(
        counts.operation("InstanceMetadata"),
        4,
        "cert, key, intermediate, region"
    );
    assert!(
        w.sim.last_key_id().is_some_and(|k| k.starts_with("ST$ey")),
        "{:?}",
        w.sim.last_key_id()
    );
    assert!(w.sim.violations().is_empty(), "{:?}", w.sim.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_run_is_renewed_once() {
    let w = world().await;
    w.sim.set_session_token_lifetime(Duration::from_secs(600));
    let ahead = Arc::new(AtomicU64::new(0));
    let ip = principal(
        &w.sim,
        w.sim.metadata_base_url(&w.node.instance_id),
        ahead.clone(),
    );
    let p = Arc::new(provider(&w.sim, &ip, &w.node));
    p.list_pool().await.expect("first list");
    assert_eq!(ip.federations(), 1);

    // The clock reaches the renewal margin (a minute before exp): the next calls, eight
    // at once, share one renewal.
    ahead.store(600 - 30, Ordering::Relaxed);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.list_pool().await.map(|l| l.len()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("joined").expect("list"), 3);
    }
    assert_eq!(ip.federations(), 2, "renewed once before exp");
    p.list_pool().await.expect("list");
    assert_eq!(ip.federations(), 2, "and not again while it is fresh");

    // The service expires the token early (its clock is not ours): a 401, one renewal,
    // the call sent again.
    w.sim.expire_session_tokens();
    let before = w.sim.request_counts().unauthenticated;
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.list_pool().await.map(|l| l.len()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("joined").expect("list after 401"), 3);
    }
    assert_eq!(
        ip.federations(),
        3,
        "one renewal for every 401 of the old token"
    );
    assert!(w.sim.request_counts().unauthenticated > before);
    assert_eq!(w.sim.session_tokens_issued(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_service_down_at_start_is_a_transient_failure() {
    let w = world().await;
    w.sim.set_metadata_down(true);
    let ip = principal(
        &w.sim,
        w.sim.metadata_base_url(&w.node.instance_id),
        Arc::new(AtomicU64::new(0)),
    );
    let p = provider(&w.sim, &ip, &w.node);
    let e = p.list_pool().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert!(e.message.contains("503"), "{e}");
    w.sim.set_metadata_down(false);
    assert_eq!(p.list_pool().await.expect("list once it is back").len(), 3);

    // Nothing listening at all (not an OCI instance, or the service not up yet).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let ip = principal(
        &w.sim,
        format!("http://{closed}/opc/v2"),
        Arc::new(AtomicU64::new(0)),
    );
    let e = provider(&w.sim, &ip, &w.node)
        .list_pool()
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert!(e.message.contains("unreachable"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_auth_service_does_not_trust_is_refused() {
    let w = world().await;
    // Another simulator's instance: a certificate from another PKI (another "realm").
    let elsewhere = OciSim::start().await.expect("second simulator");
    let compartment = elsewhere.add_compartment();
    let stranger = elsewhere.add_instance(&compartment, "stranger", true, true);
    let ip = principal(
        &w.sim,
        elsewhere.metadata_base_url(&stranger.instance_id),
        Arc::new(AtomicU64::new(0)),
    );
    let e = provider(&w.sim, &ip, &w.node)
        .list_pool()
        .await
        .unwrap_err();
    assert!(
        matches!(e.class, ErrorClass::PermissionDenied { .. }),
        "{e}"
    );
    assert!(
        e.message.contains("NotAuthenticated") && e.message.contains("does not chain"),
        "{e}"
    );
    assert_eq!(w.sim.session_tokens_issued(), 0);
    assert_eq!(w.sim.request_counts().operation("ListPublicIps"), 0);
}
