//! Kubeconfig files pointing clients (kube-rs, kubectl) at the simulator.

use std::path::Path;

use anyhow::Context;

/// Name of the cluster, user and context in written kubeconfigs.
pub const CONTEXT: &str = "pinip-sim";

/// A kubeconfig (YAML) for `server`, authenticating with bearer `token`; for an
/// `https://` server, `ca_pem` is the CA its certificate is checked against.
pub fn render(server: &str, token: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    // Quoted as JSON strings, which are valid YAML scalars.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let ca = ca_pem
        .map(|pem| {
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            format!("\n    certificate-authority-data: {}", q(&data))
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {ctx}
  cluster:
    server: {server}{ca}
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

pub fn write(path: &Path, server: &str, token: &str, ca_pem: Option<&str>) -> anyhow::Result<()> {
    write_rendered(path, &render(server, token, ca_pem))
}

/// Writes a rendered kubeconfig, creating its directory.
pub fn write_rendered(path: &Path, yaml: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    std::fs::write(path, yaml).with_context(|| format!("writing kubeconfig {}", path.display()))
}
