//! `deploy/iam/aws-policy.json` grants what the AWS provider calls, and no more: every
//! EC2 action the provider declares and every action seen on the wire while it
//! assigns and releases (IPv4 and IPv6) is allowed; writes are scoped to pool
//! addresses and pinip's own tag keys.

mod aws_support;

use std::collections::BTreeSet;

use aws_support::Backend;
use pinip_providers::aws::EC2_ACTIONS;
use pinip_providers::{Ownership, Provider};
use serde_json::Value;

const POLICY: &str = include_str!("../deploy/iam/aws-policy.json");

fn statements() -> Vec<Value> {
    let policy: Value = serde_json::from_str(POLICY).expect("the policy is JSON");
    policy["Statement"]
        .as_array()
        .cloned()
        .expect("a Statement list")
}

fn list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Actions allowed by the policy (`ec2:` prefix kept).
fn allowed() -> BTreeSet<String> {
    statements()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| list(&s["Action"]))
        .collect()
}

#[test]
fn every_action_the_provider_declares_is_allowed() {
    let allowed = allowed();
    for action in EC2_ACTIONS {
        assert!(
            allowed.contains(&format!("ec2:{action}")),
            "ec2:{action} is missing from deploy/iam/aws-policy.json"
        );
    }
    // And nothing pinip does not call.
    let declared: BTreeSet<String> = EC2_ACTIONS.iter().map(|a| format!("ec2:{a}")).collect();
    assert_eq!(allowed, declared);
}

#[test]
fn writes_are_scoped_to_pool_addresses_and_pinip_tag_keys() {
    for statement in statements() {
        let actions = list(&statement["Action"]);
        let resources = list(&statement["Resource"]);
        assert!(
            actions.iter().all(|a| !a.contains('*')),
            "wildcard action in {statement}"
        );
        if resources.iter().any(|r| r == "*") {
            assert!(
                actions.iter().all(|a| a.starts_with("ec2:Describe")),
                "only Describe calls may use Resource \"*\": {statement}"
            );
        }
        let on_eips = resources.iter().any(|r| r.contains(":elastic-ip/"));
        if on_eips {
            assert_eq!(
                statement["Condition"]["StringEquals"]["aws:ResourceTag/kubeip"], "reserved",
                "writes on Elastic IPs must be limited to the pool: {statement}"
            );
        }
        if actions.iter().any(|a| a.ends_with("Tags")) {
            let keys = list(&statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]);
            assert!(
                !keys.is_empty() && keys.iter().all(|k| k.starts_with("pinip.dev/")),
                "tag writes must be limited to pinip.dev/ keys: {statement}"
            );
        }
    }
}

#[tokio::test]
async fn every_action_seen_on_the_wire_is_declared_and_allowed() {
    let backend = Backend::simulator().await;
    let sim = backend.sim().expect("simulator");
    let me = backend.instance().await;
    let owner = Ownership {
        cluster: "c".into(),
        node: "n".into(),
        instance: me.id.clone(),
    };
    // IPv4: list, describe, attach, release.
    let (id, _) = backend.address(&[("kubeip", "iam")]).await;
    let v4 = backend.provider(&me, "iam", None);
    let described = v4.describe_instance(&me.reference()).await.unwrap();
    let pool = v4.list_pool().await.unwrap();
    let address = pool.iter().find(|a| a.id == id).cloned().unwrap();
    v4.attach(&address, &described, &owner).await.unwrap();
    v4.detach(&address, &me.reference()).await.unwrap();
    // IPv6: the same on the primary ENI.
    let v6 = backend.ipv6_provider(&me, &[backend.ipv6(7)]);
    let pool = v6.list_pool().await.unwrap();
    v6.attach(&pool[0], &described, &owner).await.unwrap();
    v6.detach(&pool[0], &me.reference()).await.unwrap();

    let allowed = allowed();
    let seen: Vec<String> = sim
        .call_counts()
        .into_iter()
        .filter(|(action, n)| *n > 0 && action != "AllocateAddress")
        .map(|(action, _)| action)
        .collect();
    assert!(seen.len() >= 9, "too few actions exercised: {seen:?}");
    for action in seen {
        assert!(
            EC2_ACTIONS.contains(&action.as_str()),
            "{action} is called but not declared in EC2_ACTIONS"
        );
        assert!(
            allowed.contains(&format!("ec2:{action}")),
            "{action} is called but not allowed by the policy"
        );
    }
}
