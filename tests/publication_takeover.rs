//! Two nodes must never advertise one address. When the cloud shows a node's address on
//! another node's instance (an operator moved it by hand), the new holder takes over the
//! claim and withdraws the old holder's publication; the old holder's agent must not put
//! it back, even though it has not verified the cloud yet.

use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::simulate::{eventually, SimulatedWorld, WorldSpec};
use pinip_providers::IpFamily;

const WAIT: Duration = Duration::from_secs(30);

/// The address a node publishes, and its id in the cloud's pool.
fn published_pool_address(world: &SimulatedWorld, node: &str) -> (String, String) {
    let address = world
        .published_address(node)
        .expect("the node publishes its address");
    let id = world
        .pool_addresses()
        .into_iter()
        .find(|a| a.ip.to_string() == address)
        .map(|a| a.id)
        .expect("the address is in the pool");
    (address, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_moved_by_hand_is_published_only_by_the_node_that_now_holds_it() {
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 2,
        pool: 1,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 3,
    })
    .await
    .expect("world");
    let fake = world.fake().expect("the fake cloud").clone();
    let quick = |node: &str| {
        let mut s = world.settings_for(node);
        s.retry.interval = Duration::from_millis(300);
        s.claims.duration = Duration::from_secs(1);
        // Neither agent verifies the cloud during the test: only the takeover and the
        // claim check can keep the publications apart.
        s.verify_interval = Duration::from_secs(300);
        s
    };
    let (first, second) = (world.nodes[0].clone(), world.nodes[1].clone());
    let mut holder = world.spawn_agent(quick(&first.name)).await.expect("agent");
    holder
        .wait_until("an address", WAIT, AgentStatus::is_ready)
        .await
        .expect("the first node gets the only address");
    let mut waiter = world.spawn_agent(quick(&second.name)).await.expect("agent");
    waiter
        .wait_until("pool exhausted", WAIT, |s| {
            matches!(s, AgentStatus::PoolExhausted { .. })
        })
        .await
        .expect("the second node waits");
    let (address, id) = published_pool_address(&world, &first.name);

    // An operator moves the address to the second node's instance.
    fake.detach_by_hand(&id);
    fake.attach_by_hand(&id, &second.instance);

    let mut both_at_once = 0;
    let settled = eventually("the publication to follow the address", WAIT, || {
        let on_first = world.published_address(&first.name);
        let on_second = world.published_address(&second.name);
        if on_first.as_deref() == Some(address.as_str())
            && on_second.as_deref() == Some(address.as_str())
        {
            both_at_once += 1;
        }
        on_first.is_none() && on_second.as_deref() == Some(address.as_str())
    })
    .await;
    assert_eq!(settled, Ok(()));
    assert_eq!(
        both_at_once, 0,
        "{address} was published on both nodes at once"
    );
    waiter
        .wait_until("the adopted address", WAIT, AgentStatus::is_ready)
        .await
        .expect("the second node adopts the address");
    holder
        .wait_until("pool exhausted", WAIT, |s| {
            matches!(s, AgentStatus::PoolExhausted { .. })
        })
        .await
        .expect("the first node notices its claim is gone and waits for an address");
    // And it stays that way: the first node does not restore its old publication.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.published_address(&first.name), None);
    assert_eq!(world.published_address(&second.name), Some(address));
}

/// How re-attaching a lost address keeps failing.
#[derive(Clone, Copy)]
enum Refusal {
    Denied,
    /// The pass keeps its claim for a paced retry (`agent::pacing`); stopped then, the
    /// agent must not give back the claim of the address its node publishes (Compute
    /// chaos seeds 40012 and 40022: another node took it and published it too).
    Throttled,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_while_reattaching_keeps_the_claim_of_the_address_its_node_publishes() {
    stopped_while_reattaching(Refusal::Denied).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_in_a_throttled_reattach_keeps_the_claim_of_the_address_its_node_publishes(
) {
    stopped_while_reattaching(Refusal::Throttled).await;
}

async fn stopped_while_reattaching(refusal: Refusal) {
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 1,
        pool: 2,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 5,
    })
    .await
    .expect("world");
    let fake = world.fake().expect("the fake cloud").clone();
    let node = world.nodes[0].clone();
    let mut settings = world.settings_for(&node.name);
    settings.retry.interval = Duration::from_millis(300);
    settings.verify_interval = Duration::from_millis(300);
    let mut agent = world.spawn_agent(settings).await.expect("agent");
    agent
        .wait_until("an address", WAIT, AgentStatus::is_ready)
        .await
        .expect("the node gets an address");
    let (address, id) = published_pool_address(&world, &node.name);

    // The address is detached by hand, and re-attaching it keeps failing.
    let attach = pinip_providers::fake::op::ATTACH;
    match refusal {
        Refusal::Denied => fake.deny(attach),
        Refusal::Throttled => {
            for _ in 0..100 {
                fake.fail_next(attach, pinip_providers::ErrorClass::Throttled);
            }
        }
    }
    fake.detach_by_hand(&id);
    agent
        .wait_until("re-acquiring", WAIT, |s| !s.is_ready())
        .await
        .expect("the agent notices the loss");
    let refused = eventually("a refused re-attach", WAIT, || {
        fake.calls()
            .iter()
            .any(|c| c.operation == attach && c.outcome.is_err())
    })
    .await;
    assert_eq!(refused, Ok(()));
    // A pod restart in the middle of it.
    agent.stop().await.expect("the agent stops");

    assert_eq!(
        world.published_address(&node.name).as_deref(),
        Some(address.as_str()),
        "the node still shows its address"
    );
    let lease = world.kube.get(
        pinip_sim::kube::Kind::Lease,
        Some(pinip::simulate::LEASE_NAMESPACE),
        &pinip::domain::claim_record::lease_name(&address.parse().expect("an address")),
    );
    let holder = lease
        .as_ref()
        .and_then(|l| l.pointer("/spec/holderIdentity"))
        .and_then(|h| h.as_str())
        .map(String::from);
    assert_eq!(
        holder.as_deref(),
        Some(node.name.as_str()),
        "the claim of the address the node publishes must stay with the node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_removed_by_hand_is_restored_while_the_claim_is_ours() {
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 1,
        pool: 1,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 9,
    })
    .await
    .expect("world");
    let node = world.nodes[0].clone();
    let mut agent = world
        .spawn_agent(world.settings_for(&node.name))
        .await
        .expect("agent");
    agent
        .wait_until("an address", WAIT, AgentStatus::is_ready)
        .await
        .expect("the node gets an address");
    let address = world
        .published_address(&node.name)
        .expect("the node publishes its address");

    let client = pinip::cluster::client::kube_client(Some(world.kubeconfig_path()))
        .await
        .expect("client");
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    let removal = kube::api::Patch::Merge(serde_json::json!({"metadata": {
        "annotations": {"pinip.dev/address": null}
    }}));
    nodes
        .patch(&node.name, &kube::api::PatchParams::default(), &removal)
        .await
        .expect("someone removes the annotation");

    let restored = eventually("the publication to come back", WAIT, || {
        world.published_address(&node.name).as_deref() == Some(address.as_str())
    })
    .await;
    assert_eq!(restored, Ok(()));
    assert!(
        agent.status.borrow().is_ready(),
        "the agent keeps its address: {:?}",
        agent.status.borrow()
    );
}
