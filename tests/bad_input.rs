//! Bad input, as a new user types it: every setting, malformed kubeconfigs, a node of
//! an unknown cloud, a namespace that does not exist, a pool filter the cloud refuses.
//! Each case is one clear line on stderr and exit code 2, and nothing is written: no
//! claim, no publication on the Node, no cloud write (an `UnsupportedNode` Event is
//! the one write, and it says why).

mod aws_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_support::Backend;
use pinip_sim::kube::{Kind, KubeSim};
use tokio::process::Command;

/// (what is changed from a setup that works, what the line must mention)
type Case = (&'static [(&'static str, &'static str)], &'static str);

/// Judged before anything is contacted.
const SETTINGS: &[Case] = &[
    (&[("NODE_NAME", "")], "NODE_NAME"),
    (&[("NODE_NAME", "Bad_Name")], "NODE_NAME"),
    (&[("RETRY_INTERVAL", "0")], "greater than zero"),
    (&[("RETRY_INTERVAL", "0s")], "zero"),
    (&[("RETRY_INTERVAL", "-1m")], "negative"),
    (&[("RETRY_INTERVAL", "60")], "60s"),
    (&[("RETRY_INTERVAL", "1x")], "unit"),
    (&[("RETRY_ATTEMPTS", "-2")], "RETRY_ATTEMPTS"),
    (&[("RETRY_ATTEMPTS", "0")], "RETRY_ATTEMPTS"),
    (&[("LEASE_DURATION", "0")], "LEASE_DURATION"),
    (&[("LEASE_DURATION", "abc")], "LEASE_DURATION"),
    (&[("LEASE_NAMESPACE", "Bad_NS")], "LEASE_NAMESPACE"),
    (&[("CLUSTER_NAME", "has space")], "CLUSTER_NAME"),
    (&[("FILTER", "Name=tag:kubeip")], "Name=tag:kubeip"),
    (&[("FILTER", "Name=tag:a,Values=b;labels.c=d")], "mixes"),
    (&[("FILTER", "labels.a=(b")], "FILTER"),
    (&[("ORDER_BY", "Tag:")], "ORDER_BY"),
    (&[("ORDER_BY", "Tag:rank sideways")], "ORDER_BY"),
    (&[("ORDER_BY", "creationTimestamp")], "ORDER_BY"),
    (&[("RELEASE_ON_EXIT", "sometimes")], "RELEASE_ON_EXIT"),
    (&[("IPV6", "maybe")], "IPV6"),
    (&[("TAINT_KEY", "bad key!")], "TAINT_KEY"),
    (&[("TAINT_WAIT", "0")], "TAINT_WAIT"),
    (&[("TAINT_GIVE_UP", "5m")], "TAINT_KEY"),
    (&[("VERIFY_INTERVAL", "-5m")], "VERIFY_INTERVAL"),
    (&[("RELEASE_TIMEOUT", "0s")], "RELEASE_TIMEOUT"),
    (&[("SWEEP_INTERVAL", "abc")], "SWEEP_INTERVAL"),
    (&[("PERMISSION_GRACE", "0")], "PERMISSION_GRACE"),
    (&[("ADMIN_ADDR", "not-an-address")], "ADMIN_ADDR"),
    (&[("LOG_LEVEL", "verbose")], "LOG_LEVEL"),
    (&[("LOG_JSON", "perhaps")], "LOG_JSON"),
    (&[("DRY_RUN", "perhaps")], "DRY_RUN"),
    (&[("REGION", "eu west 1")], "REGION"),
    (&[("PROJECT", "a/b")], "PROJECT"),
    (
        &[("GCP_COMPUTE_ENDPOINT", "compute.googleapis.com")],
        "GCP_COMPUTE_ENDPOINT",
    ),
    (&[("IPV6_POOL", "garbage")], "IPV6_POOL"),
];

