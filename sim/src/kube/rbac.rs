//! RBAC for the simulated API server: the Roles, ClusterRoles and bindings of a real
//! manifest set (e.g. `kubectl kustomize deploy/overlays/aws`), bearer tokens mapped to
//! users and ServiceAccounts, and the API server's exact answers: `401 Unauthorized` for
//! an unknown token, `403 Forbidden` with the real message for anything the rules do not
//! allow. Off unless [`super::KubeSim::enforce_rbac`] turns it on, so tests that do not
//! care about permissions are unaffected.
//!
//! Matching follows `k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac`: a rule matches
//! when its verbs, apiGroups, resources (`res`, `res/sub`, `*`, `*/sub`) and
//! resourceNames do; a RoleBinding grants only in its own namespace (whether it points
//! at a Role or a ClusterRole), a ClusterRoleBinding everywhere; `system:masters` may do
//! anything. Like the real server, a list or watch with the field selector
//! `metadata.name=X` is authorized as a request for the object named X.

use std::collections::{BTreeSet, HashMap};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::request::{self, NonResource, Query, RequestInfo, Target, Verb};

/// The group of cluster administrators (kubeadm's `admin.conf` user is in it).
pub const MASTERS_GROUP: &str = "system:masters";

/// Who a bearer token authenticates as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: BTreeSet<String>,
}

impl UserInfo {
    /// A user in `system:masters` (allowed everything, as the simulator's default
    /// token is).
    pub fn admin() -> UserInfo {
        UserInfo::new("kubernetes-admin", &[MASTERS_GROUP])
    }

    /// A ServiceAccount's identity as the token authenticator reports it.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo::new(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// A user; `system:authenticated` is added like the real authenticator does.
    pub fn new(name: &str, groups: &[&str]) -> UserInfo {
        let mut groups: BTreeSet<String> = groups.iter().map(|g| g.to_string()).collect();
        groups.insert("system:authenticated".to_string());
        UserInfo {
            name: name.to_string(),
            groups,
        }
    }

    /// The request had no credentials at all.
    fn anonymous() -> UserInfo {
        UserInfo {
            name: "system:anonymous".to_string(),
            groups: ["system:unauthenticated".to_string()].into(),
        }
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        self.groups.contains("system:authenticated")
    }
}

/// A manifest the policy cannot be built from.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error("{kind} {name}: {problem}")]
    Malformed {
        kind: String,
        name: String,
        problem: String,
    },
}

/// One RBAC rule (`rules[]` of a Role or ClusterRole).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

impl Rule {
    fn matches(&self, attrs: &Attributes) -> bool {
        let any = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
        any(&self.verbs, attrs.verb)
            && any(&self.api_groups, attrs.group)
            && self.resource_matches(attrs)
            && (self.resource_names.is_empty()
                || attrs
                    .name
                    .as_deref()
                    .is_some_and(|n| self.resource_names.iter().any(|r| r == n)))
    }

    fn resource_matches(&self, attrs: &Attributes) -> bool {
        let combined = match attrs.subresource.as_deref() {
            Some(sub) => format!("{}/{sub}", attrs.resource),
            None => attrs.resource.to_string(),
        };
        self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || attrs
                    .subresource
                    .as_deref()
                    .is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
        })
    }
}

/// A binding's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    fn applies_to(&self, user: &UserInfo) -> bool {
        match self {
            Subject::User(name) => *name == user.name,
            Subject::Group(group) => user.groups.contains(group),
            Subject::ServiceAccount { namespace, name } => {
                user.name == format!("system:serviceaccount:{namespace}:{name}")
            }
        }
    }
}

/// Rules granted to subjects, cluster-wide or in one namespace.
#[derive(Clone, Debug)]
struct Grant {
    /// The RoleBinding's namespace; `None` for a ClusterRoleBinding.
    namespace: Option<String>,
    subjects: Vec<Subject>,
    rules: Vec<Rule>,
}

