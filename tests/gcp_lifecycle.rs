//! The agent's life on GCP: real agents (real kube client over HTTP to the Kubernetes
//! simulator) driving the real GCP provider against the Compute simulator, IPv4 and
//! IPv6. Waits are bounded; nothing asserts on timing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip::agent::Exit;
use pinip::simulate::{GcpSim, SimulatedCloud, SimulatedWorld, WorldSpec};
use pinip_providers::IpFamily;
use pinip_sim::compute::Failure;
use serde_json::{json, Value};

mod kit;

const WAIT: Duration = Duration::from_secs(60);
const KIT: kit::Kit = kit::Kit {
    wait: WAIT,
    retry: Duration::from_millis(500),
    lease: Duration::from_secs(2),
};

async fn world(nodes: usize, pool: usize, family: IpFamily) -> (SimulatedWorld, Arc<GcpSim>) {
    let gcp = Arc::new(GcpSim::start().await.expect("compute simulator starts"));
    let world = SimulatedWorld::start_on(
        WorldSpec {
            nodes,
            pool,
            family,
            cloud_latency: Duration::from_millis(5),
            seed: 1,
        },
        gcp.clone(),
    )
    .await
    .expect("simulated world starts");
    (world, gcp)
}

fn events(world: &SimulatedWorld, node: &str, reason: &str) -> Vec<String> {
    world
        .events(node, reason)
        .iter()
        .filter_map(|e| e.get("note").and_then(Value::as_str).map(String::from))
        .collect()
}

fn owner_labels(gcp: &GcpSim, ip: IpAddr) -> Option<(String, String)> {
    let address = gcp.compute().addresses().into_iter().find(|a| a.ip == ip)?;
    Some((
        address.labels.get("pinip-node")?.clone(),
        address.labels.get("pinip-instance")?.clone(),
    ))
}

fn has_external(gcp: &GcpSim, instance: &str, v6: bool) -> bool {
    gcp.compute()
        .external_ips(instance)
        .iter()
        .any(|ip| ip.is_ipv6() == v6)
}

