//! The `filter` and `orderBy` parameters of `addresses.list`, with KubeIP's semantics:
//! the user's `FILTER` entries are Compute API filter expressions
//! (`labels.kubeip=reserved`), each wrapped in parentheses and ANDed (juxtaposed) with
//! `(addressType=EXTERNAL)`, the IP version and, for KubeIP's two queries, `(status=…)`.
//! pinip lists the pool once, every status together ([`Status::Any`]): the free
//! candidates and "does my instance already hold one?" come from one call, which halves
//! the listings that spend Compute's per-minute `list` quota. `ORDER_BY` is never sent:
//! the API refuses `orderBy` next to a `filter`, so the provider sorts
//! ([`super::ordering`]).

use crate::{IpFamily, PoolSpec};

/// Which addresses of the pool one listing asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Free: KubeIP's candidate query.
    Reserved,
    /// Attached (to an instance, or to anything else).
    InUse,
    /// Every status (RESERVED, IN_USE, RESERVING): no status term.
    Any,
}

impl Status {
    pub fn api_name(self) -> &'static str {
        match self {
            Status::Reserved => "RESERVED",
            Status::InUse => "IN_USE",
            Status::Any => "",
        }
    }
}

/// The API filter for the pool addresses in `status`.
///
/// IPv4 is `ipVersion!=IPV6`, not `ipVersion=IPV4`: addresses reserved without an
/// explicit version report `UNSPECIFIED_VERSION` (or nothing) and are IPv4.
pub fn api_filter(spec: &PoolSpec, status: Status) -> String {
    let version = match spec.family {
        IpFamily::V4 => "(ipVersion!=IPV6)",
        IpFamily::V6 => "(ipVersion=IPV6)",
    };
    let mut parts = match status {
        Status::Any => Vec::new(),
        status => vec![format!("(status={})", status.api_name())],
    };
    parts.push("(addressType=EXTERNAL)".to_string());
    parts.push(version.to_string());
    parts.extend(
        spec.filter
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(parenthesise),
    );
    parts.join(" ")
}

/// `labels.a=b` → `(labels.a=b)`; an entry that is already parenthesised (`(a=b)`,
/// `(a=b) (c=d)`) is kept as the user wrote it: juxtaposed groups are ANDed anyway.
fn parenthesise(entry: &str) -> String {
    if entry.starts_with('(') && entry.ends_with(')') {
        entry.to_string()
    } else {
        format!("({entry})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(filter: &[&str], family: IpFamily) -> PoolSpec {
        PoolSpec {
            filter: filter.iter().map(|s| s.to_string()).collect(),
            order_by: Some(" creationTimestamp desc ".into()),
            family,
        }
    }

    #[test]
    fn kubeip_example_becomes_the_api_filter() {
        let s = spec(
            &["labels.kubeip=reserved", "labels.environment=demo"],
            IpFamily::V4,
        );
        assert_eq!(
            api_filter(&s, Status::Reserved),
            "(status=RESERVED) (addressType=EXTERNAL) (ipVersion!=IPV6) (labels.kubeip=reserved) (labels.environment=demo)"
        );
    }

    #[test]
    fn ipv6_and_in_use_listings() {
        let s = spec(&["(labels.kubeip = reserved)"], IpFamily::V6);
        assert_eq!(
            api_filter(&s, Status::InUse),
            "(status=IN_USE) (addressType=EXTERNAL) (ipVersion=IPV6) (labels.kubeip = reserved)"
        );
    }

    #[test]
    fn parenthesised_entries_are_kept() {
        let s = spec(&["(labels.a=b) (labels.c=d)"], IpFamily::V4);
        assert!(api_filter(&s, Status::Reserved)
            .ends_with("(ipVersion!=IPV6) (labels.a=b) (labels.c=d)"));
        let none = PoolSpec::default();
        assert_eq!(
            api_filter(&none, Status::Reserved),
            "(status=RESERVED) (addressType=EXTERNAL) (ipVersion!=IPV6)"
        );
    }

    #[test]
    fn the_one_listing_of_every_status_has_no_status_term() {
        let s = spec(&["labels.kubeip=reserved"], IpFamily::V4);
        assert_eq!(
            api_filter(&s, Status::Any),
            "(addressType=EXTERNAL) (ipVersion!=IPV6) (labels.kubeip=reserved)"
        );
    }
}
