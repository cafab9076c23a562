//! `pinip run` as a process on a simulated OKE node with instance principals: no key,
//! no Secret, no `PROJECT` (the pool is in the node's compartment). The instance
//! metadata service is down when the agent starts: that is not an exit (it keeps
//! retrying); once it answers, the agent federates and pins an address to its node,
//! every Core Services call signed with an `ST$` token.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pinip_sim::kube::KubeSim;
use pinip_sim::oci::OciSim;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_principal_agent_waits_out_a_metadata_outage_and_pins_its_address() {
    let oci = OciSim::start().await.expect("OCI simulator");
    let compartment = oci.add_compartment();
    oci.add_reserved_ip(
        &compartment,
        Ipv4Addr::new(198, 51, 100, 7),
        &[("kubeip", "reserved")],
        &[],
    );
    let node = oci.add_instance(&compartment, "oke-node-1", true, true);
    oci.set_metadata_down(true);

    let kube = KubeSim::start().await.expect("kube simulator");
    kube.add_node(
        "oke-node-1",
        Some(&node.instance_id),
        BTreeMap::new(),
        Vec::new(),
    );
    let dir = tempfile::TempDir::new().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");

    let metadata = oci.metadata_base_url(&node.instance_id);
    let federation = oci.federation_endpoint();
    let core = oci.url();
    let child = Command::new(env!("CARGO_BIN_EXE_pinip"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("NODE_NAME", "oke-node-1"),
            ("KUBECONFIG", kubeconfig.to_str().expect("a UTF-8 path")),
            ("ADMIN_ADDR", "off"),
            ("CLUSTER_NAME", "oke-test"),
            ("FILTER", "freeformTags.kubeip=reserved"),
            ("RETRY_INTERVAL", "1s"),
            ("OCI_AUTH", "instance_principal"),
            ("OCI_METADATA_BASE_URL", metadata.as_str()),
            ("OCI_FEDERATION_ENDPOINT", federation.as_str()),
            ("OCI_CORE_ENDPOINT", core.as_str()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pinip starts");
    let mut agent = Killed(child);

    // The metadata service is down: the agent retries, it does not stop.
    let outage = Instant::now();
    while oci.request_counts().operation("InstanceMetadata") < 2 {
        assert!(
            outage.elapsed() < Duration::from_secs(60),
            "the agent never asked the metadata service"
        );
        assert!(
            agent.0.try_wait().expect("wait").is_none(),
            "pinip exited while the metadata service was down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(agent.0.try_wait().expect("wait").is_none());
    assert_eq!(oci.session_tokens_issued(), 0);

    oci.set_metadata_down(false);
    let up = Instant::now();
    while oci.attached_to(&node.instance_id).is_empty() {
        assert!(
            up.elapsed() < Duration::from_secs(90),
            "no address within 90 s of the metadata service answering"
        );
        assert!(agent.0.try_wait().expect("wait").is_none(), "pinip exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        oci.attached_to(&node.instance_id),
        [Ipv4Addr::new(198, 51, 100, 7)]
    );
    assert!(oci.session_tokens_issued() >= 1);
    assert!(oci.last_key_id().is_some_and(|k| k.starts_with("ST$")));
    assert!(oci.violations().is_empty(), "{:?}", oci.violations());
    drop(agent);
    kube.shutdown();
    oci.shutdown();
}
