//! The Helm chart (`deploy/helm/pinip`), through the Helm v4 engine (helm-python-sdk):
//!
//! - `helm lint --strict` is clean with the default values and every `ci/*-values.yaml`;
//! - every rendering validates strictly against Kubernetes' schemas (kubernetes-validate);
//! - the chart renders the same objects as the kustomize overlay with the same settings
//!   (the two install paths must not drift);
//! - values.schema.json refuses what `pinip run` refuses, decided by the agent's own
//!   parsers (a bad duration or RELEASE_ON_EXIT fails `helm install`, not the pod);
//! - checkov passes on the renderings, every skip justified here;
//! - NOTES tell how to see the node addresses and what to whitelist; versions follow
//!   the crate.
//!
//! The chart's RBAC is checked against src/permissions.rs by tests/deploy_manifests.rs,
//! with the same test that checks deploy/base.

mod helm_support;
mod kustomize;

use std::collections::BTreeMap;
use std::process::Command;

use helm_support::{ci_values_files, lint, notes, render, schema_error};
use serde_json::{json, Value};

/// `{..., key: value}`: values with a key chosen at run time.
trait TapInsert {
    fn tap_insert(self, key: &str, value: Value) -> Value;
}

impl TapInsert for Value {
    fn tap_insert(mut self, key: &str, value: Value) -> Value {
        if let Some(map) = self.as_object_mut() {
            map.insert(key.to_string(), value);
        }
        self
    }
}

/// Labels Helm's conventions add and kustomize's base has no counterpart for.
const HELM_ONLY_LABELS: &[&str] = &[
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
];

#[test]
fn lint_strict_is_clean_with_every_values_file() {
    let mut files = vec![Vec::new()];
    files.extend(ci_values_files().into_iter().map(|f| vec![f]));
    assert!(files.len() >= 4, "ci/ has the clouds' values: {files:?}");
    for values in files {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let report = lint(&values);
        let errors = report
            .pointer("/errors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Severity 2 is a warning, 3 an error (strict: both fail); 1 is informational
        // (the only one today: "icon is recommended").
        let findings: Vec<&Value> = report
            .pointer("/messages")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter(|m| m.pointer("/severity").and_then(Value::as_u64) >= Some(2))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            errors.is_empty() && findings.is_empty(),
            "helm lint --strict {values:?}: {errors:?} {findings:?}"
        );
        assert_eq!(
            report
                .pointer("/total_charts_linted")
                .and_then(Value::as_u64),
            Some(1)
        );
    }
}

/// Kinds the Prometheus Operator defines (no schema in kubernetes-validate).
const OPERATOR_KINDS: &[&str] = &["PodMonitor", "PrometheusRule"];

fn kubernetes_validate(objects: &[Value], what: &str) {
    let tool = std::env::var("PINIP_KUBERNETES_VALIDATE").unwrap_or_else(|_| {
        panic!("PINIP_KUBERNETES_VALIDATE is not set: `. .ci/tools/kubernetes-validate.sh` installs it")
    });
    let version = std::env::var("PINIP_KUBERNETES_VERSION").unwrap_or_else(|_| "1.37.0".into());
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("rendered.yaml");
    let text: Vec<String> = objects
        .iter()
        .filter(|o| !OPERATOR_KINDS.contains(&kustomize::kind(o)))
        .map(|o| serde_json::to_string(o).expect("JSON is YAML"))
        .collect();
    std::fs::write(&file, text.join("\n---\n")).expect("write the rendering");
    let output = Command::new(&tool)
        .args(["--strict", "-k", &version, "--quiet"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool}: {e}; `. .ci/tools/kubernetes-validate.sh` installs it")
        });
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && !log.contains("Couldn't find schema"),
        "{what} does not validate against Kubernetes {version}:\n{log}"
    );
}

