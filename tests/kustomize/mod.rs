#![allow(dead_code)] // each test crate that includes this module uses part of it

//! Rendering the shipped manifests as `kubectl apply -k <dir>` would send them, for the
//! tests that check them (`deploy_manifests.rs`) and run the agent under their RBAC
//! (`deploy_rbac_lifecycle.rs`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every object `kubectl kustomize <dir>` renders (`dir` relative to the repository root).
pub fn render(dir: &str) -> Vec<Value> {
    let path = root().join(dir);
    let output = match Command::new("kubectl").arg("kustomize").arg(&path).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run `kubectl kustomize {dir}`: {e}. kubectl (>= 1.27, with its built-in kustomize) is \
             required for this test; .ci/run installs it"
        ),
    };
    assert!(
        output.status.success(),
        "kubectl kustomize {dir} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("kustomize output is UTF-8");
    let objects: Vec<Value> =
        serde_saphyr::from_multiple(&text).expect("kustomize output is valid YAML");
    assert!(!objects.is_empty(), "{dir} rendered no objects");
    objects
}

pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

pub fn kind(object: &Value) -> &str {
    str_at(object, "/kind").unwrap_or("")
}

pub fn name(object: &Value) -> &str {
    str_at(object, "/metadata/name").unwrap_or("")
}

pub fn of_kind<'a>(objects: &'a [Value], kind_name: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == kind_name).collect()
}

/// The one object of a kind (panics unless there is exactly one).
pub fn the_one<'a>(objects: &'a [Value], kind_name: &str) -> &'a Value {
    let found = of_kind(objects, kind_name);
    assert_eq!(
        found.len(),
        1,
        "expected one {kind_name}, found {}",
        found.len()
    );
    found[0]
}

/// The agent container of a DaemonSet.
pub fn container(daemonset: &Value) -> &Value {
    daemonset
        .pointer("/spec/template/spec/containers/0")
        .expect("the DaemonSet has a container")
}

/// The literal value of an env var of the agent container, if it is set to one.
pub fn env_value<'a>(daemonset: &'a Value, var: &str) -> Option<&'a str> {
    container(daemonset)
        .pointer("/env")
        .and_then(Value::as_array)?
        .iter()
        .find(|e| str_at(e, "/name") == Some(var))
        .and_then(|e| str_at(e, "/value"))
}
