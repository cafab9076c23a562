//! `ORDER_BY` for clouds that sort on the client side (AWS, the fake): KubeIP's
//! key names, plus ` desc` for descending. Addresses missing the field sort last
//! in either direction (KubeIP panics on such fields).

use std::cmp::Ordering;

use crate::PoolAddress;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderKey {
    /// `Tag:<key>`: the value of a tag / label.
    Tag(String),
    /// `PublicIp`: numeric address order.
    PublicIp,
    /// `AllocationId` (AWS) / the address ID.
    AllocationId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub key: OrderKey,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ORDER_BY {input:?} is not understood: {reason}; use `Tag:<key>`, `PublicIp` or `AllocationId`, optionally followed by ` desc`")]
pub struct OrderError {
    pub input: String,
    pub reason: String,
}

/// `ORDER_BY`'s shape on every cloud: a field, then optionally `asc` or `desc`.
/// Returns the field and whether the order is descending; Err is the reason.
pub fn split_direction(input: &str) -> Result<(&str, bool), String> {
    let mut words = input.split_whitespace();
    let field = words.next().ok_or_else(|| "it is empty".to_string())?;
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(format!(
                "the direction must be `asc` or `desc`, not `{other}`"
            ))
        }
    };
    if words.next().is_some() {
        return Err("too many words".into());
    }
    Ok((field, descending))
}

/// Compare two optional sort keys: present values in the asked direction, absent ones
/// last whatever the direction (KubeIP panics on such fields).
pub fn absent_last<T: Ord>(a: Option<T>, b: Option<T>, descending: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if descending => y.cmp(&x),
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

impl OrderBy {
    /// Parse `Tag:env`, `PublicIp desc`, `AllocationId asc`. `extra` lets a provider accept
    /// more field names (returning its own key for them is not needed: they map to a tag-like lookup).
    pub fn parse(input: &str) -> Result<OrderBy, OrderError> {
        let fail = |reason: &str| OrderError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (field, descending) = split_direction(input).map_err(|r| fail(&r))?;
        let key = if let Some(tag) = field
            .strip_prefix("Tag:")
            .or_else(|| field.strip_prefix("tag:"))
        {
            if tag.is_empty() {
                return Err(fail("the tag key is empty"));
            }
            OrderKey::Tag(tag.to_string())
        } else {
            match field {
                "PublicIp" => OrderKey::PublicIp,
                "AllocationId" => OrderKey::AllocationId,
                other => return Err(fail(&format!("unknown field `{other}`"))),
            }
        };
        Ok(OrderBy { key, descending })
    }

    /// Stable sort; absent values last whatever the direction.
    pub fn sort(&self, addresses: &mut [PoolAddress]) {
        addresses.sort_by(|a, b| self.compare(a, b));
    }

    fn compare(&self, a: &PoolAddress, b: &PoolAddress) -> Ordering {
        let desc = self.descending;
        match &self.key {
            OrderKey::PublicIp => absent_last(Some(a.ip), Some(b.ip), desc),
            OrderKey::AllocationId => absent_last(Some(&a.id), Some(&b.id), desc),
            OrderKey::Tag(key) => absent_last(a.labels.get(key), b.labels.get(key), desc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn addr(id: &str, ip: &str, tag: Option<&str>) -> PoolAddress {
        let mut labels = BTreeMap::new();
        if let Some(t) = tag {
            labels.insert("rank".to_string(), t.to_string());
        }
        PoolAddress {
            id: id.into(),
            ip: ip.parse().unwrap(),
            attached_to: None,
            owner: None,
            labels: labels.into(),
        }
    }

    fn ids(list: &[PoolAddress]) -> Vec<&str> {
        list.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn parses_keys_and_directions() {
        assert_eq!(
            OrderBy::parse("Tag:env").unwrap(),
            OrderBy {
                key: OrderKey::Tag("env".into()),
                descending: false
            }
        );
        assert_eq!(
            OrderBy::parse("PublicIp desc").unwrap(),
            OrderBy {
                key: OrderKey::PublicIp,
                descending: true
            }
        );
        assert!(!OrderBy::parse("AllocationId ASC").unwrap().descending);
        for bad in [
            "",
            "Tag:",
            "Colour",
            "PublicIp sideways",
            "PublicIp desc now",
        ] {
            assert!(OrderBy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unset_tags_sort_last_in_both_directions() {
        let mut list = vec![
            addr("a", "192.0.2.1", None),
            addr("b", "192.0.2.2", Some("2")),
            addr("c", "192.0.2.3", Some("1")),
        ];
        OrderBy::parse("Tag:rank").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["c", "b", "a"]);
        OrderBy::parse("Tag:rank desc").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["b", "c", "a"]);
    }

    #[test]
    fn public_ip_sorts_numerically() {
        let mut list = vec![addr("x", "192.0.2.10", None), addr("y", "192.0.2.9", None)];
        OrderBy::parse("PublicIp").unwrap().sort(&mut list);
        assert_eq!(ids(&list), ["y", "x"]);
    }
}
