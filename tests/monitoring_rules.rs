//! Monitoring as code (deploy/monitoring, deploy/components/monitoring, the chart's
//! monitoring values):
//!
//! - `promtool check rules` accepts the rule file and `promtool test rules` passes its
//!   unit tests (a firing and a non-firing case per alert, checked here);
//! - the kustomize component and the Helm chart ship exactly those rules;
//! - every metric and label the rules and the Grafana dashboard query is one pinip
//!   exports (read from `pinip::admin::metrics::Metrics`' own exposition), and the PodMonitors
//!   scrape the port and path the agent serves them on.

mod helm_support;
mod kustomize;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pinip::admin::metrics::{AssignResult, Metrics, ReleaseResult, SweepResult};
use pinip_providers::ErrorClass;
use serde_json::{json, Value};

const RULES: &str = "deploy/monitoring/pinip-alerts.rules.yaml";
const RULE_TESTS: &str = "deploy/monitoring/pinip-alerts.test.yaml";
const DASHBOARD: &str = "deploy/monitoring/pinip-dashboard.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool() -> String {
    std::env::var("PINIP_PROMTOOL").unwrap_or_else(|_| {
        panic!("PINIP_PROMTOOL is not set: `. .ci/tools/promtool.sh` installs promtool (from Debian's prometheus package) into ~/.cache")
    })
}

fn run_promtool(args: &[&str]) -> String {
    let tool = promtool();
    let output = Command::new(&tool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool}: {e}; `. .ci/tools/promtool.sh` installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

fn yaml(path: &str) -> Value {
    let text =
        std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn alerts() -> Vec<Value> {
    yaml(RULES)
        .pointer("/groups")
        .and_then(Value::as_array)
        .expect("groups")
        .iter()
        .flat_map(|g| {
            g.pointer("/rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let checked = run_promtool(&["check", "rules", RULES]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{checked}"
    );
    let tested = run_promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // A wrong expectation must fail, or a pass means nothing.
    let dir = tempfile::tempdir().expect("a temp dir");
    let broken = std::fs::read_to_string(root().join(RULE_TESTS))
        .expect("read the rule tests")
        .replace(
            "rule_files:\n  - pinip-alerts.rules.yaml",
            &format!("rule_files:\n  - {}", root().join(RULES).display()),
        )
        .replace(
            "summary: \"pinip's address pool in pinip-system has no free address\"",
            "summary: \"something else\"",
        );
    let file = dir.path().join("broken.test.yaml");
    std::fs::write(&file, broken).expect("write");
    let status = Command::new(promtool())
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        !status.status.success(),
        "promtool passed a wrong expectation"
    );
}

#[test]
fn every_alert_has_a_firing_and_a_non_firing_case() {
    let tests = yaml(RULE_TESTS);
    let mut firing: BTreeMap<String, usize> = BTreeMap::new();
    let mut quiet: BTreeMap<String, usize> = BTreeMap::new();
    for test in tests
        .pointer("/tests")
        .and_then(Value::as_array)
        .expect("tests")
    {
        for case in test
            .pointer("/alert_rule_test")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let name = case
                .pointer("/alertname")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let expected = case
                .pointer("/exp_alerts")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let counts = if expected > 0 {
                &mut firing
            } else {
                &mut quiet
            };
            *counts.entry(name).or_default() += 1;
        }
    }
    for alert in alerts() {
        let name = alert
            .pointer("/alert")
            .and_then(Value::as_str)
            .expect("alert name");
        assert!(firing.contains_key(name), "{name}: no case where it fires");
        assert!(
            quiet.contains_key(name),
            "{name}: no case where it must stay quiet"
        );
        for key in ["summary", "description", "runbook"] {
            assert!(
                alert.pointer(&format!("/annotations/{key}")).is_some(),
                "{name} has no {key}"
            );
        }
        assert!(
            matches!(
                alert.pointer("/labels/severity").and_then(Value::as_str),
                Some("warning" | "critical")
            ),
            "{name}: severity warning or critical"
        );
    }
    for name in [
        "PinipPoolExhausted",
        "PinipNodeWithoutAddress",
        "PinipCloudPermissionDenied",
        "PinipCloudThrottled",
        "PinipSweepFailing",
    ] {
        assert!(
            alerts()
                .iter()
                .any(|a| a.pointer("/alert").and_then(Value::as_str) == Some(name)),
            "the alert {name} of docs/operations.md is missing"
        );
    }
}

#[test]
fn the_component_and_the_chart_ship_exactly_these_rules() {
    let rules = yaml(RULES);
    let component = kustomize::render("deploy/components/monitoring");
    let rule = kustomize::the_one(&component, "PrometheusRule");
    assert_eq!(
        rule.pointer("/spec"),
        Some(&rules),
        "deploy/components/monitoring/prometheusrule.yaml differs from {RULES}: run .ci/sync-monitoring"
    );
    let chart = helm_support::render(&["ci/monitoring-values.yaml"], &json!({}));
    let rule = kustomize::the_one(&chart, "PrometheusRule");
    assert_eq!(
        rule.pointer("/spec"),
        Some(&rules),
        "the chart's PrometheusRule differs from {RULES}"
    );
    let labels = rule
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        labels.get("release"),
        Some(&json!("kube-prometheus-stack")),
        "monitoring.prometheusRule.labels"
    );
    // Off by default: without the Prometheus Operator's CRDs an install would fail.
    let plain = helm_support::render(&[], &json!({}));
    for kind in ["PodMonitor", "PrometheusRule"] {
        assert!(
            kustomize::of_kind(&plain, kind).is_empty(),
            "{kind} rendered by default"
        );
    }
}

#[test]
fn the_pod_monitors_scrape_the_agents_admin_port() {
    let admin = std::fs::read_to_string(root().join("src/admin/server.rs"))
        .expect("read src/admin/server.rs");
    assert!(
        admin.contains(".route(\"/metrics\""),
        "src/admin/server.rs serves no /metrics"
    );
    let overlay = kustomize::render("deploy/base");
    let chart = helm_support::render(&["ci/monitoring-values.yaml"], &json!({}));
    let component = kustomize::render("deploy/components/monitoring");
    for (what, monitor, pods) in [
        (
            "the component",
            kustomize::the_one(&component, "PodMonitor"),
            &overlay,
        ),
        (
            "the chart",
            kustomize::the_one(&chart, "PodMonitor"),
            &chart,
        ),
    ] {
        let ds = kustomize::the_one(pods, "DaemonSet");
        let pod_labels = ds
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or_default();
        let selector = monitor
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .expect("matchLabels");
        assert!(!selector.is_empty());
        for (k, v) in selector {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "{what}: the PodMonitor selects {k}={v}, the pods are {pod_labels}"
            );
        }
        assert_eq!(
            kustomize::str_at(ds, "/metadata/namespace"),
            kustomize::str_at(monitor, "/metadata/namespace"),
            "{what}: a PodMonitor selects pods in its own namespace"
        );
        let endpoint = monitor
            .pointer("/spec/podMetricsEndpoints/0")
            .expect("an endpoint");
        assert_eq!(
            kustomize::str_at(endpoint, "/port"),
            Some("admin"),
            "{what}"
        );
        assert_eq!(
            kustomize::str_at(endpoint, "/path"),
            Some("/metrics"),
            "{what}"
        );
        let ports = kustomize::container(ds)
            .pointer("/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert!(
            ports
                .iter()
                .any(|p| kustomize::str_at(p, "/name") == Some("admin")),
            "{what}: no port named admin"
        );
    }
}

