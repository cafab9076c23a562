//! What a public address exposes, and the defaults that close it (docs/deploy.md, "What
//! a public address exposes"): a node with a public IP routes to its pods and answers on
//! every NodePort and hostPort, so
//!
//! - the terraform examples admit nothing from outside on the public pool except
//!   `var.public_inbound` (EKS: a security group of exactly those rules on the public
//!   node group; GKE: a lowest-priority deny-all plus allow rules for the pool's tag);
//! - the example NetworkPolicy for workloads on addressed nodes admits only in-cluster
//!   traffic and validates against Kubernetes' schemas.

mod kustomize;

use std::process::Command;

use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(kustomize::root().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The text of one `resource "TYPE" "NAME" { … }` block (braces balanced).
fn block<'a>(text: &'a str, header: &str) -> &'a str {
    let start = text.find(header).unwrap_or_else(|| panic!("no {header}"));
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..start + i + 1];
                }
            }
            _ => {}
        }
    }
    panic!("{header} is not closed")
}

#[test]
fn eks_admits_on_the_public_pool_only_what_the_user_lists() {
    let network = read("terraform/eks/network.tf");
    let group = block(
        &network,
        r#"resource "aws_security_group" "public_inbound""#,
    );
    assert!(
        !group.contains("ingress {") && !group.contains("egress {"),
        "no inline rules: {group}"
    );
    let rules = block(
        &network,
        r#"resource "aws_vpc_security_group_ingress_rule" "public_inbound""#,
    );
    assert!(
        rules.contains("for_each") && rules.contains("var.public_inbound"),
        "{rules}"
    );
    assert!(
        !network.contains("0.0.0.0/0") && !network.contains("::/0"),
        "terraform/eks/network.tf opens something to the whole internet"
    );
    let cluster = read("terraform/eks/cluster.tf");
    let public = &cluster[cluster.find("public = {").expect("the public node group")..];
    let public = &public[..public.find("private = {").unwrap_or(public.len())];
    assert!(
        public.contains("vpc_security_group_ids = [aws_security_group.public_inbound.id]"),
        "{public}"
    );
    let variables = read("terraform/eks/variables.tf");
    let variable = block(&variables, r#"variable "public_inbound""#);
    assert!(
        variable.contains("default = []"),
        "nothing is admitted by default: {variable}"
    );
}

#[test]
fn gke_denies_inbound_except_the_listed_rules_for_the_public_pool() {
    let network = read("terraform/gke/network.tf");
    for name in ["deny_ingress", "deny_ingress_ipv6"] {
        let deny = block(
            &network,
            &format!(r#"resource "google_compute_firewall" "{name}""#),
        );
        assert!(
            deny.contains("deny {") && deny.contains(r#"protocol = "all""#),
            "{deny}"
        );
        assert!(
            deny.contains("priority  = 65000"),
            "the baseline is the lowest priority: {deny}"
        );
    }
    let allow = block(
        &network,
        r#"resource "google_compute_firewall" "public_inbound""#,
    );
    assert!(
        allow.contains("var.public_inbound") && allow.contains("target_tags"),
        "{allow}"
    );
    let cluster = read("terraform/gke/cluster.tf");
    let public = block(
        &cluster,
        r#"resource "google_container_node_pool" "public""#,
    );
    assert!(
        public.contains(r#"tags = ["${var.cluster_name}-public"]"#),
        "the public pool carries the tag the rules select"
    );
    assert!(
        allow.contains(r#"target_tags   = ["${var.cluster_name}-public"]"#),
        "{allow}"
    );
    let variables = read("terraform/gke/variables.tf");
    assert!(block(&variables, r#"variable "public_inbound""#).contains("default = []"));
}

#[test]
fn the_example_network_policy_admits_only_in_cluster_traffic() {
    let objects = kustomize::render("deploy/components/public-node-workloads");
    let policy = kustomize::the_one(&objects, "NetworkPolicy");
    assert_eq!(
        policy.pointer("/spec/podSelector"),
        Some(&serde_json::json!({})),
        "every pod of the namespace"
    );
    let types = policy
        .pointer("/spec/policyTypes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(types.contains(&Value::from("Ingress")), "{types:?}");
    let text = policy.to_string();
    assert!(
        !text.contains("ipBlock"),
        "nothing from outside the cluster: {text}"
    );

    let tool = std::env::var("PINIP_KUBERNETES_VALIDATE").unwrap_or_else(|_| {
        panic!("PINIP_KUBERNETES_VALIDATE is not set: `. .ci/tools/kubernetes-validate.sh` installs it")
    });
    let version = std::env::var("PINIP_KUBERNETES_VERSION").unwrap_or_else(|_| "1.37.0".into());
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, &text).expect("write");
    let output = Command::new(&tool)
        .args(["--strict", "-k", &version, "--quiet"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
