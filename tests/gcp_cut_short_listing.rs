//! A node whose pool listing Compute's list quota cut short: the real agent against the
//! Compute simulator, with a quota window that never turns (a frozen quota clock), so a
//! node that waited for the rest of the pool would never get an address.

use std::sync::Arc;
use std::time::Duration;

use pinip::simulate::{GcpSim, SimulatedWorld, WorldSpec};
use pinip_providers::IpFamily;
use pinip_sim::clock::ManualClock;
use pinip_sim::compute::ComputeRateLimits;

mod kit;

const KIT: kit::Kit = kit::Kit {
    wait: Duration::from_secs(60),
    retry: Duration::from_millis(500),
    lease: Duration::from_secs(2),
};

/// A pool of two pages (Compute serves 500 addresses a page) and a list quota of one
/// call a node and one more (the elected sweep's): at most one listing reads both pages.
async fn cut_short_world(nodes: usize) -> (SimulatedWorld, Arc<GcpSim>) {
    let gcp = Arc::new(GcpSim::start().await.expect("compute simulator starts"));
    let world = SimulatedWorld::start_on(
        WorldSpec {
            nodes,
            pool: 600,
            family: IpFamily::V4,
            cloud_latency: Duration::from_millis(5),
            seed: 3,
        },
        gcp.clone(),
    )
    .await
    .expect("simulated world starts");
    gcp.compute().set_rate_clock(Arc::new(ManualClock::at(0)));
    gcp.compute().set_rate_limits(Some(ComputeRateLimits {
        list: nodes as u32 + 1,
        ..ComputeRateLimits::uniform(Duration::from_secs(60), 10_000)
    }));
    (world, gcp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_whose_listing_was_cut_short_take_distinct_addresses_from_its_first_page() {
    let (world, gcp) = cut_short_world(3).await;
    let mut agents = KIT.spawn_all(&world).await;
    let mut taken = Vec::new();
    for agent in &mut agents {
        let (ip, adopted) = KIT.assigned(agent).await;
        assert!(!adopted);
        taken.push(ip);
    }
    let listed = gcp.compute().throttled_counts();
    assert!(
        listed.get("addresses.list").copied().unwrap_or(0) >= 2,
        "two listings or more met the quota: {listed:?}"
    );
    let addresses = gcp.compute().addresses();
    for (agent, ip) in agents.iter().zip(&taken) {
        let address = addresses
            .iter()
            .find(|a| a.ip == *ip)
            .expect("a pool address");
        let node = world.nodes.iter().find(|n| n.name == agent.node).unwrap();
        assert_eq!(
            address.users,
            std::slice::from_ref(&node.instance),
            "{address:?}"
        );
    }
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), 3, "three nodes, three addresses");
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}
