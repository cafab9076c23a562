//! A restarting kube-apiserver refuses connections, answers 503, then for a moment
//! 401/403 even to requests its RBAC allows. An agent must ride that out wherever it
//! is (waiting for its Node, or holding an address), and stop with a configuration
//! error only when the same denial persists for PERMISSION_GRACE.

use std::collections::BTreeMap;
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::agent::AgentError;
use pinip::simulate::SimulatedWorld;
use pinip_sim::kube::{Kind, Restart};

mod kit;

const KIT: kit::Kit = kit::Kit {
    wait: Duration::from_secs(40),
    retry: Duration::from_millis(400),
    lease: Duration::from_secs(1),
};

async fn world() -> SimulatedWorld {
    kit::world(2, 2, 41).await
}

/// Delete a node's object, keeping what is needed to register it again.
fn unregister(world: &SimulatedWorld, node: &str) -> String {
    let object = world.kube.get(Kind::Node, None, node).expect("the node");
    let provider_id = object["spec"]["providerID"]
        .as_str()
        .expect("a providerID")
        .to_string();
    assert!(world.kube.delete_node(node));
    provider_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_waiting_for_their_node_or_holding_an_address_survive_an_api_server_restart() {
    let world = world().await;
    let (holder, waiter) = (world.nodes[0].name.clone(), world.nodes[1].name.clone());
    let mut holding = world
        .spawn_agent(KIT.settings(&world, &holder))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut holding).await;

    let provider_id = unregister(&world, &waiter);
    let mut waiting = world
        .spawn_agent(KIT.settings(&world, &waiter))
        .await
        .unwrap();
    KIT.status(&mut waiting, "waiting for its Node", |s| {
        matches!(s, AgentStatus::WaitingForNode(_))
    })
    .await;

    world.kube.restart(Restart {
        down: Duration::from_millis(300),
        unavailable: Duration::from_millis(300),
        unauthorized: Duration::from_millis(200),
        forbidden: Duration::from_millis(800),
    });
    // Past the whole restart, with a margin for the agents' backoff.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.kube.restarts(), 1);
    assert!(
        !waiting.task.is_finished(),
        "the waiting agent exited on the restart's 403s"
    );
    assert!(!holding.task.is_finished(), "the holding agent exited");

    world
        .kube
        .add_node(&waiter, Some(&provider_id), BTreeMap::new(), Vec::new());
    let (got, _) = KIT.assigned(&mut waiting).await;
    assert_ne!(got, address);
    KIT.status(
        &mut holding,
        "still assigned",
        |s| matches!(s, AgentStatus::Assigned { address: a, .. } if *a == address),
    )
    .await;
    holding.stop().await.unwrap();
    waiting.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_that_lasts_permission_grace_stops_the_agent_with_a_configuration_error() {
    let world = world().await;
    let node = world.nodes[0].name.clone();
    let provider_id = unregister(&world, &node);
    let mut settings = KIT.settings(&world, &node);
    settings.permission_grace = Duration::from_secs(2);
    let mut agent = world.spawn_agent(settings).await.unwrap();
    KIT.status(&mut agent, "waiting for its Node", |s| {
        matches!(s, AgentStatus::WaitingForNode(_))
    })
    .await;
    // An API server that keeps denying (as a missing grant does) for far longer.
    world.kube.restart(Restart {
        down: Duration::from_millis(100),
        unavailable: Duration::ZERO,
        unauthorized: Duration::ZERO,
        forbidden: Duration::from_secs(60),
    });
    let ended = tokio::time::timeout(KIT.wait, agent.task)
        .await
        .expect("the agent stops within the wait")
        .expect("the agent task ends without a panic");
    match ended {
        Err(AgentError::Config(message)) => {
            assert!(message.contains("PERMISSION_GRACE"), "{message}");
            assert!(
                message.contains("leases"),
                "the grants are listed: {message}"
            );
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    drop(provider_id);
    world.shutdown();
}
