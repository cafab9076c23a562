//! The few protobuf request bodies kubectl's typed clients send (client-go prefers
//! `application/vnd.kubernetes.protobuf`): `kubectl create namespace` and the
//! self-reviews of `kubectl auth`. Decoded by field number into the JSON the rest of
//! the simulator speaks; answers stay JSON, which those clients accept. Other kinds
//! sent as protobuf are refused with 415, as before.

use serde_json::{json, Map, Value};

use super::request::Review;
use super::status::ApiError;

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What a protobuf body can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    Namespace,
    Review(Review),
}

enum Field<'a> {
    Varint,
    Bytes(&'a [u8]),
}

fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(format!("error decoding protobuf request body: {what}"))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad("varint too long"))
}

/// The fields of one message, in order.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let field = match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
                Field::Varint
            }
            1 | 5 => {
                pos += if key & 7 == 1 { 8 } else { 4 };
                Field::Varint
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len());
                let end = end.ok_or_else(|| bad("truncated field"))?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn bytes(msg: &[u8], number: u64) -> Result<Vec<&[u8]>, ApiError> {
    Ok(fields(msg)?
        .into_iter()
        .filter_map(|(n, f)| match f {
            Field::Bytes(b) if n == number => Some(b),
            _ => None,
        })
        .collect())
}

fn string(msg: &[u8], number: u64) -> Result<Option<String>, ApiError> {
    match bytes(msg, number)?.last() {
        Some(b) => Ok(Some(
            String::from_utf8(b.to_vec()).map_err(|_| bad("not UTF-8"))?,
        )),
        None => Ok(None),
    }
}

/// Fills `out[name]` from string field `number` of `msg`, if present.
fn put(out: &mut Map<String, Value>, name: &str, msg: &[u8], number: u64) -> Result<(), ApiError> {
    if let Some(s) = string(msg, number)?.filter(|s| !s.is_empty()) {
        out.insert(name.into(), json!(s));
    }
    Ok(())
}

fn string_map(msg: &[u8], number: u64) -> Result<Option<Value>, ApiError> {
    let entries = bytes(msg, number)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut m = Map::new();
    for e in entries {
        let k = string(e, 1)?.unwrap_or_default();
        let v = string(e, 2)?.unwrap_or_default();
        m.insert(k, json!(v));
    }
    Ok(Some(Value::Object(m)))
}

/// ObjectMeta: name 1, generateName 2, namespace 3, labels 11, annotations 12.
fn object_meta(msg: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    put(&mut m, "name", msg, 1)?;
    put(&mut m, "generateName", msg, 2)?;
    put(&mut m, "namespace", msg, 3)?;
    if let Some(l) = string_map(msg, 11)? {
        m.insert("labels".into(), l);
    }
    if let Some(a) = string_map(msg, 12)? {
        m.insert("annotations".into(), a);
    }
    Ok(Value::Object(m))
}

/// The JSON form of a protobuf body (the `k8s\0` envelope around runtime.Unknown).
pub fn to_json(what: Body, body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| bad("missing the k8s envelope"))?;
    let raw = bytes(unknown, 2)?.last().copied().unwrap_or_default();
    let meta = match bytes(raw, 1)?.last() {
        Some(m) => object_meta(m)?,
        None => json!({}),
    };
    let spec = bytes(raw, 2)?.last().copied().unwrap_or_default();
    Ok(match what {
        Body::Namespace => json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}),
        Body::Review(Review::Access) => {
            let mut spec_json = Map::new();
            if let Some(ra) = bytes(spec, 1)?.last() {
                let mut m = Map::new();
                for (name, n) in [
                    ("namespace", 1),
                    ("verb", 2),
                    ("group", 3),
                    ("version", 4),
                    ("resource", 5),
                    ("subresource", 6),
                    ("name", 7),
                ] {
                    put(&mut m, name, ra, n)?;
                }
                spec_json.insert("resourceAttributes".into(), Value::Object(m));
            }
            if let Some(nra) = bytes(spec, 2)?.last() {
                let mut m = Map::new();
                put(&mut m, "path", nra, 1)?;
                put(&mut m, "verb", nra, 2)?;
                spec_json.insert("nonResourceAttributes".into(), Value::Object(m));
            }
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "metadata": meta, "spec": spec_json})
        }
        Body::Review(Review::Rules) => {
            let mut m = Map::new();
            put(&mut m, "namespace", spec, 1)?;
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                   "metadata": meta, "spec": m})
        }
        Body::Review(Review::Subject) => {
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": meta})
        }
    })
}

/// Whether the request body is protobuf.
pub fn is_protobuf(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_namespace_and_an_access_review() {
        let meta = field(1, b"nope");
        let raw = field(1, &meta);
        let mut body = b"k8s\0".to_vec();
        body.extend(field(2, &raw));
        let ns = to_json(Body::Namespace, &body).ok();
        assert_eq!(
            ns.map(|n| n["metadata"]["name"].clone()),
            Some(json!("nope"))
        );

        let mut ra = field(1, b"pinip-system");
        ra.extend(field(2, b"patch"));
        ra.extend(field(5, b"leases"));
        let raw = field(2, &field(1, &ra));
        let mut body = b"k8s\0".to_vec();
        body.extend(field(2, &raw));
        let review = to_json(Body::Review(Review::Access), &body).unwrap_or_default();
        assert_eq!(
            review["spec"]["resourceAttributes"],
            json!({"namespace": "pinip-system", "verb": "patch", "resource": "leases"})
        );
        assert!(to_json(Body::Namespace, b"{}").is_err());
    }
}