/// What a request asks to do, in RBAC's terms.
#[derive(Clone, Debug)]
pub struct Attributes {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Attributes {
    /// A resolved request, with the name of a `metadata.name=` field selector for lists
    /// and watches (the real RequestInfoFactory does the same).
    pub fn of(info: &RequestInfo, query: &Query) -> Attributes {
        let name = match info.verb {
            Verb::List | Verb::Watch if info.name.is_none() => query
                .get("fieldSelector")
                .and_then(|s| single_name_selector(s)),
            _ => info.name.clone(),
        };
        Attributes {
            verb: info.verb.as_str(),
            group: info.api_group(),
            resource: info.resource(),
            subresource: info.subresource.clone(),
            namespace: info.namespace.clone(),
            name,
        }
    }
}

/// `metadata.name=X` (or `==`) as the whole field selector.
fn single_name_selector(selector: &str) -> Option<String> {
    let value = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    (!value.is_empty() && !value.contains(',')).then(|| value.to_string())
}

/// A request RBAC refused, as the API server logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub user: String,
    /// The `message` of the 403 Status.
    pub message: String,
}

/// The authorizer's answer.
#[derive(Debug)]
pub enum Decision {
    Allow,
    /// 401: the token is not known.
    Unauthorized,
    /// 403, with the Status the real server would send.
    Forbidden(Value),
}

impl IntoResponse for Decision {
    fn into_response(self) -> Response {
        let (code, status) = match self {
            Decision::Allow => return StatusCode::OK.into_response(),
            Decision::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": "Unauthorized",
                    "reason": "Unauthorized", "code": 401,
                }),
            ),
            Decision::Forbidden(status) => (StatusCode::FORBIDDEN, status),
        };
        let mut response = (code, axum::Json(status)).into_response();
        if code == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The policy (bindings resolved against their roles) and the known tokens.
#[derive(Clone, Debug, Default)]
pub struct Rbac {
    grants: Vec<Grant>,
    tokens: HashMap<String, UserInfo>,
}

