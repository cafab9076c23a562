//! Conformance of the Compute simulator against a real, independent client: the
//! installed gcloud, pointed at the simulator with `api_endpoint_overrides/compute`
//! and a dummy token (`CLOUDSDK_AUTH_ACCESS_TOKEN`) in a private `CLOUDSDK_CONFIG`.
//! Each command's effect is checked on the simulator's own state.
//!
//! gcloud is part of the machine image (`google-cloud-cli`); without it these tests
//! FAIL with a message, they never pass silently.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use pinip_sim::compute::{ComputeSim, Faults};
use serde_json::Value;
use tempfile::TempDir;

const GCLOUD: &str = "/usr/bin/gcloud";
const PROJECT: &str = "p1";
const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

struct Gcloud {
    sim: ComputeSim,
    config: TempDir,
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Gcloud {
    async fn new() -> Gcloud {
        assert!(
            Path::new(GCLOUD).exists(),
            "gcloud is not installed at {GCLOUD}: the Compute conformance tests need it (package google-cloud-cli, part of this machine's image)"
        );
        let sim = ComputeSim::start(PROJECT).await.expect("simulator starts");
        // Operations stay RUNNING a little, so gcloud has to follow operations/…/wait.
        sim.set_faults(Faults {
            operation_time: Duration::from_millis(300),
            ..Faults::default()
        });
        sim.add_address(
            REGION,
            "pool-1",
            ip("203.0.113.10"),
            &[("kubeip", "reserved")],
        );
        sim.add_address(
            REGION,
            "pool-2",
            ip("203.0.113.11"),
            &[("kubeip", "reserved")],
        );
        sim.add_address(REGION, "other", ip("203.0.113.99"), &[("kubeip", "other")]);
        sim.add_address(
            REGION,
            "v6-1",
            ip("2600:1900:4000:abcd::"),
            &[("kubeip", "reserved")],
        );
        sim.add_address("europe-west1", "eu-1", ip("198.51.100.7"), &[]);
        sim.add_instance(ZONE, "node-1", true);
        sim.add_instance(ZONE, "node-2", true);
        let gcloud = Gcloud {
            sim,
            config: TempDir::new().expect("temp dir"),
        };
        for (key, value) in [
            ("core/project", PROJECT.to_string()),
            ("core/disable_usage_reporting", "true".into()),
            ("component_manager/disable_update_check", "true".into()),
            ("api_endpoint_overrides/compute", gcloud.sim.url()),
        ] {
            let ran = gcloud.run(&["config", "set", key, &value]).await;
            assert!(ran.ok, "gcloud config set {key}: {}", ran.stderr);
        }
        gcloud
    }

    fn config_dir(&self) -> PathBuf {
        self.config.path().join("gcloud")
    }

    async fn run(&self, args: &[&str]) -> Ran {
        let child = tokio::process::Command::new(GCLOUD)
            .args(args)
            .arg("--quiet")
            .env("CLOUDSDK_CONFIG", self.config_dir())
            .env(
                "CLOUDSDK_AUTH_ACCESS_TOKEN",
                "dummy-token-for-the-simulator",
            )
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env_remove("CLOUDSDK_CORE_PROJECT")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("gcloud starts");
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("gcloud {args:?} did not finish within {COMMAND_TIMEOUT:?}"))
            .expect("gcloud runs");
        Ran {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--format=json");
        let ran = self.run(&all).await;
        assert!(ran.ok, "gcloud {args:?} failed: {}", ran.stderr);
        serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("gcloud {args:?} printed no JSON ({e}): {}", ran.stdout))
    }

