//! `pinip simulate --coordination kubeip-lock`: KubeIP v2's global-lock coordination as a
//! baseline in the same world. It must assign like KubeIP does (every node one distinct
//! address, one at a time under `kubeip-lock`), pass the harness's invariant checks, and
//! refuse `--chaos`. How fast it is against pinip is measured in docs/benchmarks.md, not
//! here.

use std::process::{Command, Output};

use serde_json::Value;

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinip"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run pinip simulate")
}

#[test]
fn the_kubeip_baseline_gives_every_node_its_own_address_under_one_lock() {
    for cloud in ["fake", "aws"] {
        let out = simulate(&[
            "--cloud",
            cloud,
            "--nodes",
            "4",
            "--pool",
            "5",
            "--coordination",
            "kubeip-lock",
            "--json",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
        assert_eq!(r["coordination"], "kubeip-lock", "{r}");
        assert_eq!(r["assigned"], 4, "{r}");
        assert_eq!(r["duplicates"], 0, "{r}");
        assert_eq!(r["violations"], serde_json::json!([]), "{r}");
        // The lock is a Lease of its own: every holder created it once at least.
        let creates = r["kube_calls"]["by_verb"]["create"]
            .as_u64()
            .unwrap_or_default();
        assert!(creates >= 4, "{r}");
    }
}

#[test]
fn the_kubeip_baseline_refuses_chaos() {
    let out = simulate(&["--coordination", "kubeip-lock", "--chaos"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without --chaos"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
