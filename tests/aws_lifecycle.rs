//! The agent's life on AWS: real agents (real kube client, real AWS provider over
//! SigV4/HTTP) against the Kubernetes simulator and the EC2 simulator. Waits are
//! bounded; nothing asserts on timing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::simulate::{AwsSim, SimulatedWorld};
use pinip_providers::IpFamily;
use serde_json::Value;

mod kit;

const WAIT: Duration = Duration::from_secs(30);
const KIT: kit::Kit = kit::Kit {
    wait: WAIT,
    retry: Duration::from_millis(500),
    lease: Duration::from_secs(1),
};

async fn world(nodes: usize, pool: usize, family: IpFamily) -> (SimulatedWorld, Arc<AwsSim>) {
    kit::aws_world(nodes, pool, family, 1).await
}

fn events(world: &SimulatedWorld, node: &str, reason: &str) -> Vec<String> {
    world
        .events(node, reason)
        .iter()
        .filter_map(|e| e.get("note").and_then(Value::as_str).map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_agents_get_ten_distinct_elastic_ips_for_at_most_five_ec2_calls_each() {
    let (world, aws) = world(10, 12, IpFamily::V4).await;
    let mut agents = KIT.spawn_all(&world).await;
    let mut seen = BTreeSet::new();
    for agent in &mut agents {
        let (address, adopted) = KIT.assigned(agent).await;
        assert!(!adopted);
        assert!(seen.insert(address), "{address} given twice");
        let instance = &world.node(&agent.node).unwrap().instance;
        assert_eq!(world.cloud.attached_to(instance), vec![address]);
    }
    let calls: u64 = aws.ec2().call_counts().values().sum();
    assert!(
        calls <= 5 * 10,
        "{calls} EC2 calls for 10 assignments: {:?}",
        aws.ec2().call_counts()
    );
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
    // The ownership record on each Elastic IP names its node (written beside the
    // publication, so it may follow the status).
    KIT.eventually("every Elastic IP's record names its node", || {
        world
            .cloud
            .addresses()
            .iter()
            .filter(|a| a.attached_to.is_some() && a.id != "eipalloc-decoy")
            .all(|address| {
                address
                    .tags
                    .get("pinip.dev/node")
                    .and_then(|node| world.node(node))
                    .is_some_and(|node| address.attached_to.as_ref() == Some(&node.instance))
            })
    })
    .await;
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_its_elastic_ip_without_any_ec2_write() {
    let (world, aws) = world(1, 2, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    let (address, _) = KIT.assigned(&mut agent).await;
    agent.stop().await.unwrap();
    let writes = aws.ec2().write_calls();
    let mut again = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    assert_eq!(KIT.assigned(&mut again).await, (address, true));
    assert_eq!(aws.ec2().write_calls(), writes, "adoption wrote to EC2");
    again.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_nodes_elastic_ip_is_disassociated_and_goes_to_a_waiting_node() {
    let (world, aws) = world(2, 1, IpFamily::V4).await;
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
    assert!(world.kube.delete_node(&a.name));
    KIT.status(&mut first, "release", |s| {
        matches!(s, AgentStatus::WaitingForNode(_))
    })
    .await;
    assert!(world.cloud.attached_to(&a.instance).is_empty());
    assert!(aws.ec2().call_counts()["DisassociateAddress"] >= 1);
    let (taken, _) = KIT.assigned(&mut waiting).await;
    assert_eq!(taken, address);
    KIT.eventually("the new owner is recorded", || {
        world
            .cloud
            .addresses()
            .into_iter()
            .find(|x| x.ip == address)
            .is_some_and(|record| record.tags.get("pinip.dev/node") == Some(&b.name))
    })
    .await;
    first.stop().await.unwrap();
    waiting.stop().await.unwrap();
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ec2_permission_is_reported_by_name_and_retried_until_granted() {
    let (world, aws) = world(1, 1, IpFamily::V4).await;
    let node = world.nodes[0].clone();
    aws.ec2().deny("AssociateAddress");
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .unwrap();
    KIT.eventually("a PermissionDenied event", || {
        !events(&world, &node.name, "PermissionDenied").is_empty()
    })
    .await;
    let notes = events(&world, &node.name, "PermissionDenied");
    assert!(
        notes.iter().any(|n| n.contains("ec2:AssociateAddress")),
        "{notes:?}"
    );
    assert!(world.cloud.attached_to(&node.instance).is_empty());
    aws.ec2().allow("AssociateAddress");
    KIT.assigned(&mut agent).await;
    agent.stop().await.unwrap();
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_agents_get_distinct_static_ipv6_addresses_on_their_primary_enis() {
    // Pool 2001:db8::1..6; ::1 to ::3 are AWS's own, so three addresses for three nodes.
    let (world, aws) = world(3, 6, IpFamily::V6).await;
    let mut agents = KIT.spawn_all(&world).await;
    let mut seen = BTreeSet::new();
    for agent in &mut agents {
        let (address, _) = KIT.assigned(agent).await;
        assert!(address.is_ipv6());
        assert!(seen.insert(address));
        let instance = &world.node(&agent.node).unwrap().instance;
        assert_eq!(world.cloud.attached_to(instance), vec![address]);
    }
    assert!(aws.ec2().call_counts()["AssignIpv6Addresses"] >= 3);
    assert_eq!(world.cloud.duplicates(), 0);
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}
