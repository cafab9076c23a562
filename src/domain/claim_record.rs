//! What a claim says, and whether it still binds: the pure half of the per-address
//! claims (the Lease IO is `cluster::claim_store`).
//!
//! - A `claiming` claim whose resourceVersion has not moved for `LEASE_DURATION`, as
//!   measured on the observer's own monotonic clock (client-go's leader-election rule,
//!   immune to clock skew between nodes), belongs to a crashed agent and may be taken over.
//! - A `held` claim is stale only when its holder Node is gone or now runs on another
//!   instance.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "pinip";
pub const ADDRESS_ANNOTATION: &str = "pinip.dev/address";
pub const INSTANCE_ANNOTATION: &str = "pinip.dev/instance";
pub const PHASE_ANNOTATION: &str = "pinip.dev/phase";
pub const CLUSTER_ANNOTATION: &str = "pinip.dev/cluster";

/// The label that lets a node list only its own claims (a server-side selector instead
/// of every claim in the namespace). Its value is [`holder_label_value`]; the holder
/// itself is `spec.holderIdentity`, which readers still compare.
pub const HOLDER_LABEL: &str = "pinip.dev/holder";

/// A node name as a label value. Node names are DNS subdomains of up to 253
/// characters, label values at most 63 (alphanumerics, `-`, `_`, `.`, alphanumeric at
/// both ends): a longer name keeps its first 46 characters and gets a hash suffix.
/// Two names may share a value only if the hash collides; readers filter on
/// `holderIdentity`, so a collision costs a longer list, never a wrong decision.
pub fn holder_label_value(node: &str) -> String {
    const MAX: usize = 63;
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if node.len() <= MAX
        && node.chars().all(valid)
        && node.starts_with(|c: char| c.is_ascii_alphanumeric())
        && node.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return node.to_string();
    }
    let head: String = node.chars().filter(|c| valid(*c)).take(46).collect();
    let head = head.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = crate::domain::selection::stable_hash(node);
    if head.is_empty() {
        format!("h{hash:016x}")
    } else {
        format!("{head}-{hash:016x}")
    }
}

/// The Lease name of an address: `pinip-203-0-113-10`, `pinip-2001-db8--1`.
pub fn lease_name(ip: &IpAddr) -> String {
    let mut slug: String = ip
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    // Names must end alphanumeric; a canonical IPv6 text may end in "::".
    if slug.ends_with('-') {
        slug.push('0');
    }
    format!("pinip-{slug}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The holder is attaching the address; the claim expires unless renewed.
    Claiming,
    /// The address is attached to the holder's instance.
    Held,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Claiming => "claiming",
            Phase::Held => "held",
        }
    }
}

/// A claim as read from its Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    pub name: String,
    pub holder: String,
    pub instance: String,
    pub address: Option<IpAddr>,
    pub phase: Phase,
    pub resource_version: String,
    pub duration: Duration,
}

impl ClaimRecord {
    /// None for a Lease pinip did not write (it is never touched).
    pub fn from_lease(lease: &Lease) -> Option<ClaimRecord> {
        let meta = &lease.metadata;
        if meta
            .labels
            .as_ref()?
            .get(MANAGED_BY_LABEL)
            .map(String::as_str)
            != Some(MANAGED_BY_VALUE)
        {
            return None;
        }
        let annotations = meta.annotations.as_ref()?;
        let spec = lease.spec.as_ref()?;
        Some(ClaimRecord {
            name: meta.name.clone()?,
            holder: spec.holder_identity.clone().unwrap_or_default(),
            instance: annotations
                .get(INSTANCE_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
            address: annotations
                .get(ADDRESS_ANNOTATION)
                .and_then(|a| a.parse().ok()),
            phase: match annotations.get(PHASE_ANNOTATION).map(String::as_str) {
                Some("held") => Phase::Held,
                _ => Phase::Claiming,
            },
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(1) as u64),
        })
    }
}

impl ClaimRecord {
    /// Does this claim name `me`: our node, on our instance (or an instance not recorded)?
    pub fn names(&self, me: &Holder) -> bool {
        self.holder == me.node && (self.instance.is_empty() || self.instance == me.instance)
    }
}

/// What we know of the node that holds a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HolderState {
    /// Not looked up (only `held` claims need it).
    Unknown,
    Present {
        instance: Option<String>,
    },
    Gone,
}

/// Does another node's claim still bind us?
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Binding,
    Stale(String),
}

