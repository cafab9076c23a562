//! Conformance of the OCI simulator's instance principals against Oracle's own client:
//! the `oci` Python SDK's `InstancePrincipalsSecurityTokenSigner`, pointed at a
//! simulated instance's metadata service with the SDK's own `OCI_METADATA_BASE_URL` and
//! at the simulated auth service with its `federation_endpoint` argument. The SDK reads
//! the certificate, key, intermediate and region from the metadata service, takes the
//! tenancy from the certificate, federates (keyId `fed-x509/<SHA-1>`, the SDK's older
//! form) and signs Core Services calls with `ST$<token>`; the simulator must accept all
//! of it, and refuse a certificate from another PKI as OCI would.
//!
//! Workload identity too: the SDK's `OkeWorkloadIdentityResourcePrincipalSigner`,
//! with a service account token of the simulated cluster, exchanges it at the simulated
//! proxymux (HTTPS, verified with the cluster CA) and calls Core Services with the
//! resource-principal session token.
//!
//! The SDK comes from `.ci/tools/oci-cli.sh` (`PINIP_OCI_PYTHON`). Without it these
//! tests FAIL with a message naming the script; they never pass silently.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pinip_sim::oci::{OciSim, SeededInstance};
use serde_json::Value;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

fn python() -> PathBuf {
    let path = std::env::var_os("PINIP_OCI_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        panic!("PINIP_OCI_PYTHON is not set: source .ci/tools/oci-cli.sh first (`. .ci/tools/oci-cli.sh`), which installs the oci SDK into ~/.cache")
    });
    assert!(
        path.exists(),
        "PINIP_OCI_PYTHON={} does not exist: source .ci/tools/oci-cli.sh again",
        path.display()
    );
    path
}

struct World {
    sim: OciSim,
    compartment: String,
    node: SeededInstance,
    pool: Vec<String>,
}

async fn world() -> World {
    let sim = OciSim::start().await.expect("simulator starts");
    let compartment = sim.add_compartment();
    let pool = (20..23)
        .map(|i| {
            sim.add_reserved_ip(
                &compartment,
                Ipv4Addr::new(203, 0, 113, i),
                &[("kubeip", "reserved")],
                &[],
            )
        })
        .collect();
    let node = sim.add_instance(&compartment, "node-1", true, true);
    World {
        sim,
        compartment,
        node,
        pool,
    }
}

/// The SDK's instance principal signer at `metadata`, then a listing, a tagged update
/// (a signed body) and a GetInstance through it.
const SCRIPT: &str = r#"
import json, sys, oci
signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner(
    federation_endpoint=sys.argv[1],
    federation_client_retry_strategy=oci.retry.NoneRetryStrategy())
net = oci.core.VirtualNetworkClient(config={}, signer=signer, service_endpoint=sys.argv[2])
compute = oci.core.ComputeClient(config={}, signer=signer, service_endpoint=sys.argv[2])
listed = oci.pagination.list_call_get_all_results(net.list_public_ips, scope="REGION",
    compartment_id=sys.argv[3], lifetime="RESERVED").data
got = net.get_public_ip(listed[0].id)
tags = dict(got.data.freeform_tags, **{"pinip-node": "node-1"})
updated = net.update_public_ip(listed[0].id, oci.core.models.UpdatePublicIpDetails(
    freeform_tags=tags), if_match=got.headers["etag"])
instance = compute.get_instance(sys.argv[4]).data
print(json.dumps({"tenancy": signer.tenancy_id, "region": signer.region,
    "ids": [p.id for p in listed], "tags": updated.data.freeform_tags,
    "state": instance.lifecycle_state}))
