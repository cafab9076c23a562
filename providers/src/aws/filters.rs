//! `FILTER` on AWS: KubeIP's shorthand entries become `DescribeAddresses` filters. Only
//! the filter names EC2 documents for `DescribeAddresses` are accepted; anything else is
//! refused at startup with the entry quoted (EC2 would answer `InvalidParameterValue`,
//! moto an HTML 500).

use aws_sdk_ec2::types::Filter;

use crate::filter::{parse_entry, parse_shorthand, FilterError};

/// Filter names `DescribeAddresses` understands, besides `tag:<key>`.
pub const ADDRESS_FILTER_NAMES: &[&str] = &[
    "allocation-id",
    "association-id",
    "domain",
    "instance-id",
    "network-border-group",
    "network-interface-id",
    "network-interface-owner-id",
    "private-ip-address",
    "public-ip",
    "tag-key",
];

/// Parse and check every entry, then merge them into EC2 filters (entries with the same
/// name are merged; different names are ANDed by EC2, values of one name ORed).
pub fn address_filters(entries: &[String]) -> Result<Vec<Filter>, FilterError> {
    for entry in entries {
        let parsed = parse_entry(entry)?;
        let known = parsed
            .name
            .strip_prefix("tag:")
            .is_some_and(|key| !key.is_empty())
            || ADDRESS_FILTER_NAMES.contains(&parsed.name.as_str());
        if !known {
            return Err(FilterError {
                entry: entry.clone(),
                reason: format!(
                    "`{}` is not a DescribeAddresses filter; use tag:<key>, {}",
                    parsed.name,
                    ADDRESS_FILTER_NAMES.join(", ")
                ),
            });
        }
    }
    Ok(parse_shorthand(entries)?
        .into_iter()
        .map(|f| {
            Filter::builder()
                .name(f.name)
                .set_values(Some(f.values))
                .build()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubeip_filters_become_ec2_filters() {
        let filters = address_filters(&entries(&[
            "Name=tag:kubeip,Values=reserved",
            "Name=tag:environment,Values=prod",
            r"Name=tag:note,Values=a\,b",
        ]))
        .unwrap();
        let pairs: Vec<(&str, Vec<&str>)> = filters
            .iter()
            .map(|f| {
                (
                    f.name().unwrap_or(""),
                    f.values().iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("tag:environment", vec!["prod"]),
                ("tag:kubeip", vec!["reserved"]),
                ("tag:note", vec!["a,b"]),
            ]
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_entry_quoted() {
        for bad in ["Name=colour,Values=red", "Name=tag:,Values=x"] {
            let err =
                address_filters(&entries(&["Name=tag:kubeip,Values=reserved", bad])).unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(address_filters(&entries(&["Name=public-ip,Values=198.51.100.1"])).is_ok());
        assert!(address_filters(&entries(&["Name=tag-key,Values=kubeip"])).is_ok());
    }

    #[test]
    fn malformed_entries_keep_the_shared_parser_message() {
        let err = address_filters(&entries(&["tag:kubeip=reserved"])).unwrap_err();
        assert_eq!(err.entry, "tag:kubeip=reserved");
    }
}
