//! The resource types the simulator serves, and the static facts about each
//! (group, plural, scope, verbs) that routing, discovery and errors all need.

use std::fmt;

/// A resource type the simulator stores and serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// core/v1 Node (cluster-scoped).
    Node,
    /// core/v1 Namespace (cluster-scoped); seeded with the usual system namespaces.
    Namespace,
    /// core/v1 Pod: stored but never scheduled or run; present so
    /// `kubectl describe node` (which lists a node's pods) works.
    Pod,
    /// coordination.k8s.io/v1 Lease.
    Lease,
    /// core/v1 Event.
    Event,
    /// events.k8s.io/v1 Event: another view of the same stored events as
    /// [`Kind::Event`], exactly like the real API server.
    EventV1,
}

/// Static description of one resource type.
#[derive(Debug)]
pub struct ResourceDef {
    pub kind: Kind,
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name as used in URLs.
    pub plural: &'static str,
    pub singular: &'static str,
    /// The `kind` field of objects.
    pub kind_name: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Discovery categories (`kubectl get all` expands `all`).
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Whether a `/status` subresource exists (writes to the main resource
    /// then leave `.status` alone, as the real strategies do).
    pub has_status: bool,
    /// Whether `PUT` to a missing object creates it (the strategy's
    /// `AllowCreateOnUpdate`: Leases and Events yes, Nodes, Namespaces and Pods no).
    pub create_on_update: bool,
}

const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

const NODE: ResourceDef = ResourceDef {
    kind: Kind::Node,
    group: "",
    version: "v1",
    plural: "nodes",
    singular: "node",
    kind_name: "Node",
    namespaced: false,
    short_names: &["no"],
    categories: &[],
    verbs: VERBS,
    has_status: true,
    create_on_update: false,
};

const NAMESPACE: ResourceDef = ResourceDef {
    kind: Kind::Namespace,
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    kind_name: "Namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    verbs: VERBS,
    has_status: true,
    create_on_update: false,
};

const POD: ResourceDef = ResourceDef {
    kind: Kind::Pod,
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind_name: "Pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    verbs: VERBS,
    has_status: true,
    create_on_update: false,
};

const LEASE: ResourceDef = ResourceDef {
    kind: Kind::Lease,
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind_name: "Lease",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: VERBS,
    has_status: false,
    create_on_update: true,
};

const EVENT: ResourceDef = ResourceDef {
    kind: Kind::Event,
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind_name: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    verbs: VERBS,
    has_status: false,
    create_on_update: true,
};

const EVENT_V1: ResourceDef = ResourceDef {
    kind: Kind::EventV1,
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    singular: "event",
    kind_name: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    verbs: VERBS,
    has_status: false,
    create_on_update: true,
};

/// Every served resource, in discovery order.
pub const ALL: &[&ResourceDef] = &[&NODE, &NAMESPACE, &POD, &EVENT, &LEASE, &EVENT_V1];

impl Kind {
    pub fn def(self) -> &'static ResourceDef {
        match self {
            Kind::Node => &NODE,
            Kind::Namespace => &NAMESPACE,
            Kind::Pod => &POD,
            Kind::Lease => &LEASE,
            Kind::Event => &EVENT,
            Kind::EventV1 => &EVENT_V1,
        }
    }

    /// The kind objects are stored under: both event APIs share one store.
    pub(crate) fn storage(self) -> Kind {
        match self {
            Kind::EventV1 => Kind::Event,
            k => k,
        }
    }

    /// Looks a resource up by group and plural, as found in a URL.
    pub fn from_group_resource(group: &str, plural: &str) -> Option<Kind> {
        ALL.iter()
            .find(|d| d.group == group && d.plural == plural)
            .map(|d| d.kind)
    }

    /// Looks a kind up by `apiVersion` and `kind`, as found in an object.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        ALL.iter()
            .find(|d| d.api_version() == api_version && d.kind_name == kind)
            .map(|d| d.kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.def().kind_name)
    }
}

impl ResourceDef {
    /// `v1` or `group/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind_name)
    }
}
