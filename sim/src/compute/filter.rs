//! The `filter` grammar of Compute list calls, as far as pinip (and KubeIP) use it:
//!
//! - AIP-160 comparisons `field = value`, `field != value`, `field : value` (`:*` means
//!   "is set"), alone or as parenthesised groups, juxtaposed or joined by `AND`;
//!   values bare or quoted, a trailing `*` in an `=` value matches a prefix;
//! - the regular-expression form `field eq re` / `field ne re` (RE2, whole value);
//! - fields of the resource, nested with dots (`labels.kubeip`).
//!
//! Like the API, the two forms cannot be mixed and an unknown field is an error.
//! What this simulator does not implement (`OR`, `NOT`, `-`, `<`, `>`) is refused
//! with the same 400 a malformed filter gets, never silently ignored.

use regex::Regex;
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Clone, Debug)]
enum Term {
    Group(Vec<Term>),
    Compare {
        field: String,
        op: Op,
        value: String,
    },
    Regex {
        field: String,
        negate: bool,
        re: Regex,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Has,
}

impl Filter {
    /// Parse `text`; `fields` are the top-level field names the resource has.
    pub fn parse(text: &str, fields: &[&str]) -> Result<Filter, String> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
            fields,
            saw_regex: false,
            saw_aip: false,
        };
        let terms = parser.expression()?;
        parser.skip_ws();
        if parser.at < parser.chars.len() {
            return Err(format!("unexpected {:?}", parser.rest()));
        }
        if parser.saw_regex && parser.saw_aip {
            return Err(
                "regular-expression (eq, ne) and AIP-160 (=, !=, :) comparisons cannot be mixed"
                    .into(),
            );
        }
        Ok(Filter { terms })
    }

    /// Does the resource (as rendered JSON) pass?
    pub fn matches(&self, resource: &Value) -> bool {
        all(&self.terms, resource)
    }
}

fn all(terms: &[Term], resource: &Value) -> bool {
    terms.iter().all(|t| term_matches(t, resource))
}

fn term_matches(term: &Term, resource: &Value) -> bool {
    match term {
        Term::Group(inner) => all(inner, resource),
        Term::Compare { field, op, value } => {
            let found = lookup(resource, field);
            match op {
                Op::Has if value == "*" => found.is_some_and(|v| !v.is_null()),
                Op::Has => found.is_some_and(|v| match v {
                    Value::Array(items) => items.iter().any(|i| text(i).contains(value.as_str())),
                    other => text(other).contains(value.as_str()),
                }),
                Op::Eq => found.is_some_and(|v| equals(&text(v), value)),
                Op::Ne => !found.is_some_and(|v| equals(&text(v), value)),
            }
        }
        Term::Regex { field, negate, re } => {
            let hit = lookup(resource, field).is_some_and(|v| re.is_match(&text(v)));
            hit != *negate
        }
    }
}

/// `=`: exact, or a prefix when the value ends in `*`.
fn equals(actual: &str, wanted: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => actual.starts_with(prefix),
        None => actual == wanted,
    }
}

fn lookup<'a>(resource: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(resource, |v, key| v.get(key))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Parser<'f> {
    chars: Vec<char>,
    at: usize,
    fields: &'f [&'f str],
    saw_regex: bool,
    saw_aip: bool,
}

