//! Conformance of the OCI simulator against Oracle's own client: `oci-cli` and the `oci`
//! Python SDK (PyPI), pointed at the simulator with `--endpoint` / `service_endpoint`,
//! signing every request with an RSA API key generated for the test and a private
//! config file in a temp dir. Each command's effect is checked on the simulator's state.
//!
//! The client comes from `.ci/tools/oci-cli.sh` (sourced by CI before `cargo test`),
//! which exports `PINIP_OCI_CLI` and `PINIP_OCI_PYTHON`. Without them these tests FAIL
//! with a message naming the script; they never pass silently.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use pinip_sim::oci::{Faults, Lifetime, OciSim, SeededInstance};
use serde_json::Value;
use tempfile::TempDir;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
const USER: &str = "ocid1.user.oc1..aaaaaaaaconformanceuser";

fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: source .ci/tools/oci-cli.sh first (`. .ci/tools/oci-cli.sh`), which installs oci-cli and the oci SDK into ~/.cache")
    });
    assert!(
        path.exists(),
        "{var}={} does not exist: source .ci/tools/oci-cli.sh again to install oci-cli",
        path.display()
    );
    path
}

struct Oracle {
    sim: OciSim,
    dir: TempDir,
    compartment: String,
    node: SeededInstance,
    pool: Vec<String>,
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Oracle {
    async fn new() -> Oracle {
        let (cli, python) = (tool("PINIP_OCI_CLI"), tool("PINIP_OCI_PYTHON"));
        assert!(cli.exists() && python.exists());
        let sim = OciSim::start().await.expect("simulator starts");
        // Transitions last a little, so the CLI's --wait-for-state has to poll.
        sim.set_faults(Faults {
            transition_time: Duration::from_millis(400),
            ..Faults::default()
        });
        let compartment = sim.add_compartment();
        let pool = (10..15)
            .map(|i| {
                sim.add_reserved_ip(
                    &compartment,
                    Ipv4Addr::new(203, 0, 113, i),
                    &[("kubeip", "reserved")],
                    &[("ops", "team", "edge")],
                )
            })
            .collect();
        let node = sim.add_instance(&compartment, "node-1", true, true);
        let dir = TempDir::new().expect("temp dir");
        let oracle = Oracle {
            sim,
            dir,
            compartment,
            node,
            pool,
        };
        let fingerprint = oracle.make_key("key.pem", "key.pub.pem").await;
        let key_id = format!("{}/{USER}/{fingerprint}", oracle.sim.tenancy());
        let public =
            std::fs::read_to_string(oracle.dir.path().join("key.pub.pem")).expect("public key");
        oracle
            .sim
            .add_api_key(&key_id, &public)
            .expect("key uploads");
        oracle.write_config("config", &fingerprint, "key.pem");
        oracle
    }

    /// A fresh RSA key made with the SDK's own crypto library; returns OCI's fingerprint
    /// (MD5 of the DER public key, colon-separated).
    async fn make_key(&self, private: &str, public: &str) -> String {
        let script = r#"
import hashlib, sys
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open(sys.argv[1], "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
pub = key.public_key()
open(sys.argv[2], "wb").write(pub.public_bytes(serialization.Encoding.PEM,
    serialization.PublicFormat.SubjectPublicKeyInfo))
der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
digest = hashlib.md5(der).hexdigest()
print(":".join(digest[i:i + 2] for i in range(0, 32, 2)))
"#;
        let ran = self
            .python(script, &[&self.path(private), &self.path(public)])
            .await;
        assert!(ran.ok, "key generation failed: {}", ran.stderr);
        ran.stdout.trim().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write_config(&self, name: &str, fingerprint: &str, key: &str) {
        let text = format!(
            "[DEFAULT]\nuser={USER}\nfingerprint={fingerprint}\nkey_file={}\ntenancy={}\nregion={}\n",
            self.path(key),
            self.sim.tenancy(),
            self.sim.region()
        );
        std::fs::write(self.dir.path().join(name), text).expect("config written");
        private(&self.dir.path().join(name));
        private(&self.dir.path().join(key));
    }

    async fn python(&self, script: &str, args: &[&str]) -> Ran {
        let mut command = tokio::process::Command::new(tool("PINIP_OCI_PYTHON"));
        command.arg("-c").arg(script).args(args);
        run(command).await
    }

    async fn cli_with(&self, config: &str, args: &[&str]) -> Ran {
        let mut command = tokio::process::Command::new(tool("PINIP_OCI_CLI"));
        command
            .args([
                "--config-file",
                &self.path(config),
                "--endpoint",
                &self.sim.url(),
                "--no-retry",
            ])
            .args(args)
            .env("OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING", "True")
            .env("HOME", self.dir.path());
        run(command).await
    }

    /// A CLI command that must succeed; its `data`.
    async fn cli(&self, args: &[&str]) -> Value {
        let ran = self.cli_with("config", args).await;
        assert!(ran.ok, "oci {args:?} failed: {}", ran.stderr);
        if ran.stdout.trim().is_empty() {
            return Value::Null;
        }
        let out: Value = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("oci {args:?} printed no JSON ({e}): {}", ran.stdout));
        out["data"].clone()
    }

    fn state_of(&self, id: &str) -> (String, Option<String>) {
        let p = self
            .sim
            .public_ips()
            .into_iter()
            .find(|p| p.id == id)
            .expect("public IP exists");
        (p.state, p.private_ip_id)
    }
}

fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

async fn run(mut command: tokio::process::Command) -> Ran {
    let child = command
        .env_remove("OCI_CLI_CONFIG_FILE")
        .env_remove("OCI_CONFIG_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the OCI client starts");
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("the OCI client finishes in time")
        .expect("the OCI client runs");
    Ran {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_every_page_and_reads_the_network() {
    let o = Oracle::new().await;
    let all = o
        .cli(&[
            "network",
            "public-ip",
            "list",
            "--scope",
            "REGION",
            "--lifetime",
            "RESERVED",
            "--compartment-id",
            &o.compartment,
            "--all",
            "--page-size",
            "2",
        ])
        .await;
    assert_eq!(ids(&all), o.pool);
    // Five reserved IPs in pages of two: three list calls, every one signed.
    assert_eq!(o.sim.request_counts().operation("ListPublicIps"), 3);
    let first = &all[0];
    assert_eq!(first["ip-address"], "203.0.113.10");
    assert_eq!(first["lifecycle-state"], "AVAILABLE");
    assert_eq!(first["scope"], "REGION");
    assert_eq!(first["freeform-tags"]["kubeip"], "reserved");
    assert_eq!(first["defined-tags"]["ops"]["team"], "edge");
    let ephemeral = o
        .cli(&[
            "network",
            "public-ip",
            "list",
            "--scope",
            "AVAILABILITY_DOMAIN",
            "--availability-domain",
            &o.node.availability_domain,
            "--compartment-id",
            &o.compartment,
            "--all",
        ])
        .await;
    assert_eq!(ephemeral[0]["lifetime"], "EPHEMERAL");
    assert_eq!(ephemeral[0]["private-ip-id"], o.node.private_ip_id.as_str());

    let attachments = o
        .cli(&[
            "compute",
            "vnic-attachment",
            "list",
            "--compartment-id",
            &o.compartment,
            "--instance-id",
            &o.node.instance_id,
            "--all",
        ])
        .await;
    assert_eq!(attachments[0]["vnic-id"], o.node.vnic_id.as_str());
    assert_eq!(attachments[0]["lifecycle-state"], "ATTACHED");
    let vnic = o
        .cli(&["network", "vnic", "get", "--vnic-id", &o.node.vnic_id])
        .await;
    assert_eq!(vnic["is-primary"], true);
    assert_eq!(vnic["private-ip"], o.node.private_ip.to_string());
    assert_eq!(vnic["public-ip"], ephemeral[0]["ip-address"]);
    let private_ips = o
        .cli(&[
            "network",
            "private-ip",
            "list",
            "--vnic-id",
            &o.node.vnic_id,
            "--all",
        ])
        .await;
    assert_eq!(
        ids(&private_ips),
        std::slice::from_ref(&o.node.private_ip_id)
    );
    assert_eq!(private_ips[0]["is-primary"], true);
    let private_ip = o
        .cli(&[
            "network",
            "private-ip",
            "get",
            "--private-ip-id",
            &o.node.private_ip_id,
        ])
        .await;
    assert_eq!(private_ip["ip-address"], o.node.private_ip.to_string());
    let instance = o
        .cli(&[
            "compute",
            "instance",
            "get",
            "--instance-id",
            &o.node.instance_id,
        ])
        .await;
    assert_eq!(instance["lifecycle-state"], "RUNNING");
    assert_eq!(instance["compartment-id"], o.compartment.as_str());
    o.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_swaps_the_ephemeral_ip_for_a_reserved_one_and_back() {
    let o = Oracle::new().await;
    let on_node = o
        .cli(&[
            "network",
            "public-ip",
            "get",
            "--private-ip-id",
            &o.node.private_ip_id,
        ])
        .await;
    assert_eq!(on_node["lifetime"], "EPHEMERAL");
    let ephemeral = on_node["id"].as_str().expect("an id").to_string();
    // The private IP is taken: assigning a reserved IP to it is refused.
    let refused = o
        .cli_with(
            "config",
            &[
                "network",
                "public-ip",
                "update",
                "--public-ip-id",
                &o.pool[0],
                "--private-ip-id",
                &o.node.private_ip_id,
            ],
        )
        .await;
    assert!(
        !refused.ok && refused.stderr.contains("409"),
        "{}",
        refused.stderr
    );
    o.cli(&[
        "network",
        "public-ip",
        "delete",
        "--public-ip-id",
        &ephemeral,
        "--force",
    ])
    .await;
    assert_eq!(o.sim.public_ip_of(&o.node.instance_id), None);
    let assigned = o
        .cli(&[
            "network",
            "public-ip",
            "update",
            "--public-ip-id",
            &o.pool[0],
            "--private-ip-id",
            &o.node.private_ip_id,
            "--wait-for-state",
            "ASSIGNED",
            "--wait-interval-seconds",
            "1",
        ])
        .await;
    assert_eq!(assigned["lifecycle-state"], "ASSIGNED");
    assert_eq!(
        o.sim.public_ip_of(&o.node.instance_id),
        Some((Ipv4Addr::new(203, 0, 113, 10), Lifetime::Reserved))
    );
    // A stale ETag is refused with 412 and changes nothing.
    let stale = o
        .cli_with(
            "config",
            &[
                "network",
                "public-ip",
                "update",
                "--public-ip-id",
                &o.pool[0],
                "--display-name",
                "x",
                "--if-match",
                "0000",
                "--force",
            ],
        )
        .await;
    assert!(
        !stale.ok && stale.stderr.contains("NoEtagMatch"),
        "{}",
        stale.stderr
    );
    // Unassign (an empty private IP id), then an ephemeral IP again.
    o.cli(&[
        "network",
        "public-ip",
        "update",
        "--public-ip-id",
        &o.pool[0],
        "--private-ip-id",
        "",
        "--wait-for-state",
        "AVAILABLE",
        "--wait-interval-seconds",
        "1",
    ])
    .await;
    assert_eq!(o.state_of(&o.pool[0]), ("AVAILABLE".into(), None));
    let created = o
        .cli(&[
            "network",
            "public-ip",
            "create",
            "--compartment-id",
            &o.compartment,
            "--lifetime",
            "EPHEMERAL",
            "--private-ip-id",
            &o.node.private_ip_id,
        ])
        .await;
    assert_eq!(created["lifetime"], "EPHEMERAL");
    assert!(matches!(
        o.sim.public_ip_of(&o.node.instance_id),
        Some((_, Lifetime::Ephemeral))
    ));
    assert!(o.sim.violations().is_empty(), "{:?}", o.sim.violations());
    o.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_pages_updates_with_etags_and_tags() {
    let o = Oracle::new().await;
    let script = r#"
import json, sys, oci
config = oci.config.from_file(sys.argv[1])
net = oci.core.VirtualNetworkClient(config, service_endpoint=sys.argv[2])
compute = oci.core.ComputeClient(config, service_endpoint=sys.argv[2])
listed = oci.pagination.list_call_get_all_results(net.list_public_ips, scope="REGION",
    compartment_id=sys.argv[3], lifetime="RESERVED", limit=2).data
got = net.get_public_ip(listed[1].id)
tags = dict(got.data.freeform_tags, **{"pinip-node": "node-1.example"})
updated = net.update_public_ip(listed[1].id, oci.core.models.UpdatePublicIpDetails(
    freeform_tags=tags), if_match=got.headers["etag"])
try:
    net.update_public_ip(listed[1].id, oci.core.models.UpdatePublicIpDetails(display_name="y"),
        if_match=got.headers["etag"])
    stale = None
except oci.exceptions.ServiceError as e:
    stale = [e.status, e.code]
attachments = compute.list_vnic_attachments(sys.argv[3], instance_id=sys.argv[4]).data
print(json.dumps({"ids": [p.id for p in listed], "tags": updated.data.freeform_tags,
    "request_id": updated.headers.get("opc-request-id"), "stale": stale,
    "vnic": attachments[0].vnic_id}))
"#;
    let ran = o
        .python(
            script,
            &[
                &o.path("config"),
                &o.sim.url(),
                &o.compartment,
                &o.node.instance_id,
            ],
        )
        .await;
    assert!(ran.ok, "the SDK script failed: {}", ran.stderr);
    let out: Value = serde_json::from_str(ran.stdout.trim()).expect("JSON from the SDK script");
    assert_eq!(
        ids(&Value::from(
            out["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| serde_json::json!({"id": i}))
                .collect::<Vec<_>>()
        )),
        o.pool
    );
    assert_eq!(out["tags"]["pinip-node"], "node-1.example");
    assert_eq!(out["tags"]["kubeip"], "reserved");
    assert_eq!(out["stale"], serde_json::json!([412, "NoEtagMatch"]));
    assert_eq!(out["vnic"], o.node.vnic_id.as_str());
    assert!(out["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    let tagged = o
        .sim
        .public_ips()
        .into_iter()
        .find(|p| p.id == o.pool[1])
        .unwrap();
    assert_eq!(
        tagged.freeform_tags.get("pinip-node").map(String::as_str),
        Some("node-1.example")
    );
    o.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrongly_signed_request_is_refused() {
    let o = Oracle::new().await;
    // A key the tenancy never saw, presented under the uploaded key's fingerprint.
    let real = std::fs::read_to_string(o.dir.path().join("config")).unwrap();
    let fingerprint = real
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint="))
        .unwrap()
        .to_string();
    o.make_key("other.pem", "other.pub.pem").await;
    o.write_config("forged", &fingerprint, "other.pem");
    let before = o.sim.request_counts().unauthenticated;
    let ran = o
        .cli_with(
            "forged",
            &["network", "public-ip", "get", "--public-ip-id", &o.pool[0]],
        )
        .await;
    assert!(!ran.ok, "a forged signature was accepted: {}", ran.stdout);
    assert!(
        ran.stderr.contains("NotAuthenticated") && ran.stderr.contains("401"),
        "{}",
        ran.stderr
    );
    // A signed write fails too, and changes nothing.
    let write = o
        .cli_with(
            "forged",
            &[
                "network",
                "public-ip",
                "update",
                "--public-ip-id",
                &o.pool[0],
                "--display-name",
                "stolen",
                "--force",
            ],
        )
        .await;
    assert!(
        !write.ok && write.stderr.contains("401"),
        "{}",
        write.stderr
    );
    assert_eq!(o.sim.request_counts().unauthenticated, before + 2);
    assert_eq!(o.state_of(&o.pool[0]), ("AVAILABLE".into(), None));
    o.sim.shutdown();
}
