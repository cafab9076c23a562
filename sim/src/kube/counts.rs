//! Request counters, so tests and the simulation can assert how much API
//! traffic the agent generates.

use std::collections::BTreeMap;

/// Requests served so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every HTTP request, discovery and unknown paths included.
    pub total: u64,
    /// Resource requests by verb: get, list, watch, create, update, patch, delete.
    pub by_verb: BTreeMap<String, u64>,
    /// Resource requests by plural resource name: nodes, leases, events, ...
    pub by_resource: BTreeMap<String, u64>,
}

impl RequestCounts {
    /// Count of one verb (0 if never seen).
    pub fn verb(&self, verb: &str) -> u64 {
        self.by_verb.get(verb).copied().unwrap_or(0)
    }

    /// Count of one resource (0 if never seen).
    pub fn resource(&self, resource: &str) -> u64 {
        self.by_resource.get(resource).copied().unwrap_or(0)
    }

    pub(crate) fn record(&mut self, resource: Option<(&str, &str)>) {
        self.total += 1;
        if let Some((verb, plural)) = resource {
            *self.by_verb.entry(verb.to_string()).or_default() += 1;
            *self.by_resource.entry(plural.to_string()).or_default() += 1;
        }
    }
}