impl Parser<'_> {
    fn rest(&self) -> String {
        self.chars[self.at..].iter().collect()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// The next bare word (no whitespace, no parentheses), without consuming it.
    fn word(&self) -> String {
        self.chars[self.at..]
            .iter()
            .take_while(|c| !c.is_whitespace() && **c != '(' && **c != ')')
            .collect()
    }

    fn expression(&mut self) -> Result<Vec<Term>, String> {
        let mut terms = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(')') => break,
                _ => {}
            }
            match self.word().as_str() {
                "AND" if !terms.is_empty() => {
                    self.at += 3;
                    continue;
                }
                "OR" => return Err("OR is not supported by this simulator".into()),
                "NOT" => return Err("NOT is not supported by this simulator".into()),
                _ => {}
            }
            terms.push(self.term()?);
        }
        if terms.is_empty() {
            return Err("empty expression".into());
        }
        Ok(terms)
    }

    fn term(&mut self) -> Result<Term, String> {
        if self.peek() == Some('(') {
            self.at += 1;
            let inner = self.expression()?;
            self.skip_ws();
            if self.peek() != Some(')') {
                return Err("a '(' has no matching ')'".into());
            }
            self.at += 1;
            return Ok(Term::Group(inner));
        }
        if self.peek() == Some('-') {
            return Err("negation with '-' is not supported by this simulator".into());
        }
        let field: String = self.chars[self.at..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect();
        if field.is_empty() {
            return Err(format!("a field name was expected at {:?}", self.rest()));
        }
        let top = field.split('.').next().unwrap_or_default();
        if !self.fields.contains(&top) {
            return Err(format!("unknown field {field:?}"));
        }
        self.at += field.chars().count();
        self.skip_ws();
        let op = self.operator()?;
        self.skip_ws();
        let value = self.value()?;
        match op {
            "eq" | "ne" => {
                self.saw_regex = true;
                let re = Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("bad regular expression {value:?}: {e}"))?;
                Ok(Term::Regex {
                    field,
                    negate: op == "ne",
                    re,
                })
            }
            _ => {
                self.saw_aip = true;
                let op = match op {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    _ => Op::Has,
                };
                Ok(Term::Compare { field, op, value })
            }
        }
    }

    fn operator(&mut self) -> Result<&'static str, String> {
        let rest = self.rest();
        for (text, op) in [("!=", "!="), ("=", "="), (":", ":")] {
            if rest.starts_with(text) {
                self.at += text.len();
                return Ok(op);
            }
        }
        for op in ["eq", "ne"] {
            if rest.starts_with(op) && rest[op.len()..].starts_with(char::is_whitespace) {
                self.at += op.len();
                return Ok(op);
            }
        }
        if rest.starts_with(['<', '>', '~']) {
            return Err(format!(
                "the comparison in {rest:?} is not supported by this simulator"
            ));
        }
        Err(format!(
            "a comparison (=, !=, :, eq, ne) was expected at {rest:?}"
        ))
    }

    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                self.at += 1;
                let mut out = String::new();
                while let Some(c) = self.peek() {
                    self.at += 1;
                    match c {
                        '\\' => {
                            if let Some(next) = self.peek() {
                                out.push(next);
                                self.at += 1;
                            }
                        }
                        c if c == quote => return Ok(out),
                        c => out.push(c),
                    }
                }
                Err("a quoted value is not closed".into())
            }
            _ => {
                let word = self.word();
                if word.is_empty() {
                    return Err("a value was expected".into());
                }
                self.at += word.chars().count();
                Ok(word)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[&str] = &[
        "name",
        "status",
        "addressType",
        "ipVersion",
        "labels",
        "users",
    ];

    fn address() -> Value {
        json!({"name": "pool-7", "status": "RESERVED", "addressType": "EXTERNAL", "ipVersion": "IPV4",
               "labels": {"kubeip": "reserved", "env": "prod"}})
    }

    fn check(filter: &str) -> bool {
        Filter::parse(filter, FIELDS).unwrap().matches(&address())
    }

    #[test]
    fn what_pinip_and_kubeip_send() {
        assert!(check(
            "(status=RESERVED) (addressType=EXTERNAL) (ipVersion!=IPV6) (labels.kubeip=reserved)"
        ));
        assert!(!check(
            "(status=IN_USE) (addressType=EXTERNAL) (labels.kubeip=reserved)"
        ));
        assert!(!check("(status=RESERVED) (ipVersion=IPV6)"));
        assert!(check("(status = RESERVED) AND (labels.env = \"prod\")"));
        assert!(check("labels.kubeip=reserved"));
        assert!(!check("(labels.a=b) (labels.kubeip:*)"));
        assert!(check("labels.env:*"));
        assert!(check("name=pool-*"));
        assert!(check(
            "(ipVersion!=IPV6) ((labels.kubeip=reserved) (labels.env=prod))"
        ));
    }

    #[test]
    fn regular_expressions() {
        assert!(check("name eq pool-.*"));
        assert!(!check("name eq pool"));
        assert!(check("(name ne other-.*) (status eq 'RESERVED|IN_USE')"));
    }

    #[test]
    fn refuses_what_the_api_refuses_or_this_simulator_does_not_do() {
        for bad in [
            "",
            "labels.kubeip",
            "(labels.kubeip=reserved",
            "labels.kubeip=reserved)",
            "colour=red",
            "(status=RESERVED) (name eq x)",
            "(a=b) OR (c=d)",
            "NOT status=RESERVED",
            "-status=RESERVED",
            "creationTimestamp > 2020",
            "status=",
            "name=\"open",
            "name eq (",
        ] {
            assert!(Filter::parse(bad, FIELDS).is_err(), "{bad}");
        }
    }
}
