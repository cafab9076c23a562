//! Who hears about a committed change: the watches of its kind, and the watches of
//! that one object (`metadata.name=` in the field selector, or a watch on a named
//! resource). With one broadcast to every watch, each change woke every watch of the
//! cluster: an agent per node watches its own Node, so N nodes cost O(N²) wake-ups
//! and filter runs, work the harness spent on itself. A real API server's watch
//! cache keeps such per-object triggers too; what a watch receives is unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::kind::Kind;
use super::store::{Change, HISTORY_LIMIT};

/// Queue of one single-object watch: it hears only about its object, so a short
/// queue is plenty; one that falls behind ends and the client re-watches.
const OBJECT_QUEUE: usize = 256;

/// The object a watch is about: kind, namespace ("" when cluster-scoped), name.
type ObjectKey = (Kind, String, String);

#[derive(Default)]
pub(super) struct Fanout {
    by_kind: HashMap<Kind, broadcast::Sender<Arc<Change>>>,
    by_object: HashMap<ObjectKey, broadcast::Sender<Arc<Change>>>,
}

impl Fanout {
    /// A receiver of the changes of `kind`, or of only the object `name` of it.
    pub(super) fn subscribe(
        &mut self,
        kind: Kind,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> broadcast::Receiver<Arc<Change>> {
        match name {
            None => self
                .by_kind
                .entry(kind)
                .or_insert_with(|| broadcast::channel(HISTORY_LIMIT).0)
                .subscribe(),
            Some(name) => self
                .by_object
                .entry((kind, ns.unwrap_or_default().to_string(), name.to_string()))
                .or_insert_with(|| broadcast::channel(OBJECT_QUEUE).0)
                .subscribe(),
        }
    }

    /// Tells the watches that may want `change` (of object `ns`/`name`).
    pub(super) fn send(&mut self, change: &Arc<Change>, ns: Option<&str>, name: &str) {
        if let Some(tx) = self.by_kind.get(&change.kind) {
            // No receivers is fine: nobody is watching.
            let _ = tx.send(change.clone());
        }
        let key = (
            change.kind,
            ns.unwrap_or_default().to_string(),
            name.to_string(),
        );
        if let Some(tx) = self.by_object.get(&key) {
            if tx.receiver_count() == 0 {
                // Its watches ended: forget the queue (bounded by the objects watched).
                self.by_object.remove(&key);
            } else {
                let _ = tx.send(change.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::store::EventType;
    use serde_json::json;

    fn change(kind: Kind, rv: u64) -> Arc<Change> {
        Arc::new(Change {
            rv,
            kind,
            event: EventType::Modified,
            object: json!({}),
            prev: None,
        })
    }

    #[test]
    fn an_object_watch_hears_only_its_object_and_a_kind_watch_hears_all() {
        let mut fanout = Fanout::default();
        let mut all = fanout.subscribe(Kind::Node, None, None);
        let mut mine = fanout.subscribe(Kind::Node, None, Some("node-a"));
        fanout.send(&change(Kind::Node, 1), None, "node-b");
        fanout.send(&change(Kind::Node, 2), None, "node-a");
        fanout.send(&change(Kind::Lease, 3), Some("ns"), "node-a");
        assert_eq!(all.try_recv().map(|c| c.rv).ok(), Some(1));
        assert_eq!(all.try_recv().map(|c| c.rv).ok(), Some(2));
        assert!(all.try_recv().is_err());
        assert_eq!(mine.try_recv().map(|c| c.rv).ok(), Some(2));
        assert!(mine.try_recv().is_err());
    }

    #[test]
    fn the_queue_of_an_ended_object_watch_is_forgotten() {
        let mut fanout = Fanout::default();
        drop(fanout.subscribe(Kind::Node, None, Some("node-a")));
        fanout.send(&change(Kind::Node, 1), None, "node-a");
        assert!(fanout.by_object.is_empty());
    }
}