impl Rbac {
    /// The policy of every Role, ClusterRole, RoleBinding and ClusterRoleBinding among
    /// `objects` (other kinds are ignored). A binding whose role is missing grants
    /// nothing, as on a real cluster.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Rbac, RbacError> {
        let objects: Vec<&Value> = objects.into_iter().collect();
        let rbac_kind = |o: &Value, kind: &str| {
            o.get("kind").and_then(Value::as_str) == Some(kind)
                && o.get("apiVersion").and_then(Value::as_str)
                    == Some("rbac.authorization.k8s.io/v1")
        };
        let mut roles: HashMap<(Option<String>, String), Vec<Rule>> = HashMap::new();
        for (kind, namespaced) in [("ClusterRole", false), ("Role", true)] {
            for role in objects.iter().filter(|o| rbac_kind(o, kind)) {
                let (namespace, name) = identity(role, kind, namespaced)?;
                roles.insert((namespace, name), rules(role, kind)?);
            }
        }
        let mut grants = Vec::new();
        for (kind, namespaced) in [("ClusterRoleBinding", false), ("RoleBinding", true)] {
            for binding in objects.iter().filter(|o| rbac_kind(o, kind)) {
                let (namespace, name) = identity(binding, kind, namespaced)?;
                let malformed = |problem: &str| RbacError::Malformed {
                    kind: kind.to_string(),
                    name: name.clone(),
                    problem: problem.to_string(),
                };
                let role_kind = str_at(binding, "/roleRef/kind");
                let role_name = str_at(binding, "/roleRef/name")
                    .ok_or_else(|| malformed("roleRef.name is missing"))?;
                let role_key = match (role_kind, namespaced) {
                    (Some("ClusterRole"), _) => (None, role_name.to_string()),
                    (Some("Role"), true) => (namespace.clone(), role_name.to_string()),
                    _ => {
                        return Err(malformed(
                            "roleRef.kind must be ClusterRole (or Role in a RoleBinding)",
                        ))
                    }
                };
                let subjects = binding
                    .get("subjects")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .map(|s| subject(s, namespace.as_deref()))
                            .collect()
                    })
                    .transpose()
                    .map_err(|problem| malformed(&problem))?
                    .unwrap_or_default();
                grants.push(Grant {
                    namespace,
                    subjects,
                    rules: roles.get(&role_key).cloned().unwrap_or_default(),
                });
            }
        }
        Ok(Rbac {
            grants,
            tokens: HashMap::new(),
        })
    }

    /// Requests bearing `token` act as `user`.
    pub fn add_token(&mut self, token: &str, user: UserInfo) {
        self.tokens.insert(token.to_string(), user);
    }

    /// `token` acts as `user` unless it is already mapped.
    pub(crate) fn add_default_token(&mut self, token: &str, user: UserInfo) {
        self.tokens.entry(token.to_string()).or_insert(user);
    }

    /// The rules `user` has in `namespace` (cluster-wide grants included), as the
    /// `resourceRules` of a SelfSubjectRulesReview.
    pub(crate) fn rules_of(&self, user: &UserInfo, namespace: &str) -> Vec<Value> {
        if user.groups.contains(MASTERS_GROUP) {
            return vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})];
        }
        self.grants
            .iter()
            .filter(|g| g.namespace.as_deref().is_none_or(|ns| ns == namespace))
            .filter(|g| g.subjects.iter().any(|s| s.applies_to(user)))
            .flat_map(|g| g.rules.iter())
            .filter(|r| !r.verbs.is_empty())
            .map(|r| {
                let mut v =
                    json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                if !r.resource_names.is_empty() {
                    v["resourceNames"] = json!(r.resource_names);
                }
                v
            })
            .collect()
    }

    /// Who `token` is (anonymous without one), `None` for a token nobody issued.
    pub(crate) fn user(&self, token: Option<&str>) -> Option<UserInfo> {
        self.authenticate(token)
    }

    /// The user name a token authenticates as, if it is known.
    pub(crate) fn user_of(&self, token: &str) -> Option<String> {
        self.tokens.get(token).map(|u| u.name.clone())
    }

    /// Who a request is: the token's user, the anonymous user without a token, or
    /// `None` for a token nobody issued.
    fn authenticate(&self, token: Option<&str>) -> Option<UserInfo> {
        match token {
            None => Some(UserInfo::anonymous()),
            Some(t) => self.tokens.get(t).cloned(),
        }
    }

    /// May `user` do this?
    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        if user.groups.contains(MASTERS_GROUP) {
            return true;
        }
        self.grants.iter().any(|grant| {
            let in_scope = match &grant.namespace {
                None => true,
                Some(ns) => attrs.namespace.as_deref() == Some(ns.as_str()),
            };
            in_scope
                && grant.subjects.iter().any(|s| s.applies_to(user))
                && grant.rules.iter().any(|r| r.matches(attrs))
        })
    }

    /// The decision for a resource request, and the user it was made for.
    pub fn authorize_resource(
        &self,
        token: Option<&str>,
        attrs: &Attributes,
    ) -> (Decision, Option<UserInfo>) {
        let Some(user) = self.authenticate(token) else {
            return (Decision::Unauthorized, None);
        };
        let decision = if self.allows(&user, attrs) {
            Decision::Allow
        } else {
            Decision::Forbidden(forbidden_status(&user, attrs))
        };
        (decision, Some(user))
    }

    /// Discovery, `/version`, `/openapi` and health: open to every authenticated user
    /// (`system:discovery`), and `public` paths (version, health) to anonymous requests
    /// too (`system:public-info-viewer`).
    pub fn authorize_non_resource(
        &self,
        token: Option<&str>,
        path: &str,
        public: bool,
    ) -> Decision {
        match self.authenticate(token) {
            None => Decision::Unauthorized,
            Some(user) if user.is_authenticated() || public => Decision::Allow,
            Some(user) => Decision::Forbidden(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure",
                "message": format!("forbidden: User {} cannot get path {}", quoted(&user.name), quoted(path)),
                "reason": "Forbidden", "details": {}, "code": 403,
            })),
        }
    }
}

/// RBAC as switched on in a running simulator, with what it refused.
pub(crate) struct Enforcement {
    pub(crate) policy: Rbac,
    pub(crate) denials: Vec<Denial>,
}

