//! `pinip_pool_free_addresses` / `pinip_pool_matched_addresses` follow every read of the
//! pool (adoption, verification, sweep), not only the read before a fresh claim: with
//! the gauge set once, an early agent kept reporting free addresses that later agents
//! had long taken, and the "pool exhausted" alert built on it never fired.

use std::time::Duration;

use pinip::simulate::{SimulatedWorld, WorldSpec};
use pinip_providers::IpFamily;

mod kit;

const KIT: kit::Kit = kit::Kit {
    wait: Duration::from_secs(40),
    retry: Duration::from_millis(400),
    lease: Duration::from_secs(1),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_free_gauge_of_an_early_agent_follows_what_later_agents_took() {
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 3,
        pool: 3,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 51,
    })
    .await
    .expect("world");
    let mut settings = KIT.settings(&world, &world.nodes[0].name);
    settings.verify_interval = Duration::from_millis(300);
    let mut first = world.spawn_agent(settings).await.unwrap();
    KIT.assigned(&mut first).await;
    // Its first pass saw three free addresses.
    let mut later = Vec::new();
    for node in world.nodes[1..].iter().cloned() {
        let mut agent = world
            .spawn_agent(KIT.settings(&world, &node.name))
            .await
            .unwrap();
        KIT.assigned(&mut agent).await;
        later.push(agent);
    }
    // Its next verification reads the pool again: nothing is free any more.
    KIT.eventually("the first agent's free gauge at 0", || {
        first.metrics.pool_free_addresses.get() == 0
    })
    .await;
    assert_eq!(first.metrics.pool_matched_addresses.get(), 3);
    first.stop().await.unwrap();
    for agent in later {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}