"#;

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn sdk(w: &World, metadata: &str) -> Ran {
    let mut command = tokio::process::Command::new(python());
    command
        .arg("-c")
        .arg(SCRIPT)
        .args([
            &w.sim.federation_endpoint(),
            &w.sim.url(),
            &w.compartment,
            &w.node.instance_id,
        ])
        .env("OCI_METADATA_BASE_URL", metadata)
        .env_remove("OCI_CONFIG_FILE")
        .env_remove("OCI_CLI_CONFIG_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("the SDK's python starts");
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("the SDK finishes in time")
        .expect("the SDK runs");
    Ran {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_authenticates_as_the_instance_and_calls_core_services() {
    let w = world().await;
    let ran = sdk(&w, &w.sim.metadata_base_url(&w.node.instance_id)).await;
    assert!(ran.ok, "the SDK script failed: {}", ran.stderr);
    let out: Value = serde_json::from_str(ran.stdout.trim()).expect("JSON from the SDK script");
    assert_eq!(
        out["tenancy"],
        w.sim.tenancy().as_str(),
        "from the certificate"
    );
    assert_eq!(
        out["region"], "us-ashburn-1",
        "the metadata service's short name, expanded"
    );
    let ids: Vec<&str> = out["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids, w.pool);
    assert_eq!(out["tags"]["pinip-node"], "node-1");
    assert_eq!(out["state"], "RUNNING");
    assert_eq!(w.sim.session_tokens_issued(), 1);
    assert!(
        w.sim.last_key_id().is_some_and(|k| k.starts_with("ST$")),
        "{:?}",
        w.sim.last_key_id()
    );
    assert_eq!(w.sim.request_counts().unauthenticated, 0);
    w.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_with_a_certificate_of_another_pki_is_refused() {
    let w = world().await;
    let elsewhere = OciSim::start().await.expect("second simulator");
    let compartment = elsewhere.add_compartment();
    let stranger = elsewhere.add_instance(&compartment, "stranger", true, true);
    let ran = sdk(&w, &elsewhere.metadata_base_url(&stranger.instance_id)).await;
    assert!(
        !ran.ok,
        "a certificate of another PKI was accepted: {}",
        ran.stdout
    );
    assert!(
        ran.stderr.contains("NotAuthenticated")
            && ran.stderr.contains("401")
            && ran.stderr.contains("does not chain"),
        "{}",
        ran.stderr
    );
    assert_eq!(w.sim.session_tokens_issued(), 0);
    assert_eq!(w.sim.request_counts().operation("ListPublicIps"), 0);
    w.sim.shutdown();
    elsewhere.shutdown();
}

const WORKLOAD_SCRIPT: &str = r#"
import json, sys, oci
from oci.auth.signers.oke_workload_identity_resource_principal_signer import OkeWorkloadIdentityResourcePrincipalSigner
from oci.auth.rpt_path_providers import SuppliedServiceAccountTokenProvider
signer = OkeWorkloadIdentityResourcePrincipalSigner(
    sa_token_provider=SuppliedServiceAccountTokenProvider(sys.argv[1]), sa_cert_path=sys.argv[2],
    service_host="127.0.0.1", service_port=sys.argv[3], region="us-ashburn-1",
    retry_strategy=oci.retry.NoneRetryStrategy())
net = oci.core.VirtualNetworkClient(config={}, signer=signer, service_endpoint=sys.argv[4])
listed = net.list_public_ips(scope="REGION", compartment_id=sys.argv[5], lifetime="RESERVED").data
print(json.dumps({"ids": [p.id for p in listed], "region": signer.region}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_exchanges_a_service_account_token_at_the_proxymux() {
    let w = world().await;
    let mux = w.sim.serve_proxymux().await.expect("proxymux serves");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &mux.ca_pem).expect("CA written");
    let token =
        w.sim
            .issue_service_account_token("pinip-system", "pinip", Duration::from_secs(3600));
    let run = |token: String| {
        let mut command = tokio::process::Command::new(python());
        command
            .arg("-c")
            .arg(WORKLOAD_SCRIPT)
            .args([
                token,
                ca.display().to_string(),
                mux.port.to_string(),
                w.sim.url(),
                w.compartment.clone(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    };
    let output = tokio::time::timeout(COMMAND_TIMEOUT, run(token).output())
        .await
        .expect("the SDK finishes in time")
        .expect("the SDK runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SDK script failed: {stderr}");
    let out: Value = serde_json::from_slice(&output.stdout).expect("JSON from the SDK script");
    let ids: Vec<&str> = out["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids, w.pool);
    assert_eq!(w.sim.session_tokens_issued(), 1);
    assert!(w.sim.last_key_id().is_some_and(|k| k.starts_with("ST$")));

    // A service account token the cluster never issued: refused at the proxymux.
    let forged = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.";
    let output = tokio::time::timeout(COMMAND_TIMEOUT, run(forged.into()).output())
        .await
        .expect("the SDK finishes in time")
        .expect("the SDK runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("401"), "{stderr}");
    assert_eq!(w.sim.session_tokens_issued(), 1);
    w.sim.shutdown();
}