impl super::Shared {
    /// The authorizer: `None` to serve the request, or the 401/403 response to send.
    pub(crate) fn authorize(
        &self,
        target: &Target,
        query: &Query,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<Response> {
        let mut guard = super::lock(&self.rbac);
        let enforcement = guard.as_mut()?;
        let decision = match target {
            Target::NonResource(what) => {
                let public = matches!(what, NonResource::Version | NonResource::Health);
                let token = request::bearer(headers);
                enforcement
                    .policy
                    .authorize_non_resource(token.as_deref(), path, public)
            }
            Target::Resource(info) => {
                let attrs = Attributes::of(info, query);
                let (decision, user) = enforcement
                    .policy
                    .authorize_resource(info.token.as_deref(), &attrs);
                if let Decision::Forbidden(status) = &decision {
                    let message = status
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    tracing::warn!(
                        user = user.as_ref().map(|u| u.name.as_str()),
                        message,
                        "kube sim: RBAC denied a request"
                    );
                    enforcement.denials.push(Denial {
                        user: user.map(|u| u.name).unwrap_or_default(),
                        message: message.to_string(),
                    });
                }
                decision
            }
            // Self-reviews authorize themselves (review.rs).
            Target::Review(..) => Decision::Allow,
        };
        match decision {
            Decision::Allow => None,
            refused => Some(refused.into_response()),
        }
    }
}

/// The 403 Status, worded like `responsewriters.ForbiddenStatusError` + `NewForbidden`.
fn forbidden_status(user: &UserInfo, attrs: &Attributes) -> Value {
    let mut resource = attrs.resource.to_string();
    if let Some(sub) = &attrs.subresource {
        resource = format!("{resource}/{sub}");
    }
    let scope = match &attrs.namespace {
        Some(ns) => format!("in the namespace {}", quoted(ns)),
        None => "at the cluster scope".to_string(),
    };
    let reason = format!(
        "User {} cannot {} resource {} in API group {} {scope}",
        quoted(&user.name),
        attrs.verb,
        quoted(&resource),
        quoted(attrs.group),
    );
    let group_resource = if attrs.group.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}.{}", attrs.resource, attrs.group)
    };
    let message = match attrs.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("{group_resource} {} is forbidden: {reason}", quoted(name)),
        None => format!("{group_resource} is forbidden: {reason}"),
    };
    let mut details = json!({"group": attrs.group, "kind": attrs.resource});
    if let Some(name) = attrs.name.as_deref().filter(|n| !n.is_empty()) {
        details["name"] = json!(name);
    }
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": "Forbidden",
        "details": details, "code": 403,
    })
}

/// The 403 of a server whose RBAC caches are not synced yet: every request is denied
/// with the usual message and the reason the authorizer gives at start-up.
pub(crate) fn forbidden_while_starting(user: &str, attrs: &Attributes) -> Decision {
    let user = UserInfo::new(user, &[]);
    let mut status = forbidden_status(&user, attrs);
    if let Some(m) = status.get("message").and_then(Value::as_str) {
        status["message"] = json!(format!("{m}: RBAC: the authorization cache is not ready"));
    }
    Decision::Forbidden(status)
}

/// Go's `%q` for the plain strings that appear here.
fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn identity(
    object: &Value,
    kind: &str,
    namespaced: bool,
) -> Result<(Option<String>, String), RbacError> {
    let name = str_at(object, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(RbacError::Malformed {
            kind: kind.to_string(),
            name,
            problem: "metadata.name is missing".into(),
        });
    }
    // Namespaced objects without a namespace land in `default`, as `kubectl apply` does.
    let namespace = namespaced.then(|| {
        str_at(object, "/metadata/namespace")
            .unwrap_or("default")
            .to_string()
    });
    Ok((namespace, name))
}

fn rules(role: &Value, kind: &str) -> Result<Vec<Rule>, RbacError> {
    let list = |rule: &Value, key: &str| -> Vec<String> {
        rule.get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(items) = role.get("rules").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|rule| {
            if rule.get("nonResourceURLs").is_some() && rule.get("resources").is_none() {
                // Non-resource rules never match a resource request; discovery is open
                // to every authenticated user anyway.
                return Ok(Rule::default());
            }
            let parsed = Rule {
                verbs: list(rule, "verbs"),
                api_groups: list(rule, "apiGroups"),
                resources: list(rule, "resources"),
                resource_names: list(rule, "resourceNames"),
            };
            if parsed.verbs.is_empty() {
                return Err(RbacError::Malformed {
                    kind: kind.to_string(),
                    name: str_at(role, "/metadata/name")
                        .unwrap_or_default()
                        .to_string(),
                    problem: "a rule has no verbs".into(),
                });
            }
            Ok(parsed)
        })
        .collect()
}

