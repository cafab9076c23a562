//! The Kubernetes permissions `pinip run` needs, as data.
//!
//! **Every Kubernetes API call in `src/` must be listed here**, and nothing else:
//! `deploy/base/rbac.yaml` grants exactly this list (tests/deploy_manifests.rs renders
//! the kustomize base and fails on anything missing or extra). A new call in the agent
//! means a new entry here and a new verb in the RBAC, in the same change.

/// Where a permission is granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Cluster-wide (a ClusterRole): for cluster-scoped resources such as Nodes.
    Cluster,
    /// Only in `LEASE_NAMESPACE`, where the claim Leases live (the DaemonSet sets it to
    /// its own namespace).
    LeaseNamespace,
    /// Only in [`EVENT_NAMESPACE`], where Events about the (cluster-scoped) Node land.
    EventNamespace,
}

/// kube-runtime's `Recorder` writes an Event into the namespace of the object it is
/// about, and into `default` for a cluster-scoped object such as a Node.
pub const EVENT_NAMESPACE: &str = "default";

/// One resource of one API group, the verbs used on it, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resource (plural, lowercase), as RBAC names it.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub scope: Scope,
}

/// What the agent calls, and from where.
pub const REQUIRED: &[Permission] = &[
    // get: identity (agent::wait_for_identity), holder checks of claims (claim::ClaimStore),
    //      taint removal (publish::remove_taint), the exit decision (agent::on_shutdown).
    // list, watch: kube-runtime watcher on the own Node (agent::steady_state).
    // patch: publication and its removal (publish::publish_address, clear_address),
    //        taint removal (publish::remove_taint).
    Permission {
        group: "",
        resource: "nodes",
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Cluster,
    },
    // create: claim (claim_store::try_claim, ensure_held), the sweep token; get: read an
    // existing claim or the token; list: own leftover claims (claim_store::list_mine, by
    // the holder label), the sweep's claims (sweeper); patch: renew, mark held, take over,
    // take the token, always resourceVersion-guarded (claim_store::guarded_write; no
    // `update`: a PUT creates a missing Lease); delete: release (claim_store::release).
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["create", "get", "list", "patch", "delete"],
        scope: Scope::LeaseNamespace,
    },
    // events::Notifier through kube-runtime's Recorder: create a new Event, patch its
    // series on a repeat.
    Permission {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        scope: Scope::EventNamespace,
    },
];

/// The grants in one line, for the message of a persistent 403.
pub fn summary() -> String {
    REQUIRED
        .iter()
        .map(|p| {
            let group = if p.group.is_empty() {
                String::new()
            } else {
                format!("{}.", p.group)
            };
            let scope = match p.scope {
                Scope::Cluster => "cluster-wide".to_string(),
                Scope::LeaseNamespace => "in LEASE_NAMESPACE".to_string(),
                Scope::EventNamespace => format!("in {EVENT_NAMESPACE}"),
            };
            format!("{group}{} {scope}: {}", p.resource, p.verbs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERBS: &[&str] = &[
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];

    #[test]
    fn the_list_is_well_formed() {
        for (i, p) in REQUIRED.iter().enumerate() {
            assert!(
                !p.resource.is_empty() && p.resource == p.resource.to_lowercase(),
                "{p:?}"
            );
            assert!(!p.verbs.is_empty(), "{p:?} grants no verb");
            for (j, verb) in p.verbs.iter().enumerate() {
                assert!(
                    VERBS.contains(verb),
                    "{p:?}: {verb} is not a Kubernetes verb (and never `*`)"
                );
                assert!(!p.verbs[..j].contains(verb), "{p:?}: {verb} twice");
            }
            let twin = REQUIRED[..i]
                .iter()
                .any(|q| (q.group, q.resource, q.scope) == (p.group, p.resource, p.scope));
            assert!(!twin, "{p:?} is listed twice; merge the verbs");
        }
    }

    #[test]
    fn the_summary_names_every_grant() {
        let text = summary();
        assert!(
            text.contains("nodes cluster-wide: get, list, watch, patch"),
            "{text}"
        );
        assert!(
            text.contains(
                "coordination.k8s.io.leases in LEASE_NAMESPACE: create, get, list, patch, delete"
            ),
            "{text}"
        );
    }

    #[test]
    fn cluster_scope_is_only_for_nodes() {
        for p in REQUIRED.iter().filter(|p| p.scope == Scope::Cluster) {
            assert_eq!(
                (p.group, p.resource),
                ("", "nodes"),
                "{p:?}: namespaced resources get a Role, not a ClusterRole"
            );
        }
    }
}
