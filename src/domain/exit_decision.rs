//! Should the address go with the pod? On SIGTERM the agent looks at its Node: if the
//! node is going away the address is released for other nodes; if only the pod is
//! restarting (rollout, eviction of the agent, crash) the address stays where it is.

use std::str::FromStr;

use k8s_openapi::api::core::v1::Node;

/// `RELEASE_ON_EXIT`. KubeIP's `true` released on every exit, which churned addresses
/// on every rollout; pinip reads `true` as `auto`, and keeps KubeIP's behaviour as `always`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// Release only when the node is going away.
    Auto,
    /// Release on every exit (KubeIP's `RELEASE_ON_EXIT=true`).
    Always,
    /// Never release: the address stays on the instance until the cloud frees it (instance
    /// terminated) or someone detaches it.
    Never,
}

impl FromStr for ReleasePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "auto" => Ok(ReleasePolicy::Auto),
            "always" => Ok(ReleasePolicy::Always),
            "false" | "f" | "0" | "no" | "never" => Ok(ReleasePolicy::Never),
            other => Err(format!(
                "RELEASE_ON_EXIT={other:?} is unknown; use true (= auto: release when the node goes away), always, or false (= never)"
            )),
        }
    }
}

/// What happens to the address when the agent stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseSettings {
    /// `RELEASE_ON_EXIT`.
    pub on_exit: ReleasePolicy,
    /// `RELEASE_TIMEOUT`: the time budget of a release (under the pod's grace period).
    pub timeout: std::time::Duration,
}

/// Taints that announce a node's removal.
pub const REMOVAL_TAINTS: &[(&str, &str)] = &[
    (
        "ToBeDeletedByClusterAutoscaler",
        "the cluster autoscaler is removing the node",
    ),
    ("karpenter.sh/disrupted", "Karpenter is disrupting the node"),
    (
        "karpenter.sh/disruption",
        "Karpenter is disrupting the node",
    ),
    (
        "node.kubernetes.io/out-of-service",
        "the node is out of service",
    ),
    (
        "cloud.google.com/impending-node-termination",
        "GKE announced the node's termination",
    ),
    (
        "aws-node-termination-handler/spot-itn",
        "a spot interruption notice arrived",
    ),
    (
        "aws-node-termination-handler/asg-lifecycle-termination",
        "the auto scaling group is terminating the node",
    ),
    (
        "aws-node-termination-handler/rebalance-recommendation",
        "AWS recommends rebalancing the node away",
    ),
    (
        "aws-node-termination-handler/scheduled-maintenance",
        "a scheduled maintenance event will stop the node",
    ),
];

/// Why: `code` is a short, stable label for metrics; `text` goes into logs and Events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub text: String,
}

impl Reason {
    fn new(code: &'static str, text: impl Into<String>) -> Reason {
        Reason {
            code,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What to do with the address on exit, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitDecision {
    Release(Reason),
    Keep(Reason),
}

/// Decide from the policy and the node as last read (`None`: the Node no longer exists).
pub fn decide_on_exit(policy: ReleasePolicy, node: Option<&Node>) -> ExitDecision {
    match policy {
        ReleasePolicy::Always => {
            return ExitDecision::Release(Reason::new("policy_always", "RELEASE_ON_EXIT=always"))
        }
        ReleasePolicy::Never => {
            return ExitDecision::Keep(Reason::new("policy_never", "RELEASE_ON_EXIT=false"))
        }
        ReleasePolicy::Auto => {}
    }
    let Some(node) = node else {
        return ExitDecision::Release(Reason::new("node_deleted", "the Node object was deleted"));
    };
    if node.metadata.deletion_timestamp.is_some() {
        return ExitDecision::Release(Reason::new("node_deleting", "the Node is being deleted"));
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
    for taint in taints.into_iter().flatten() {
        if let Some((_, why)) = REMOVAL_TAINTS.iter().find(|(key, _)| *key == taint.key) {
            return ExitDecision::Release(Reason::new(
                "removal_taint",
                format!("{why} (taint {})", taint.key),
            ));
        }
    }
    ExitDecision::Keep(Reason::new(
        "pod_restart",
        "the node stays; only the agent pod is stopping (restart or rollout)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn node_with_taint(key: &str) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: Some(vec![Taint {
                    key: key.into(),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                }]),
                ..NodeSpec::default()
            }),
            ..Node::default()
        }
    }

    fn releases(decision: ExitDecision) -> bool {
        matches!(decision, ExitDecision::Release(_))
    }

    #[test]
    fn a_pod_restart_keeps_the_address() {
        assert!(!releases(decide_on_exit(
            ReleasePolicy::Auto,
            Some(&Node::default())
        )));
        let cordoned = Node {
            spec: Some(NodeSpec {
                unschedulable: Some(true),
                ..NodeSpec::default()
            }),
            ..Node::default()
        };
        assert!(!releases(decide_on_exit(
            ReleasePolicy::Auto,
            Some(&cordoned)
        )));
        assert!(!releases(decide_on_exit(
            ReleasePolicy::Auto,
            Some(&node_with_taint("node.kubernetes.io/not-ready"))
        )));
    }

    #[test]
    fn a_node_going_away_releases() {
        assert!(releases(decide_on_exit(ReleasePolicy::Auto, None)));
        let mut deleting = Node::default();
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(releases(decide_on_exit(
            ReleasePolicy::Auto,
            Some(&deleting)
        )));
        for (key, _) in REMOVAL_TAINTS {
            assert!(
                releases(decide_on_exit(
                    ReleasePolicy::Auto,
                    Some(&node_with_taint(key))
                )),
                "{key}"
            );
        }
    }

    #[test]
    fn policies_override_the_node_state() {
        assert!(releases(decide_on_exit(
            ReleasePolicy::Always,
            Some(&Node::default())
        )));
        assert!(!releases(decide_on_exit(ReleasePolicy::Never, None)));
    }

    #[test]
    fn policy_parsing_keeps_kubeip_values() {
        assert_eq!("true".parse(), Ok(ReleasePolicy::Auto));
        assert_eq!("TRUE".parse(), Ok(ReleasePolicy::Auto));
        assert_eq!("false".parse(), Ok(ReleasePolicy::Never));
        assert_eq!("always".parse(), Ok(ReleasePolicy::Always));
        assert!("sometimes"
            .parse::<ReleasePolicy>()
            .unwrap_err()
            .contains("RELEASE_ON_EXIT"));
    }
}