/// Judged once the cluster (and the cloud) answer.
const IN_CONTEXT: &[Case] = &[
    (
        &[("KUBECONFIG", "/nonexistent/kubeconfig")],
        "Kubernetes API",
    ),
    (&[("KUBECONFIG", "@broken-yaml")], "Kubernetes API"),
    (&[("KUBECONFIG", "@no-context")], "Kubernetes API"),
    (&[("NODE_NAME", "n-vsphere")], "providerID"),
    (&[("LEASE_NAMESPACE", "does-not-exist")], "does not exist"),
    (&[("FILTER", "Name=bogus-filter,Values=x")], "bogus-filter"),
];

async fn pinip(base: &BTreeMap<&str, String>, case: &Case, dir: &Path) -> (Option<i32>, String) {
    let mut env = base.clone();
    for (key, value) in case.0 {
        let value = match value.strip_prefix('@') {
            Some(file) => dir.join(file).to_string_lossy().into_owned(),
            None => value.to_string(),
        };
        env.insert(key, value);
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinip"));
    command
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .kill_on_drop(true);
    for (key, value) in &env {
        if !value.is_empty() || *key == "NODE_NAME" {
            command.env(key, value);
        }
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("{case:?}: pinip did not stop within 60 s"))
        .expect("pinip runs");
    let text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    (output.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_one_line_exit_2_and_writes_nothing() {
    assert!(SETTINGS.len() + IN_CONTEXT.len() >= 30);
    let backend = Backend::simulator().await;
    let instance = backend.instance().await;
    let (allocation, _) = backend.address(&[("kubeip", "reserved")]).await;
    let kube = KubeSim::start().await.expect("kube simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    std::fs::write(dir.path().join("broken-yaml"), "clusters: [unclosed").expect("file");
    std::fs::write(
        dir.path().join("no-context"),
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .expect("file");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("file");
    let provider_id = format!("aws:///{}/{}", aws_support::ZONE, instance.id);
    kube.add_node("n1", Some(&provider_id), BTreeMap::new(), Vec::new());
    kube.add_node(
        "n-vsphere",
        Some("vsphere://4203-abcd"),
        BTreeMap::new(),
        Vec::new(),
    );

    let base: BTreeMap<&str, String> = [
        ("NODE_NAME", "n1".to_string()),
        ("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()),
        ("FILTER", "Name=tag:kubeip,Values=reserved".into()),
        ("RETRY_INTERVAL", "1s".into()),
        ("ADMIN_ADDR", "off".into()),
        // Only the error line: the log lines of a valid start stay below this level.
        ("LOG_LEVEL", "error".into()),
        ("AWS_ENDPOINT_URL", backend.url()),
        ("AWS_REGION", aws_support::REGION.into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", empty.to_string_lossy().into_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            empty.to_string_lossy().into_owned(),
        ),
    ]
    .into();

    let sim = backend.sim().expect("the EC2 simulator");
    let cloud_writes_before = sim.write_calls();
    let mut failures = Vec::new();
    for (cases, contacted) in [(SETTINGS, false), (IN_CONTEXT, true)] {
        for case in cases {
            let before = kube.request_counts().total;
            let (code, text) = pinip(&base, case, dir.path()).await;
            let lines = text.lines().count();
            let ok = code == Some(2)
                && lines == 1
                && text.contains(case.1)
                && !text.contains("panicked")
                && (contacted || kube.request_counts().total == before);
            if !ok {
                failures.push(format!("{case:?}: exit {code:?}, {lines} line(s): {text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing was written: no claim anywhere, no publication, no cloud write.
    for namespace in ["default", "does-not-exist"] {
        assert!(
            kube.list(Kind::Lease, Some(namespace)).is_empty(),
            "a Lease in {namespace}"
        );
    }
    let node = kube.get(Kind::Node, None, "n1").expect("n1");
    assert!(
        node.pointer("/metadata/annotations/pinip.dev~1address")
            .is_none(),
        "{node}"
    );
    assert_eq!(
        sim.write_calls(),
        cloud_writes_before,
        "{:?}",
        sim.call_counts()
    );
    assert!(
        sim.attached_to(&instance.id).is_empty(),
        "{allocation} attached"
    );
    kube.shutdown();
}
