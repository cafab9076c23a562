#![allow(dead_code)] // each test crate that includes this module uses part of it

//! The Helm chart (`deploy/helm/pinip`) rendered, linted and schema-checked by the Helm
//! v4 engine itself, through helm-python-sdk (PyPI: Helm's Go SDK as a library, so no
//! helm binary). `.ci/tools/helm-python-sdk.sh` installs it and exports
//! `PINIP_HELM_PYTHON`; without it these tests fail, naming that script.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

pub const CHART: &str = "deploy/helm/pinip";
/// The release the comparisons with deploy/ use: `helm install pinip -n pinip-system`.
pub const RELEASE: &str = "pinip";
pub const NAMESPACE: &str = "pinip-system";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv python that has helm-python-sdk.
pub fn python() -> PathBuf {
    match std::env::var_os("PINIP_HELM_PYTHON").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "PINIP_HELM_PYTHON is not set: `. .ci/tools/helm-python-sdk.sh` installs helm-python-sdk \
             into ~/.cache and sets it (`.ci/test` sources every .ci/tools/*.sh, then runs the tests)"
        ),
    }
}

/// Runs tests/helm_support/helm.py `command` on the chart with the given values files
/// (relative to the chart) and inline values; its JSON answer.
fn helm(command: &str, values_files: &[&str], values: &Value) -> Value {
    let chart = root().join(CHART);
    let files: Vec<String> = values_files
        .iter()
        .map(|f| chart.join(f).display().to_string())
        .collect();
    let request = json!({
        "values_files": files,
        "values": values,
        "name": RELEASE,
        "namespace": NAMESPACE,
    });
    let script = root().join("tests/helm_support/helm.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(command)
        .arg(&chart)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; `. .ci/tools/helm-python-sdk.sh` installs it",
                python().display()
            )
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(request.to_string().as_bytes())
            .expect("write the request to helm.py");
    }
    let output = child.wait_with_output().expect("helm.py finishes");
    assert!(
        output.status.success(),
        "helm.py {command} {values_files:?} {values} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("helm.py answers JSON")
}

/// Every object `helm template` would print for these values, in template order.
pub fn render(values_files: &[&str], values: &Value) -> Vec<Value> {
    let answer = helm("render", values_files, values);
    let manifests = answer
        .pointer("/manifests")
        .and_then(Value::as_object)
        .expect("rendered manifests");
    let mut objects = Vec::new();
    for (template, text) in manifests {
        let Some(text) = text.as_str() else { continue };
        if !template.ends_with(".yaml") || text.trim().is_empty() {
            continue;
        }
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .unwrap_or_else(|e| panic!("{template} renders invalid YAML: {e}\n{text}"));
        objects.extend(docs.into_iter().filter(|d| !d.is_null()));
    }
    assert!(!objects.is_empty(), "the chart rendered no objects");
    objects
}

/// The rendered NOTES.txt.
pub fn notes(values_files: &[&str], values: &Value) -> String {
    let answer = helm("render", values_files, values);
    answer
        .pointer("/manifests")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().find(|(k, _)| k.ends_with("NOTES.txt")))
        .and_then(|(_, v)| v.as_str())
        .expect("the chart renders NOTES.txt")
        .to_string()
}

/// `helm lint --strict`'s report: `{"messages": [{"severity", "path", "error"}], "errors": [...]}`.
pub fn lint(values_files: &[&str]) -> Value {
    helm("lint", values_files, &json!({}))
}

/// What values.schema.json says about these values: None when accepted.
pub fn schema_error(values: &Value) -> Option<String> {
    helm("validate", &[], values)
        .pointer("/error")
        .and_then(Value::as_str)
        .map(String::from)
}

/// The values files of the chart's `ci/` folder (chart-testing's convention), by name.
pub fn ci_values_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(CHART).join("ci"))
        .expect("read the chart's ci/ folder")
        .filter_map(|e| e.ok())
        .map(|e| format!("ci/{}", e.file_name().to_string_lossy()))
        .filter(|f| f.ends_with("-values.yaml"))
        .collect();
    files.sort();
    files
}
