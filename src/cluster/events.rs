//! Kubernetes Events on the agent's Node, through kube's recorder (events.k8s.io/v1,
//! deduplicated into series). An Event that cannot be written is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

use crate::domain::identity::NodeSettings;

/// Event reasons (UpperCamelCase, stable: alerts and runbooks key on them).
pub mod reason {
    pub const ASSIGNED: &str = "AddressAssigned";
    pub const ADOPTED: &str = "AddressAdopted";
    pub const RELEASED: &str = "AddressReleased";
    pub const KEPT: &str = "AddressKept";
    pub const REATTACHED: &str = "AddressReattached";
    pub const POOL_EXHAUSTED: &str = "PoolExhausted";
    pub const PERMISSION_DENIED: &str = "PermissionDenied";
    pub const STALLED: &str = "AssignmentStalled";
    pub const TAINT_REMOVED: &str = "TaintRemoved";
    pub const UNSUPPORTED_NODE: &str = "UnsupportedNode";
    pub const TAINT_LIFTED_WITHOUT_ADDRESS: &str = "TaintLiftedWithoutAddress";
}

#[derive(Clone)]
pub struct Notifier {
    recorder: Recorder,
    node: ObjectReference,
    dry_run: bool,
}

impl Notifier {
    pub fn new(
        client: kube::Client,
        me: &NodeSettings,
        dry_run: bool,
        node_uid: Option<String>,
    ) -> Notifier {
        let node_name = me.name.as_str();
        let reporter = Reporter {
            controller: "pinip".into(),
            instance: Some(
                me.pod_name
                    .clone()
                    .unwrap_or_else(|| format!("pinip-{node_name}")),
            ),
        };
        let node = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node_name.to_string()),
            uid: node_uid,
            ..ObjectReference::default()
        };
        Notifier {
            recorder: Recorder::new(client, reporter),
            node,
            dry_run,
        }
    }

    pub async fn normal(&self, reason: &str, action: &str, note: String) {
        self.publish(EventType::Normal, reason, action, note).await;
    }

    pub async fn warning(&self, reason: &str, action: &str, note: String) {
        self.publish(EventType::Warning, reason, action, note).await;
    }

    async fn publish(&self, type_: EventType, reason: &str, action: &str, note: String) {
        if self.dry_run {
            tracing::info!(%reason, %note, "dry run: would record an Event");
            return;
        }
        let event = Event {
            type_,
            reason: reason.to_string(),
            // The API caps notes at 1 kB.
            note: Some(note.chars().take(1000).collect()),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &self.node).await {
            warn!(%reason, %error, "could not record a Kubernetes Event");
        }
    }
}
