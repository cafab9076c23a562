//! What operators see: the admin server's probes and metrics, dry-run, and the taint
//! that is lifted when no address can be had.

use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::admin::AdminServer;
use pinip::simulate::{SimulatedWorld, WorldSpec, LEASE_NAMESPACE};
use pinip_providers::IpFamily;
use pinip_sim::kube::Kind;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

mod kit;

const WAIT: Duration = Duration::from_secs(30);
const KIT: kit::Kit = kit::Kit {
    wait: WAIT,
    retry: Duration::from_millis(300),
    lease: Duration::from_secs(1),
};

async fn world(nodes: usize, pool: usize) -> SimulatedWorld {
    SimulatedWorld::start(WorldSpec {
        nodes,
        pool,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 3,
    })
    .await
    .expect("simulated world starts")
}

/// A plain HTTP/1.0 GET on loopback: (status code, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin server");
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn events(world: &SimulatedWorld, node: &str, reason: &str) -> usize {
    world.events(node, reason).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_ready_once_the_address_is_published_and_metrics_say_so() {
    let world = world(2, 1).await;
    let (a, b) = (world.nodes[0].clone(), world.nodes[1].clone());
    let mut first = world
        .spawn_agent(KIT.settings(&world, &a.name))
        .await
        .unwrap();
    // The second agent starts once the first holds the pool's one address: started
    // together, either may win it (under load the second sometimes did).
    KIT.status(&mut first, "an address", AgentStatus::is_ready)
        .await;
    let mut waiting = world
        .spawn_agent(KIT.settings(&world, &b.name))
        .await
        .unwrap();

    // Serve the waiting agent's status and metrics the way `pinip run` does.
    let stop = CancellationToken::new();
    let server = AdminServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        waiting.status.clone(),
        waiting.metrics.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(stop.clone()));

    KIT.status(&mut waiting, "pool exhausted", |s| {
        matches!(s, AgentStatus::PoolExhausted { .. })
    })
    .await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "not ready while waiting: {body}");
    assert!(body.contains("PoolExhausted"), "{body}");
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(metrics.contains("pinip_node_has_address 0"), "{metrics}");
    assert!(metrics.contains("pinip_pool_free_addresses 0"), "{metrics}");
    assert!(
        metrics.contains("pinip_assignments_total{result=\"waiting\",reason=\"pool_exhausted\"}"),
        "{metrics}"
    );

    // Free the address: the waiting node gets it and turns ready.
    world.kube.delete_node(&a.name);
    KIT.status(&mut waiting, "an address", AgentStatus::is_ready)
        .await;
    let (code, _) = get(addr, "/readyz").await;
    assert_eq!(code, 200);
    let (_, metrics) = get(addr, "/metrics").await;
    for expected in [
        "pinip_node_has_address 1",
        "pinip_assignments_total{result=\"assigned\",reason=\"claimed\"} 1",
        "pinip_cloud_calls_total{provider=\"fake\",operation=\"attach\",outcome=\"ok\"} 1",
        "pinip_cloud_call_duration_seconds_count{provider=\"fake\",operation=\"list_pool\"}",
        "pinip_time_to_address_seconds_count 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    // The first agent's own release races the sweep that freed the address for the
    // waiting node; its count may land a moment after the waiting node turned ready.
    let released_once = "pinip_releases_total{result=\"released\",reason=\"node_deleted\"} 1";
    let counted = pinip::simulate::eventually("the release counted", WAIT, || {
        first
            .metrics
            .encode()
            .is_ok_and(|m| m.contains(released_once))
    })
    .await;
    assert!(
        counted.is_ok(),
        "{}",
        first.metrics.encode().unwrap_or_default()
    );
    stop.cancel();
    first.stop().await.unwrap();
    waiting.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_decides_but_writes_nothing() {
    let world = world(1, 2).await;
    let node = world.nodes[0].clone();
    let mut settings = KIT.settings(&world, &node.name);
    settings.dry_run = true;
    settings.taint.key = Some("pinip.dev/not-ready".into());
    world.kube.update_node(&node.name, |n| {
        n["spec"]["taints"] = json!([{"key": "pinip.dev/not-ready", "effect": "NoSchedule"}])
    });
    let writes_before = world.kube.request_counts();
    let mut agent = world.spawn_agent(settings).await.unwrap();
    KIT.status(&mut agent, "a decision", AgentStatus::is_ready)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.stop().await.unwrap();

    let fake = world.fake().expect("fake cloud");
    assert_eq!(
        fake.write_calls(),
        0,
        "no cloud write in dry run: {:?}",
        fake.calls()
    );
    assert!(
        fake.calls().iter().any(|c| c.operation == "ListPool"),
        "it still reads the pool"
    );
    let counts = world.kube.request_counts();
    for verb in ["create", "update", "patch", "delete"] {
        assert_eq!(
            counts.verb(verb),
            writes_before.verb(verb),
            "no Kubernetes {verb} in dry run: {counts:?}"
        );
    }
    assert!(world
        .kube
        .list(Kind::Lease, Some(LEASE_NAMESPACE))
        .is_empty());
    let taints = world.kube.get(Kind::Node, None, &node.name).unwrap()["spec"]["taints"].clone();
    assert_eq!(
        taints.as_array().map(Vec::len),
        Some(1),
        "taint untouched: {taints}"
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_taint_is_lifted_when_no_address_can_be_had() {
    let world = world(2, 1).await;
    let (a, b) = (world.nodes[0].clone(), world.nodes[1].clone());
    for node in [&a, &b] {
        world.kube.update_node(&node.name, |n| {
            n["spec"]["taints"] = json!([{"key": "pinip.dev/not-ready", "effect": "NoSchedule"}])
        });
    }
    let mut first = world
        .spawn_agent(KIT.settings(&world, &a.name))
        .await
        .unwrap();
    KIT.status(&mut first, "an address", AgentStatus::is_ready)
        .await;
    let mut settings = KIT.settings(&world, &b.name);
    settings.taint.key = Some("pinip.dev/not-ready".into());
    settings.taint.give_up = Some(Duration::from_millis(500));
    let mut unlucky = world.spawn_agent(settings).await.unwrap();
    KIT.status(&mut unlucky, "pool exhausted", |s| {
        matches!(s, AgentStatus::PoolExhausted { .. })
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while events(&world, &b.name, "TaintLiftedWithoutAddress") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the taint was never lifted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let node = world.kube.get(Kind::Node, None, &b.name).unwrap();
    assert_eq!(
        node.pointer("/spec/taints")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0),
        0,
        "{node}"
    );
    assert_eq!(
        node.pointer("/metadata/labels/pinip.dev~1assigned"),
        Some(&json!("false"))
    );
    assert!(
        matches!(*unlucky.status.borrow(), AgentStatus::PoolExhausted { .. }),
        "it keeps waiting for an address"
    );
    first.stop().await.unwrap();
    unlucky.stop().await.unwrap();
    world.shutdown();
}
