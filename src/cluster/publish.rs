//! What the node shows the world: `pinip.dev/address` (annotation, exact text; label,
//! label-safe form) and `pinip.dev/assigned=true`, so `kubectl get nodes -L
//! pinip.dev/address` is the whitelist and workloads can select nodes with a static
//! egress address. Also lifts `TAINT_KEY` once the address is in place.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};
use tracing::info;

use crate::cluster::errors::{is_retryable, status_code, with_retries, with_retries_on_conflict};

pub const ADDRESS_KEY: &str = "pinip.dev/address";
pub const ASSIGNED_LABEL: &str = "pinip.dev/assigned";

/// `TAINT_KEY`, `TAINT_WAIT`, `TAINT_GIVE_UP`: the startup taint lifted once the node
/// has its address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaintSettings {
    pub key: Option<String>,
    /// How long to wait for the node to report the address before lifting it anyway.
    pub wait: std::time::Duration,
    /// Lift it without an address after this long (unset: keep it).
    pub give_up: Option<std::time::Duration>,
}

/// Label values cannot hold `:`; IPv6 colons become `-` (the annotation keeps the exact text).
pub fn address_label_value(ip: &IpAddr) -> String {
    ip.to_string().replace(':', "-")
}

/// Does the node already show this address (so a restart writes nothing)?
pub fn is_published(node: &Node, ip: &IpAddr) -> bool {
    let meta = &node.metadata;
    let annotation = meta.annotations.as_ref().and_then(|a| a.get(ADDRESS_KEY));
    let labels = meta.labels.as_ref();
    annotation == Some(&ip.to_string())
        && labels.and_then(|l| l.get(ADDRESS_KEY)) == Some(&address_label_value(ip))
        && labels
            .and_then(|l| l.get(ASSIGNED_LABEL))
            .map(String::as_str)
            == Some("true")
}

/// The address the node currently publishes, if any.
pub fn published_address(node: &Node) -> Option<IpAddr> {
    node.metadata
        .annotations
        .as_ref()?
        .get(ADDRESS_KEY)?
        .parse()
        .ok()
}

/// Does the node show any pinip publication? (The tests' check that a cleared
/// publication leaves nothing behind.)
#[cfg(test)]
fn shows_any_address(node: &Node) -> bool {
    let meta = &node.metadata;
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ADDRESS_KEY))
        || meta
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ADDRESS_KEY) || l.contains_key(ASSIGNED_LABEL))
}

/// Does the node report `ip` as an `ExternalIP` (written by the cloud controller)?
/// KubeIP waited for exactly this before lifting the taint.
pub fn reports_address(node: &Node, ip: &IpAddr) -> bool {
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    addresses.is_some_and(|list| {
        list.iter().any(|a| {
            a.type_ == "ExternalIP"
                && a.address
                    .parse::<IpAddr>()
                    .is_ok_and(|parsed| parsed == *ip)
        })
    })
}

pub fn has_taint(node: &Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|taint| taint.key == key))
}

pub const ASSIGNED_AT_ANNOTATION: &str = "pinip.dev/assigned-at";
/// Why a node an agent serves holds no address (pool exhausted, stalled), so `pinip
/// status` lists it; removed when an address is published.
pub const WAITING_ANNOTATION: &str = "pinip.dev/waiting";

/// The merge patch that takes a publication off a Node.
fn cleared_publication() -> Value {
    json!({"metadata": {
        "annotations": {ADDRESS_KEY: null, ASSIGNED_AT_ANNOTATION: null},
        "labels": {ADDRESS_KEY: null, ASSIGNED_LABEL: null},
    }})
}

