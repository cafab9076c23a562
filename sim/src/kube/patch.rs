//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (treated
//! as a merge patch: the fields pinip touches have no merge keys that would
//! differ), and JSON patch (RFC 6902), with the real server's error codes.

use serde_json::Value;

use super::status::ApiError;

/// The patch flavours, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    StrategicMerge,
    Json,
    /// Server-side apply (`application/apply-patch+yaml`), served by `ssa.rs`.
    Apply,
}

const ACCEPTED: &str = "application/json-patch+json, application/merge-patch+json, \
                        application/strategic-merge-patch+json, application/apply-patch+yaml";

impl PatchType {
    pub fn from_content_type(ct: Option<&str>) -> Result<Self, ApiError> {
        let media = ct
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        match media.as_deref() {
            Some("application/merge-patch+json") => Ok(PatchType::Merge),
            Some("application/strategic-merge-patch+json") => Ok(PatchType::StrategicMerge),
            Some("application/json-patch+json") => Ok(PatchType::Json),
            Some("application/apply-patch+yaml") => Ok(PatchType::Apply),
            _ => Err(ApiError::UnsupportedMediaType(ACCEPTED.into())),
        }
    }
}

/// Applies `body` to `current`, returning the patched object.
pub fn apply(kind: PatchType, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    match kind {
        PatchType::Apply => Err(ApiError::Internal(
            "an apply patch is not a merge of the body".into(),
        )),
        PatchType::Merge | PatchType::StrategicMerge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiError::BadRequest("invalid JSON merge patch".into()));
            }
            let patch = if kind == PatchType::StrategicMerge {
                strip_directives(patch)
            } else {
                patch
            };
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Json => {
            let patch: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let mut doc = current.clone();
            // The real server answers 422 (reason Invalid) when a patch
            // operation, including a failed `test`, cannot be applied.
            json_patch::patch(&mut doc, &patch)
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            Ok(doc)
        }
    }
}

/// Drops strategic-merge directives (`$patch`, `$setElementOrder/...`,
/// `$retainKeys`, ...), which a plain merge would otherwise store as fields.
fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patch() {
        let cur = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let merged = apply(
            PatchType::Merge,
            &cur,
            br#"{"metadata":{"labels":{"b":null}}}"#,
        );
        assert_eq!(
            merged.ok(),
            Some(json!({"metadata": {"labels": {"a": "1"}}}))
        );

        let ops = br#"[{"op":"test","path":"/metadata/labels/a","value":"1"},
                       {"op":"add","path":"/metadata/labels/c","value":"3"}]"#;
        let patched = apply(PatchType::Json, &cur, ops).ok();
        assert_eq!(
            patched.map(|p| p["metadata"]["labels"]["c"].clone()),
            Some(json!("3"))
        );

        let failing = br#"[{"op":"test","path":"/metadata/labels/a","value":"2"}]"#;
        assert!(matches!(
            apply(PatchType::Json, &cur, failing),
            Err(ApiError::Unprocessable(_))
        ));
        assert!(matches!(
            apply(PatchType::Json, &cur, b"not json"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type(Some("application/merge-patch+json; charset=utf-8")).ok(),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type(Some("application/apply-patch+yaml")).ok(),
            Some(PatchType::Apply)
        );
        assert!(PatchType::from_content_type(Some("application/yaml")).is_err());
        assert!(PatchType::from_content_type(None).is_err());
    }
}
