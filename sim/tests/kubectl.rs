//! Conformance with the real kubectl: discovery, table printing, create,
//! replace with optimistic concurrency, delete and NotFound, all against the
//! simulator on loopback. kubectl must be installed (CI installs it); set
//! `KUBECTL` to use a binary that is not on PATH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use pinip_sim::kube::{Kind, KubeSim};
use serde_json::{json, Value};

type TestResult = anyhow::Result<()>;

fn kubectl_binary() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// Runs kubectl against the simulator, isolated from the user's ~/.kube.
struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = tokio::process::Command::new(kubectl_binary());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .arg("--request-timeout=20s")
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        match cmd.output().await {
            Ok(out) => Ok(out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "kubectl not found ({}): install kubectl (CI installs it) or set KUBECTL to its path",
                kubectl_binary()
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs kubectl and requires success; returns stdout.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn lease_yaml(resource_version: Option<&str>, holder: &str) -> String {
    let rv = resource_version
        .map(|rv| format!("  resourceVersion: \"{rv}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: pinip-test
  namespace: pinip
{rv}spec:
  holderIdentity: {holder}
  leaseDurationSeconds: 15
"
    )
}

fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path.to_string_lossy().into_owned())
}

#[tokio::test]
async fn kubectl_conformance() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node("node-a", Some("fake://a"), BTreeMap::new(), vec![]);
    sim.add_node("node-b", Some("fake://b"), BTreeMap::new(), vec![]);
    sim.upsert_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pinip"}}),
    )?;

    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let k = Kubectl {
        kubeconfig,
        home: dir.path().to_path_buf(),
    };

    // Human table output (server-side Table) lists the nodes.
    let table = k.ok(&["get", "nodes"]).await?;
    assert!(
        table.contains("NAME") && table.contains("STATUS"),
        "{table}"
    );
    assert!(
        table.contains("node-a") && table.contains("node-b"),
        "{table}"
    );
    assert!(table.contains("Ready"), "{table}");
    // Short names come from discovery.
    assert!(k.ok(&["get", "no", "node-a"]).await?.contains("node-a"));

    let json_list: Value = serde_json::from_str(&k.ok(&["get", "nodes", "-o", "json"]).await?)?;
    let names: Vec<&str> = json_list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|n| n["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["node-a", "node-b"]);

    // Create from a manifest, with kubectl's default (strict) validation.
    let manifest = write(dir.path(), "lease.yaml", &lease_yaml(None, "node-a"))?;
    let created = k.ok(&["create", "-f", &manifest]).await?;
    assert!(created.contains("pinip-test created"), "{created}");
    let got: Value = serde_json::from_str(
        &k.ok(&["get", "lease", "pinip-test", "-n", "pinip", "-o", "json"])
            .await?,
    )?;
    assert_eq!(got["spec"]["holderIdentity"], "node-a");
    let rv = got["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!rv.is_empty());

    // Move the lease on behind kubectl's back, making `rv` stale.
    sim.update_object(Kind::Lease, Some("pinip"), "pinip-test", |l| {
        l["spec"]["holderIdentity"] = json!("node-b");
    });
    let stale = write(dir.path(), "stale.yaml", &lease_yaml(Some(&rv), "node-a"))?;
    let out = k.run(&["replace", "-f", &stale]).await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "replace with a stale resourceVersion succeeded"
    );
    assert!(
        stderr.contains("Conflict") && stderr.contains("the object has been modified"),
        "{stderr}"
    );

    // Replace with the current version succeeds.
    let current = sim
        .get(Kind::Lease, Some("pinip"), "pinip-test")
        .and_then(|l| l["metadata"]["resourceVersion"].as_str().map(String::from))
        .unwrap_or_default();
    let fresh = write(
        dir.path(),
        "fresh.yaml",
        &lease_yaml(Some(&current), "node-c"),
    )?;
    let replaced = k.ok(&["replace", "-f", &fresh]).await?;
    assert!(replaced.contains("pinip-test replaced"), "{replaced}");
    let holder = sim
        .get(Kind::Lease, Some("pinip"), "pinip-test")
        .map(|l| l["spec"]["holderIdentity"].clone());
    assert_eq!(holder, Some(json!("node-c")));

    // Table output for leases shows the holder.
    let leases = k.ok(&["get", "leases", "-n", "pinip"]).await?;
    assert!(
        leases.contains("pinip-test") && leases.contains("node-c"),
        "{leases}"
    );

    // Delete, then NotFound.
    let deleted = k
        .ok(&["delete", "lease", "pinip-test", "-n", "pinip"])
        .await?;
    assert!(deleted.contains("deleted"), "{deleted}");
    let out = k
        .run(&["get", "lease", "pinip-test", "-n", "pinip"])
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("NotFound") && stderr.contains("\"pinip-test\" not found"),
        "{stderr}"
    );

    // Label, then select by label; describe works (it also lists pods and events).
    k.ok(&["label", "node", "node-a", "pinip.io/eligible=true"])
        .await?;
    let selected = k
        .ok(&["get", "nodes", "-l", "pinip.io/eligible=true", "-o", "name"])
        .await?;
    assert_eq!(selected.trim(), "node/node-a");
    let described = k.ok(&["describe", "node", "node-a"]).await?;
    assert!(described.contains("fake://a"), "{described}");

    sim.shutdown();
    Ok(())
}
