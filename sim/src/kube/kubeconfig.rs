//! Kubeconfig files pointing clients (kube-rs, kubectl) at the simulator.

use std::path::Path;

use anyhow::Context;

/// Name of the cluster, user and context in written kubeconfigs.
pub const CONTEXT: &str = "pinip-sim";

/// A kubeconfig (YAML) for `server`, authenticating with bearer `token`.
pub fn render(server: &str, token: &str) -> String {
    // Quoted as JSON strings, which are valid YAML scalars.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {ctx}
  cluster:
    server: {server}
users:
- name: {ctx}
  user:
    token: {token}
contexts:
- name: {ctx}
  context:
    cluster: {ctx}
    user: {ctx}
    namespace: default
current-context: {ctx}
preferences: {{}}
",
        ctx = CONTEXT,
        server = q(server),
        token = q(token),
    )
}

pub fn write(path: &Path, server: &str, token: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    std::fs::write(path, render(server, token))
        .with_context(|| format!("writing kubeconfig {}", path.display()))
}