fn subject(s: &Value, binding_namespace: Option<&str>) -> Result<Subject, String> {
    let name = str_at(s, "/name")
        .ok_or("a subject has no name")?
        .to_string();
    match str_at(s, "/kind") {
        Some("User") => Ok(Subject::User(name)),
        Some("Group") => Ok(Subject::Group(name)),
        Some("ServiceAccount") => {
            // A ServiceAccount subject of a RoleBinding defaults to the binding's namespace.
            let namespace = str_at(s, "/namespace")
                .or(binding_namespace)
                .ok_or("a ServiceAccount subject of a ClusterRoleBinding needs a namespace")?;
            Ok(Subject::ServiceAccount {
                namespace: namespace.to_string(),
                name,
            })
        }
        other => Err(format!("unknown subject kind {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifests() -> Vec<Value> {
        vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "nodes"},
                   "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "nodes"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "nodes"},
                   "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "sys"}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "leases", "namespace": "sys"},
                   "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get"], "resourceNames": ["mine"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "leases", "namespace": "sys"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leases"},
                   "subjects": [{"kind": "ServiceAccount", "name": "agent"}]}),
            // Reuses a ClusterRole in one namespace only.
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "nodes-in-ns", "namespace": "other"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "nodes"},
                   "subjects": [{"kind": "Group", "name": "readers"}]}),
        ]
    }

    fn attrs(
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Attributes {
        Attributes {
            verb,
            group,
            resource,
            subresource: None,
            namespace: ns.map(String::from),
            name: name.map(String::from),
        }
    }

    fn policy() -> Rbac {
        let objects = manifests();
        let mut rbac = Rbac::from_objects(&objects).expect("valid policy");
        rbac.add_token("agent-token", UserInfo::service_account("sys", "agent"));
        rbac.add_token("admin-token", UserInfo::admin());
        rbac.add_token("reader-token", UserInfo::new("alice", &["readers"]));
        rbac
    }

    #[test]
    fn bound_rules_allow_and_everything_else_is_forbidden() {
        let rbac = policy();
        let agent = UserInfo::service_account("sys", "agent");
        assert!(rbac.allows(&agent, &attrs("get", "", "nodes", None, Some("n1"))));
        assert!(rbac.allows(&agent, &attrs("patch", "", "nodes", None, Some("n1"))));
        assert!(!rbac.allows(&agent, &attrs("delete", "", "nodes", None, Some("n1"))));
        assert!(!rbac.allows(&agent, &attrs("list", "", "nodes", None, None)));
        // resourceNames narrow the Role; the namespace bounds it.
        assert!(rbac.allows(
            &agent,
            &attrs(
                "get",
                "coordination.k8s.io",
                "leases",
                Some("sys"),
                Some("mine")
            )
        ));
        assert!(!rbac.allows(
            &agent,
            &attrs(
                "get",
                "coordination.k8s.io",
                "leases",
                Some("sys"),
                Some("yours")
            )
        ));
        assert!(!rbac.allows(
            &agent,
            &attrs(
                "get",
                "coordination.k8s.io",
                "leases",
                Some("kube-system"),
                Some("mine")
            )
        ));
        // Another ServiceAccount of the same name elsewhere gets nothing.
        let impostor = UserInfo::service_account("default", "agent");
        assert!(!rbac.allows(&impostor, &attrs("get", "", "nodes", None, Some("n1"))));
        assert!(rbac.allows(
            &UserInfo::admin(),
            &attrs("delete", "", "nodes", None, Some("n1"))
        ));
    }

    #[test]
    fn a_role_binding_to_a_cluster_role_grants_only_in_its_namespace() {
        let rbac = policy();
        let alice = UserInfo::new("alice", &["readers"]);
        assert!(!rbac.allows(&alice, &attrs("get", "", "nodes", None, Some("n1"))));
        // (nodes are cluster-scoped, so a namespaced grant of them is useless, as on a real cluster)
    }

    #[test]
    fn subresources_need_their_own_rule() {
        let rule = Rule {
            verbs: vec!["patch".into()],
            api_groups: vec!["".into()],
            resources: vec!["nodes".into()],
            resource_names: vec![],
        };
        let mut a = attrs("patch", "", "nodes", None, Some("n1"));
        assert!(rule.matches(&a));
        a.subresource = Some("status".into());
        assert!(!rule.matches(&a));
        let star = Rule {
            resources: vec!["*/status".into()],
            ..rule
        };
        assert!(star.matches(&a));
    }

    #[test]
    fn forbidden_and_unauthorized_answers_match_the_api_server() {
        let rbac = policy();
        let (decision, _) = rbac.authorize_resource(
            Some("agent-token"),
            &attrs(
                "update",
                "coordination.k8s.io",
                "leases",
                Some("sys"),
                Some("pinip-1"),
            ),
        );
        let Decision::Forbidden(status) = decision else {
            panic!("expected 403, got {decision:?}");
        };
        assert_eq!(
            status["message"],
            "leases.coordination.k8s.io \"pinip-1\" is forbidden: User \"system:serviceaccount:sys:agent\" \
             cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"sys\""
        );
        assert_eq!(status["reason"], "Forbidden");
        assert_eq!(status["code"], 403);
        assert_eq!(
            status["details"],
            json!({"group": "coordination.k8s.io", "kind": "leases", "name": "pinip-1"})
        );

        let (decision, _) =
            rbac.authorize_resource(Some("agent-token"), &attrs("list", "", "nodes", None, None));
        let Decision::Forbidden(status) = decision else {
            panic!("expected 403, got {decision:?}");
        };
        assert_eq!(
            status["message"],
            "nodes is forbidden: User \"system:serviceaccount:sys:agent\" cannot list resource \"nodes\" \
             in API group \"\" at the cluster scope"
        );
        assert!(matches!(
            rbac.authorize_resource(Some("stolen"), &attrs("get", "", "nodes", None, Some("n1")))
                .0,
            Decision::Unauthorized
        ));
        assert!(matches!(
            rbac.authorize_resource(None, &attrs("get", "", "nodes", None, Some("n1")))
                .0,
            Decision::Forbidden(_)
        ));
        assert!(matches!(
            rbac.authorize_non_resource(Some("agent-token"), "/api", false),
            Decision::Allow
        ));
        assert!(matches!(
            rbac.authorize_non_resource(None, "/version", true),
            Decision::Allow
        ));
        assert!(matches!(
            rbac.authorize_non_resource(Some("stolen"), "/api", false),
            Decision::Unauthorized
        ));
        let Decision::Forbidden(status) = rbac.authorize_non_resource(None, "/api", false) else {
            panic!("anonymous discovery must be refused");
        };
        assert_eq!(
            status["message"],
            "forbidden: User \"system:anonymous\" cannot get path \"/api\""
        );
    }

    #[test]
    fn a_name_field_selector_names_the_object_of_a_list() {
        assert_eq!(
            single_name_selector("metadata.name=node-1").as_deref(),
            Some("node-1")
        );
        assert_eq!(
            single_name_selector("metadata.name==node-1").as_deref(),
            Some("node-1")
        );
        assert_eq!(
            single_name_selector("metadata.name=a,spec.unschedulable=false"),
            None
        );
        assert_eq!(single_name_selector("spec.nodeName=node-1"), None);
    }

    #[test]
    fn malformed_bindings_are_refused() {
        let bad = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "x"},
                         "roleRef": {"kind": "Role", "name": "r"}, "subjects": []});
        assert!(Rbac::from_objects([&bad]).is_err());
        let sa_without_ns = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "x"},
                         "roleRef": {"kind": "ClusterRole", "name": "r"},
                         "subjects": [{"kind": "ServiceAccount", "name": "a"}]});
        assert!(Rbac::from_objects([&sa_without_ns]).is_err());
    }
}
