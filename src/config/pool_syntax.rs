//! `ORDER_BY`, `PROJECT`, `REGION` and `GCP_COMPUTE_ENDPOINT` checked at startup,
//! before the cloud is known or anything is contacted. Each provider parses them
//! fully later; this catches what is wrong on every cloud (`ORDER_BY='Tag:'` used to
//! be looked at only after the cluster was reached).

use pinip_providers::aws::AwsOrder;
use pinip_providers::order::split_direction;

use super::filter_syntax::FilterForm;

/// `ORDER_BY`: a field, then optionally `asc` or `desc`; with an AWS-form `FILTER`,
/// one of the fields EC2 can sort by.
pub fn check_order_by(order_by: &str, filter: &FilterForm) -> Result<(), String> {
    let explain = |why: String| format!("ORDER_BY {order_by:?} is not understood: {why}");
    let (field, _) = split_direction(order_by).map_err(explain)?;
    if let Some(key) = field
        .strip_prefix("Tag:")
        .or_else(|| field.strip_prefix("tag:"))
    {
        if key.is_empty() {
            return Err(explain(
                "the tag key after `Tag:` is empty; write e.g. `Tag:rank`".into(),
            ));
        }
    }
    if !field
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c))
    {
        return Err(explain(format!(
            "the field {field:?} has characters no cloud sorts by"
        )));
    }
    if *filter == FilterForm::AwsShorthand {
        AwsOrder::parse(order_by).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `PROJECT` and `REGION`: identifiers, never with spaces or slashes.
pub fn check_identifier(var: &str, value: &str) -> Result<(), String> {
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{var} {value:?} is not a cloud identifier (letters, digits, `-`, `_`, `.`, `:`); e.g. my-project, eu-west-1"
        ))
    }
}

/// An endpoint override: an absolute http(s) URL.
pub fn check_endpoint(var: &str, value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains(' ') => Ok(()),
        _ => Err(format!(
            "{var} {value:?} is not an http(s) URL; write e.g. https://compute.googleapis.com"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_is_checked_before_the_cloud_is_known() {
        for good in [
            "Tag:rank",
            "Tag:rank desc",
            "PublicIp",
            "creationTimestamp desc",
        ] {
            assert!(check_order_by(good, &FilterForm::Empty).is_ok(), "{good}");
        }
        for bad in ["Tag:", "", "Tag:rank sideways", "a b c", "name;drop"] {
            assert!(check_order_by(bad, &FilterForm::Empty).is_err(), "{bad}");
        }
        assert!(check_order_by("creationTimestamp", &FilterForm::AwsShorthand).is_err());
        assert!(check_order_by("Tag:rank", &FilterForm::AwsShorthand).is_ok());
    }

    #[test]
    fn identifiers_and_endpoints() {
        assert!(check_identifier("REGION", "eu-west-1").is_ok());
        assert!(check_identifier("REGION", "eu west").is_err());
        assert!(check_identifier("PROJECT", "p/1").is_err());
        assert!(check_endpoint("E", "http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint("E", "compute.googleapis.com").is_err());
        assert!(check_endpoint("E", "https://").is_err());
    }
}