/// pinip's real exposition with every family populated: metric name → label names.
fn exported() -> BTreeMap<String, BTreeSet<String>> {
    let metrics = Metrics::new();
    metrics.assigned(AssignResult::Assigned, "claimed");
    metrics.released(ReleaseResult::Kept, "pod_restart");
    metrics.swept(SweepResult::Swept);
    metrics.cloud_call("aws", "attach", "ok", Duration::from_millis(20));
    metrics.pool_seen(10, 3);
    metrics.claim_conflicts.inc();
    metrics.time_to_address.observe(1.5);
    metrics.has_address.set(1);
    metrics.sweep_freed.inc();
    let text = metrics.encode().expect("encode the metrics");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..name_end].to_string()).or_default();
        if let Some(set) = line[name_end..].strip_prefix('{') {
            for pair in set[..set.find('}').unwrap_or(0)].split(',') {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.to_string());
                }
            }
        }
    }
    assert!(out.len() >= 10, "{text}");
    out
}

/// Labels a scrape adds to every series (target labels of a PodMonitor).
const TARGET_LABELS: &[&str] = &[
    "namespace",
    "pod",
    "job",
    "instance",
    "container",
    "endpoint",
];

/// Every `pinip_…` metric an expression uses, with the label names it matches or groups on.
fn metric_uses(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut uses = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("pinip_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let mut labels = Vec::new();
        if expr[end..].starts_with('{') {
            let close = expr[end..].find('}').map(|c| end + c).unwrap_or(end);
            for matcher in expr[end + 1..close].split(',') {
                let name: String = matcher
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    labels.push(name);
                }
            }
        }
        uses.push((expr[start..end].to_string(), labels));
        i = end;
    }
    uses
}

