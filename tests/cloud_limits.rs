//! `pinip simulate --cloud-limits`: a run under EC2's published token buckets reports
//! its profile, what was throttled, the floor the buckets impose and when the last node
//! got its address; clouds without a model refuse the flag (exit 2).

use std::process::{Command, Output};

use serde_json::Value;

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinip"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run pinip simulate")
}

fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON report")
}

#[test]
fn sixty_nodes_under_ec2_defaults_all_assigned_no_sooner_than_the_floor() {
    let r = report(&simulate(&[
        "--cloud",
        "aws",
        "--cloud-limits",
        "default",
        "--nodes",
        "60",
        "--json",
    ]));
    assert_eq!(r["assigned"], 60, "{r}");
    assert_eq!(r["violations"], serde_json::json!([]), "{r}");
    let limits = &r["cloud_limits"];
    assert_eq!(limits["profile"], "default", "{r}");
    assert_eq!(limits["throttled_consume_tokens"], false, "{r}");
    assert!(limits["throttled"].is_u64(), "{r}");
    // 60 AssociateAddress calls from a 50-token bucket refilled 5 a second.
    assert_eq!(limits["floor_ms"], 2000, "{r}");
    let all = r["time_to_all_ms"].as_u64().expect("every node assigned");
    // The simulator enforces the buckets, so no run can beat their arithmetic.
    assert!(all >= 2000, "{r}");
}

#[test]
fn without_limits_the_report_says_none_and_gives_no_floor() {
    let r = report(&simulate(&["--cloud", "gcp", "--nodes", "3", "--json"]));
    assert_eq!(r["cloud_limits"]["profile"], "none", "{r}");
    assert_eq!(r["cloud_limits"]["floor_ms"], Value::Null, "{r}");
    assert_eq!(r["cloud_limits"]["throttled"], 0, "{r}");
    assert!(r["time_to_all_ms"].is_u64(), "{r}");
    let limited = report(&simulate(&[
        "--cloud",
        "gcp",
        "--cloud-limits",
        "default",
        "--nodes",
        "3",
        "--json",
    ]));
    assert_eq!(limited["cloud_limits"]["profile"], "default", "{limited}");
    // Nine calls a node, 1,500 a minute per group: nothing to wait for.
    assert_eq!(limited["cloud_limits"]["floor_ms"], 0, "{limited}");
    // The timeline: each method's admissions per quota window, in its group.
    let windows = limited["cloud_limits"]["windows"]
        .as_array()
        .expect("Compute reports its windows");
    let admitted = |method: &str| -> u64 {
        windows
            .iter()
            .filter(|w| w["method"] == method)
            .map(|w| w["admitted"].as_u64().expect("a count"))
            .sum()
    };
    assert_eq!(admitted("instances.addAccessConfig"), 3, "{limited}");
    assert_eq!(admitted("addresses.setLabels"), 3, "{limited}");
    for w in windows {
        assert_eq!(w["refused"], 0, "{limited}");
        let group = w["group"].as_str().expect("a group");
        assert!(
            ["default", "read", "list", "operation_read"].contains(&group),
            "{w}"
        );
        assert!(w["first_ms"].as_u64() <= w["last_ms"].as_u64(), "{w}");
    }
    assert!(r["cloud_limits"].get("windows").is_none(), "{r}");
}

#[test]
fn clouds_without_a_model_refuse_the_default_profile() {
    for cloud in ["fake", "oci"] {
        let out = simulate(&[
            "--cloud",
            cloud,
            "--cloud-limits",
            "default",
            "--nodes",
            "2",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cloud}: {stderr}");
        assert!(stderr.contains("--cloud-limits default"), "{stderr}");
    }
    let out = simulate(&[
        "--cloud",
        "aws",
        "--throttled-consume-tokens",
        "--nodes",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