/// Pure staleness rule. `unchanged_for`: how long this observer has seen the claim at
/// its current resourceVersion, on its own monotonic clock.
pub fn judge(claim: &ClaimRecord, unchanged_for: Duration, holder: &HolderState) -> Verdict {
    match claim.phase {
        Phase::Claiming if unchanged_for > claim.duration => Verdict::Stale(format!(
            "claim by {} not renewed for {:?} (lease duration {:?})",
            claim.holder, unchanged_for, claim.duration
        )),
        Phase::Claiming => Verdict::Binding,
        Phase::Held => match holder {
            HolderState::Gone => {
                Verdict::Stale(format!("holder node {} no longer exists", claim.holder))
            }
            HolderState::Present { instance: Some(i) }
                if !claim.instance.is_empty() && *i != claim.instance =>
            {
                Verdict::Stale(format!(
                    "holder node {} now runs on instance {i}, not {}",
                    claim.holder, claim.instance
                ))
            }
            _ => Verdict::Binding,
        },
    }
}

/// Who we are, as written into claims.
#[derive(Clone, Debug)]
pub struct Holder {
    pub node: String,
    pub instance: String,
    pub cluster: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// What the API server accepts as a label value (`IsValidLabelValue`).
    fn is_label_value(v: &str) -> bool {
        v.len() <= 63
            && (v.is_empty()
                || v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
    }

    #[test]
    fn a_short_node_name_is_its_own_holder_label() {
        for name in ["node-1", "ip-10-0-1-23.eu-west-1.compute.internal", "a"] {
            assert_eq!(holder_label_value(name), name);
        }
    }

    #[test]
    fn a_long_node_name_becomes_a_valid_distinct_label_value() {
        let long_a = format!("{}.a.internal", "x".repeat(60));
        let long_b = format!("{}.b.internal", "x".repeat(60));
        let (a, b) = (holder_label_value(&long_a), holder_label_value(&long_b));
        assert!(is_label_value(&a) && is_label_value(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, holder_label_value(&long_a), "stable");
        let max = "n".repeat(253);
        assert!(is_label_value(&holder_label_value(&max)));
        assert!(is_label_value(&holder_label_value("-.-")));
    }

    fn record(phase: Phase) -> ClaimRecord {
        ClaimRecord {
            name: "pinip-192-0-2-1".into(),
            holder: "node-a".into(),
            instance: "i-a".into(),
            address: Some("192.0.2.1".parse().unwrap()),
            phase,
            resource_version: "7".into(),
            duration: Duration::from_secs(5),
        }
    }

    #[test]
    fn lease_names_are_valid_and_distinct() {
        let cases = [
            ("203.0.113.10", "pinip-203-0-113-10"),
            ("2001:db8::1", "pinip-2001-db8--1"),
            ("2001:db8::", "pinip-2001-db8--0"),
            ("2001:DB8::AB", "pinip-2001-db8--ab"),
        ];
        for (ip, name) in cases {
            assert_eq!(lease_name(&ip.parse().unwrap()), name);
        }
    }

    #[test]
    fn a_claiming_claim_binds_until_unchanged_for_its_duration() {
        let claim = record(Phase::Claiming);
        assert_eq!(
            judge(&claim, Duration::from_secs(4), &HolderState::Unknown),
            Verdict::Binding
        );
        assert_eq!(
            judge(&claim, Duration::from_secs(5), &HolderState::Unknown),
            Verdict::Binding
        );
        assert!(matches!(
            judge(&claim, Duration::from_secs(6), &HolderState::Unknown),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn a_held_claim_binds_while_its_holder_node_runs_the_same_instance() {
        let claim = record(Phase::Held);
        let same = HolderState::Present {
            instance: Some("i-a".into()),
        };
        assert_eq!(
            judge(&claim, Duration::from_secs(3600), &same),
            Verdict::Binding
        );
        assert_eq!(
            judge(&claim, Duration::from_secs(3600), &HolderState::Unknown),
            Verdict::Binding
        );
        assert!(matches!(
            judge(&claim, Duration::ZERO, &HolderState::Gone),
            Verdict::Stale(_)
        ));
        let replaced = HolderState::Present {
            instance: Some("i-b".into()),
        };
        assert!(matches!(
            judge(&claim, Duration::ZERO, &replaced),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn foreign_leases_are_not_claims() {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("pinip-192-0-2-1".into()),
                ..ObjectMeta::default()
            },
            spec: None,
        };
        assert_eq!(ClaimRecord::from_lease(&lease), None);
    }
}
