//! The agent's whole life against the Kubernetes API simulator (real HTTP, real kube
//! client) and the in-memory cloud: races, crashes, restarts, node removal, outages.
//! Waits are bounded; nothing asserts on timing.

use std::collections::BTreeSet;
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::agent::Exit;
use pinip::simulate::{AgentHandle, SimulatedWorld, WorldSpec, LEASE_NAMESPACE};
use pinip_providers::fake::op;
use pinip_providers::{ErrorClass, IpFamily};
use pinip_sim::kube::Kind;
use serde_json::{json, Value};

mod kit;

const WAIT: Duration = Duration::from_secs(30);
const KIT: kit::Kit = kit::Kit {
    wait: WAIT,
    retry: Duration::from_millis(500),
    lease: Duration::from_secs(1),
};

async fn world(nodes: usize, pool: usize) -> SimulatedWorld {
    world_with_latency(nodes, pool, Duration::ZERO).await
}

async fn world_with_latency(nodes: usize, pool: usize, cloud_latency: Duration) -> SimulatedWorld {
    SimulatedWorld::start(WorldSpec {
        nodes,
        pool,
        family: IpFamily::V4,
        cloud_latency,
        seed: 1,
    })
    .await
    .expect("simulated world starts")
}

fn node_annotation(world: &SimulatedWorld, node: &str) -> Option<String> {
    world.published_address(node)
}

fn events_with_reason(world: &SimulatedWorld, node: &str, reason: &str) -> usize {
    world.events(node, reason).len()
}

