//! `pinip status` against a running simulation: in-process with the pool read from the
//! cloud, and as processes (`pinip status` against `pinip simulate --serve`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::cli::status::gather;
use pinip::cloud::settings::CloudSettings;
use pinip::simulate::{SimulatedWorld, WorldSpec, LEASE_NAMESPACE};
use pinip_providers::{IpFamily, PoolSpec};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_every_node_claims_and_the_pool() {
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 4,
        pool: 3,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 5,
    })
    .await
    .unwrap();
    let mut agents = Vec::new();
    for node in world.nodes.clone() {
        let mut s = world.settings_for(&node.name);
        s.retry.interval = Duration::from_millis(300);
        agents.push(world.spawn_agent(s).await.unwrap());
    }
    for agent in &mut agents {
        let settled = tokio::time::timeout(
            Duration::from_secs(30),
            agent
                .status
                .wait_for(|s| s.is_ready() || matches!(s, AgentStatus::PoolExhausted { .. })),
        )
        .await
        .map(|r| r.is_ok());
        assert_eq!(settled, Ok(true), "{} did not settle", agent.node);
    }
    let client = pinip::cluster::client::kube_client(Some(world.kubeconfig_path()))
        .await
        .unwrap();
    let pool = PoolSpec {
        filter: world.cloud.pool_filter(),
        order_by: None,
        family: IpFamily::V4,
    };
    let settings = CloudSettings {
        pool,
        ..CloudSettings::default()
    };
    let report = gather(
        client,
        LEASE_NAMESPACE,
        Some((world.cloud.providers(), settings)),
    )
    .await
    .unwrap();

    assert_eq!(
        report.nodes.iter().filter(|n| n.address.is_some()).count(),
        3
    );
    assert_eq!(report.claims.len(), 3);
    assert!(report.claims.iter().all(|c| c.phase == "held"));
    assert!(report.stale.is_empty(), "{:?}", report.stale);
    let pool = report.pool.as_ref().expect("pool read from the cloud");
    assert_eq!(
        (pool.matched, pool.ours, pool.free, pool.foreign),
        (3, 3, 0, 0)
    );
    for agent in agents {
        agent.stop().await.unwrap();
    }
    world.shutdown();
}

#[test]
fn pinip_status_against_pinip_simulate_serve_in_every_format() {
    let bin = env!("CARGO_BIN_EXE_pinip");
    let mut serve = Command::new(bin)
        .args([
            "simulate", "--serve", "--json", "--nodes", "5", "--pool", "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pinip simulate --serve");
    let stdout = serve.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let info: Value = serde_json::from_str(&first).expect("JSON first line");
    let kubeconfig = info["kubeconfig"]
        .as_str()
        .expect("kubeconfig path")
        .to_string();
    assert_eq!(info["nodes"].as_array().map(Vec::len), Some(5));

    let status = |format: &str| {
        let out = Command::new(bin)
            .args(["status", "-o", format, "--kubeconfig", &kubeconfig])
            .env_remove("LEASE_NAMESPACE")
            .output()
            .expect("run pinip status");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Wait (bounded) for the in-process agents to settle: 4 addresses for 5 nodes.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report: Value = loop {
        let report: Value = serde_json::from_str(&status("json")).expect("status JSON");
        let published = report["nodes"]
            .as_array()
            .map(|n| n.iter().filter(|x| x["address"].is_string()).count());
        if published == Some(4) || std::time::Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let table = status("table");
    let addresses = status("addresses");
    let _ = serve.kill();
    let _ = serve.wait();

    assert!(
        table.contains("NODE") && table.contains("CLAIM") && table.contains("stale records: none"),
        "{table}"
    );
    assert_eq!(
        table.matches("198.18.").count(),
        8,
        "4 nodes and 4 claims show an address:\n{table}"
    );
    let listed: Vec<&str> = addresses.lines().collect();
    assert_eq!(listed.len(), 4, "{addresses}");
    assert!(
        listed.iter().all(|a| a.parse::<std::net::IpAddr>().is_ok()),
        "{addresses}"
    );

    let nodes = report["nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes.iter().filter(|n| n["address"].is_string()).count(),
        4,
        "{report}"
    );
    assert_eq!(
        report["claims"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );
    assert!(
        report["stale"].as_array().is_some_and(Vec::is_empty),
        "{report}"
    );
    for node in nodes.iter().filter(|n| n["address"].is_string()) {
        assert!(
            node["since"].is_string() && node["instance"].is_string(),
            "{node}"
        );
    }
}
