//! Conformance with the real kubectl: discovery, table printing, create,
//! replace with optimistic concurrency, delete and NotFound, all against the
//! simulator on loopback. kubectl must be installed (CI installs it); set
//! `KUBECTL` to use a binary that is not on PATH.

use std::collections::BTreeMap;

use pinip_sim::kube::{Kind, KubeSim};
use serde_json::{json, Value};

mod kubectl_support;

use kubectl_support::{write, Kubectl};

type TestResult = anyhow::Result<()>;

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
    let table = k.stdout(&["get", "nodes"]).await?;
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
    assert!(k.stdout(&["get", "no", "node-a"]).await?.contains("node-a"));

    let json_list: Value = serde_json::from_str(&k.stdout(&["get", "nodes", "-o", "json"]).await?)?;
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
    let created = k.stdout(&["create", "-f", &manifest]).await?;
    assert!(created.contains("pinip-test created"), "{created}");
    let got: Value = serde_json::from_str(
        &k.stdout(&["get", "lease", "pinip-test", "-n", "pinip", "-o", "json"])
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
    let replaced = k.stdout(&["replace", "-f", &fresh]).await?;
    assert!(replaced.contains("pinip-test replaced"), "{replaced}");
    let holder = sim
        .get(Kind::Lease, Some("pinip"), "pinip-test")
        .map(|l| l["spec"]["holderIdentity"].clone());
    assert_eq!(holder, Some(json!("node-c")));

    // Table output for leases shows the holder.
    let leases = k.stdout(&["get", "leases", "-n", "pinip"]).await?;
    assert!(
        leases.contains("pinip-test") && leases.contains("node-c"),
        "{leases}"
    );

    // Delete, then NotFound.
    let deleted = k
        .stdout(&["delete", "lease", "pinip-test", "-n", "pinip"])
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
    k.stdout(&["label", "node", "node-a", "pinip.io/eligible=true"])
        .await?;
    let selected = k
        .stdout(&["get", "nodes", "-l", "pinip.io/eligible=true", "-o", "name"])
        .await?;
    assert_eq!(selected.trim(), "node/node-a");
    // A list by label follows relabels and removals (the simulator answers an equality
    // selector from a label index): overwritten, the old value selects nothing; as a
    // one-value set (`in (false)`) and with a second term it selects the same; removed,
    // nothing.
    k.stdout(&[
        "label",
        "--overwrite",
        "node",
        "node-a",
        "pinip.io/eligible=false",
    ])
    .await?;
    let by_label = |selector: &'static str| {
        let k = &k;
        async move {
            k.stdout(&["get", "nodes", "-l", selector, "-o", "name"])
                .await
        }
    };
    assert_eq!(by_label("pinip.io/eligible=true").await?.trim(), "");
    assert_eq!(
        by_label("pinip.io/eligible in (false)").await?.trim(),
        "node/node-a"
    );
    assert_eq!(
        by_label("pinip.io/eligible=false,!pinip.io/other")
            .await?
            .trim(),
        "node/node-a"
    );
    k.stdout(&["label", "node", "node-a", "pinip.io/eligible-"])
        .await?;
    assert_eq!(by_label("pinip.io/eligible=false").await?.trim(), "");
    let described = k.stdout(&["describe", "node", "node-a"]).await?;
    assert!(described.contains("fake://a"), "{described}");

    sim.shutdown();
    Ok(())
}

/// `kubectl get node NAME --watch` asks for a one-object watch (`fieldSelector=
/// metadata.name=NAME`): it hears of that Node's changes and of no other's, as from a
/// real API server, although the simulator tells such a watch only of its object.
#[tokio::test]
async fn kubectl_watches_one_node_and_hears_only_of_it() -> TestResult {
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;

    let sim = KubeSim::start().await?;
    sim.add_node("node-a", Some("fake://a"), BTreeMap::new(), vec![]);
    sim.add_node("node-b", Some("fake://b"), BTreeMap::new(), vec![]);
    let dir = tempfile::tempdir()?;
    let k = kubectl_support::kubectl(&sim, dir.path(), None)?;
    let mut watch = tokio::process::Command::new(kubectl_support::kubectl_binary())
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .arg("--cache-dir")
        .arg(k.home.join("cache"))
        .args([
            "get",
            "node",
            "node-a",
            "--watch-only",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name,COLOR:.object.metadata.labels.color",
        ])
        .env("HOME", &k.home)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = watch.stdout.take().expect("piped stdout");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // Changes until kubectl shows node-a's: node-b changes first, each time, so a watch
    // that heard of other Nodes would have printed node-b before node-a's line.
    for round in 0..50 {
        let color = format!("c{round}");
        let labels = |c: &str| [("color".to_string(), c.to_string())].into();
        sim.add_node("node-b", Some("fake://b"), labels(&color), vec![]);
        sim.add_node("node-a", Some("fake://a"), labels(&color), vec![]);
        if let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), stdout.read(&mut buf)).await
        {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        if seen.contains("MODIFIED") && seen.contains("node-a") {
            break;
        }
    }
    let _ = watch.kill().await;
    assert!(
        seen.contains("MODIFIED") && seen.contains("node-a"),
        "{seen}"
    );
    assert!(
        !seen.contains("node-b"),
        "a watch of node-a printed node-b:\n{seen}"
    );
    Ok(())
}