/// The claims (the sweeper's election Lease left out).
fn leases(world: &SimulatedWorld) -> Vec<Value> {
    world
        .kube
        .list(Kind::Lease, Some(LEASE_NAMESPACE))
        .into_iter()
        .filter(|l| {
            l.pointer("/metadata/labels/app.kubernetes.io~1managed-by") == Some(&json!("pinip"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_racing_for_ten_addresses_end_with_ten_distinct_assignments() {
    // Cloud latency makes the agents' passes overlap: they list the same free addresses
    // and go for them at the same time.
    let world = world_with_latency(20, 10, Duration::from_millis(40)).await;
    // No help from the cloud: attach would move an address held elsewhere (and record a
    // violation), so the claims alone must keep the twenty agents apart.
    world.fake().expect("fake cloud").set_permissive(true);
    // Start all twenty at once, so they really race.
    let mut settings = Vec::new();
    for node in &world.nodes {
        let mut s = KIT.settings(&world, &node.name);
        // Ordered candidates: everybody goes for the head of the list first.
        s.cloud.pool.order_by = Some("PublicIp".into());
        settings.push(s);
    }
    let mut agents = world.spawn_agents(settings).await.unwrap();
    let mut addresses = BTreeSet::new();
    KIT.eventually("10 assignments and 10 waiting agents", || {
        let states: Vec<AgentStatus> = agents.iter().map(|a| a.status.borrow().clone()).collect();
        states.iter().filter(|s| s.is_ready()).count() == 10
            && states
                .iter()
                .filter(|s| matches!(s, AgentStatus::PoolExhausted { .. }))
                .count()
                == 10
    })
    .await;
    let claim_conflicts: u64 = agents.iter().map(|a| a.metrics.claim_conflicts.get()).sum();
    assert!(
        claim_conflicts > 0,
        "the agents did not race (no claim was refused)"
    );
    for agent in &mut agents {
        if let AgentStatus::Assigned { address, .. } = *agent.status.borrow() {
            assert!(addresses.insert(address), "{address} given twice");
            let instance = &world.node(&agent.node).unwrap().instance;
            assert_eq!(world.cloud.attached_to(instance), vec![address]);
        }
    }
    assert_eq!(addresses.len(), 10);
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
    // Every claim is held, one per address.
    let claims = leases(&world);
    assert_eq!(claims.len(), 10);
    assert!(claims
        .iter()
        .all(|l| l.pointer("/metadata/annotations/pinip.dev~1phase") == Some(&json!("held"))));
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_keeps_its_address_with_zero_cloud_writes() {
    let world = world(1, 3).await;
    let node = world.nodes[0].name.clone();
    let mut first = world
        .spawn_agent(KIT.settings(&world, &node))
        .await
        .unwrap();
    let (address, adopted) = KIT.assigned(&mut first).await;
    assert!(!adopted);
    assert_eq!(
        first.stop().await.unwrap(),
        Exit::Kept(address),
        "a pod restart must keep the address"
    );
    let writes_before = world.cloud.write_calls();
    let patches_before = world.kube.request_counts().verb("patch");

    let mut second = world
        .spawn_agent(KIT.settings(&world, &node))
        .await
        .unwrap();
    let (again, adopted) = KIT.assigned(&mut second).await;
    assert_eq!((again, adopted), (address, true));
    assert_eq!(
        world.cloud.write_calls(),
        writes_before,
        "adoption must not write to the cloud"
    );
    assert_eq!(
        world.kube.request_counts().verb("patch"),
        patches_before,
        "the node already shows the address"
    );
    assert_eq!(events_with_reason(&world, &node, "AddressAdopted"), 1);
    second.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_between_claim_and_attach_frees_the_address_once_its_lease_expires() {
    let world = world(2, 1).await;
    let (a, b) = (world.nodes[0].clone(), world.nodes[1].clone());
    world.fake().expect("fake cloud").hang_attach(&a.instance);
    let crashed = world
        .spawn_agent(KIT.settings(&world, &a.name))
        .await
        .unwrap();
    KIT.eventually("a's claim", || {
        leases(&world)
            .iter()
            .any(|l| l.pointer("/spec/holderIdentity") == Some(&json!(a.name)))
    })
    .await;
    crashed.kill();

    let mut survivor = world
        .spawn_agent(KIT.settings(&world, &b.name))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut survivor).await;
    assert_eq!(world.cloud.attached_to(&b.instance), vec![address]);
    assert!(world.cloud.attached_to(&a.instance).is_empty());
    let claims = leases(&world);
    assert_eq!(
        claims.len(),
        1,
        "the crashed claim was taken over, not duplicated"
    );
    assert_eq!(
        claims[0].pointer("/spec/holderIdentity"),
        Some(&json!(b.name))
    );
    survivor.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_nodes_address_is_released_and_goes_to_a_waiting_node() {
    let world = world(2, 1).await;
    let (a, b) = (world.nodes[0].clone(), world.nodes[1].clone());
    let mut first = world
        .spawn_agent(KIT.settings(&world, &a.name))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut first).await;
    let mut waiting = world
        .spawn_agent(KIT.settings(&world, &b.name))
        .await
        .unwrap();
    KIT.status(&mut waiting, "pool exhausted", |s| {
        matches!(s, AgentStatus::PoolExhausted { .. })
    })
    .await;
    KIT.eventually("a PoolExhausted event", || {
        events_with_reason(&world, &b.name, "PoolExhausted") > 0
    })
    .await;

    assert!(world.kube.delete_node(&a.name));
    KIT.status(&mut first, "release", |s| {
        matches!(s, AgentStatus::WaitingForNode(_))
    })
    .await;
    assert!(
        world.cloud.attached_to(&a.instance).is_empty(),
        "released from the deleted node"
    );
    let (taken, _) = KIT.assigned(&mut waiting).await;
    assert_eq!(taken, address, "the freed address goes to the waiting node");
    assert_eq!(
        node_annotation(&world, &b.name).as_deref(),
        Some(address.to_string().as_str())
    );
    first.stop().await.unwrap();
    waiting.stop().await.unwrap();
    assert!(world.cloud.violations().is_empty());
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_on_exit_false_keeps_the_address_even_when_the_node_is_deleted() {
    let world = world(2, 1).await;
    let (node, other) = (world.nodes[0].clone(), world.nodes[1].clone());
    let never = |name: &str| {
        let mut settings = KIT.settings(&world, name);
        settings.release.on_exit = pinip::domain::exit_decision::ReleasePolicy::Never;
        // Periodic sweeps too, so a sweep runs even if a watch misses the deletion.
        settings.sweep_interval = Duration::from_secs(1);
        settings
    };
    let mut agent = world.spawn_agent(never(&node.name)).await.unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    let mut waiting = world.spawn_agent(never(&other.name)).await.unwrap();
    KIT.status(&mut waiting, "pool exhausted", |s| {
        matches!(s, AgentStatus::PoolExhausted { .. })
    })
    .await;
    let sweeps = |agent: &AgentHandle| {
        agent
            .metrics
            .sweeps(pinip::admin::metrics::SweepResult::Swept)
    };
    // Both agents see the deletion; whichever takes the sweep token sweeps.
    let swept_before = sweeps(&agent) + sweeps(&waiting);
    assert!(world.kube.delete_node(&node.name));
    KIT.status(&mut agent, "waiting for the node", |s| {
        matches!(s, AgentStatus::WaitingForNode(_))
    })
    .await;
    // The deletion also triggers a sweep: it must leave the address on the deleted
    // node's instance too, with its claim, and the waiting node waits on.
    KIT.eventually("a sweep after the deletion", || {
        sweeps(&agent) + sweeps(&waiting) > swept_before
    })
    .await;
    assert_eq!(world.cloud.attached_to(&node.instance), vec![address]);
    let claims: Vec<Value> = leases(&world)
        .into_iter()
        .filter(|l| l.pointer("/metadata/name") != Some(&json!(pinip::agent::sweeper::SWEEP_LEASE)))
        .collect();
    assert_eq!(claims.len(), 1, "the claim stays with the address");
    assert!(matches!(
        *waiting.status.borrow(),
        AgentStatus::PoolExhausted { .. }
    ));
    agent.stop().await.unwrap();
    waiting.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_only_when_the_node_is_going_away() {
    let world = world(1, 2).await;
    let node = world.nodes[0].clone();
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    world.kube.update_node(&node.name, |n| {
        n["spec"]["taints"] = json!([{"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"}]);
    });
    assert_eq!(agent.stop().await.unwrap(), Exit::Released(address));
    assert!(world.cloud.attached_to(&node.instance).is_empty());
    assert!(leases(&world).is_empty(), "the claim goes with the address");
    assert_eq!(
        node_annotation(&world, &node.name),
        None,
        "the publication is cleared"
    );
    let owner_tags = world
        .cloud
        .addresses()
        .into_iter()
        .filter(|a| a.tags.contains_key("pinip.dev/node"))
        .count();
    assert_eq!(owner_tags, 0, "ownership records are cleared on release");
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_taint_is_lifted_once_the_node_reports_the_address() {
    let world = world(1, 1).await;
    let node = world.nodes[0].clone();
    world.kube.update_node(&node.name, |n| {
        n["spec"]["taints"] = json!([
            {"key": "pinip.dev/not-ready", "effect": "NoSchedule"},
            {"key": "someone.else/keep-me", "effect": "NoSchedule"},
        ]);
    });
    let mut settings = KIT.settings(&world, &node.name);
    settings.taint.key = Some("pinip.dev/not-ready".into());
    let mut agent = world.spawn_agent(settings).await.unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    KIT.eventually("the taint removed", || {
        let n = world.kube.get(Kind::Node, None, &node.name).unwrap();
        let taints = n
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        taints.len() == 1 && taints[0]["key"] == "someone.else/keep-me"
    })
    .await;
    let n = world.kube.get(Kind::Node, None, &node.name).unwrap();
    let reported = n.pointer("/status/addresses").unwrap().to_string();
    assert!(
        reported.contains(&address.to_string()),
        "lifted after the node reported {address}: {reported}"
    );
    // The Event is recorded right after the patch.
    KIT.eventually("the TaintRemoved event", || {
        events_with_reason(&world, &node.name, "TaintRemoved") == 1
    })
    .await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_detached_by_hand_is_reattached_same_address_first() {
    let world = world(1, 5).await;
    let node = world.nodes[0].clone();
    let mut settings = KIT.settings(&world, &node.name);
    settings.verify_interval = Duration::from_millis(300);
    let mut agent = world.spawn_agent(settings).await.unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    let id = world
        .cloud
        .addresses()
        .into_iter()
        .find(|a| a.ip == address)
        .unwrap()
        .id;
    world.fake().expect("fake cloud").detach_by_hand(&id);
    KIT.eventually("a re-attach event", || {
        events_with_reason(&world, &node.name, "AddressReattached") > 0
    })
    .await;
    KIT.eventually("the same address back", || {
        world.cloud.attached_to(&node.instance) == vec![address]
    })
    .await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permission_is_reported_and_retried_until_fixed() {
    let world = world(1, 1).await;
    let node = world.nodes[0].clone();
    world.fake().expect("fake cloud").deny(op::ATTACH);
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    KIT.eventually("a PermissionDenied event", || {
        events_with_reason(&world, &node.name, "PermissionDenied") > 0
    })
    .await;
    assert!(
        world.cloud.attached_to(&node.instance).is_empty(),
        "nothing half-attached"
    );
    assert!(
        leases(&world).is_empty(),
        "no claim left behind by the failed attempts"
    );
    world.fake().expect("fake cloud").allow(op::ATTACH);
    KIT.assigned(&mut agent).await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_cloud_failures_are_retried() {
    let world = world(1, 1).await;
    let node = world.nodes[0].clone();
    world
        .fake()
        .expect("fake cloud")
        .fail_next(op::LIST_POOL, ErrorClass::Throttled);
    world
        .fake()
        .expect("fake cloud")
        .fail_next(op::ATTACH, ErrorClass::Transient);
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    KIT.assigned(&mut agent).await;
    let failed = world
        .fake()
        .expect("fake cloud")
        .calls()
        .iter()
        .filter(|c| c.outcome.is_err())
        .count();
    assert_eq!(failed, 2);
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_provider_id_is_waited_for() {
    let mut world = world(0, 1).await;
    world
        .kube
        .add_node("late-node", None, Default::default(), Vec::new());
    let mut agent = world
        .spawn_agent(KIT.settings(&world, "late-node"))
        .await
        .unwrap();
    KIT.status(
        &mut agent,
        "waiting for providerID",
        |s| matches!(s, AgentStatus::WaitingForNode(why) if why.contains("providerID")),
    )
    .await;
    // The cloud controller registers the instance.
    let sim = world.add_node(7);
    world.kube.update_node("late-node", |n| {
        n["spec"]["providerID"] = json!(format!("fake:///{}/{}", sim.zone, sim.instance))
    });
    KIT.assigned(&mut agent).await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_provider_id_is_a_clear_configuration_error() {
    let world = world(0, 1).await;
    world.kube.add_node(
        "azure-node",
        Some("azure:///subscriptions/x/resourceGroups/y/providers/vm-1"),
        Default::default(),
        Vec::new(),
    );
    let agent = world
        .spawn_agent(KIT.settings(&world, "azure-node"))
        .await
        .unwrap();
    let error = agent.stop_when_done().await.unwrap_err();
    assert!(error.contains("providerID"), "{error}");
    assert!(
        world.fake().expect("fake cloud").calls().is_empty(),
        "no cloud call for a node we cannot serve"
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_attached_before_pinip_is_adopted_and_its_ownership_recorded_once() {
    // As after a switch from KubeIP: the address is on the instance, with no pinip record.
    let world = world(1, 2).await;
    let node = world.nodes[0].clone();
    let fake = world.fake().expect("fake cloud");
    let first = world.cloud.addresses()[0].clone();
    fake.attach_by_hand(&first.id, &node.instance);
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    let (address, adopted) = KIT.assigned(&mut agent).await;
    assert_eq!((address, adopted), (first.ip, true));
    let recorded = world
        .cloud
        .addresses()
        .into_iter()
        .find(|a| a.ip == address)
        .unwrap();
    assert_eq!(
        recorded.tags.get("pinip.dev/node"),
        Some(&node.name),
        "{:?}",
        recorded.tags
    );
    assert_eq!(
        world.cloud.write_calls(),
        1,
        "one write: the ownership record"
    );
    agent.stop().await.unwrap();

    // The next restart finds the record right and writes nothing.
    let mut again = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    assert_eq!(KIT.assigned(&mut again).await, (address, true));
    assert_eq!(world.cloud.write_calls(), 1);
    again.stop().await.unwrap();
    world.shutdown();
}
