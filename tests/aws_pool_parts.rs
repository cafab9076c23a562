//! Pool parts (docs/design.md, "Pool parts"): in a cluster of 200 Nodes or more a fresh
//! node reads first the Elastic IPs whose last digit its name picks, and reads the whole
//! pool when the part does not settle it. Real agents against the Kubernetes simulator
//! and the EC2 simulator (one test: the in-memory cloud, which reads parts alike);
//! waits are bounded, nothing asserts on timing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip::domain::pool_part::{first_part, PART_FROM_NODES};
use pinip::simulate::{AwsSim, SimulatedWorld};
use pinip_providers::IpFamily;

mod kit;

const KIT: kit::Kit = kit::Kit {
    wait: Duration::from_secs(30),
    retry: Duration::from_millis(500),
    lease: Duration::from_secs(2),
};

const NODES: usize = PART_FROM_NODES as usize;

async fn world() -> (SimulatedWorld, Arc<AwsSim>) {
    kit::aws_world(NODES, NODES + NODES / 10, IpFamily::V4, 3).await
}

/// The last digits the part of `node` holds, in a cluster of `NODES`.
fn part_digits(node: &str) -> Vec<char> {
    let part = first_part(node, Some(NODES as u64)).expect("a cluster this size reads parts");
    part.public_ip_patterns(["tag:kubeip"])
        .expect("a part smaller than the pool")
        .iter()
        .filter_map(|p| p.chars().last())
        .collect()
}

fn last_digit(ip: IpAddr) -> char {
    ip.to_string().chars().last().unwrap_or('?')
}

fn describe_addresses(aws: &AwsSim) -> u64 {
    aws.ec2()
        .call_counts()
        .get("DescribeAddresses")
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_nodes_take_distinct_addresses_from_their_parts_with_one_listing_each() {
    let (world, aws) = world().await;
    let nodes: Vec<String> = world.nodes[..6].iter().map(|n| n.name.clone()).collect();
    let settings = nodes.iter().map(|n| KIT.settings(&world, n)).collect();
    let mut agents = world.spawn_agents(settings).await.expect("agents start");
    let mut seen = Vec::new();
    for agent in &mut agents {
        let (address, adopted) = KIT.assigned(agent).await;
        assert!(!adopted);
        assert!(
            part_digits(&agent.node).contains(&last_digit(address)),
            "{} took {address}, outside its part {:?}",
            agent.node,
            part_digits(&agent.node)
        );
        assert!(!seen.contains(&address), "{address} given twice");
        seen.push(address);
    }
    // One part listing per node; the elected sweeper may list the whole pool once.
    assert!(
        describe_addresses(&aws) <= nodes.len() as u64 + 1,
        "{:?}",
        aws.ec2().call_counts()
    );
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
}

/// A node KubeIP (or a person) gave a pool address outside the node's part keeps it:
/// the instance's description shows a reserved address the part does not, so the node
/// reads the whole pool and adopts it instead of taking a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_carrying_a_pool_address_outside_its_part_adopts_it() {
    let (world, aws) = world().await;
    let before = describe_addresses(&aws);
    adopts_the_address_outside_its_part(&world).await;
    // Its part, then the whole pool.
    let listings = describe_addresses(&aws) - before;
    assert!(listings >= 2, "{:?}", aws.ec2().call_counts());
}

/// The in-memory cloud reads parts as EC2 does, and names the addresses on an instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_fake_cloud_too_a_node_carrying_an_address_outside_its_part_adopts_it() {
    let world = kit::world(NODES, NODES + NODES / 10, 3).await;
    adopts_the_address_outside_its_part(&world).await;
}

async fn adopts_the_address_outside_its_part(world: &SimulatedWorld) {
    let node = world.nodes[0].clone();
    let digits = part_digits(&node.name);
    let outside = world
        .cloud
        .addresses()
        .into_iter()
        .find(|a| a.attached_to.is_none() && !digits.contains(&last_digit(a.ip)))
        .expect("the pool has addresses outside the part");
    world.cloud.attach_by_hand(&outside.id, &node.instance);
    let mut agent = world
        .spawn_agent(KIT.settings(world, &node.name))
        .await
        .expect("the agent starts");
    let (address, adopted) = KIT.assigned(&mut agent).await;
    assert_eq!((address, adopted), (outside.ip, true));
    assert_eq!(world.cloud.attached_to(&node.instance), vec![outside.ip]);
}

/// A part whose free addresses other nodes hold claims on settles nothing: the node
/// reads the whole pool and takes an address outside its part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_part_is_spent_takes_an_address_from_the_rest_of_the_pool() {
    let (world, _aws) = world().await;
    let node = world.nodes[0].clone();
    let digits = part_digits(&node.name);
    // Every address of the part goes to an instance outside the cluster's agents.
    let others: Vec<String> = world.nodes[1..]
        .iter()
        .map(|n| n.instance.clone())
        .collect();
    let mut others = others.iter().cycle();
    for address in world.cloud.addresses() {
        if digits.contains(&last_digit(address.ip)) {
            let holder = others.next().expect("other instances");
            world.cloud.attach_by_hand(&address.id, holder);
        }
    }
    let mut agent = world
        .spawn_agent(KIT.settings(&world, &node.name))
        .await
        .expect("the agent starts");
    let (address, adopted) = KIT.assigned(&mut agent).await;
    assert!(!adopted);
    assert!(!digits.contains(&last_digit(address)), "{address}");
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
}
