//! The OCI overlays (`deploy/overlays/oci`: an API key from a Secret;
//! `deploy/overlays/oci-instance-principal`: the node's instance principal;
//! `deploy/overlays/oci-workload-identity`: pinip's service account; no Secret for
//! either) render, keep deploy/base's RBAC, set only variables `pinip run` reads, and
//! authenticate the way they say; and the IAM files that go with them
//! (`deploy/iam/oci-dynamic-group.txt`, `deploy/iam/oci-workload-identity.txt`) are
//! well formed and grant what `deploy/iam/oci-policy.txt` grants.

mod kustomize;

use std::collections::BTreeSet;
use std::process::Command;

use kustomize::{container, env_value, kind, render, root, str_at, the_one};
use serde_json::Value;

/// The `[env: NAME=]` variables of `pinip run --help`.
fn run_variables() -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_pinip"))
        .args(["run", "--help"])
        .output()
        .expect("pinip runs");
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(String::from)
        .collect()
}

fn rbac(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| kind(o).contains("Role"))
        .map(Value::to_string)
        .collect()
}

#[test]
fn both_oci_overlays_render_with_the_base_rbac_and_known_settings() {
    let base = rbac(&render("deploy/base"));
    let known = run_variables();
    assert!(known.contains("OCI_AUTH") && known.contains("OCI_METADATA_BASE_URL"));
    for dir in [
        "deploy/overlays/oci",
        "deploy/overlays/oci-instance-principal",
        "deploy/overlays/oci-workload-identity",
    ] {
        let objects = render(dir);
        assert_eq!(
            rbac(&objects),
            base,
            "{dir} changes the RBAC of deploy/base"
        );
        let ds = the_one(&objects, "DaemonSet");
        let names: Vec<&str> = container(ds)
            .pointer("/env")
            .and_then(Value::as_array)
            .map(|env| env.iter().filter_map(|e| str_at(e, "/name")).collect())
            .unwrap_or_default();
        for var in &names {
            assert!(
                known.contains(*var),
                "{dir} sets {var}, which `pinip run` does not read"
            );
        }
        assert_eq!(
            names.iter().collect::<BTreeSet<_>>().len(),
            names.len(),
            "{dir}: {names:?}"
        );
        assert_eq!(
            env_value(ds, "FILTER"),
            Some("freeformTags.kubeip=reserved"),
            "{dir}"
        );
    }
}

#[test]
fn the_principal_overlays_need_no_secret() {
    for (dir, auth) in [
        (
            "deploy/overlays/oci-instance-principal",
            "instance_principal",
        ),
        ("deploy/overlays/oci-workload-identity", "workload_identity"),
    ] {
        let objects = render(dir);
        let ds = the_one(&objects, "DaemonSet");
        assert_eq!(env_value(ds, "OCI_AUTH"), Some(auth), "{dir}");
        assert_eq!(env_value(ds, "OCI_CONFIG_FILE"), None, "{dir}");
        assert!(env_value(ds, "REGION").is_some(), "{dir}");
        let text = ds.to_string();
        assert!(
            !text.contains("pinip-oci-api-key") && !text.contains("secretName"),
            "{dir}: {text}"
        );
        assert!(!objects.iter().any(|o| kind(o) == "Secret"), "{dir}");
    }
    // The API-key overlay mounts its Secret.
    let api_key = render("deploy/overlays/oci");
    let ds = the_one(&api_key, "DaemonSet");
    assert!(ds.to_string().contains("pinip-oci-api-key"));
    assert_eq!(env_value(ds, "OCI_AUTH"), None, "api_key is the default");
}

#[test]
fn the_dynamic_group_rule_and_its_policy_are_well_formed() {
    let rule = std::fs::read_to_string(root().join("deploy/iam/oci-dynamic-group.txt"))
        .expect("deploy/iam/oci-dynamic-group.txt");
    let rules: Vec<&str> = rule
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.len(), 1, "one matching rule: {rules:?}");
    assert!(
        rules[0].starts_with("ALL {") && rules[0].ends_with('}'),
        "{}",
        rules[0]
    );
    assert!(rules[0].contains("instance.compartment.id = '<node-compartment>'"));
    // The policy names its subject once per statement, so `dynamic-group` can replace it.
    let policy = std::fs::read_to_string(root().join("deploy/iam/oci-policy.txt"))
        .expect("deploy/iam/oci-policy.txt");
    for line in policy.lines().filter(|l| l.starts_with("Allow ")) {
        assert!(line.starts_with("Allow group pinip-agents to "), "{line}");
        assert_eq!(line.matches("pinip-agents").count(), 1, "{line}");
    }
}

/// `Allow group pinip-agents to X [where any {P}]` → the statement for pinip's service
/// account through OKE workload identity.
fn for_workload(statement: &str) -> String {
    const PRINCIPAL: &str = "request.principal.type = 'workload', request.principal.namespace = 'pinip-system', request.principal.service_account = 'pinip', request.principal.cluster_id = '<cluster-ocid>'";
    let rest = statement
        .strip_prefix("Allow group pinip-agents to ")
        .expect("a group statement");
    match rest.split_once(" where any {") {
        Some((grant, permissions)) => {
            format!("Allow any-user to {grant} where all {{{PRINCIPAL}, any {{{permissions}}}")
        }
        None => format!("Allow any-user to {rest} where all {{{PRINCIPAL}}}"),
    }
}

#[test]
fn the_workload_identity_policy_is_the_policy_for_pinips_service_account() {
    let read = |name: &str| {
        std::fs::read_to_string(root().join("deploy/iam").join(name))
            .unwrap_or_else(|e| panic!("deploy/iam/{name}: {e}"))
    };
    let statements = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("Allow "))
            .map(String::from)
            .collect()
    };
    let expected: Vec<String> = statements(&read("oci-policy.txt"))
        .iter()
        .map(|s| for_workload(s))
        .collect();
    assert_eq!(
        statements(&read("oci-workload-identity.txt")),
        expected,
        "deploy/iam/oci-workload-identity.txt must be deploy/iam/oci-policy.txt for pinip's service account"
    );
}
