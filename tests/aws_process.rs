//! `pinip run` as a process against moto: `AWS_ENDPOINT_URL` points at moto on
//! 127.0.0.1, `KUBECONFIG` at the Kubernetes simulator. The agent attaches a pool
//! Elastic IP to a moto instance, publishes it on the Node, and releases it when the
//! Node is deleted. Nothing but loopback is reached: static credentials and IMDS off.

mod aws_support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use aws_support::Backend;
use pinip_sim::kube::{Kind, KubeSim};
use serde_json::Value;
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(60);

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinip_run_attaches_an_elastic_ip_on_moto_and_releases_it_when_the_node_goes() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let instance = backend.instance().await;
    let (allocation, public_ip) = backend.address(&[("kubeip", "reserved")]).await;
    let _other_pool = backend.address(&[("kubeip", "someone-else")]).await;

    let kube = KubeSim::start().await.expect("kube simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let provider_id = format!("aws:///{}/{}", aws_support::ZONE, instance.id);
    kube.add_node("node-a", Some(&provider_id), BTreeMap::new(), Vec::new());
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("empty file");

    let log = dir.path().join("pinip.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_pinip"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NODE_NAME", "node-a")
        .env("KUBECONFIG", &kubeconfig)
        .env("FILTER", "Name=tag:kubeip,Values=reserved")
        .env("CLUSTER_NAME", "process-test")
        .env("RETRY_INTERVAL", "1s")
        .env("LEASE_DURATION", "2")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("LOG_LEVEL", "debug")
        .env("AWS_ENDPOINT_URL", backend.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .expect("pinip runs");

    // Attached in moto, on the instance's primary ENI and private IP.
    eventually("the Elastic IP on the instance", || async {
        backend.eip(&allocation).await.0.as_deref() == Some(instance.eni.as_str())
    })
    .await;
    let (_, private_ip, _) = backend.eip(&allocation).await;
    assert_eq!(private_ip, Some(instance.private_ip.to_string()));
    // The ownership record is written beside the publication.
    eventually("the ownership record", || async {
        let (_, _, tags) = backend.eip(&allocation).await;
        tags.contains(&("pinip.dev/node".to_string(), "node-a".to_string()))
    })
    .await;
    // Published on the Node.
    eventually("the address on the Node", || async {
        kube.get(Kind::Node, None, "node-a").and_then(|n| {
            n.pointer("/metadata/annotations/pinip.dev~1address")
                .and_then(Value::as_str)
                .map(String::from)
        }) == Some(public_ip.to_string())
    })
    .await;

    // The node goes away: the agent releases the address.
    assert!(kube.delete_node("node-a"));
    eventually("the Elastic IP released", || async {
        backend.eip(&allocation).await.0.is_none()
    })
    .await;
    let (_, _, tags) = backend.eip(&allocation).await;
    assert!(
        tags.iter().all(|(k, _)| !k.starts_with("pinip.dev/")),
        "ownership cleared: {tags:?}"
    );

    // SIGTERM: the agent ends cleanly.
    if let Some(pid) = agent.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let status = tokio::time::timeout(WAIT, agent.wait())
        .await
        .expect("pinip stops after SIGTERM")
        .expect("exit status");
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "pinip exited with {status}: {output}");
    assert!(output.contains("Elastic IP associated"), "{output}");
    kube.shutdown();
}