#[test]
fn every_rendering_passes_kubernetes_validate() {
    // The validator must refuse what is wrong, or its passes mean nothing.
    let broken = vec![json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "x", "namespace": "y", "unknownField": 1}})];
    let refused = std::panic::catch_unwind(|| kubernetes_validate(&broken, "a broken object"));
    assert!(
        refused.is_err(),
        "kubernetes-validate accepted an unknown field"
    );

    kubernetes_validate(&render(&[], &json!({})), "the default values");
    for file in ci_values_files() {
        kubernetes_validate(&render(&[file.as_str()], &json!({})), &file);
    }
}

/// An object with what only Helm adds removed, env sorted by name (its order carries no
/// meaning here: no `$(VAR)` references).
fn normalise(object: &Value) -> Value {
    let mut object = object.clone();
    for pointer in [
        "/metadata/labels",
        "/spec/selector/matchLabels",
        "/spec/template/metadata/labels",
    ] {
        if let Some(labels) = object.pointer_mut(pointer).and_then(Value::as_object_mut) {
            for label in HELM_ONLY_LABELS {
                labels.remove(*label);
            }
        }
    }
    if let Some(env) = object
        .pointer_mut("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array_mut)
    {
        env.sort_by_key(|e| {
            e.pointer("/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        });
    }
    object
}

fn by_identity(objects: &[Value]) -> BTreeMap<String, Value> {
    objects
        .iter()
        .map(|o| {
            let key = format!(
                "{} {}/{}",
                kustomize::kind(o),
                kustomize::str_at(o, "/metadata/namespace").unwrap_or("-"),
                kustomize::name(o)
            );
            (key, normalise(o))
        })
        .collect()
}

#[test]
fn the_chart_renders_what_the_overlay_with_the_same_settings_renders() {
    for (values, overlay) in [
        ("ci/aws-values.yaml", "deploy/overlays/aws"),
        ("ci/gcp-values.yaml", "deploy/overlays/gcp"),
        ("ci/gcp-ipv6-values.yaml", "deploy/overlays/gcp-ipv6"),
    ] {
        let chart = by_identity(&render(&[values], &json!({})));
        // `helm install --create-namespace` makes the namespace; the chart has none.
        let kustomized: Vec<Value> = kustomize::render(overlay)
            .into_iter()
            .filter(|o| kustomize::kind(o) != "Namespace")
            .collect();
        let kustomized = by_identity(&kustomized);
        let keys = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&chart),
            keys(&kustomized),
            "{values} vs {overlay}: different objects"
        );
        for (key, object) in &chart {
            assert_eq!(
                object, &kustomized[key],
                "{values} vs {overlay}: {key} differs\nchart:   {object}\noverlay: {}",
                kustomized[key]
            );
        }
    }
}

/// One rendering's DaemonSet container env, as name → value.
fn env_of(objects: &[Value]) -> BTreeMap<String, String> {
    let ds = kustomize::the_one(objects, "DaemonSet");
    kustomize::container(ds)
        .pointer("/env")
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(|e| {
                    Some((
                        kustomize::str_at(e, "/name")?.to_string(),
                        kustomize::str_at(e, "/value")
                            .unwrap_or("<from>")
                            .to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_value_reaches_the_agent_as_its_setting() {
    let objects = render(&["ci/monitoring-values.yaml"], &json!({}));
    let env = env_of(&objects);
    for (var, value) in [
        ("CLUSTER_NAME", "prod-eu-1"),
        (
            "FILTER",
            "Name=tag:kubeip,Values=reserved;Name=tag:env,Values=prod",
        ),
        ("ORDER_BY", "PublicIp desc"),
        ("IPV6", "true"),
        (
            "IPV6_POOL",
            "2600:1f18:aa:bb00::100/120,2600:1f18:aa:bb00::7",
        ),
        ("TAINT_KEY", "pinip.dev/not-ready"),
        ("TAINT_WAIT", "2m"),
        ("TAINT_GIVE_UP", "15m"),
        ("RELEASE_ON_EXIT", "always"),
        ("RETRY_INTERVAL", "30s"),
        ("RETRY_ATTEMPTS", "20"),
        ("LEASE_DURATION", "10"),
        ("VERIFY_INTERVAL", "10m"),
        ("RELEASE_TIMEOUT", "15s"),
        ("SWEEP_INTERVAL", "1h30m"),
        ("LOG_LEVEL", "debug"),
        ("LOG_JSON", "true"),
        ("ADMIN_ADDR", "0.0.0.0:9191"),
        ("LEASE_NAMESPACE", "<from>"),
    ] {
        assert_eq!(
            env.get(var).map(String::as_str),
            Some(value),
            "{var} in {env:?}"
        );
    }
    let ds = kustomize::the_one(&objects, "DaemonSet");
    assert_eq!(
        kustomize::container(ds).pointer("/ports/0/containerPort"),
        Some(&json!(9191)),
        "the admin port follows admin.port"
    );

    // The cloud picks the identity and the default pool; unset values stay unset.
    let gcp = render(
        &["ci/gcp-values.yaml"],
        &json!({"releaseOnExit": false, "dryRun": true}),
    );
    let env = env_of(&gcp);
    assert_eq!(
        env.get("FILTER").map(String::as_str),
        Some("labels.kubeip=reserved")
    );
    assert_eq!(
        env.get("RELEASE_ON_EXIT").map(String::as_str),
        Some("false"),
        "false is a value, not unset"
    );
    assert_eq!(env.get("DRY_RUN").map(String::as_str), Some("true"));
    for unset in [
        "RETRY_INTERVAL",
        "TAINT_KEY",
        "LOG_LEVEL",
        "IPV6",
        "IPV6_POOL",
        "ADMIN_ADDR",
    ] {
        assert!(
            !env.contains_key(unset),
            "{unset} is set although its value is null: {env:?}"
        );
    }

    // A taint key the default tolerations do not cover gets its own toleration.
    let tainted = render(
        &[],
        &json!({"taint": {"key": "example.com/egress-pending"}}),
    );
    let ds = kustomize::the_one(&tainted, "DaemonSet");
    let tolerations = ds
        .pointer("/spec/template/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| kustomize::str_at(t, "/key") == Some("example.com/egress-pending")),
        "{tolerations:?}"
    );
}

#[test]
fn the_schema_refuses_the_durations_the_agent_refuses() {
    let candidates = [
        "1m", "30s", "1h30m", "1.5h", "250ms", "+30s", "1.", ".5s", "2m10s", "10us", "5µs", "60",
        "0", "0s", "0.0m", "-1m", "1x", "m", "", "1m-", "1..5s", "1 m", " 1m", "1M", "1d",
    ];
    for text in candidates {
        let agent = pinip::config::duration::parse_go_duration(text);
        let chart = schema_error(&json!({ "retryInterval": text }));
        match (&agent, &chart) {
            (Ok(_), None) | (Err(_), Some(_)) => {}
            // "" is how the chart says "unset" (the agent's default applies).
            (Err(_), None) if text.is_empty() => {}
            // The agent trims; the schema, stricter, refuses surrounding blanks.
            (Ok(_), Some(_)) if text.trim() != text => {}
            _ => panic!("RETRY_INTERVAL={text:?}: the agent says {agent:?}, the chart's schema says {chart:?}"),
        }
    }
    for key in ["verifyInterval", "releaseTimeout", "sweepInterval"] {
        assert!(
            schema_error(&json!({}).tap_insert(key, json!("60"))).is_some(),
            "{key}: 60 has no unit"
        );
    }
    for key in ["wait", "giveUp"] {
        assert!(
            schema_error(&json!({"taint": json!({}).tap_insert(key, json!("0s"))})).is_some(),
            "taint.{key}: zero"
        );
    }
}

#[test]
fn the_schema_refuses_the_release_policies_and_log_levels_the_agent_refuses() {
    for text in [
        "true",
        "auto",
        "always",
        "ALWAYS",
        "false",
        "never",
        "no",
        "1",
        "sometimes",
        "on-exit",
        "nope",
    ] {
        let agent = text.parse::<pinip::domain::exit_decision::ReleasePolicy>();
        let chart = schema_error(&json!({ "releaseOnExit": text }));
        assert_eq!(
            agent.is_ok(),
            chart.is_none(),
            "RELEASE_ON_EXIT={text:?}: agent {agent:?}, schema {chart:?}"
        );
    }
    for value in [json!(true), json!(false)] {
        assert_eq!(
            schema_error(&json!({ "releaseOnExit": value })),
            None,
            "YAML booleans"
        );
    }
    for text in [
        "trace", "debug", "info", "warn", "warning", "WARNING", "error", "fatal", "panic",
        "verbose", "notice",
    ] {
        let agent = text.parse::<pinip::process::logging::LogLevel>();
        let chart = schema_error(&json!({"log": { "level": text }}));
        assert_eq!(
            agent.is_ok(),
            chart.is_none(),
            "LOG_LEVEL={text:?}: agent {agent:?}, schema {chart:?}"
        );
    }
}

#[test]
fn the_schema_refuses_other_values_the_agent_refuses() {
    let refused = [
        json!({"cloud": "azure"}),
        json!({"retryAttempts": 0}),
        json!({"retryAttempts": "5"}),
        json!({"leaseDuration": -1}),
        json!({"clusterName": "my cluster"}),
        json!({"clusterName": "-prod"}),
        json!({"taint": {"key": "a/b/c"}}),
        json!({"taint": {"key": "Pinip.dev/x"}}),
        json!({"filter": ["labels.kubeip=reserved"]}),
        json!({"cloud": "gcp", "filter": ["Name=tag:kubeip,Values=reserved"]}),
        json!({"cloud": "gcp", "filter": ["kubeip"]}),
        json!({"ipv6Pool": ["2001:db8::1"]}),
        json!({"cloud": "gcp", "ipv6": true, "ipv6Pool": ["2001:db8::1"]}),
        json!({"ipv6": true, "ipv6Pool": ["10.0.0.1"]}),
        json!({"admin": {"port": 0}}),
        json!({"identity": {"aws": {"roleArn": "pinip-role"}}}),
        json!({"image": {"digest": "latest"}}),
        json!({"filterr": []}),
        json!({"extraEnv": [{"name": "NODE_NAME", "value": "x"}]}),
    ];
    for values in refused {
        assert!(
            schema_error(&values).is_some(),
            "values.schema.json accepts {values}"
        );
    }
    let accepted = [
        json!({}),
        json!({"cloud": "gcp", "filter": ["labels.kubeip=reserved", "labels.env=prod"]}),
        json!({"filter": ["Name=tag:kubeip,Values=reserved", "Name=tag:env,Values=a\\,b"]}),
        json!({"ipv6": true, "ipv6Pool": ["2600:1f18:aa:bb00::100/120"]}),
        json!({"clusterName": "prod_eu.1", "taint": {"key": "pinip.dev/not-ready", "giveUp": "30m"}}),
        json!({"identity": {"aws": {"roleArn": "arn:aws:iam::111122223333:role/pinip"}}}),
    ];
    for values in accepted {
        assert_eq!(schema_error(&values), None, "{values}");
    }
    // The agent agrees on the filters the schema accepts.
    use pinip::config::filter_syntax::{check_filter, FilterForm};
    let aws = vec![
        "Name=tag:kubeip,Values=reserved".to_string(),
        "Name=tag:env,Values=a\\,b".to_string(),
    ];
    assert_eq!(check_filter(&aws), Ok(FilterForm::AwsShorthand));
    assert!(check_filter(&["kubeip".to_string()]).is_err());
}

/// checkov's Kubernetes checks that do not apply to pinip, and why.
const CHECKOV_SKIPS: &[(&str, &str)] = &[
    ("CKV_K8S_11", "no CPU limit on purpose: CFS throttling would slow the release on SIGTERM, which must fit the grace period; the request is 10m"),
    ("CKV_K8S_43", "the tag is the crate version; no digest is published that CI could verify (image.digest pins one)"),
    ("CKV_K8S_15", "IfNotPresent with an immutable version tag: a node still waiting for its egress address may not reach the registry"),
    ("CKV_K8S_38", "the agent is a Kubernetes API client (its Node, its Leases, Events): it needs its token"),
    ("CKV_K8S_21", "Events about the cluster-scoped Node land in `default`, so the events Role must live there"),
    ("CKV_K8S_29", "the one container sets the whole securityContext (uid 65532, non-root, RO root fs, no capabilities, RuntimeDefault seccomp); deploy/base has no pod-level one either"),
    ("CKV2_K8S_6", "a NetworkPolicy needs an enforcing CNI and the scraper's namespace: networkPolicy.enabled renders one (ci/monitoring-values.yaml)"),
];

#[test]
fn checkov_passes_on_every_rendering_with_each_skip_justified() {
    let checkov = std::env::var("PINIP_CHECKOV").unwrap_or_else(|_| {
        panic!("PINIP_CHECKOV is not set: `. .ci/tools/checkov.sh` installs checkov")
    });
    for (id, why) in CHECKOV_SKIPS {
        assert!(why.len() > 30, "{id}: say why it is skipped");
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut renderings = vec![("default".to_string(), render(&[], &json!({})))];
    for file in ci_values_files() {
        renderings.push((file.clone(), render(&[file.as_str()], &json!({}))));
    }
    for (what, objects) in renderings {
        let file = dir.path().join(format!("{}.yaml", what.replace('/', "_")));
        let text: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
        std::fs::write(&file, text.join("\n---\n")).expect("write the rendering");
        let skips: Vec<&str> = CHECKOV_SKIPS.iter().map(|(id, _)| *id).collect();
        let output = Command::new(&checkov)
            .arg("--file")
            .arg(&file)
            .args([
                "--framework",
                "kubernetes",
                "--skip-download",
                "--compact",
                "--quiet",
            ])
            .arg("--skip-check")
            .arg(skips.join(","))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {checkov}: {e}; `. .ci/tools/checkov.sh` installs it")
            });
        assert!(
            output.status.success(),
            "checkov fails on the chart rendered with {what}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn notes_tell_how_to_see_the_addresses_and_what_to_whitelist() {
    let text = notes(&["ci/aws-values.yaml"], &json!({}));
    for needle in [
        "kubectl get nodes -L pinip.dev/address",
        "pinip status --cloud -o addresses -n pinip-system",
        "kubectl label node <node> pinip.dev/pool=public",
        "NodePort",
    ] {
        assert!(text.contains(needle), "NOTES lack {needle:?}:\n{text}");
    }
    assert!(
        !text.contains("NOTE:"),
        "no warning with complete values:\n{text}"
    );
    let bare = notes(&[], &json!({}));
    assert!(
        bare.contains("identity.aws.roleArn is empty") && bare.contains("clusterName is unset"),
        "{bare}"
    );
}

#[test]
fn the_chart_versions_are_the_crate_version() {
    let chart = std::fs::read_to_string(helm_support::root().join("deploy/helm/pinip/Chart.yaml"))
        .expect("read Chart.yaml");
    let field = |key: &str| {
        chart
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    assert_eq!(field("version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        field("appVersion").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let ds = render(&[], &json!({}));
    let ds = kustomize::the_one(&ds, "DaemonSet");
    assert_eq!(
        kustomize::str_at(kustomize::container(ds), "/image"),
        Some(format!("ghcr.io/pinip/pinip:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
}
