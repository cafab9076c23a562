//! `FILTER` in KubeIP's OCI syntax: `freeformTags.<key>=<value>` and (which KubeIP left
//! as a TODO) `definedTags.<namespace>.<key>=<value>`, one per `FILTER` entry (the list
//! is `;`-separated), all ANDed, exact and case-sensitive like KubeIP. ListPublicIps has
//! no tag filter, so the match runs on the listed objects.

use std::collections::BTreeMap;

use serde_json::Value;

use super::wire::PublicIp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagFilter {
    Freeform {
        key: String,
        value: String,
    },
    Defined {
        namespace: String,
        key: String,
        value: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("FILTER entry {entry:?} is not understood: {reason}; on OCI use `freeformTags.<key>=<value>` or `definedTags.<namespace>.<key>=<value>`")]
pub struct FilterError {
    pub entry: String,
    pub reason: String,
}

/// Parse every entry (blank entries are ignored); the first bad one is reported.
pub fn parse(entries: &[String]) -> Result<Vec<TagFilter>, FilterError> {
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(parse_entry)
        .collect()
}

fn parse_entry(entry: &str) -> Result<TagFilter, FilterError> {
    let fail = |reason: &str| FilterError {
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let (path, value) = entry
        .split_once('=')
        .ok_or_else(|| fail("there is no `=`"))?;
    let value = value.to_string();
    if let Some(key) = path.strip_prefix("freeformTags.") {
        if key.is_empty() {
            return Err(fail("the tag key is empty"));
        }
        return Ok(TagFilter::Freeform {
            key: key.to_string(),
            value,
        });
    }
    if let Some(rest) = path.strip_prefix("definedTags.") {
        // Namespaces and defined-tag keys cannot contain periods: the first one splits.
        return match rest.split_once('.') {
            Some((namespace, key)) if !namespace.is_empty() && !key.is_empty() => {
                Ok(TagFilter::Defined {
                    namespace: namespace.to_string(),
                    key: key.to_string(),
                    value,
                })
            }
            _ => Err(fail("a defined tag needs a namespace and a key")),
        };
    }
    Err(fail("it must start with `freeformTags.` or `definedTags.`"))
}

/// Does the public IP carry every tag of `filters`?
pub fn matches(filters: &[TagFilter], ip: &PublicIp) -> bool {
    filters.iter().all(|f| match f {
        TagFilter::Freeform { key, value } => ip.freeform_tags.get(key) == Some(value),
        TagFilter::Defined {
            namespace,
            key,
            value,
        } => ip
            .defined_tags
            .get(namespace)
            .and_then(|tags| tags.get(key))
            .is_some_and(|v| defined_value(v) == *value),
    })
}

fn defined_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every tag as one flat map (`ORDER_BY Tag:<key>` and `PoolAddress::labels`): free-form
/// keys as they are, defined tags as `<namespace>.<key>`.
pub fn flat_tags(ip: &PublicIp) -> BTreeMap<String, String> {
    let mut all = ip.freeform_tags.clone();
    for (namespace, tags) in &ip.defined_tags {
        for (key, value) in tags {
            all.insert(format!("{namespace}.{key}"), defined_value(value));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubeip_syntax_and_defined_tags() {
        let f = parse(&entries(&[
            "freeformTags.kubeip=reserved",
            " definedTags.ops.team=edge ",
            "",
        ]))
        .unwrap();
        assert_eq!(f.len(), 2);
        let ip: PublicIp = serde_json::from_value(serde_json::json!({
            "freeformTags": {"kubeip": "reserved"}, "definedTags": {"ops": {"team": "edge", "n": 3}}
        }))
        .unwrap();
        assert!(matches(&f, &ip));
        assert!(matches(
            &parse(&entries(&["definedTags.ops.n=3"])).unwrap(),
            &ip
        ));
        assert!(!matches(
            &parse(&entries(&["freeformTags.kubeip=Reserved"])).unwrap(),
            &ip
        ));
        assert!(!matches(
            &parse(&entries(&["freeformTags.env=prod"])).unwrap(),
            &ip
        ));
        assert_eq!(flat_tags(&ip)["ops.team"], "edge");
        // A value may contain `=`; no filter at all matches everything.
        assert_eq!(
            parse(&entries(&["freeformTags.note=a=b"])).unwrap(),
            [TagFilter::Freeform {
                key: "note".into(),
                value: "a=b".into()
            }]
        );
        assert!(matches(&[], &ip));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_quoted() {
        for bad in [
            "kubeip=reserved",
            "freeformTags.=x",
            "definedTags.ops=x",
            "labels.kubeip=reserved",
            "freeformTags.kubeip",
        ] {
            let e = parse(&entries(&[bad])).unwrap_err();
            assert_eq!(e.entry, bad);
            assert!(e.to_string().contains("freeformTags."), "{e}");
        }
    }
}
