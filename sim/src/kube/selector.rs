//! Label and field selectors, parsed from query strings the way the real
//! server does (including set-based label requirements).

use serde_json::Value;

use super::field::FieldError;
use super::kind::Kind;
use super::status::ApiError;
use super::validate;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Exists(String),
    NotExists(String),
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed `labelSelector`; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

/// A parsed `fieldSelector`: (path, wanted value, equal?) triples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

/// Splits on commas outside parentheses (`a in (x,y),b` is two terms).
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn bad_label(s: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "unable to parse requirement: invalid label selector: {s:?}"
    ))
}

fn parse_set(key: &str, rest: &str, term: &str) -> Result<(String, Vec<String>), ApiError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad_label(term))?;
    let values = inner.split(',').map(|v| v.trim().to_string()).collect();
    Ok((key.trim().to_string(), values))
}

/// `validateLabelKey` / `validateLabelValue` of `labels.NewRequirement`, with the
/// parser's "unable to parse requirement" prefix.
fn validate_requirement(req: &LabelReq) -> Result<(), ApiError> {
    let (key, values): (&str, Vec<&str>) = match req {
        LabelReq::Exists(k) | LabelReq::NotExists(k) => (k, vec![]),
        LabelReq::Eq(k, v) | LabelReq::NotEq(k, v) => (k, vec![v.as_str()]),
        LabelReq::In(k, vs) | LabelReq::NotIn(k, vs) => {
            (k, vs.iter().map(String::as_str).collect())
        }
    };
    let refuse = |field: String, value: &str, errs: Vec<String>| {
        ApiError::BadRequest(format!(
            "unable to parse requirement: {}",
            FieldError::invalid(&field, value, &errs.join("; "))
        ))
    };
    let errs = validate::qualified_name(key);
    if !errs.is_empty() {
        return Err(refuse("key".into(), key, errs));
    }
    for (i, v) in values.iter().enumerate() {
        let errs = validate::label_value(v);
        if !errs.is_empty() {
            return Err(refuse(format!("values[{i}][{key}]"), v, errs));
        }
    }
    Ok(())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let req = if let Some((k, v)) = term.split_once("!=") {
                LabelReq::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==") {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once('=') {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = term.split_once(" notin ") {
                let (k, vs) = parse_set(k, rest, term)?;
                LabelReq::NotIn(k, vs)
            } else if let Some((k, rest)) = term.split_once(" in ") {
                let (k, vs) = parse_set(k, rest, term)?;
                LabelReq::In(k, vs)
            } else if let Some(k) = term.strip_prefix('!') {
                LabelReq::NotExists(k.trim().into())
            } else if term.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
                return Err(bad_label(term));
            } else {
                LabelReq::Exists(term.into())
            };
            let key = match &req {
                LabelReq::Exists(k)
                | LabelReq::NotExists(k)
                | LabelReq::Eq(k, _)
                | LabelReq::NotEq(k, _)
                | LabelReq::In(k, _)
                | LabelReq::NotIn(k, _) => k,
            };
            if key.is_empty() {
                return Err(bad_label(term));
            }
            validate_requirement(&req)?;
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// The selector's `key=value` terms: every match carries each of these labels.
    pub fn equalities(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter_map(|r| match r {
            LabelReq::Eq(k, v) => Some((k.as_str(), v.as_str())),
            LabelReq::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        })
    }
}

/// Field labels each kind's conversion function accepts (`pkg/apis/core/v1/conversion.go`,
/// `pkg/apis/events/v1/conversion.go`, the default `metadata.*` pair); others are 400
/// "field label not supported". core/v1 Events know `involvedObject.*`, events.k8s.io/v1
/// Events `regarding.*`, never the other spelling.
fn supported_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Node => &["metadata.name", "spec.unschedulable"],
        Kind::Namespace => &["metadata.name", "status.phase"],
        Kind::Pod => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        Kind::Lease => &["metadata.name", "metadata.namespace"],
        Kind::Event => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        Kind::EventV1 => &[
            "metadata.name",
            "metadata.namespace",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "source",
            "type",
        ],
    }
}

impl FieldSelector {
    pub fn parse(kind: Kind, s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let (path, value, eq) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, true)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let path = path.trim();
            if !supported_fields(kind).contains(&path) {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {path}"
                )));
            }
            reqs.push((path.to_string(), value.trim().to_string(), eq));
        }
        Ok(FieldSelector(reqs))
    }

    /// Both selectors' requirements.
    pub fn and(mut self, other: FieldSelector) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The value `path` must equal, if a term requires one (`metadata.name=x`).
    pub fn required(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _, eq)| *eq && p == path)
            .map(|(_, want, _)| want.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, want, eq)| {
            let equal = match path.split('.').try_fold(obj, |v, seg| v.get(seg)) {
                Some(Value::String(s)) => s == want,
                None | Some(Value::Null) => want.is_empty(),
                Some(other) => {
                    let text = other.to_string();
                    text == *want
                }
            };
            equal == *eq
        })
    }
}

/// Both selectors of a list or watch request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    /// No requirement at all: every object matches.
    pub fn is_empty(&self) -> bool {
        self.labels.0.is_empty() && self.fields.0.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"unschedulable": true}})
    }

    #[test]
    fn label_requirements() {
        let n = node(json!({"a": "1", "b": "2"}));
        let m = |s: &str| LabelSelector::parse(s).map(|l| l.matches(&n));
        assert_eq!(m("a=1").ok(), Some(true));
        assert_eq!(m("a==1,b").ok(), Some(true));
        assert_eq!(m("a!=1").ok(), Some(false));
        assert_eq!(m("!c").ok(), Some(true));
        assert_eq!(m("a in (1, 3),b notin (3)").ok(), Some(true));
        assert_eq!(m("c in (1)").ok(), Some(false));
        assert_eq!(m("").ok(), Some(true));
        assert!(m("a in 1").is_err());
    }

    #[test]
    fn field_requirements() {
        let n = node(json!({}));
        let m = |s: &str| FieldSelector::parse(Kind::Node, s).map(|f| f.matches(&n));
        assert_eq!(m("metadata.name=n1").ok(), Some(true));
        assert_eq!(m("metadata.name!=n1").ok(), Some(false));
        assert_eq!(m("spec.unschedulable=true").ok(), Some(true));
        assert!(m("spec.providerID=x").is_err());
    }
}
