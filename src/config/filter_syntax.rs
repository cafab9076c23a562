//! `FILTER` checked at startup, before the cloud is known: entries are all AWS
//! shorthand (`Name=tag:kubeip,Values=reserved`), all OCI tag matches
//! (`freeformTags.kubeip=reserved`, `definedTags.<ns>.<key>=<value>`) or all Compute API
//! expressions (`labels.kubeip=reserved`). Each provider parses them fully later; this catches
//! what is malformed in any cloud before anything is read or written.

use pinip_providers::filter::parse_shorthand;

#[derive(Debug, PartialEq, Eq)]
pub enum FilterForm {
    Empty,
    AwsShorthand,
    OciTags,
    ComputeExpressions,
}

fn is_oci_entry(entry: &str) -> bool {
    let e = entry.trim_start();
    e.starts_with("freeformTags.") || e.starts_with("definedTags.")
}

pub fn check_filter(entries: &[String]) -> Result<FilterForm, String> {
    if entries.is_empty() {
        return Ok(FilterForm::Empty);
    }
    let shorthand = entries
        .iter()
        .filter(|e| e.trim_start().starts_with("Name="))
        .count();
    if shorthand == entries.len() {
        parse_shorthand(entries).map_err(|e| e.to_string())?;
        return Ok(FilterForm::AwsShorthand);
    }
    let oci = entries.iter().filter(|e| is_oci_entry(e)).count();
    if oci == entries.len() {
        pinip_providers::oci::filter::parse(entries).map_err(|e| e.to_string())?;
        return Ok(FilterForm::OciTags);
    }
    if oci > 0 {
        return Err(format!(
            "FILTER mixes OCI tag entries (freeformTags.…=…, definedTags.…=…) with another cloud's: {:?}; use one form, entries separated by ';'",
            entries.join(";")
        ));
    }
    if shorthand > 0 {
        return Err(format!(
            "FILTER mixes AWS entries (Name=…,Values=…) and GCP expressions: {:?}; use one form, entries separated by ';'",
            entries.join(";")
        ));
    }
    for entry in entries {
        check_expression(entry)?;
    }
    Ok(FilterForm::ComputeExpressions)
}

/// A Compute API filter expression: `field op value` with balanced parentheses.
fn check_expression(entry: &str) -> Result<(), String> {
    let fail = |why: &str| {
        Err(format!(
            "FILTER entry {entry:?} is malformed: {why}; expected e.g. labels.kubeip=reserved (GCP) or Name=tag:kubeip,Values=reserved (AWS)"
        ))
    };
    let mut depth = 0i32;
    for c in entry.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return fail("a ')' has no matching '('");
        }
    }
    if depth != 0 {
        return fail("parentheses are not balanced");
    }
    let inner = entry
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    let Some(op_at) = inner.find(['=', '!', ':', '~', '<', '>']) else {
        let words: Vec<&str> = inner.split_whitespace().collect();
        if words.len() == 3 && matches!(words[1], "eq" | "ne") {
            return Ok(());
        }
        return fail("there is no comparison (=, !=, :, ~, eq, ne)");
    };
    let (field, rest) = inner.split_at(op_at);
    let value = rest
        .trim_start_matches(['=', '!', ':', '~', '<', '>'])
        .trim();
    if field.trim().is_empty() {
        return fail("the field name is missing");
    }
    if value.is_empty() {
        return fail("the value is missing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recognises_both_forms() {
        assert_eq!(check_filter(&[]), Ok(FilterForm::Empty));
        assert_eq!(
            check_filter(&entries(&[
                "Name=tag:kubeip,Values=reserved",
                "Name=tag:env,Values=prod"
            ])),
            Ok(FilterForm::AwsShorthand)
        );
        assert_eq!(
            check_filter(&entries(&[
                "labels.kubeip=reserved",
                "(labels.env = prod)",
                "name eq pinip-.*",
                "name:pinip-*"
            ])),
            Ok(FilterForm::ComputeExpressions)
        );
        assert_eq!(
            check_filter(&entries(&[
                "freeformTags.kubeip=reserved",
                "definedTags.ops.pool=edge"
            ])),
            Ok(FilterForm::OciTags)
        );
    }

    #[test]
    fn refuses_malformed_and_mixed_filters_quoting_them() {
        for bad in [
            &["Name=tag:kubeip"][..],
            &["labels.kubeip"],
            &["labels.kubeip="],
            &["=reserved"],
            &["(labels.kubeip=reserved"],
            &["labels.kubeip=reserved)"],
            &["Name=tag:a,Values=b", "labels.c=d"],
            &["freeformTags.kubeip"],
            &["definedTags.ops=edge"],
            &["freeformTags.kubeip=reserved", "labels.c=d"],
        ] {
            let err = check_filter(&entries(bad)).unwrap_err();
            assert!(err.contains("FILTER"), "{err}");
            assert!(err.contains(bad[0]), "{err}");
        }
    }
}
