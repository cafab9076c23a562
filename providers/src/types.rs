use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where a node runs, as its `spec.providerID` says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceRef {
    /// Cloud scheme of the providerID: "aws", "gce", "fake", ...
    pub cloud: String,
    /// GCP project (from `gce://project/zone/name`); None elsewhere.
    pub project: Option<String>,
    /// Availability zone (`us-east-1a`, `europe-west1-b`).
    pub zone: String,
    /// Instance ID (AWS `i-…`) or name (GCP).
    pub id: String,
}

impl InstanceRef {
    /// Region derived from the zone: `us-east-1a` → `us-east-1`, `europe-west1-b` → `europe-west1`.
    pub fn region(&self) -> Option<String> {
        region_of_zone(&self.zone)
    }
}

impl fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cloud, self.zone, self.id)
    }
}

/// `us-east-1a` → `us-east-1` (AWS: trailing letter), `europe-west1-b` → `europe-west1` (GCP: `-letter`).
pub fn region_of_zone(zone: &str) -> Option<String> {
    if let Some((region, suffix)) = zone.rsplit_once('-') {
        if suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_lowercase()) {
            return Some(region.to_string());
        }
    }
    let trimmed = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    let ends_with_digit = trimmed.chars().last().is_some_and(|c| c.is_ascii_digit());
    (ends_with_digit && trimmed.len() < zone.len()).then(|| trimmed.to_string())
}

/// What an attachment needs to know about the target instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub reference: InstanceRef,
    /// The primary NIC (AWS ENI at device index 0, GCP `nic0`).
    pub nic: Option<String>,
    /// The primary private address of that NIC.
    pub private_ip: Option<IpAddr>,
    /// The reserved public addresses on the instance's NICs (EC2: associations the
    /// account owns, not ephemeral ones of `amazon`'s). A provider that reads pool parts
    /// ([`crate::Provider::list_pool_part`]) fills it; others leave it empty. A node
    /// carrying one outside its part reads the whole pool: it may be a pool address.
    #[serde(default)]
    pub reserved_ips: Vec<IpAddr>,
}

/// One reserved address of the pool, as the cloud sees it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolAddress {
    /// Cloud identity: AWS allocation ID, GCP address name.
    pub id: String,
    pub ip: IpAddr,
    /// Instance ID the address is attached to, if any.
    pub attached_to: Option<String>,
    /// Ownership record pinip wrote on the cloud object (tags / labels), if any.
    pub owner: Option<Ownership>,
    /// The cloud object's tags or labels (used by `ORDER_BY Tag:<key>`). Shared, so a
    /// copy of a listing (a simulator's store, a candidate kept for a retry) costs a
    /// reference count, not a map per address.
    pub labels: Arc<BTreeMap<String, String>>,
}

impl PoolAddress {
    pub fn is_free(&self) -> bool {
        self.attached_to.is_none()
    }
}

/// A pool listing as far as a rate limit let it go ([`crate::Provider::list_pool_prefix`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolRead {
    /// Every address of the pool, as `list_pool` gives them.
    Whole(Vec<PoolAddress>),
    /// The pages read before the rate limit refused the next one, and that refusal; the
    /// next listing resumes where this one stopped.
    Prefix {
        addresses: Vec<PoolAddress>,
        refusal: crate::ProviderError,
    },
    /// The addresses of the part a [`PoolPart`] chose; the rest of the pool can be read
    /// at once ([`crate::Provider::list_pool_part`]).
    Part(Vec<PoolAddress>),
}

impl PoolRead {
    /// The refusal that cut the listing short, if it was.
    pub fn refusal(&self) -> Option<&crate::ProviderError> {
        match self {
            PoolRead::Whole(_) | PoolRead::Part(_) => None,
            PoolRead::Prefix { refusal, .. } => Some(refusal),
        }
    }
}

/// Which part of the pool a node of a large cluster reads first, instead of the whole
/// pool: a thousand nodes each reading a pool of 1 100 is a million addresses parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolPart {
    /// A well-mixed hash of the node's name: nodes spread evenly over the parts.
    pub seed: u64,
    /// The fraction of the pool wanted, in (0, 1]; a provider rounds it up to a part
    /// it can select server-side, or reads the whole pool.
    pub share: f64,
}

/// The filter name a part selects on, where the cloud's filters know it (EC2 and the
/// in-memory cloud): `public-ip` with `*` wildcards.
pub const PART_FILTER: &str = "public-ip";

