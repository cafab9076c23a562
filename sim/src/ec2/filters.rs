//! `Filter.N` matching for the Describe calls, with EC2's semantics: names ANDed, values
//! ORed, `*` and `?` wildcards, and `InvalidParameterValue` for a name the call does not
//! know (moto answers an HTML 500 there).

use std::collections::BTreeMap;

use super::error::Ec2Error;
use super::query::FilterParam;

/// EC2's value matching: exact, or `*` (any run) and `?` (one character). Over the
/// strings themselves: a pool listing matches every address against its filters.
pub fn value_matches(pattern: &str, value: &str) -> bool {
    let mut p = pattern.chars();
    let mut v = value.chars();
    match p.next() {
        None => value.is_empty(),
        Some('*') => {
            let rest = p.as_str();
            let mut tail = value;
            loop {
                if value_matches(rest, tail) {
                    return true;
                }
                let mut shorter = tail.chars();
                if shorter.next().is_none() {
                    return false;
                }
                tail = shorter.as_str();
            }
        }
        Some('?') => v.next().is_some() && value_matches(p.as_str(), v.as_str()),
        Some(c) => v.next() == Some(c) && value_matches(p.as_str(), v.as_str()),
    }
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
    matches_lazily(filters, subject.tags, |name, test| {
        subject
            .fields
            .get(name)
            .is_some_and(|values| values.iter().any(|v| test(v)))
    })
}

/// [`matches`] for a resource whose fields are read only for the names the filters
/// use, and without copies: `field(name, test)` says whether any value of the field
/// `name` passes `test`. A pool listing tries every address.
pub fn matches_lazily(
    filters: &[FilterParam],
    tags: &BTreeMap<String, String>,
    field: impl Fn(&str, &mut dyn FnMut(&str) -> bool) -> bool,
) -> bool {
    filters.iter().all(|f| {
        let mut passes = |value: &str| f.values.iter().any(|p| value_matches(p, value));
        if f.name == "tag-key" {
            tags.keys().any(|k| passes(k))
        } else if let Some(key) = f.name.strip_prefix("tag:") {
            tags.get(key).is_some_and(|v| passes(v))
        } else {
            field(f.name.as_str(), &mut passes)
        }
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