fn remove_node_soon(world: &SimulatedWorld, node: &str) {
    world.kube.update_node(node, |n| {
        n["spec"]["taints"] = json!([{"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"}]);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_nodes_get_static_ipv4_addresses_with_ownership_labels() {
    let (world, gcp) = world(4, 5, IpFamily::V4).await;
    let mut agents = Vec::new();
    for node in &world.nodes {
        agents.push(
            world
                .spawn_agent(KIT.settings(&world, &node.name))
                .await
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    for agent in &mut agents {
        let (address, adopted) = KIT.assigned(agent).await;
        assert!(!adopted);
        let node = world.node(&agent.node).unwrap().clone();
        assert_eq!(gcp.attached_to(&node.instance), vec![address]);
        // The static address replaced the ephemeral one: exactly one external IPv4.
        let v4: Vec<IpAddr> = gcp
            .compute()
            .external_ips(&node.instance)
            .into_iter()
            .filter(IpAddr::is_ipv4)
            .collect();
        assert_eq!(v4, vec![address]);
        // The labels are written beside the publication: they follow it.
        let owner = Some((node.name.clone(), node.instance.clone()));
        KIT.eventually("the ownership labels", || {
            owner_labels(&gcp, address) == owner
        })
        .await;
        seen.push(address);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4);
    assert_eq!(gcp.duplicates(), 0);
    assert!(gcp.violations().is_empty(), "{:?}", gcp.violations());
    for agent in agents {
        assert!(matches!(agent.stop().await.unwrap(), Exit::Kept(_)));
    }
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_a_restarted_agent_adopts_its_address_with_zero_cloud_writes() {
    let (world, gcp) = world(1, 2, IpFamily::V4).await;
    let node = world.nodes[0].name.clone();
    let mut first = world
        .spawn_agent(KIT.settings(&world, &node))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut first).await;
    assert_eq!(first.stop().await.unwrap(), Exit::Kept(address));
    let writes = gcp.write_calls();
    let mut second = world
        .spawn_agent(KIT.settings(&world, &node))
        .await
        .unwrap();
    assert_eq!(KIT.assigned(&mut second).await, (address, true));
    assert_eq!(
        gcp.write_calls(),
        writes,
        "adoption writes nothing to the cloud"
    );
    second.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_a_failed_add_after_the_ephemeral_ip_was_removed_is_retried_and_the_node_keeps_an_external_ip(
) {
    let (world, gcp) = world(1, 1, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    gcp.compute().fail_next(
        "instances.addAccessConfig",
        Failure::Operation {
            code: "INTERNAL_ERROR".into(),
            message: "backend failure".into(),
        },
    );
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    let counts = gcp.call_counts();
    assert_eq!(
        counts["instances.deleteAccessConfig"], 2,
        "two swaps: the failed one and the retry"
    );
    assert_eq!(
        counts["instances.addAccessConfig"], 3,
        "failed static add, ephemeral restore, static add"
    );
    assert_eq!(gcp.attached_to(&node.instance), vec![address]);
    assert!(has_external(&gcp, &node.instance, false));
    assert!(gcp.violations().is_empty());
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_release_on_node_removal_leaves_an_ephemeral_ipv4_and_clears_ownership() {
    let (world, gcp) = world(1, 1, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    remove_node_soon(&world, &node.name);
    assert_eq!(agent.stop().await.unwrap(), Exit::Released(address));
    assert!(gcp.attached_to(&node.instance).is_empty());
    assert!(
        has_external(&gcp, &node.instance, false),
        "the node keeps an (ephemeral) external IPv4"
    );
    assert_eq!(owner_labels(&gcp, address), None);
    let freed = gcp
        .compute()
        .addresses()
        .into_iter()
        .find(|a| a.ip == address)
        .unwrap();
    assert_eq!(
        (freed.status.as_str(), freed.labels["kubeip"].as_str()),
        ("RESERVED", "reserved")
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_ipv6_nodes_get_static_ipv6_and_release_restores_an_ephemeral_one() {
    let (world, gcp) = world(3, 3, IpFamily::V6).await;
    let mut agents = Vec::new();
    for node in &world.nodes {
        agents.push(
            world
                .spawn_agent(KIT.settings(&world, &node.name))
                .await
                .unwrap(),
        );
    }
    for agent in &mut agents {
        let (address, _) = KIT.assigned(agent).await;
        assert!(address.is_ipv6());
        let instance = world.node(&agent.node).unwrap().instance.clone();
        assert_eq!(gcp.attached_to(&instance), vec![address]);
        assert!(has_external(&gcp, &instance, false), "IPv4 untouched");
    }
    let counts = gcp.call_counts();
    assert_eq!(
        counts["instances.deleteAccessConfig"] + counts["instances.addAccessConfig"],
        0
    );
    let first = agents.remove(0);
    let instance = world.node(&first.node).unwrap().instance.clone();
    remove_node_soon(&world, &first.node);
    assert!(matches!(first.stop().await.unwrap(), Exit::Released(_)));
    assert!(gcp.attached_to(&instance).is_empty());
    assert!(
        has_external(&gcp, &instance, true),
        "an ephemeral IPv6 is back"
    );
    for agent in agents {
        agent.stop().await.unwrap();
    }
    assert!(gcp.violations().is_empty(), "{:?}", gcp.violations());
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_a_missing_permission_is_reported_by_name_and_retried_until_granted() {
    let (world, gcp) = world(1, 1, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    gcp.compute().deny("instances.deleteAccessConfig");
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    KIT.eventually("a PermissionDenied event", || {
        !events(&world, &node.name, "PermissionDenied").is_empty()
    })
    .await;
    let note = events(&world, &node.name, "PermissionDenied").remove(0);
    assert!(
        note.contains("compute.instances.deleteAccessConfig"),
        "{note}"
    );
    assert!(gcp.attached_to(&node.instance).is_empty());
    assert!(
        has_external(&gcp, &node.instance, false),
        "the ephemeral IP is untouched"
    );
    gcp.compute().allow("instances.deleteAccessConfig");
    KIT.assigned(&mut agent).await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_throttling_is_retried() {
    let (world, gcp) = world(1, 1, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    gcp.compute().fail_next(
        "addresses.list",
        Failure::Http {
            status: 429,
            reason: "rateLimitExceeded",
            message: "Quota exceeded".into(),
        },
    );
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    KIT.assigned(&mut agent).await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_a_filter_the_api_rejects_stops_the_agent_with_a_clear_error() {
    let (world, gcp) = world(1, 1, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    let mut settings = KIT.settings(&world, &node.name);
    settings.cloud.pool.filter = vec!["(labels.kubeip=reserved) OR (labels.team=edge)".into()];
    let agent = world.spawn_agent(settings).await.unwrap();
    let error = agent.stop_when_done().await.unwrap_err();
    assert!(error.contains("filter"), "{error}");
    assert_eq!(gcp.write_calls(), 0, "nothing written with a bad filter");
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_random_throttling_and_server_errors_end_in_distinct_assignments_and_no_node_without_ip(
) {
    let (world, gcp) = world(8, 8, IpFamily::V4).await;
    // Every Compute call may be throttled or fail (seeded: the same run each time),
    // including the steps of a swap and of its restore.
    gcp.compute().set_faults(pinip_sim::compute::Faults {
        latency: Duration::from_millis(5),
        operation_time: Duration::from_millis(5),
        error_rate: 0.05,
        throttle_rate: 0.05,
        seed: 7,
        ..pinip_sim::compute::Faults::default()
    });
    let mut settings = Vec::new();
    for node in &world.nodes {
        settings.push(KIT.settings(&world, &node.name));
    }
    let mut agents = world.spawn_agents(settings).await.unwrap();
    let mut addresses = Vec::new();
    for agent in &mut agents {
        addresses.push(KIT.assigned(agent).await.0);
    }
    // Agents are done; no swap is in flight, so every node must have an external IPv4.
    gcp.compute()
        .set_faults(pinip_sim::compute::Faults::default());
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 8);
    assert_eq!(gcp.duplicates(), 0);
    assert!(gcp.violations().is_empty(), "{:?}", gcp.violations());
    for node in &world.nodes {
        assert_eq!(gcp.attached_to(&node.instance).len(), 1, "{}", node.name);
    }
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_order_by_and_unusable_ipv6_addresses_never_block_a_node() {
    let (world, gcp) = world(2, 3, IpFamily::V6).await;
    // Sorted first by name, and neither can go on a node: a load balancer's range, and
    // a range of another subnetwork.
    // The region of the simulated world's zones (`sim-1a`, …).
    let region = "sim-1";
    gcp.compute().add_ipv6_address(
        region,
        "aaa-netlb",
        "2001:db8:ffff::".parse().unwrap(),
        &[("kubeip", "reserved")],
        "NETLB",
        "default",
    );
    gcp.compute().add_ipv6_address(
        region,
        "aab-elsewhere",
        "2001:db8:fffe::".parse().unwrap(),
        &[("kubeip", "reserved")],
        "VM",
        "other",
    );
    let mut agents = Vec::new();
    for node in &world.nodes {
        let mut settings = KIT.settings(&world, &node.name);
        settings.cloud.pool.order_by = Some("name".into());
        agents.push(world.spawn_agent(settings).await.unwrap());
    }
    for agent in &mut agents {
        let (address, _) = KIT.assigned(agent).await;
        assert!(
            !address.to_string().starts_with("2001:db8:fff"),
            "a misfit was assigned: {address}"
        );
        let instance = world.node(&agent.node).unwrap().instance.clone();
        assert_eq!(gcp.attached_to(&instance), vec![address]);
        assert_eq!(
            gcp.compute().stack_type(&instance).as_deref(),
            Some("IPV4_IPV6")
        );
    }
    assert!(gcp.violations().is_empty(), "{:?}", gcp.violations());
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}

/// Every Compute answer a client must survive, mixed in: throttling (429 and 403),
/// 5xx, `resourceNotReady`, `QUOTA_EXCEEDED`, early `wait`s, empty pages.
async fn every_compute_fault(family: IpFamily) {
    let (world, gcp) = world(6, 6, family).await;
    gcp.compute()
        .set_faults(pinip_sim::compute::Faults::everything(
            0.05,
            Duration::from_millis(5),
            21,
        ));
    let mut agents = KIT.spawn_all(&world).await;
    let mut addresses = Vec::new();
    for agent in &mut agents {
        addresses.push(KIT.assigned(agent).await.0);
    }
    gcp.compute()
        .set_faults(pinip_sim::compute::Faults::default());
    KIT.eventually("every accepted write has landed", || {
        gcp.compute().running_operations() == 0
    })
    .await;
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 6);
    assert_eq!(gcp.duplicates(), 0);
    assert!(gcp.violations().is_empty(), "{:?}", gcp.violations());
    assert!(gcp.compute().managed_without_external_ipv4().is_empty());
    assert!(gcp.compute().managed_without_external_ipv6().is_empty());
    for node in &world.nodes {
        assert_eq!(gcp.attached_to(&node.instance).len(), 1, "{}", node.name);
    }
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_every_compute_fault_at_once_ipv4() {
    every_compute_fault(IpFamily::V4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_every_compute_fault_at_once_ipv6() {
    every_compute_fault(IpFamily::V6).await;
}
