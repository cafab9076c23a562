//! `ORDER_BY` on GCP, sorted here rather than by the API: `addresses.list` refuses a
//! `filter` together with an `orderBy` ("Specifying both a list filter and sort order
//! is not currently supported", doitintl/kubeip#132), and pinip always filters.
//!
//! Keys are the address's own field names: `name`, `creationTimestamp`, `address`
//! (numeric IP order), `id` (numeric), `networkTier`, `description`, `status`, or
//! `labels.<key>`; ` desc` (or ` asc`) after it. KubeIP's GCP values (`name`,
//! `creationTimestamp desc`) keep their meaning. An address without the field sorts
//! last in either direction; ties keep the API's order (by name).

use std::cmp::Ordering;

use crate::order::{absent_last, split_direction};
use std::net::IpAddr;

use super::wire::Address;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GcpOrderKey {
    Name,
    CreationTimestamp,
    Address,
    Id,
    NetworkTier,
    Description,
    Status,
    Label(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpOrder {
    pub key: GcpOrderKey,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ORDER_BY {input:?} is not understood: {reason}; use name, creationTimestamp, address, id, networkTier, description, status or labels.<key>, optionally followed by ` desc`")]
pub struct GcpOrderError {
    pub input: String,
    pub reason: String,
}

impl GcpOrder {
    pub fn parse(input: &str) -> Result<GcpOrder, GcpOrderError> {
        let fail = |reason: String| GcpOrderError {
            input: input.to_string(),
            reason,
        };
        let (field, descending) = split_direction(input).map_err(fail)?;
        let key = match field.strip_prefix("labels.") {
            Some("") => return Err(fail("the label key is empty".into())),
            Some(label) => GcpOrderKey::Label(label.to_string()),
            None => match field {
                "name" => GcpOrderKey::Name,
                "creationTimestamp" => GcpOrderKey::CreationTimestamp,
                "address" => GcpOrderKey::Address,
                "id" => GcpOrderKey::Id,
                "networkTier" => GcpOrderKey::NetworkTier,
                "description" => GcpOrderKey::Description,
                "status" => GcpOrderKey::Status,
                other => return Err(fail(format!("unknown field `{other}`"))),
            },
        };
        Ok(GcpOrder { key, descending })
    }

    /// Stable: ties keep the order they came in.
    pub fn sort(&self, addresses: &mut [Address]) {
        addresses.sort_by(|a, b| self.compare(a, b));
    }

    fn compare(&self, a: &Address, b: &Address) -> Ordering {
        let directed = self.descending;
        let text = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        match &self.key {
            GcpOrderKey::Name => absent_last(Some(&a.name), Some(&b.name), directed),
            GcpOrderKey::CreationTimestamp => absent_last(
                a.creation_timestamp.as_deref().and_then(instant_of),
                b.creation_timestamp.as_deref().and_then(instant_of),
                directed,
            ),
            GcpOrderKey::Address => absent_last(
                a.address.parse::<IpAddr>().ok(),
                b.address.parse::<IpAddr>().ok(),
                directed,
            ),
            GcpOrderKey::Id => absent_last(
                a.id.as_deref().and_then(|i| i.parse::<u64>().ok()),
                b.id.as_deref().and_then(|i| i.parse::<u64>().ok()),
                directed,
            ),
            GcpOrderKey::NetworkTier => {
                absent_last(text(&a.network_tier), text(&b.network_tier), directed)
            }
            GcpOrderKey::Description => {
                absent_last(text(&a.description), text(&b.description), directed)
            }
            GcpOrderKey::Status => absent_last(
                Some(&a.status).filter(|s| !s.is_empty()),
                Some(&b.status).filter(|s| !s.is_empty()),
                directed,
            ),
            GcpOrderKey::Label(key) => absent_last(a.labels.get(key), b.labels.get(key), directed),
        }
    }
}

/// An RFC 3339 timestamp (`2024-03-01T09:15:27.123-08:00`, as Compute writes them,
/// with the offset of the zone it was created in) as (seconds since 1970 UTC, nanos),
/// so addresses created either side of a daylight-saving change still sort by time.
pub fn instant_of(text: &str) -> Option<(i64, u32)> {
    let at = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some((at.timestamp(), at.timestamp_subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(name: &str, ip: &str, created: Option<&str>, rank: Option<&str>) -> Address {
        let mut a = Address {
            name: name.into(),
            address: ip.into(),
            creation_timestamp: created.map(String::from),
            ..Address::default()
        };
        if let Some(r) = rank {
            a.labels.insert("rank".into(), r.into());
        }
        a
    }

    fn names(list: &[Address]) -> Vec<&str> {
        list.iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn kubeip_values_and_more_parse() {
        assert_eq!(
            GcpOrder::parse("creationTimestamp desc").unwrap(),
            GcpOrder {
                key: GcpOrderKey::CreationTimestamp,
                descending: true
            }
        );
        assert_eq!(
            GcpOrder::parse("labels.rank").unwrap().key,
            GcpOrderKey::Label("rank".into())
        );
        for bad in ["", "labels.", "colour", "name sideways", "name desc now"] {
            assert!(GcpOrder::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_sort_by_instant_across_offsets_and_unset_ones_go_last() {
        // 09:00-08:00 is 17:00Z, after 16:30Z written as 09:30-07:00.
        let mut list = vec![
            address(
                "a",
                "192.0.2.1",
                Some("2024-03-10T09:00:00.000-08:00"),
                None,
            ),
            address("b", "192.0.2.2", None, None),
            address(
                "c",
                "192.0.2.3",
                Some("2024-03-10T09:30:00.000-07:00"),
                None,
            ),
        ];
        GcpOrder::parse("creationTimestamp")
            .unwrap()
            .sort(&mut list);
        assert_eq!(names(&list), ["c", "a", "b"]);
        GcpOrder::parse("creationTimestamp desc")
            .unwrap()
            .sort(&mut list);
        assert_eq!(names(&list), ["a", "c", "b"]);
        assert_eq!(instant_of("1970-01-01T00:00:01Z"), Some((1, 0)));
        assert_eq!(
            instant_of("2000-03-01T00:00:00.5+01:00").map(|t| t.1),
            Some(500_000_000)
        );
        assert_eq!(instant_of("yesterday"), None);
    }

    #[test]
    fn labels_and_addresses_sort_with_unset_last_both_ways() {
        let mut list = vec![
            address("a", "192.0.2.10", None, None),
            address("b", "192.0.2.9", None, Some("2")),
            address("c", "192.0.2.11", None, Some("1")),
        ];
        GcpOrder::parse("labels.rank").unwrap().sort(&mut list);
        assert_eq!(names(&list), ["c", "b", "a"]);
        GcpOrder::parse("labels.rank desc").unwrap().sort(&mut list);
        assert_eq!(names(&list), ["b", "c", "a"]);
        GcpOrder::parse("address").unwrap().sort(&mut list);
        assert_eq!(names(&list), ["b", "a", "c"]);
    }
}
