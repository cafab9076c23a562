//! Self-reviews: SelfSubjectAccessReview (`kubectl auth can-i patch leases`),
//! SelfSubjectRulesReview (`kubectl auth can-i --list`) and SelfSubjectReview
//! (`kubectl auth whoami`), answered from the enforced RBAC policy. Every authenticated
//! user may create them (`system:basic-user`); anonymous requests only where a rule
//! grants it (403 otherwise), unknown tokens get 401. Without enforced RBAC every request is allowed, as with the
//! AlwaysAllow authorizer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::rbac::{Attributes, Decision, UserInfo};
use super::request::Review;
use super::status::ApiError;
use super::Shared;

/// What `system:basic-user` and `system:discovery` grant every authenticated user.
fn basic_rules() -> (Vec<Value>, Vec<Value>) {
    let resource = vec![
        json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
               "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
        json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
               "resources": ["selfsubjectreviews"]}),
    ];
    let non_resource = vec![json!({"verbs": ["get"], "nonResourceURLs": [
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
        "/readyz", "/version", "/version/"]})];
    (resource, non_resource)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `Attributes` borrow static strings; the review's are leaked only for known values.
fn interned(s: &str) -> &'static str {
    super::kind::ALL
        .iter()
        .flat_map(|d| [d.group, d.plural])
        .chain([
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
            "*",
        ])
        .find(|k| *k == s)
        .unwrap_or("<other>")
}

pub(crate) fn serve(sh: &Shared, review: Review, token: Option<&str>, body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::BadRequest(format!("error decoding request body: {e}"))
                .into_response()
        }
    };
    let guard = super::lock(&sh.rbac);
    let policy = guard.as_ref().map(|e| &e.policy);
    let user = match policy {
        Some(p) => match p.user(token) {
            Some(u) => u,
            None => return Decision::Unauthorized.into_response(),
        },
        None if token.is_some() => UserInfo::admin(),
        None => UserInfo::new("system:anonymous", &[]),
    };
    let (plural, group) = match review {
        Review::Access => ("selfsubjectaccessreviews", "authorization.k8s.io"),
        Review::Rules => ("selfsubjectrulesreviews", "authorization.k8s.io"),
        Review::Subject => ("selfsubjectreviews", "authentication.k8s.io"),
    };
    let create_review = Attributes {
        verb: "create",
        group,
        resource: plural,
        subresource: None,
        namespace: None,
        name: None,
    };
    // Authenticated users have system:basic-user; anyone else needs a rule.
    let refused =
        policy.is_some_and(|p| !user.is_authenticated() && !p.allows(&user, &create_review));
    if refused {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("{plural}.{group} is forbidden: User \"{}\" cannot create resource \"{plural}\" in API group \"{group}\" at the cluster scope", user.name),
                "reason": "Forbidden", "details": {"group": group, "kind": plural}, "code": 403})),
        )
            .into_response();
    }
    let mut answer = request.clone();
    answer["metadata"] = json!({"creationTimestamp": null});
    match review {
        Review::Access => {
            let allowed = match (policy, request.pointer("/spec/resourceAttributes")) {
                (None, _) => true,
                (Some(p), Some(ra)) => {
                    let opt = |f: &str| {
                        Some(str_at(ra, f))
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                    };
                    p.allows(
                        &user,
                        &Attributes {
                            verb: interned(str_at(ra, "/verb")),
                            group: interned(str_at(ra, "/group")),
                            resource: interned(str_at(ra, "/resource")),
                            subresource: opt("/subresource"),
                            namespace: opt("/namespace"),
                            name: opt("/name"),
                        },
                    )
                }
                // Non-resource URLs: discovery is open to every authenticated user.
                (Some(_), None) => {
                    str_at(&request, "/spec/nonResourceAttributes/verb") == "get"
                        && basic_rules().1[0]["nonResourceURLs"]
                            .as_array()
                            .is_some_and(|urls| {
                                let path = str_at(&request, "/spec/nonResourceAttributes/path");
                                urls.iter().filter_map(Value::as_str).any(|u| {
                                    u == path
                                        || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                                })
                            })
                }
            };
            answer["status"] = json!({"allowed": allowed});
        }
        Review::Rules => {
            let ns = str_at(&request, "/spec/namespace");
            let (mut resource, non_resource) = basic_rules();
            match policy {
                Some(p) => resource.extend(p.rules_of(&user, ns)),
                None => {
                    resource.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}))
                }
            }
            answer["status"] = json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false});
        }
        Review::Subject => {
            answer["apiVersion"] = json!("authentication.k8s.io/v1");
            answer["kind"] = json!("SelfSubjectReview");
            answer["status"] = json!({"userInfo": {"username": user.name, "groups": user.groups}});
        }
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}