/// The label names of `by (…)` / `on (…)` clauses of an expression.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for keyword in ["by (", "on (", "by(", "on("] {
        let mut rest = expr;
        while let Some(at) = rest.find(keyword) {
            let after = &rest[at + keyword.len()..];
            let close = after.find(')').unwrap_or(0);
            labels.extend(
                after[..close]
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
            rest = &after[close..];
        }
    }
    labels
}

fn check_expression(expr: &str, what: &str, exported: &BTreeMap<String, BTreeSet<String>>) {
    let uses = metric_uses(expr);
    assert!(!uses.is_empty(), "{what}: {expr} queries no pinip metric");
    let mut all_labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
    all_labels.insert("le".into());
    for (metric, labels) in uses {
        let known = exported.get(&metric).unwrap_or_else(|| {
            panic!(
                "{what}: {metric} is not a metric pinip exports ({:?})",
                exported.keys()
            )
        });
        for label in labels {
            assert!(
                known.contains(&label) || TARGET_LABELS.contains(&label.as_str()),
                "{what}: {metric} has no label {label} (it has {known:?})"
            );
        }
        all_labels.extend(known.iter().cloned());
    }
    for label in grouping_labels(expr) {
        assert!(
            all_labels.contains(&label),
            "{what}: groups by {label}, which none of its metrics has"
        );
    }
}

#[test]
fn rules_and_dashboard_query_only_what_pinip_exports() {
    let exported = exported();
    for alert in alerts() {
        let name = alert
            .pointer("/alert")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let expr = alert
            .pointer("/expr")
            .and_then(Value::as_str)
            .expect("expr");
        check_expression(expr, name, &exported);
    }
    // The outcome values the alerts select are ones the agent writes.
    let outcomes: BTreeSet<&str> = [
        ErrorClass::Transient,
        ErrorClass::Throttled,
        ErrorClass::Conflict,
        ErrorClass::NotFound,
        ErrorClass::PermissionDenied {
            action: String::new(),
        },
        ErrorClass::InvalidInput,
        ErrorClass::Permanent,
    ]
    .iter()
    .map(pinip::cloud::metered::error_class_label)
    .chain(["ok"])
    .collect();
    let rules_text = std::fs::read_to_string(root().join(RULES)).expect("read the rules");
    for (at, _) in rules_text.match_indices("outcome=\"") {
        let value = &rules_text[at + 9..];
        let value = &value[..value.find('"').unwrap_or(0)];
        assert!(
            outcomes.contains(value),
            "outcome={value:?} is never written (src/cloud/metered.rs writes {outcomes:?})"
        );
    }

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(DASHBOARD)).expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard
        .pointer("/panels")
        .and_then(Value::as_array)
        .expect("panels");
    let mut queried = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel
            .pointer("/title")
            .and_then(Value::as_str)
            .unwrap_or("?");
        assert!(
            ids.insert(panel.pointer("/id").and_then(Value::as_u64)),
            "{title}: duplicate panel id"
        );
        let targets = panel
            .pointer("/targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target
                .pointer("/expr")
                .and_then(Value::as_str)
                .expect("expr");
            check_expression(expr, title, &exported);
            queried.extend(metric_uses(expr).into_iter().map(|(m, _)| m));
        }
    }
    // What the issue asks the dashboard to show.
    for metric in [
        "pinip_node_has_address",
        "pinip_pool_free_addresses",
        "pinip_pool_matched_addresses",
        "pinip_time_to_address_seconds_bucket",
        "pinip_cloud_calls_total",
        "pinip_cloud_call_duration_seconds_bucket",
        "pinip_sweep_runs_total",
        "pinip_sweep_freed_addresses_total",
    ] {
        assert!(
            queried.contains(metric),
            "the dashboard does not show {metric}"
        );
    }
}

#[test]
fn the_expression_reader_sees_metrics_labels_and_groupings() {
    assert_eq!(
        metric_uses(r#"sum by (a, b) (rate(pinip_x_total{outcome="ok", pod=~"p"}[5m])) / pinip_y"#),
        vec![
            (
                "pinip_x_total".to_string(),
                vec!["outcome".to_string(), "pod".to_string()]
            ),
            ("pinip_y".to_string(), vec![])
        ]
    );
    assert_eq!(
        grouping_labels("sum by (a, b) (x) unless on (c) y"),
        vec!["a", "b", "c"]
    );
    let exported = exported();
    let refused =
        std::panic::catch_unwind(|| check_expression("pinip_made_up_total", "t", &exported));
    assert!(refused.is_err(), "an unknown metric must fail");
    let refused = std::panic::catch_unwind(|| {
        check_expression(r#"pinip_cloud_calls_total{colour="x"}"#, "t", &exported)
    });
    assert!(refused.is_err(), "an unknown label must fail");
}