impl PoolPart {
    /// The part as [`PART_FILTER`] patterns on IPv4 addresses' last decimal digit (close
    /// to uniform in a pool of public addresses): `share` of ten rounded up, consecutive
    /// from a digit the seed picks (`*3`, `*4`, …). None for the whole pool: every digit,
    /// or a pool filter (`filter_names`) that names `public-ip` already (two filters of
    /// one name would AND, and a pattern of the user's with ours may select nothing).
    pub fn public_ip_patterns<'a>(
        &self,
        filter_names: impl IntoIterator<Item = &'a str>,
    ) -> Option<Vec<String>> {
        if filter_names.into_iter().any(|name| name == PART_FILTER) {
            return None;
        }
        let wanted = (self.share * 10.0).ceil();
        if !(1.0..10.0).contains(&wanted) {
            return None;
        }
        let first = self.seed % 10;
        Some(
            (0..wanted as u64)
                .map(|n| format!("*{}", (first + n) % 10))
                .collect(),
        )
    }
}

/// Who holds an address, recorded on the cloud object so a sweep can find it later.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ownership {
    pub cluster: String,
    pub node: String,
    pub instance: String,
}

/// Tag keys of the ownership record on clouds whose tags allow `/` (AWS, the fake
/// cloud); GCP labels spell them differently (`gcp::labels`).
pub const OWNER_CLUSTER_TAG: &str = "pinip.dev/cluster";
pub const OWNER_NODE_TAG: &str = "pinip.dev/node";
pub const OWNER_INSTANCE_TAG: &str = "pinip.dev/instance";

impl Ownership {
    /// The record read back from a cloud object's tags; None unless all three are there.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        Some(Ownership {
            cluster: tags.get(OWNER_CLUSTER_TAG)?.clone(),
            node: tags.get(OWNER_NODE_TAG)?.clone(),
            instance: tags.get(OWNER_INSTANCE_TAG)?.clone(),
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    #[default]
    V4,
    V6,
}

impl IpFamily {
    pub fn matches(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (IpFamily::V4, IpAddr::V4(_)) | (IpFamily::V6, IpAddr::V6(_))
        )
    }
}

/// Which addresses form the pool: the user's `FILTER`, `ORDER_BY` and `IPV6` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolSpec {
    pub filter: Vec<String>,
    pub order_by: Option<String>,
    pub family: IpFamily,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_from_aws_and_gcp_zones() {
        assert_eq!(region_of_zone("us-east-1a").as_deref(), Some("us-east-1"));
        assert_eq!(
            region_of_zone("ap-southeast-2c").as_deref(),
            Some("ap-southeast-2")
        );
        assert_eq!(
            region_of_zone("europe-west1-b").as_deref(),
            Some("europe-west1")
        );
        assert_eq!(
            region_of_zone("us-central1-f").as_deref(),
            Some("us-central1")
        );
        assert_eq!(region_of_zone("zone"), None);
        assert_eq!(region_of_zone(""), None);
    }

    #[test]
    fn family_matches_address_kind() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(IpFamily::V4.matches(&v4) && !IpFamily::V4.matches(&v6));
        assert!(IpFamily::V6.matches(&v6) && !IpFamily::V6.matches(&v4));
    }
}

#[cfg(test)]
mod pool_part_tests {
    use super::*;

    fn part(seed: u64, share: f64) -> PoolPart {
        PoolPart { seed, share }
    }

    #[test]
    fn a_share_becomes_that_many_tenths_rounded_up_from_the_seeds_digit() {
        let none: [&str; 0] = [];
        assert_eq!(
            part(7, 0.1).public_ip_patterns(none),
            Some(vec!["*7".into()])
        );
        assert_eq!(
            part(18, 0.25).public_ip_patterns(none),
            Some(vec!["*8".into(), "*9".into(), "*0".into()])
        );
        assert_eq!(
            part(3, 0.01).public_ip_patterns(none),
            Some(vec!["*3".into()])
        );
    }

    #[test]
    fn every_digit_a_nonsense_share_or_a_public_ip_filter_is_the_whole_pool() {
        for share in [0.95, 1.0, 2.0, 0.0, -1.0, f64::NAN] {
            assert_eq!(
                part(1, share).public_ip_patterns(["tag:kubeip"]),
                None,
                "{share}"
            );
        }
        assert_eq!(
            part(1, 0.1).public_ip_patterns(["tag:kubeip", "public-ip"]),
            None
        );
    }
}
