//! `pinip run` as a process on a GCE node: the providerID `gce://project/zone/name`
//! selects the GCP provider, `GCP_COMPUTE_ENDPOINT` and `GCP_ACCESS_TOKEN` point it at
//! the Compute simulator (nothing reaches Google or a metadata server), and the node
//! ends with the static address. SIGTERM on a node that stays keeps the address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use pinip_sim::compute::ComputeSim;
use pinip_sim::kube::{Kind, KubeSim};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinip_run_pins_a_static_address_on_a_gce_node() {
    let compute = ComputeSim::start("my-project").await.unwrap();
    compute.add_address(
        "us-central1",
        "pool-1",
        "203.0.113.10".parse::<IpAddr>().unwrap(),
        &[("kubeip", "reserved")],
    );
    compute.add_address(
        "us-central1",
        "other",
        "203.0.113.99".parse::<IpAddr>().unwrap(),
        &[("kubeip", "other")],
    );
    compute.add_instance("us-central1-a", "gke-pool-1-abcd", true);
    let kube = KubeSim::start().await.unwrap();
    kube.add_node(
        "gke-pool-1-abcd",
        Some("gce://my-project/us-central1-a/gke-pool-1-abcd"),
        BTreeMap::new(),
        Vec::new(),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pinip"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NODE_NAME", "gke-pool-1-abcd")
        .env("KUBECONFIG", &kubeconfig)
        .env("FILTER", "labels.kubeip=reserved")
        .env("LEASE_NAMESPACE", "default")
        .env("CLUSTER_NAME", "prod")
        .env("GCP_COMPUTE_ENDPOINT", compute.url())
        .env("GCP_ACCESS_TOKEN", "static-test-token")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("pinip starts");

    let deadline = tokio::time::Instant::now() + WAIT;
    let annotation = |kube: &KubeSim| {
        kube.get(Kind::Node, None, "gke-pool-1-abcd").and_then(|n| {
            n.pointer("/metadata/annotations/pinip.dev~1address")
                .and_then(Value::as_str)
                .map(String::from)
        })
    };
    while annotation(&kube).is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("pinip exited early with {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no address published within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(annotation(&kube).as_deref(), Some("203.0.113.10"));
    assert_eq!(
        compute.attached_to("gke-pool-1-abcd"),
        vec!["203.0.113.10".parse::<IpAddr>().unwrap()]
    );
    let labels = compute
        .addresses()
        .into_iter()
        .find(|a| a.name == "pool-1")
        .unwrap()
        .labels;
    assert_eq!(
        labels.get("pinip-cluster").map(String::as_str),
        Some("prod")
    );

    // SIGTERM on a node that is not going away: a rollout, the address stays.
    let pid = child.id().expect("running").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("pinip stops")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        compute.attached_to("gke-pool-1-abcd"),
        vec!["203.0.113.10".parse::<IpAddr>().unwrap()]
    );
    assert!(
        !stderr.contains("static-test-token"),
        "the token never shows in logs"
    );
    kube.shutdown();
    compute.shutdown();
}
