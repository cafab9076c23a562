//! Object validation as the real registry strategies do it, answered as 422 Invalid
//! with upstream's field paths and wording: names per kind (DNS subdomain or label,
//! `k8s.io/apimachinery/pkg/api/validation`), label keys and values and the annotation
//! size limit (`.../apis/meta/v1/validation`, `.../util/validation`), Lease spec
//! (`pkg/apis/coordination/validation`) and Events (`pkg/apis/core/validation/events.go`:
//! strict checks only for events.k8s.io/v1).

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use super::field::FieldError;
use super::kind::Kind;
use super::status::ApiError;

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// `TotalAnnotationSizeLimitB`: keys and values together.
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;

fn full(re: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    re.get_or_init(|| {
        // The patterns are constants of this file; a typo is a bug caught by the tests.
        Regex::new(&format!("^(?:{pattern})$")).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    })
}

fn regex_message(what: &str, pattern: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "{what} (e.g. {}, regex used for validation is '{pattern}')",
        examples.join(",  or ")
    )
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".into());
    }
    if !full(&RE, DNS1123_SUBDOMAIN).is_match(value) {
        errs.push(regex_message(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1123Label`.
pub fn dns1123_label(value: &str) -> Vec<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !full(&RE, DNS1123_LABEL).is_match(value) {
        errs.push(regex_message(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `IsQualifiedName`: `[prefix/]name` (label and annotation keys).
pub fn qualified_name(value: &str) -> Vec<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let name_msg = || {
        regex_message(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            QUALIFIED_NAME,
            &["MyName", "my.name", "123-abc"],
        )
    };
    let parts: Vec<&str> = value.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => {
            return vec![
                format!("a qualified name {}", name_msg())
                    + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ]
        }
    };
    let mut errs = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errs.push("prefix part must be non-empty".into());
        } else {
            errs.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".into());
    }
    if !name.is_empty() && !full(&RE, QUALIFIED_NAME).is_match(name) {
        errs.push(format!("name part {}", name_msg()));
    }
    errs
}

/// `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !full(&RE, LABEL_VALUE).is_match(value) {
        errs.push(regex_message(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn each(field: &str, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(field, value, &m))
        .collect()
}

/// The name rule of each kind's strategy.
fn name_errors(kind: Kind, name: &str) -> Vec<String> {
    match kind {
        // Namespaces are DNS labels; core/v1 Events only get path-segment checks.
        Kind::Namespace => dns1123_label(name),
        Kind::Event => path_segment(name),
        Kind::Node | Kind::Pod | Kind::Lease | Kind::EventV1 => dns1123_subdomain(name),
    }
}

/// `path.IsValidPathSegmentName`, which every object name must also pass.
fn path_segment(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// `ValidateObjectMeta`: name (on create), labels, annotations.
fn object_meta(kind: Kind, obj: &Value, creating: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if creating && !name.is_empty() {
        let mut msgs = name_errors(kind, name);
        if msgs.is_empty() {
            msgs = path_segment(name);
        }
        errs.extend(each("metadata.name", name, msgs));
    }
    if let Some(labels) = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
    {
        for (k, v) in labels {
            errs.extend(each("metadata.labels", k, qualified_name(k)));
            match v.as_str() {
                Some(v) => errs.extend(each("metadata.labels", v, label_value(v))),
                None => errs.push(FieldError::invalid(
                    "metadata.labels",
                    v.clone(),
                    "must be a string",
                )),
            }
        }
    }
    if let Some(annotations) = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        let mut total = 0;
        for (k, v) in annotations {
            errs.extend(each(
                "metadata.annotations",
                k,
                qualified_name(&k.to_lowercase()),
            ));
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > ANNOTATIONS_LIMIT {
            errs.push(FieldError::too_long(
                "metadata.annotations",
                ANNOTATIONS_LIMIT,
            ));
        }
    }
    errs
}

fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn lease(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(d) = int_at(obj, "/spec/leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int_at(obj, "/spec/leaseTransitions").filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        ));
    }
    if !str_at(obj, "/spec/preferredHolder").is_empty() && str_at(obj, "/spec/strategy").is_empty()
    {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// `legacyValidateEvent`, on the stored (core) form; `strict` adds the events.k8s.io/v1
/// rules, reported with the core field names as upstream does.
fn event(obj: &Value, strict: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = str_at(obj, "/metadata/namespace");
    let involved_ns = str_at(obj, "/involvedObject/namespace");
    let has_event_time = !str_at(obj, "/eventTime").is_empty();
    let mismatch = if !has_event_time {
        if involved_ns.is_empty() {
            !ns.is_empty() && ns != "default"
        } else {
            ns != involved_ns
        }
    } else {
        involved_ns.is_empty() && ns != "default" && ns != "kube-system"
    };
    if mismatch {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ));
    }
    if has_event_time {
        let controller = str_at(obj, "/reportingComponent");
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        errs.extend(each(
            "reportingController",
            controller,
            qualified_name(controller),
        ));
        for (field, pointer, limit) in [
            ("reportingInstance", "/reportingInstance", 128),
            ("action", "/action", 128),
            ("reason", "/reason", 128),
        ] {
            let v = str_at(obj, pointer);
            if v.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    field,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if str_at(obj, "/message").len() > 1024 {
            errs.push(FieldError::invalid(
                "message",
                "",
                "can have at most 1024 characters",
            ));
        }
    }
    if strict {
        if !has_event_time {
            errs.push(FieldError::required("eventTime", ""));
        }
        let ty = str_at(obj, "/type");
        if ty != "Normal" && ty != "Warning" {
            errs.push(FieldError::invalid(
                "type",
                "",
                &format!("has invalid value: {ty}"),
            ));
        }
        for (field, pointer) in [
            ("firstTimestamp", "/firstTimestamp"),
            ("lastTimestamp", "/lastTimestamp"),
        ] {
            if !str_at(obj, pointer).is_empty() {
                errs.push(FieldError::invalid(field, "", "needs to be unset"));
            }
        }
        if int_at(obj, "/count").is_some_and(|c| c != 0) {
            errs.push(FieldError::invalid("count", "", "needs to be unset"));
        }
        if !str_at(obj, "/source/component").is_empty() || !str_at(obj, "/source/host").is_empty() {
            errs.push(FieldError::invalid("source", "", "needs to be unset"));
        }
        if let Some(series) = obj.get("series").filter(|s| s.is_object()) {
            if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
                errs.push(FieldError::invalid(
                    "series.count",
                    "",
                    "should be at least 2",
                ));
            }
            if series
                .get("lastObservedTime")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                errs.push(FieldError::required("series.lastObservedTime", ""));
            }
        }
    }
    if !ns.is_empty() {
        errs.extend(each("namespace", ns, dns1123_subdomain(ns)));
    }
    errs
}

/// Validates an object about to be stored. `obj` is in the stored form (events in
/// core form); `kind` is the API it came through (which decides the Event rules).
pub fn validate(kind: Kind, obj: &Value, creating: bool) -> Result<(), ApiError> {
    let mut errs = object_meta(kind, obj, creating);
    match kind {
        Kind::Lease => errs.extend(lease(obj)),
        Kind::Event => errs.extend(event(obj, false)),
        Kind::EventV1 => errs.extend(event(obj, creating)),
        Kind::Node | Kind::Namespace | Kind::Pod => {}
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::check(kind.def(), name, errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_labels_and_keys() {
        assert!(dns1123_subdomain("pinip-10-0-0-1.example").is_empty());
        assert!(!dns1123_subdomain("Bad_Name").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert!(qualified_name("pinip.dev/address").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(!qualified_name("-x").is_empty());
        assert!(!qualified_name("Example.com/x").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("10.0.0.1").is_empty());
        assert!(!label_value("2001:db8::1").is_empty());
        assert!(!label_value(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn lease_duration_must_be_positive() {
        let l = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}});
        let Err(ApiError::Invalid { errors, .. }) = validate(Kind::Lease, &l, true) else {
            panic!("a zero duration must be refused");
        };
        assert_eq!(errors[0].field, "spec.leaseDurationSeconds");
        assert_eq!(errors[0].body(), "Invalid value: 0: must be greater than 0");
    }

    #[test]
    fn only_events_k8s_io_checks_the_type() {
        let e = json!({"metadata": {"name": "e", "namespace": "default"},
                       "involvedObject": {"kind": "Node", "name": "n"}, "type": "Bad"});
        assert!(validate(Kind::Event, &e, true).is_ok());
        let Err(ApiError::Invalid { errors, .. }) = validate(Kind::EventV1, &e, true) else {
            panic!("events.k8s.io/v1 must refuse the type");
        };
        assert!(errors.iter().any(|e| e.field == "type"), "{errors:?}");
    }
}
