//! KubeIP's AWS-style shorthand filter: `Name=tag:kubeip,Values=reserved` entries,
//! one per `FILTER` element (the list itself is `;`-separated).
//!
//! Unlike KubeIP, values may contain `,` and `=` when escaped with a backslash
//! (`\,`, `\=`, `\\`); a bad entry is refused with the entry quoted.

use std::collections::BTreeMap;

use serde::Serialize;

/// One parsed entry: match addresses whose `name` has any of `values`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShorthandFilter {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("FILTER entry {entry:?} is malformed: {reason}; expected `Name=<name>,Values=<v1>,<v2>` (escape a literal `,` or `=` in a value as `\\,` or `\\=`)")]
pub struct FilterError {
    pub entry: String,
    pub reason: String,
}

/// Parse all entries; the first bad one is reported. Entries with the same name are
/// merged (KubeIP silently kept only the last).
pub fn parse_shorthand(entries: &[String]) -> Result<Vec<ShorthandFilter>, FilterError> {
    let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in entries {
        let parsed = parse_entry(entry)?;
        let values = merged.entry(parsed.name).or_default();
        for value in parsed.values {
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    Ok(merged
        .into_iter()
        .map(|(name, values)| ShorthandFilter { name, values })
        .collect())
}

/// Parse one `Name=…,Values=…` entry.
pub fn parse_entry(entry: &str) -> Result<ShorthandFilter, FilterError> {
    let fail = |reason: &str| FilterError {
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let parts = split_unescaped(entry.trim(), ',').map_err(|r| fail(&r))?;
    let mut parts = parts.into_iter();
    let name_part = parts.next().unwrap_or_default();
    let name = match split_once_unescaped(&name_part, '=') {
        Some((key, value)) if key == "Name" => unescape(&value),
        Some((key, _)) => return Err(fail(&format!("it must start with `Name=`, not `{key}=`"))),
        None => return Err(fail("it must start with `Name=`")),
    };
    if name.is_empty() {
        return Err(fail("the name is empty"));
    }
    let first_value = parts.next().ok_or_else(|| fail("`Values=` is missing"))?;
    let mut values = match split_once_unescaped(&first_value, '=') {
        Some((key, value)) if key == "Values" => vec![unescape(&value)],
        _ => return Err(fail("the second part must be `Values=`")),
    };
    values.extend(parts.map(|v| unescape(&v)));
    if values.iter().any(String::is_empty) {
        return Err(fail("a value is empty"));
    }
    Ok(ShorthandFilter { name, values })
}

/// Split on `sep` where it is not escaped; keeps escapes in the pieces.
fn split_unescaped(input: &str, sep: char) -> Result<Vec<String>, String> {
    let mut pieces = vec![String::new()];
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next().ok_or("it ends with a lone `\\`")?;
                let current = pieces.last_mut().ok_or("internal: no piece")?;
                current.push('\\');
                current.push(next);
            }
            c if c == sep => pieces.push(String::new()),
            c => pieces.last_mut().ok_or("internal: no piece")?.push(c),
        }
    }
    Ok(pieces)
}

fn split_once_unescaped(input: &str, sep: char) -> Option<(String, String)> {
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                return Some((
                    input[..i].to_string(),
                    input[i + c.len_utf8()..].to_string(),
                ))
            }
            _ => {}
        }
    }
    None
}

fn unescape(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// AWS filter value matching: exact, or `*` (any run) and `?` (one character) wildcards.
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
    // Most patterns are plain values: compared as they are, without copying either.
    if !pattern.contains(['*', '?']) {
        return pattern == value;
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_kubeip_examples() {
        let parsed = parse_shorthand(&entries(&[
            "Name=tag:kubeip,Values=reserved",
            "Name=tag:environment,Values=prod,staging",
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ShorthandFilter {
                    name: "tag:environment".into(),
                    values: vec!["prod".into(), "staging".into()]
                },
                ShorthandFilter {
                    name: "tag:kubeip".into(),
                    values: vec!["reserved".into()]
                },
            ]
        );
    }

    #[test]
    fn escapes_allow_commas_and_equals_in_values() {
        let f = parse_entry(r"Name=tag:note,Values=a\,b,c\=d,e\\f").unwrap();
        assert_eq!(f.values, vec!["a,b", "c=d", r"e\f"]);
    }

    #[test]
    fn duplicate_names_merge_instead_of_overwriting() {
        let parsed =
            parse_shorthand(&entries(&["Name=tag:a,Values=1", "Name=tag:a,Values=2,1"])).unwrap();
        assert_eq!(
            parsed,
            vec![ShorthandFilter {
                name: "tag:a".into(),
                values: vec!["1".into(), "2".into()]
            }]
        );
    }

    #[test]
    fn malformed_entries_are_refused_with_the_entry_quoted() {
        for bad in [
            "tag:kubeip=reserved",
            "Name=tag:kubeip",
            "Name=,Values=x",
            "Name=tag:a,Vals=x",
            "Name=tag:a,Values=",
            "Name=tag:a,Values=x,",
            "Key=tag:a,Values=x",
            r"Name=tag:a,Values=x\",
        ] {
            let err = parse_entry(bad).unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn wildcards_match_like_aws() {
        assert!(value_matches("res*", "reserved"));
        assert!(value_matches("*", ""));
        assert!(value_matches("r?s", "ras"));
        assert!(!value_matches("res", "reserved"));
        assert!(value_matches("reserved", "reserved"));
    }
}
