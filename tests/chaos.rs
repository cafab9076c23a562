//! A bounded chaos run inside the test suite (CI runs more seeds through the CLI, and a
//! soak is `pinip simulate --chaos --runs 200`).

use std::process::Command;

use serde_json::Value;

#[test]
fn chaos_runs_end_without_violations() {
    let out = Command::new(env!("CARGO_BIN_EXE_pinip"))
        .args([
            "simulate",
            "--cloud",
            "fake",
            "--chaos",
            "--seed",
            "101",
            "--runs",
            "2",
            "--chaos-seconds",
            "5",
            "--nodes",
            "16",
            "--pool",
            "13",
            "--json",
        ])
        .output()
        .expect("run pinip simulate --chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON report per run"))
        .collect();
    assert_eq!(reports.len(), 2, "{stdout}");
    for report in &reports {
        assert_eq!(report["violations"], serde_json::json!([]), "{report}");
        assert_eq!(report["duplicates"], 0, "{report}");
        assert_eq!(
            report["assigned"], 13,
            "every address in use once faults stopped: {report}"
        );
        let injected: u64 = report["chaos"]["injected"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        assert!(injected > 10, "the storm injected faults: {report}");
        assert_eq!(report["chaos"]["rollout_changed"], 0, "{report}");
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
