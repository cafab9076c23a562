//! `Filter.N` matching for the Describe calls, with EC2's semantics: names ANDed, values
//! ORed, `*` and `?` wildcards, and `InvalidParameterValue` for a name the call does not
//! know (moto answers an HTML 500 there).

use std::collections::BTreeMap;

use super::error::Ec2Error;
use super::query::FilterParam;

/// EC2's value matching: exact, or `*` (any run) and `?` (one character).
pub fn value_matches(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

/// What a resource offers to filters: its field values by filter name, and its tags.
pub struct Subject<'a> {
    pub fields: BTreeMap<&'static str, Vec<String>>,
    pub tags: &'a BTreeMap<String, String>,
}

/// Check that every filter name is one `known` (or `tag:<key>` / `tag-key`).
pub fn check_names(filters: &[FilterParam], known: &[&str], action: &str) -> Result<(), Ec2Error> {
    for f in filters {
        let ok = known.contains(&f.name.as_str())
            || f.name == "tag-key"
            || f.name.strip_prefix("tag:").is_some_and(|k| !k.is_empty());
        if !ok {
            return Err(Ec2Error::invalid_value(format!(
                "The filter '{}' is invalid for {action}",
                f.name
            )));
        }
        if f.values.is_empty() {
            return Err(Ec2Error::invalid_value(format!(
                "The filter '{}' has no values",
                f.name
            )));
        }
    }
    Ok(())
}

/// Does `subject` pass every filter?
pub fn matches(filters: &[FilterParam], subject: &Subject<'_>) -> bool {
    filters.iter().all(|f| {
        let candidates: Vec<String> = if f.name == "tag-key" {
            subject.tags.keys().cloned().collect()
        } else if let Some(key) = f.name.strip_prefix("tag:") {
            subject.tags.get(key).cloned().into_iter().collect()
        } else {
            subject
                .fields
                .get(f.name.as_str())
                .cloned()
                .unwrap_or_default()
        };
        candidates
            .iter()
            .any(|value| f.values.iter().any(|p| value_matches(p, value)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: &str, values: &[&str]) -> FilterParam {
        FilterParam {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn names_are_anded_values_ored_and_wildcards_work() {
        let tags: BTreeMap<String, String> = [("kubeip".to_string(), "reserved".to_string())]
            .into_iter()
            .collect();
        let subject = Subject {
            fields: [("domain", vec!["vpc".to_string()])].into_iter().collect(),
            tags: &tags,
        };
        assert!(matches(
            &[
                filter("tag:kubeip", &["other", "res*"]),
                filter("domain", &["vpc"])
            ],
            &subject
        ));
        assert!(!matches(
            &[
                filter("tag:kubeip", &["reserved"]),
                filter("domain", &["standard"])
            ],
            &subject
        ));
        assert!(matches(&[filter("tag-key", &["kube?p"])], &subject));
        assert!(!matches(&[filter("instance-id", &["*"])], &subject));
    }

    #[test]
    fn unknown_names_are_invalid_parameter_values() {
        let err =
            check_names(&[filter("bogus", &["x"])], &["domain"], "DescribeAddresses").unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.status),
            ("InvalidParameterValue", 400)
        );
        assert!(check_names(
            &[filter("tag:a", &["x"]), filter("domain", &["vpc"])],
            &["domain"],
            "X"
        )
        .is_ok());
    }
}