/// Read-modify-write of one Node, guarded by the resourceVersion it read, so a write
/// someone made in between is never overwritten. `change` looks at the Node as it is
/// now and returns the merge patch to apply, or None when there is nothing to do. A
/// conflict or a transient failure (the patch may have landed) reads again. Returns
/// whether a patch was applied (in a dry run: would have been).
async fn patch_guarded(
    nodes: &Api<Node>,
    name: &str,
    dry_run: bool,
    what: &str,
    change: impl Fn(&Node) -> Option<Value>,
) -> Result<bool, kube::Error> {
    // Enough rounds to get through a burst of concurrent writes to that Node.
    for _ in 0..10 {
        let Some(node) = with_retries(|| nodes.get_opt(name)).await? else {
            return Ok(false);
        };
        let Some(mut patch) = change(&node) else {
            return Ok(false);
        };
        if dry_run {
            info!(node = %name, patch = %patch, "dry run: would {what}");
            return Ok(true);
        }
        if let Some(metadata) = patch
            .as_object_mut()
            .map(|p| p.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        {
            metadata.insert(
                "resourceVersion".into(),
                json!(node.metadata.resource_version),
            );
        }
        match nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if status_code(&e) == Some(409) || is_retryable(&e) => continue,
            Err(e) if status_code(&e) == Some(404) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Remove `ip` from *another* node's publication, only while that node still shows
/// exactly `ip` (so a newer publication is never erased). Called by the node the cloud
/// shows the address on, after it took over the claim: the other node's publication is
/// stale, and two nodes must never advertise one address. Returns whether something
/// was withdrawn.
pub async fn withdraw_stale(
    nodes: &Api<Node>,
    node: &str,
    ip: &IpAddr,
    dry_run: bool,
) -> Result<bool, kube::Error> {
    patch_guarded(
        nodes,
        node,
        dry_run,
        "withdraw the stale publication",
        |current| (published_address(current) == Some(*ip)).then(cleared_publication),
    )
    .await
}

/// Writes to the agent's own Node (skipped, and logged, in dry-run mode).
#[derive(Clone)]
pub struct NodePublisher {
    nodes: Api<Node>,
    name: String,
    dry_run: bool,
}

impl NodePublisher {
    pub fn new(nodes: Api<Node>, name: &str, dry_run: bool) -> NodePublisher {
        NodePublisher {
            nodes,
            name: name.to_string(),
            dry_run,
        }
    }

    /// Annotation + label with the address, `assigned=true`, and since when.
    pub async fn publish_address(&self, ip: &IpAddr) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {
            "annotations": {ADDRESS_KEY: ip.to_string(), ASSIGNED_AT_ANNOTATION: Timestamp::now().to_string(), WAITING_ANNOTATION: null},
            "labels": {ADDRESS_KEY: address_label_value(ip), ASSIGNED_LABEL: "true"},
        }});
        self.merge(&patch, "publish the address").await
    }

    /// Say on the Node why it holds no address (one write per change of reason).
    pub async fn publish_waiting(&self, why: &str) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {"annotations": {WAITING_ANNOTATION: why}}});
        self.merge(&patch, "say why the node waits").await
    }

    /// No address could be had: say so, so mixed pools can schedule around it.
    pub async fn mark_unassigned(&self) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {"labels": {ASSIGNED_LABEL: "false"}}});
        self.merge(&patch, "label the node as without an address")
            .await
    }

    pub async fn clear_address(&self) -> Result<(), kube::Error> {
        match self
            .merge(&cleared_publication(), "clear the address")
            .await
        {
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            other => other,
        }
    }

    async fn merge(&self, patch: &Value, what: &str) -> Result<(), kube::Error> {
        if self.dry_run {
            info!(patch = %patch, "dry run: would {what} on the Node");
            return Ok(());
        }
        let (params, patch) = (PatchParams::default(), Patch::Merge(patch));
        with_retries_on_conflict(|| self.nodes.patch(&self.name, &params, &patch))
            .await
            .map(|_| ())
    }

    /// Remove every taint with `key` (any effect), guarded by the node's resourceVersion
    /// so a concurrent taint change by someone else is never overwritten (KubeIP replaced
    /// the whole list blindly). Returns whether a taint was removed.
    pub async fn remove_taint(&self, key: &str) -> Result<bool, kube::Error> {
        let what = format!("remove the taint {key}");
        patch_guarded(&self.nodes, &self.name, self.dry_run, &what, |node| {
            let taints = node.spec.as_ref().and_then(|s| s.taints.clone())?;
            let kept: Vec<_> = taints.iter().filter(|t| t.key != key).cloned().collect();
            (kept.len() < taints.len()).then(|| json!({"spec": {"taints": kept}}))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn label_values_are_label_safe() {
        assert_eq!(
            address_label_value(&"203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
        assert_eq!(
            address_label_value(&"2001:db8::7".parse().unwrap()),
            "2001-db8--7"
        );
    }

    #[test]
    fn publication_is_detected_exactly() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let mut node = Node::default();
        assert!(!is_published(&node, &ip) && !shows_any_address(&node));
        node.metadata.annotations =
            Some(BTreeMap::from([(ADDRESS_KEY.to_string(), ip.to_string())]));
        node.metadata.labels = Some(BTreeMap::from([
            (ADDRESS_KEY.to_string(), address_label_value(&ip)),
            (ASSIGNED_LABEL.to_string(), "true".to_string()),
        ]));
        assert!(is_published(&node, &ip) && shows_any_address(&node));
        assert!(!is_published(&node, &"203.0.113.8".parse().unwrap()));
    }
}
