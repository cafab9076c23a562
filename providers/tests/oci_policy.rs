//! `deploy/iam/oci-policy.txt` grants every permission the OCI provider's calls need
//! (`pinip_providers::oci::permissions::REQUIRED`), in the right compartment, and the
//! conditions on its statements do not leave one out.
//!
//! Verb → permission sets follow the Core Services policy reference (each verb includes
//! the one below it); a `where any {request.permission='…', …}` condition narrows a
//! statement to the permissions it lists.

use std::collections::BTreeSet;
use std::path::Path;

use pinip_providers::oci::permissions::{resource_of, Place, REQUIRED};

/// The permissions of `verb` on `resource` that the provider could use.
fn verb_grants(resource: &str, verb: &str) -> BTreeSet<&'static str> {
    let levels: &[(&str, &[&str])] = match resource {
        "public-ips" => &[
            ("inspect", &[]),
            ("read", &["PUBLIC_IP_READ"]),
            (
                "use",
                &[
                    "PUBLIC_IP_ASSIGN_PRIVATE_IP",
                    "PUBLIC_IP_UNASSIGN_PRIVATE_IP",
                ],
            ),
            (
                "manage",
                &["PUBLIC_IP_CREATE", "PUBLIC_IP_UPDATE", "PUBLIC_IP_DELETE"],
            ),
        ],
        "private-ips" => &[
            ("inspect", &[]),
            ("read", &["PRIVATE_IP_READ"]),
            (
                "use",
                &[
                    "PRIVATE_IP_ASSIGN_PUBLIC_IP",
                    "PRIVATE_IP_UNASSIGN_PUBLIC_IP",
                    "PRIVATE_IP_UPDATE",
                ],
            ),
            ("manage", &["PRIVATE_IP_CREATE", "PRIVATE_IP_DELETE"]),
        ],
        "instances" => &[
            ("inspect", &["INSTANCE_INSPECT"]),
            ("read", &["INSTANCE_READ"]),
            ("use", &["INSTANCE_UPDATE"]),
            ("manage", &["INSTANCE_CREATE", "INSTANCE_DELETE"]),
        ],
        "vnic-attachments" => &[
            ("inspect", &["VNIC_ATTACHMENT_READ"]),
            ("read", &[]),
            ("use", &[]),
            ("manage", &[]),
        ],
        "vnics" => &[
            ("inspect", &[]),
            ("read", &["VNIC_READ"]),
            ("use", &["VNIC_UPDATE"]),
            ("manage", &["VNIC_CREATE", "VNIC_DELETE"]),
        ],
        _ => &[],
    };
    let mut granted = BTreeSet::new();
    for (name, permissions) in levels {
        granted.extend(permissions.iter().copied());
        if *name == verb {
            return granted;
        }
    }
    panic!("unknown verb {verb:?} on {resource:?}");
}

/// One `Allow group … to <verb> <resource> in compartment <c> [where any {…}]`.
struct Statement {
    resource: String,
    compartment: String,
    granted: BTreeSet<String>,
}

fn parse(line: &str) -> Statement {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        words.len() >= 8 && words[0] == "Allow" && words[1] == "group" && words[3] == "to",
        "not a statement: {line}"
    );
    let (verb, resource) = (words[4], words[5]);
    assert_eq!((words[6], words[7]), ("in", "compartment"), "{line}");
    let mut granted: BTreeSet<String> = verb_grants(resource, verb)
        .into_iter()
        .map(String::from)
        .collect();
    if let Some((_, condition)) = line.split_once(" where ") {
        assert!(
            condition.trim_start().starts_with("any {"),
            "only `where any {{…}}` is understood: {line}"
        );
        let listed: BTreeSet<String> = condition
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        for permission in &listed {
            assert!(
                granted.contains(permission),
                "{line}: `{verb} {resource}` does not include {permission}"
            );
        }
        granted = listed;
    }
    Statement {
        resource: resource.into(),
        compartment: words[8].into(),
        granted,
    }
}

#[test]
fn the_policy_grants_every_call_of_the_provider() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/iam/oci-policy.txt");
    let text = std::fs::read_to_string(&path).expect("deploy/iam/oci-policy.txt exists");
    let statements: Vec<Statement> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse)
        .collect();
    assert!(!statements.is_empty());
    let mut used = vec![false; statements.len()];
    for (operation, grants) in REQUIRED {
        for (permission, place) in grants.iter() {
            let compartment = match place {
                Place::Pool => "<pool-compartment>",
                Place::Nodes => "<node-compartment>",
            };
            let found = statements.iter().position(|s| {
                s.resource == resource_of(permission)
                    && s.compartment == compartment
                    && s.granted.contains(*permission)
            });
            match found {
                Some(i) => used[i] = true,
                None => panic!(
                    "{operation} needs {permission} on {} in {compartment}; no statement grants it",
                    resource_of(permission)
                ),
            }
        }
    }
    assert!(
        used.iter().all(|u| *u),
        "a statement grants nothing the provider uses (least privilege)"
    );
}
