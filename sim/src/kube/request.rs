//! Resolves every HTTP request, in one place, to what it asks for: a
//! discovery document, or (verb, group, resource, namespace, name) like the
//! real server's RequestInfo. Authorization hooks in right after this.

use std::collections::HashMap;

use axum::http::{header, HeaderMap, Method};

use super::kind::{Kind, ResourceDef};
use super::status::ApiError;

/// Query parameters (the last value wins for repeated keys).
pub type Query = HashMap<String, String>;

/// API verbs, named as in RBAC rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    /// Verbs that write an existing object (the ones conflicts apply to).
    pub fn writes_existing(self) -> bool {
        matches!(self, Verb::Update | Verb::Patch | Verb::Delete)
    }
}

/// A resource request, resolved.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub verb: Verb,
    pub kind: Kind,
    /// Only `status` exists in this simulator.
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The bearer token, if any: who is asking (read by the authorizer, `rbac.rs`).
    pub token: Option<String>,
}

impl RequestInfo {
    pub fn def(&self) -> &'static ResourceDef {
        self.kind.def()
    }

    pub fn api_group(&self) -> &'static str {
        self.def().group
    }

    pub fn resource(&self) -> &'static str {
        self.def().plural
    }

    pub fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

/// Non-resource paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NonResource {
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    Resources {
        group: String,
    },
    /// `/openapi/v2`, `/openapi/v3`, `/openapi/v3/{path}`
    OpenApi(String),
    Health,
}

/// The self-reviews every authenticated user may create (`system:basic-user`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Review {
    /// authorization.k8s.io/v1 SelfSubjectAccessReview (`kubectl auth can-i VERB RES`).
    Access,
    /// authorization.k8s.io/v1 SelfSubjectRulesReview (`kubectl auth can-i --list`).
    Rules,
    /// authentication.k8s.io/v1 SelfSubjectReview (`kubectl auth whoami`).
    Subject,
}

/// What a request is for.
#[derive(Clone, Debug)]
pub enum Target {
    NonResource(NonResource),
    Resource(RequestInfo),
    /// A self-review (POST only), with the request's bearer token.
    Review(Review, Option<String>),
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

fn is_watch(query: &Query) -> bool {
    matches!(
        query.get("watch").map(String::as_str),
        Some("true" | "1" | "True")
    )
}

/// The one place a request is classified.
pub fn resolve(
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let non_resource = |nr| {
        if method == Method::GET {
            Ok(Target::NonResource(nr))
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    let review = |r| {
        if method == Method::POST {
            Ok(Target::Review(r, bearer(headers)))
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    let (group, rest): (&str, &[&str]) = match segs.as_slice() {
        ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"] => {
            return review(Review::Access)
        }
        ["apis", "authorization.k8s.io", "v1", "selfsubjectrulesreviews"] => {
            return review(Review::Rules)
        }
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] => {
            return review(Review::Subject)
        }
        ["version"] => return non_resource(NonResource::Version),
        ["healthz" | "livez" | "readyz", ..] => return non_resource(NonResource::Health),
        ["openapi", ..] => return non_resource(NonResource::OpenApi(segs[1..].join("/"))),
        ["api"] => return non_resource(NonResource::CoreVersions),
        ["api", "v1"] => {
            return non_resource(NonResource::Resources {
                group: String::new(),
            })
        }
        ["apis"] => return non_resource(NonResource::Groups),
        ["apis", g] if known_group(g) => return non_resource(NonResource::Group(g.to_string())),
        ["apis", g, "v1"] if known_group(g) => {
            return non_resource(NonResource::Resources {
                group: g.to_string(),
            })
        }
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] if known_group(g) => (*g, rest),
        _ => return Err(ApiError::UnknownPath),
    };

    // `namespaces/{ns}/{plural}...` unless that is a namespace's own subresource.
    let namespaced =
        |plural: &str| Kind::from_group_resource(group, plural).filter(|k| k.def().namespaced);
    let (namespace, kind, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced(plural).is_some() => {
            let kind = namespaced(plural).ok_or(ApiError::UnknownPath)?;
            match tail {
                [] => (Some(*ns), kind, None, None),
                [name] => (Some(*ns), kind, Some(*name), None),
                [name, sub] => (Some(*ns), kind, Some(*name), Some(*sub)),
                _ => return Err(ApiError::UnknownPath),
            }
        }
        [plural, tail @ ..] => {
            let kind = Kind::from_group_resource(group, plural).ok_or(ApiError::UnknownPath)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(*name), None),
                [name, sub] => (Some(*name), Some(*sub)),
                _ => return Err(ApiError::UnknownPath),
            };
            // A namespaced kind without a namespace: only the all-namespaces list/watch.
            if kind.def().namespaced && name.is_some() {
                return Err(ApiError::UnknownPath);
            }
            (None, kind, name, sub)
        }
        [] => return Err(ApiError::UnknownPath),
    };
    if let Some(sub) = sub {
        if sub != "status" || !kind.def().has_status {
            return Err(ApiError::UnknownPath);
        }
    }

