//! `deploy/iam/gcp-role.yaml` grants exactly what the GCP provider needs: the union of
//! `pinip_providers::gcp::permissions::REQUIRED`, nothing more (least privilege), and
//! every Compute method the provider really calls — observed on the simulator through
//! a full IPv4 and IPv6 attach/detach, failures included — is in that table and
//! needs only permissions of the role.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use pinip_providers::gcp::permissions::{self, REQUIRED};
use pinip_providers::gcp::{GcpProvider, GcpSettings, TokenSource};
use pinip_providers::{InstanceRef, IpFamily, Ownership, PoolSpec, Provider};
use pinip_sim::compute::{permission_of, ComputeSim, Failure};
use serde_json::Value;

fn role() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/iam/gcp-role.yaml");
    let text = std::fs::read_to_string(&path).expect("deploy/iam/gcp-role.yaml exists");
    let role: Value = serde_saphyr::from_str(&text).expect("the role is YAML");
    assert_eq!(role["stage"], "GA");
    assert!(role["title"].is_string());
    role["includedPermissions"]
        .as_array()
        .expect("includedPermissions is a list")
        .iter()
        .map(|p| p.as_str().expect("a permission is a string").to_string())
        .collect()
}

#[test]
fn the_role_grants_exactly_what_the_provider_table_needs() {
    let granted = role();
    let needed: BTreeSet<String> = permissions::all().into_iter().map(String::from).collect();
    let missing: Vec<_> = needed.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&needed).collect();
    assert!(
        missing.is_empty(),
        "missing from deploy/iam/gcp-role.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "granted but never needed (least privilege): {extra:?}"
    );
    assert!(
        granted.contains("compute.instances.updateNetworkInterface"),
        "IPv6 needs it (KubeIP forgets it)"
    );
}

async fn exercise(sim: &ComputeSim, family: IpFamily) {
    let provider = GcpProvider::new(GcpSettings {
        project: "p".into(),
        region: "us-central1".into(),
        endpoint: Some(sim.url()),
        token: TokenSource::Static("t".into()),
        pool: PoolSpec {
            filter: vec!["labels.kubeip=reserved".into()],
            order_by: None,
            family,
        },
    })
    .unwrap();
    let me = InstanceRef {
        cloud: "gce".into(),
        project: Some("p".into()),
        zone: "us-central1-a".into(),
        id: "node-1".into(),
    };
    let owner = Ownership {
        cluster: "c".into(),
        node: "node-1".into(),
        instance: "node-1".into(),
    };
    let described = provider.describe_instance(&me).await.unwrap();
    let pool = provider.list_pool().await.unwrap();
    // A failed swap (restore path), a successful one, a stale label fingerprint, a release.
    let method = if family == IpFamily::V4 {
        "instances.addAccessConfig"
    } else {
        "instances.updateNetworkInterface"
    };
    sim.fail_next(
        method,
        Failure::Operation {
            code: "INTERNAL_ERROR".into(),
            message: "x".into(),
        },
    );
    assert!(provider.attach(&pool[0], &described, &owner).await.is_err());
    sim.relabel_by_hand(&pool[0].id, "team", "edge");
    provider.attach(&pool[0], &described, &owner).await.unwrap();
    provider.detach(&pool[0], &me).await.unwrap();
}

#[tokio::test]
async fn every_method_the_provider_calls_is_covered_by_the_role() {
    let granted = role();
    let sim = ComputeSim::start("p").await.unwrap();
    sim.set_faults(pinip_sim::compute::Faults {
        operation_time: std::time::Duration::from_millis(20),
        ..Default::default()
    });
    sim.add_address(
        "us-central1",
        "v4",
        "203.0.113.10".parse::<IpAddr>().unwrap(),
        &[("kubeip", "reserved")],
    );
    sim.add_address(
        "us-central1",
        "v6",
        "2600:1900:4000:abcd::".parse::<IpAddr>().unwrap(),
        &[("kubeip", "reserved")],
    );
    sim.add_instance("us-central1-a", "node-1", true);
    exercise(&sim, IpFamily::V4).await;
    exercise(&sim, IpFamily::V6).await;
    let counts = sim.request_counts();
    let called: Vec<&String> = counts
        .by_method
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(m, _)| m)
        .collect();
    for method in &called {
        assert!(
            REQUIRED.iter().any(|(m, _)| m == method),
            "the provider calls {method}, which permissions::REQUIRED does not list"
        );
        let permission = permission_of(method);
        assert!(
            granted.contains(&permission),
            "{method} needs {permission}, which the role does not grant"
        );
    }
    // Everything in the table is really called (no stale rows), except the operation
    // reads the provider falls back to only when `wait` fails (providers/src/gcp/operation.rs).
    let fallbacks = ["zoneOperations.get", "regionOperations.get"];
    for (method, _) in REQUIRED {
        assert!(
            fallbacks.contains(method) || called.iter().any(|m| m == method),
            "{method} is listed but never called"
        );
    }
    sim.shutdown();
}