    fn status(&self, name: &str) -> (String, Vec<String>) {
        let a = self
            .sim
            .addresses()
            .into_iter()
            .find(|a| a.name == name)
            .expect("address exists");
        (a.status, a.users)
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|a| a["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_lists_addresses_aggregated_and_per_region() {
    let g = Gcloud::new().await;
    let all = g.json(&["compute", "addresses", "list"]).await;
    assert_eq!(names(&all), ["eu-1", "other", "pool-1", "pool-2", "v6-1"]);
    let reserved = g
        .json(&[
            "compute",
            "addresses",
            "list",
            "--regions",
            REGION,
            "--filter",
            "labels.kubeip=reserved AND status=RESERVED",
        ])
        .await;
    assert_eq!(names(&reserved), ["pool-1", "pool-2", "v6-1"]);
    let counts = g.sim.request_counts();
    assert_eq!(counts.method("addresses.aggregatedList"), 1);
    assert_eq!(counts.method("addresses.list"), 1);
    // gcloud sends parameters the discovery document does not list
    // (returnPartialSuccess); they are ignored, not refused.
    let v6 = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "v6-1")
        .unwrap()
        .clone();
    assert_eq!(v6["ipVersion"], "IPV6");
    assert_eq!(v6["prefixLength"], 96);
    assert!(pinip_sim::compute::is_valid_fingerprint(
        v6["labelFingerprint"].as_str().unwrap()
    ));
    g.sim.shutdown();
}

/// gcloud follows the simulator's page tokens to the end, one address a page, in a
/// region and across regions: the tokens are opaque to it, as Compute's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_follows_page_tokens_to_the_last_page() {
    let g = Gcloud::new().await;
    let regional = g
        .json(&[
            "compute",
            "addresses",
            "list",
            "--regions",
            REGION,
            "--page-size",
            "1",
        ])
        .await;
    assert_eq!(names(&regional), ["other", "pool-1", "pool-2", "v6-1"]);
    assert_eq!(
        g.sim.request_counts().method("addresses.list"),
        4,
        "one call a page"
    );
    let all = g
        .json(&["compute", "addresses", "list", "--page-size", "2"])
        .await;
    assert_eq!(names(&all), ["eu-1", "other", "pool-1", "pool-2", "v6-1"]);
    assert_eq!(g.sim.request_counts().method("addresses.aggregatedList"), 3);
    g.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_swaps_the_access_config_and_the_simulator_follows() {
    let g = Gcloud::new().await;
    let described = g
        .json(&["compute", "instances", "describe", "node-1", "--zone", ZONE])
        .await;
    let nic = &described["networkInterfaces"][0];
    assert_eq!(nic["name"], "nic0");
    let ephemeral = nic["accessConfigs"][0]["natIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(g.sim.external_ips("node-1")[0], ip(&ephemeral));
    assert_eq!(g.sim.request_counts().method("instances.get"), 1);

    // Remove the ephemeral address.
    let ran = g
        .run(&[
            "compute",
            "instances",
            "delete-access-config",
            "node-1",
            "--zone",
            ZONE,
            "--access-config-name",
            "external-nat",
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    assert!(
        g.sim.external_ips("node-1").iter().all(IpAddr::is_ipv6),
        "no external IPv4 left on node-1"
    );
    assert!(
        g.sim.request_counts().method("zoneOperations.wait") >= 1,
        "gcloud waited on the operation"
    );

    // Put the static one on.
    let ran = g
        .run(&[
            "compute",
            "instances",
            "add-access-config",
            "node-1",
            "--zone",
            ZONE,
            "--access-config-name",
            "external-nat",
            "--address",
            "203.0.113.10",
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    assert_eq!(
        g.status("pool-1"),
        ("IN_USE".to_string(), vec!["node-1".to_string()])
    );
    assert_eq!(g.sim.attached_to("node-1"), vec![ip("203.0.113.10")]);
    let listed = g
        .json(&["compute", "addresses", "list", "--regions", REGION])
        .await;
    let pool1 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "pool-1")
        .unwrap();
    assert!(pool1["users"][0]
        .as_str()
        .unwrap()
        .ends_with("/zones/us-central1-a/instances/node-1"));

    // Another instance cannot take it: the operation ends in error, gcloud says so,
    // and nothing moved.
    let ran = g
        .run(&[
            "compute",
            "instances",
            "delete-access-config",
            "node-2",
            "--zone",
            ZONE,
            "--access-config-name",
            "external-nat",
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    let ran = g
        .run(&[
            "compute",
            "instances",
            "add-access-config",
            "node-2",
            "--zone",
            ZONE,
            "--address",
            "203.0.113.10",
        ])
        .await;
    assert!(!ran.ok, "taking an address in use must fail");
    assert!(ran.stderr.contains("already being used"), "{}", ran.stderr);
    assert_eq!(
        g.status("pool-1"),
        ("IN_USE".to_string(), vec!["node-1".to_string()])
    );
    // An ephemeral one (no --address) is always possible.
    let ran = g
        .run(&[
            "compute",
            "instances",
            "add-access-config",
            "node-2",
            "--zone",
            ZONE,
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    assert!(g.sim.external_ips("node-2").iter().any(IpAddr::is_ipv4));
    assert!(g.sim.violations().is_empty(), "{:?}", g.sim.violations());
    assert_eq!(g.sim.duplicates(), 0);

    // updateAccessConfig changes the PTR record, never the address.
    let ran = g
        .run(&[
            "compute",
            "instances",
            "update-access-config",
            "node-1",
            "--zone",
            ZONE,
            "--public-ptr",
            "--public-ptr-domain",
            "node-1.example.com.",
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    let instance = g.sim.instance("node-1").unwrap();
    let config = &instance["networkInterfaces"][0]["accessConfigs"][0];
    assert_eq!(config["publicPtrDomainName"], "node-1.example.com.");
    assert_eq!(config["natIP"], "203.0.113.10");
    assert_eq!(
        g.sim
            .request_counts()
            .method("instances.updateAccessConfig"),
        1
    );
    g.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_updates_the_ipv6_access_config_with_the_fingerprint() {
    let g = Gcloud::new().await;
    // The one-step swap (dual-stack stays dual-stack, the address changes) is refused:
    // `--external-ipv6-address` is for NICs of stack type IPV4_ONLY.
    let one_step = [
        "compute",
        "instances",
        "network-interfaces",
        "update",
        "node-1",
        "--zone",
        ZONE,
        "--network-interface",
        "nic0",
        "--stack-type",
        "IPV4_IPV6",
        "--ipv6-network-tier",
        "PREMIUM",
        "--external-ipv6-address",
        "2600:1900:4000:abcd:0:0:0:0",
        "--external-ipv6-prefix-length",
        "96",
    ];
    let ran = g.run(&one_step).await;
    assert!(!ran.ok, "the one-step IPv6 swap must be refused");
    assert!(ran.stderr.contains("IPV4_ONLY"), "{}", ran.stderr);
    for instance in ["node-1", "node-2"] {
        let ran = g
            .run(&[
                "compute",
                "instances",
                "network-interfaces",
                "update",
                instance,
                "--zone",
                ZONE,
                "--network-interface",
                "nic0",
                "--stack-type",
                "IPV4_ONLY",
            ])
            .await;
        assert!(ran.ok, "{}", ran.stderr);
        assert_eq!(g.sim.stack_type(instance).as_deref(), Some("IPV4_ONLY"));
    }
    let updates = g
        .sim
        .request_counts()
        .method("instances.updateNetworkInterface");
    let ran = g
        .run(&[
            "compute",
            "instances",
            "network-interfaces",
            "update",
            "node-1",
            "--zone",
            ZONE,
            "--network-interface",
            "nic0",
            "--stack-type",
            "IPV4_IPV6",
            "--ipv6-network-tier",
            "PREMIUM",
            "--external-ipv6-address",
            "2600:1900:4000:abcd:0:0:0:0",
            "--external-ipv6-prefix-length",
            "96",
        ])
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    assert_eq!(
        g.status("v6-1"),
        ("IN_USE".to_string(), vec!["node-1".to_string()])
    );
    assert!(g
        .sim
        .attached_to("node-1")
        .contains(&ip("2600:1900:4000:abcd::")));
    let counts = g.sim.request_counts();
    assert_eq!(
        counts.method("instances.updateNetworkInterface"),
        updates + 1
    );
    // gcloud read the NIC first (for its fingerprint) and waited on the operation.
    assert!(counts.method("instances.get") >= 1);
    assert!(counts.method("zoneOperations.wait") >= 1);

    // The same address on another instance is refused.
    let ran = g
        .run(&[
            "compute",
            "instances",
            "network-interfaces",
            "update",
            "node-2",
            "--zone",
            ZONE,
            "--network-interface",
            "nic0",
            "--stack-type",
            "IPV4_IPV6",
            "--ipv6-network-tier",
            "PREMIUM",
            "--external-ipv6-address",
            "2600:1900:4000:abcd:0:0:0:0",
            "--external-ipv6-prefix-length",
            "96",
        ])
        .await;
    assert!(!ran.ok, "taking an IPv6 address in use must fail");
    assert_eq!(g.status("v6-1").1, vec!["node-1".to_string()]);
    g.sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_reports_missing_permissions_and_unknown_instances() {
    let g = Gcloud::new().await;
    g.sim.deny("instances.get");
    let ran = g
        .run(&["compute", "instances", "describe", "node-1", "--zone", ZONE])
        .await;
    assert!(!ran.ok);
    assert!(
        ran.stderr.contains("compute.instances.get"),
        "{}",
        ran.stderr
    );
    g.sim.allow("instances.get");
    let ran = g
        .run(&["compute", "instances", "describe", "nope", "--zone", ZONE])
        .await;
    assert!(!ran.ok);
    assert!(ran.stderr.contains("was not found"), "{}", ran.stderr);
    g.sim.shutdown();
}