    let verb = match (method.clone(), name.is_some()) {
        (Method::GET, true) if is_watch(query) => Verb::Watch,
        (Method::GET, true) => Verb::Get,
        (Method::GET, false) if is_watch(query) => Verb::Watch,
        (Method::GET, false) => Verb::List,
        (Method::POST, false) if sub.is_none() => Verb::Create,
        (Method::PUT, true) => Verb::Update,
        (Method::PATCH, true) => Verb::Patch,
        (Method::DELETE, true) if sub.is_none() => Verb::Delete,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    if sub.is_some() && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch) {
        return Err(ApiError::MethodNotAllowed);
    }
    // The all-namespaces path of a namespaced kind only lists and watches.
    if kind.def().namespaced && namespace.is_none() && !matches!(verb, Verb::List | Verb::Watch) {
        return Err(ApiError::MethodNotAllowed);
    }
    Ok(Target::Resource(RequestInfo {
        verb,
        kind,
        subresource: sub.map(str::to_string),
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        token: bearer(headers),
    }))
}

fn known_group(g: &str) -> bool {
    !g.is_empty() && super::kind::ALL.iter().any(|d| d.group == g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str, query: &[(&str, &str)]) -> Result<RequestInfo, ApiError> {
        let q = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match resolve(&method, path, &q, &HeaderMap::new())? {
            Target::Resource(i) => Ok(i),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn resolves_resources() {
        let i = info(Method::GET, "/api/v1/nodes", &[("watch", "1")]).ok();
        assert_eq!(i.map(|i| (i.verb, i.kind)), Some((Verb::Watch, Kind::Node)));

        let i = info(
            Method::PUT,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l",
            &[],
        )
        .ok();
        assert_eq!(
            i.map(|i| (i.verb, i.kind, i.namespace, i.name)),
            Some((
                Verb::Update,
                Kind::Lease,
                Some("ns".to_string()),
                Some("l".to_string())
            ))
        );

        let i = info(Method::PATCH, "/api/v1/namespaces/kube-system/status", &[]).ok();
        assert_eq!(
            i.map(|i| (i.kind, i.name, i.subresource)),
            Some((
                Kind::Namespace,
                Some("kube-system".to_string()),
                Some("status".to_string())
            ))
        );

        let i = info(Method::GET, "/apis/events.k8s.io/v1/events", &[]).ok();
        assert_eq!(
            i.map(|i| (i.verb, i.kind)),
            Some((Verb::List, Kind::EventV1))
        );
    }

    #[test]
    fn rejects_unknown_and_wrong_methods() {
        assert!(matches!(
            info(Method::GET, "/api/v1/secrets", &[]),
            Err(ApiError::UnknownPath)
        ));
        assert!(matches!(
            info(Method::GET, "/apis/coordination.k8s.io/v1/leases/x", &[]),
            Err(ApiError::UnknownPath)
        ));
        assert!(matches!(
            info(Method::POST, "/api/v1/nodes/x", &[]),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            info(Method::POST, "/apis/coordination.k8s.io/v1/leases", &[]),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            info(Method::GET, "/api/v1/nodes/x/proxy", &[]),
            Err(ApiError::UnknownPath)
        ));
    }
}
