//! The shipped manifests, as `kubectl apply -k deploy/base` would send them: rendered
//! with `kubectl kustomize` and checked against the code.
//!
//! - RBAC grants exactly `pinip::cluster::permissions::REQUIRED`: nothing missing, nothing more;
//! - the DaemonSet runs hardened, with the node name from the Downward API, and leaves
//!   time for the release on exit;
//! - every environment variable it sets is one `pinip run` reads (derived from the
//!   source, so renaming a setting without updating the manifests fails here);
//! - the overlays (deploy/overlays/*) and the examples built on them grant exactly the
//!   base's RBAC, contain nothing the agent does not use, and set what each cloud needs;
//!   the probes ask the admin server on its port; the image tag is the crate version;
//! - the Helm chart (deploy/helm/pinip, rendered by the Helm engine: tests/helm_support)
//!   passes the same RBAC checks as deploy/base and sets only settings the agent reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use pinip::cluster::permissions::{Scope, EVENT_NAMESPACE, REQUIRED};
use serde_json::Value;

const NAMESPACE: &str = "pinip-system";
const SERVICE_ACCOUNT: &str = "pinip";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// All objects of `deploy/base`, rendered once per test binary.
fn rendered() -> &'static [Value] {
    static OBJECTS: OnceLock<Vec<Value>> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        let base = root().join("deploy/base");
        let output = match Command::new("kubectl").arg("kustomize").arg(&base).output() {
            Ok(output) => output,
            Err(e) => panic!(
                "cannot run `kubectl kustomize {}`: {e}. kubectl (>= 1.27, with its built-in kustomize) is required \
                 for this test; CI installs it, install it locally the same way",
                base.display()
            ),
        };
        assert!(
            output.status.success(),
            "kubectl kustomize {} failed: {}",
            base.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("kustomize output is UTF-8");
        let objects: Vec<Value> = serde_saphyr::from_multiple(&text).expect("kustomize output is valid YAML");
        assert!(!objects.is_empty(), "deploy/base rendered no objects");
        objects
    })
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn kind(object: &Value) -> &str {
    str_at(object, "/kind").unwrap_or("")
}

fn name(object: &Value) -> &str {
    str_at(object, "/metadata/name").unwrap_or("")
}

fn namespace(object: &Value) -> Option<&str> {
    str_at(object, "/metadata/namespace")
}

fn objects_in<'a>(objects: &'a [Value], kind_name: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == kind_name).collect()
}

fn objects_of(kind_name: &str) -> Vec<&'static Value> {
    rendered().iter().filter(|o| kind(o) == kind_name).collect()
}

fn the_one(kind_name: &str) -> &'static Value {
    let found = objects_of(kind_name);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind_name}, found {}",
        found.len()
    );
    found[0]
}

fn daemonset() -> &'static Value {
    the_one("DaemonSet")
}

fn pod_spec() -> &'static Value {
    daemonset()
        .pointer("/spec/template/spec")
        .expect("DaemonSet has a pod template")
}

fn container() -> &'static Value {
    let containers = pod_spec()
        .pointer("/containers")
        .and_then(Value::as_array)
        .expect("containers");
    assert_eq!(containers.len(), 1, "the DaemonSet runs one container");
    &containers[0]
}

fn env_var(var: &str) -> Option<&'static Value> {
    container()
        .pointer("/env")
        .and_then(Value::as_array)
        .and_then(|env| env.iter().find(|e| str_at(e, "/name") == Some(var)))
}

/// The namespace `LEASE_NAMESPACE` resolves to in the pod of a rendering's DaemonSet.
fn lease_namespace(objects: &[Value]) -> String {
    let sets = objects_in(objects, "DaemonSet");
    assert_eq!(sets.len(), 1, "one DaemonSet");
    let entry = sets[0]
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| str_at(e, "/name") == Some("LEASE_NAMESPACE"))
        })
        .expect("the DaemonSet sets LEASE_NAMESPACE");
    if let Some(value) = str_at(entry, "/value") {
        return value.to_string();
    }
    assert_eq!(
        str_at(entry, "/valueFrom/fieldRef/fieldPath"),
        Some("metadata.namespace"),
        "LEASE_NAMESPACE is a literal or the pod's own namespace"
    );
    namespace(sets[0])
        .expect("the DaemonSet has a namespace")
        .to_string()
}

/// (group, resource, verb, scope)
type Grant = (String, String, String, Scope);

fn scope_of_namespace(objects: &[Value], ns: &str) -> Scope {
    let lease_ns = lease_namespace(objects);
    assert_ne!(
        lease_ns, EVENT_NAMESPACE,
        "Leases and Events would share a Role namespace"
    );
    if ns == lease_ns {
        Scope::LeaseNamespace
    } else if ns == EVENT_NAMESPACE {
        Scope::EventNamespace
    } else {
        panic!("a Role in namespace {ns:?}, which the agent never uses (leases: {lease_ns}, events: {EVENT_NAMESPACE})")
    }
}

/// Every grant a rendering's RBAC gives the agent's ServiceAccount, by the Role or
/// ClusterRole it comes from.
fn granted(objects: &[Value]) -> BTreeMap<Grant, String> {
    let mut grants = BTreeMap::new();
    for binding in objects_in(objects, "ClusterRoleBinding")
        .into_iter()
        .chain(objects_in(objects, "RoleBinding"))
    {
        let role_kind = str_at(binding, "/roleRef/kind").unwrap_or("");
        let role_name = str_at(binding, "/roleRef/name").unwrap_or("");
        let (role, scope) = match (kind(binding), role_kind) {
            ("ClusterRoleBinding", "ClusterRole") => {
                let role = objects_in(objects, "ClusterRole").into_iter().find(|r| name(r) == role_name);
                (role, Scope::Cluster)
            }
            ("RoleBinding", "Role") => {
                let ns = namespace(binding).unwrap_or("");
                let role = objects_in(objects, "Role").into_iter().find(|r| name(r) == role_name && namespace(r) == Some(ns));
                (role, scope_of_namespace(objects, ns))
            }
            (binding_kind, role_kind) => panic!(
                "{binding_kind} {} binds a {role_kind}: bind ClusterRoles with ClusterRoleBindings and Roles with RoleBindings",
                name(binding)
            ),
        };
        let role = role.unwrap_or_else(|| {
            panic!(
                "{} {} refers to a missing {role_kind} {role_name}",
                kind(binding),
                name(binding)
            )
        });
        let origin = format!(
            "{} {}/{}",
            kind(role),
            namespace(role).unwrap_or("-"),
            name(role)
        );
        let rules = role
            .pointer("/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for rule in &rules {
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "{origin} grants nonResourceURLs"
            );
            let list = |key: &str| -> Vec<String> {
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
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        assert!(
                            group != "*" && resource != "*" && verb != "*",
                            "{origin} grants a wildcard ({group}/{resource}: {verb})"
                        );
                        grants.insert(
                            (group.clone(), resource.clone(), verb, scope),
                            origin.clone(),
                        );
                    }
                }
            }
        }
    }
    grants
}

/// Every rendering whose RBAC must be exactly src/permissions.rs: the kustomize base
/// and the Helm chart (release `pinip` in `pinip-system`) with its default values and
/// each of its ci/ values files. The overlays are compared with the base below.
fn rbac_renderings() -> Vec<(String, Vec<Value>)> {
    let mut renderings = vec![("deploy/base".to_string(), rendered().to_vec())];
    renderings.push((
        "deploy/helm/pinip (default values)".to_string(),
        helm_support::render(&[], &serde_json::json!({})),
    ));
    for file in helm_support::ci_values_files() {
        renderings.push((
            format!("deploy/helm/pinip ({file})"),
            helm_support::render(&[file.as_str()], &serde_json::json!({})),
        ));
    }
    renderings
}

#[test]
fn rbac_grants_exactly_the_required_permissions() {
    for (what, objects) in rbac_renderings() {
        rbac_grants_exactly_the_required_permissions_in(&what, &objects);
    }
}

fn rbac_grants_exactly_the_required_permissions_in(what: &str, objects: &[Value]) {
    let required: BTreeSet<Grant> = REQUIRED
        .iter()
        .flat_map(|p| {
            p.verbs.iter().map(move |v| {
                (
                    p.group.to_string(),
                    p.resource.to_string(),
                    v.to_string(),
                    p.scope,
                )
            })
        })
        .collect();
    let granted = granted(objects);
    let missing: Vec<_> = required
        .iter()
        .filter(|g| !granted.contains_key(*g))
        .collect();
    let extra: Vec<_> = granted
        .iter()
        .filter(|(g, _)| !required.contains(*g))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: the RBAC (deploy/base/rbac.yaml, deploy/helm/pinip/templates/rbac.yaml) lacks permissions the agent uses: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "{what}: the RBAC (deploy/base/rbac.yaml, deploy/helm/pinip/templates/rbac.yaml) grants more than src/permissions.rs lists (least privilege): {extra:?}"
    );
}

#[test]
fn roles_live_where_their_scope_says() {
    for (what, objects) in rbac_renderings() {
        roles_live_where_their_scope_says_in(&what, &objects);
    }
}

fn roles_live_where_their_scope_says_in(what: &str, objects: &[Value]) {
    let granted = granted(objects);
    for ((group, resource, verb, scope), origin) in &granted {
        let expected = match scope {
            Scope::Cluster => "ClusterRole -/".to_string(),
            Scope::LeaseNamespace => format!("Role {}/", lease_namespace(objects)),
            Scope::EventNamespace => format!("Role {EVENT_NAMESPACE}/"),
        };
        assert!(
            origin.starts_with(&expected),
            "{what}: {group}/{resource} {verb} ({scope:?}) comes from {origin}, expected a {expected}…"
        );
    }
    assert_eq!(
        lease_namespace(objects),
        NAMESPACE,
        "{what}: the lease Role is in {NAMESPACE}, so LEASE_NAMESPACE must be too"
    );
    // Nothing defined and left unbound (it would be dead weight or a grant in waiting).
    for role in objects_in(objects, "ClusterRole")
        .into_iter()
        .chain(objects_in(objects, "Role"))
    {
        let role_ref = format!(
            "{} {}/{}",
            kind(role),
            namespace(role).unwrap_or("-"),
            name(role)
        );
        assert!(
            granted.values().any(|o| *o == role_ref),
            "{what}: {role_ref} is not bound to the agent"
        );
    }
}

#[test]
fn bindings_point_at_the_pinip_service_account() {
    for (what, objects) in rbac_renderings() {
        bindings_point_at_the_pinip_service_account_in(&what, &objects);
    }
}

fn bindings_point_at_the_pinip_service_account_in(what: &str, objects: &[Value]) {
    let accounts = objects_in(objects, "ServiceAccount");
    assert_eq!(accounts.len(), 1, "{what}: one ServiceAccount");
    let account = accounts[0];
    assert_eq!(
        (namespace(account), name(account)),
        (Some(NAMESPACE), SERVICE_ACCOUNT),
        "{what}"
    );
    let bindings: Vec<_> = objects_in(objects, "ClusterRoleBinding")
        .into_iter()
        .chain(objects_in(objects, "RoleBinding"))
        .collect();
    let roles = objects_in(objects, "ClusterRole").len() + objects_in(objects, "Role").len();
    assert_eq!(
        bindings.len(),
        roles,
        "{what}: one binding per Role/ClusterRole"
    );
    for binding in bindings {
        let subjects = binding
            .pointer("/subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            subjects.len(),
            1,
            "{what}: {} {} binds exactly the agent",
            kind(binding),
            name(binding)
        );
        let subject = &subjects[0];
        assert_eq!(
            (
                str_at(subject, "/kind"),
                str_at(subject, "/namespace"),
                str_at(subject, "/name")
            ),
            (
                Some("ServiceAccount"),
                Some(NAMESPACE),
                Some(SERVICE_ACCOUNT)
            ),
            "{} {}",
            kind(binding),
            name(binding)
        );
    }
}

#[test]
fn daemonset_runs_hardened_on_its_node() {
    let ds = daemonset();
    assert_eq!((namespace(ds), name(ds)), (Some(NAMESPACE), "pinip"));
    let pod = pod_spec();
    assert_eq!(str_at(pod, "/serviceAccountName"), Some(SERVICE_ACCOUNT));
    assert_eq!(
        str_at(pod, "/priorityClassName"),
        Some("system-node-critical")
    );
    assert_ne!(
        pod.pointer("/hostNetwork").and_then(Value::as_bool),
        Some(true),
        "no hostNetwork"
    );
    let grace = pod
        .pointer("/terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .expect("terminationGracePeriodSeconds is set");
    assert!(
        grace > 20,
        "terminationGracePeriodSeconds {grace} leaves no room for RELEASE_TIMEOUT (20s by default)"
    );

    let node_name = env_var("NODE_NAME").expect("the DaemonSet sets NODE_NAME");
    assert_eq!(
        str_at(node_name, "/valueFrom/fieldRef/fieldPath"),
        Some("spec.nodeName")
    );

    let container = container();
    assert_eq!(
        container.pointer("/args"),
        Some(&serde_json::json!(["run"]))
    );
    let security = container
        .pointer("/securityContext")
        .expect("the container has a securityContext");
    assert_eq!(security.pointer("/runAsNonRoot"), Some(&Value::Bool(true)));
    assert_eq!(
        security.pointer("/readOnlyRootFilesystem"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        security.pointer("/allowPrivilegeEscalation"),
        Some(&Value::Bool(false))
    );
    assert_eq!(
        security.pointer("/capabilities/drop"),
        Some(&serde_json::json!(["ALL"]))
    );
    assert!(
        security.pointer("/capabilities/add").is_none(),
        "no capability is added"
    );
    assert_eq!(
        str_at(security, "/seccompProfile/type"),
        Some("RuntimeDefault")
    );

    // The pod must outlive the node-removal taints, to release its address on SIGTERM.
    let tolerations = pod
        .pointer("/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in ["ToBeDeletedByClusterAutoscaler", "karpenter.sh/disrupted"] {
        assert!(
            tolerations.iter().any(|t| str_at(t, "/key") == Some(key)),
            "no toleration for {key}"
        );
    }
}

#[test]
fn every_object_carries_the_app_label() {
    for object in rendered() {
        assert_eq!(
            str_at(object, "/metadata/labels/app.kubernetes.io~1name"),
            Some("pinip"),
            "{} {}",
            kind(object),
            name(object)
        );
    }
    assert_eq!(
        str_at(
            daemonset(),
            "/spec/template/metadata/labels/app.kubernetes.io~1name"
        ),
        Some("pinip")
    );
}

/// The text of `key = "…"` (or of `key = …` up to `,` or `)`) in one attribute line.
fn attribute_value(line: &str, key: &str) -> Option<String> {
    let at = line
        .find(&format!(" {key} = "))
        .or_else(|| line.find(&format!("({key} = ")))?;
    let value = &line[at + key.len() + 4..];
    Some(match value.strip_prefix('"') {
        Some(quoted) => quoted[..quoted.find('"').unwrap_or(quoted.len())].to_string(),
        None => value[..value.find([',', ')']).unwrap_or(value.len())]
            .trim()
            .to_string(),
    })
}

/// The `env = "…"` settings of `struct_name` in config.rs and of the structs it
/// flattens, with their clap defaults.
fn clap_settings(source: &str, struct_name: &str, settings: &mut BTreeMap<String, Option<String>>) {
    let start = source
        .find(&format!("pub struct {struct_name} {{"))
        .unwrap_or_else(|| {
            panic!(
                "src/config/ and src/cloud/ have no `pub struct {struct_name}`; update this test"
            )
        });
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    let mut flatten_next = false;
    for line in body.lines().map(str::trim) {
        if let Some(var) = attribute_value(line, "env") {
            let default = attribute_value(line, "default_value")
                .or_else(|| attribute_value(line, "default_value_t"));
            settings.insert(var, default);
        }
        if line.starts_with("#[command(flatten)]") {
            flatten_next = true;
        } else if flatten_next && line.starts_with("pub ") {
            flatten_next = false;
            let ty = line
                .rsplit(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_end_matches(',');
            clap_settings(source, ty, settings);
        }
    }
}

/// `pinip run`'s settings, read from src/config.rs: env var → clap default.
fn run_settings() -> BTreeMap<String, Option<String>> {
    // config/mod.rs plus the per-cloud groups it flattens (src/cloud/*.rs).
    let mut config =
        std::fs::read_to_string(root().join("src/config/mod.rs")).expect("read src/config/mod.rs");
    let mut cloud_files: Vec<_> = std::fs::read_dir(root().join("src/cloud"))
        .expect("read src/cloud")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    cloud_files.sort();
    for file in cloud_files {
        config.push('\n');
        config.push_str(&std::fs::read_to_string(&file).expect("read a cloud_args file"));
    }
    let mut settings = BTreeMap::new();
    clap_settings(&config, "RunArgs", &mut settings);
    for (var, default) in [
        ("NODE_NAME", None),
        ("LEASE_NAMESPACE", Some("default")),
        ("RETRY_ATTEMPTS", Some("60")),
        ("LOG_JSON", Some("false")),
    ] {
        assert_eq!(
            settings.get(var).map(Option::as_deref),
            Some(default),
            "{var} not found as expected among `pinip run`'s settings {settings:?}; update this test"
        );
    }
    settings
}

/// Names read straight from the environment (`std::env::var("…")`) anywhere in src/.
fn direct_env_reads(dir: &Path, names: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            direct_env_reads(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for pattern in ["env::var(\"", "env::var_os(\""] {
                for (at, _) in text.match_indices(pattern) {
                    let value = &text[at + pattern.len()..];
                    names.insert(value[..value.find('"').unwrap_or(0)].to_string());
                }
            }
        }
    }
}

/// The names of the env vars the DaemonSet sets, in order.
fn daemonset_env_names() -> Vec<&'static str> {
    container()
        .pointer("/env")
        .and_then(Value::as_array)
        .map(|env| env.iter().filter_map(|e| str_at(e, "/name")).collect())
        .unwrap_or_default()
}

#[test]
fn daemonset_env_vars_are_settings_pinip_run_reads() {
    let mut known: BTreeSet<String> = run_settings().into_keys().collect();
    direct_env_reads(&root().join("src"), &mut known);
    let names = daemonset_env_names();
    assert!(!names.is_empty());
    for var in &names {
        assert!(
            known.contains(*var),
            "the DaemonSet sets {var}, which `pinip run` does not read (known: {known:?})"
        );
    }
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "an env var is set twice: {names:?}"
    );
}

/// docs/migrating-from-kubeip.md has a table row for every setting of `pinip run` and
/// every variable the DaemonSet sets, stating the default the code has (documented
/// defaults that drifted from the code were one of KubeIP's bugs).
#[test]
fn migration_guide_states_every_setting_and_its_default() {
    let guide = std::fs::read_to_string(root().join("docs/migrating-from-kubeip.md"))
        .expect("read the migration guide");
    let mut settings = run_settings();
    for var in daemonset_env_names() {
        settings.entry(var.to_string()).or_insert(None);
    }
    for (var, default) in &settings {
        let row = guide
            .lines()
            .find(|line| line.starts_with(&format!("| `{var}`")))
            .unwrap_or_else(|| panic!("docs/migrating-from-kubeip.md has no table row for {var}"));
        if let Some(default) = default {
            assert!(
                row.contains(&format!("`{default}`")),
                "docs/migrating-from-kubeip.md: the row of {var} does not state its default `{default}` (src/config.rs)"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The overlays (deploy/overlays/*) and the examples built on them.

mod helm_support;
mod kustomize;

use pinip::config::filter_syntax::{check_filter, FilterForm};

/// The manifests users apply: every overlay, and the examples of examples/.
const APPLIED: &[&str] = &[
    "deploy/overlays/aws",
    "deploy/overlays/gcp",
    "deploy/overlays/gcp-ipv6",
    "examples/two-pools",
];

/// The kinds the agent's installation consists of. Anything else would be something the
/// agent does not use.
const AGENT_KINDS: &[&str] = &[
    "Namespace",
    "ServiceAccount",
    "ResourceQuota",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "DaemonSet",
];

/// The RBAC objects of a rendering, minus the labels, for comparison.
fn rbac_of(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| kind(o).contains("Role"))
        .map(|o| {
            let mut o = o.clone();
            if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("labels");
            }
            o.to_string()
        })
        .collect()
}

#[test]
fn overlays_grant_exactly_the_base_rbac() {
    let base = rbac_of(rendered());
    for dir in APPLIED {
        assert_eq!(
            rbac_of(&kustomize::render(dir)),
            base,
            "{dir} changes the RBAC of deploy/base; permissions belong in deploy/base/rbac.yaml and src/permissions.rs"
        );
    }
}

#[test]
fn overlays_contain_nothing_the_agent_does_not_use() {
    let mut known: BTreeSet<String> = run_settings().into_keys().collect();
    direct_env_reads(&root().join("src"), &mut known);
    for dir in APPLIED {
        let objects = kustomize::render(dir);
        for object in &objects {
            assert!(
                AGENT_KINDS.contains(&kind(object)),
                "{dir} renders a {} ({}), which the agent does not use",
                kind(object),
                name(object)
            );
        }
        for ds in kustomize::of_kind(&objects, "DaemonSet") {
            let env = kustomize::container(ds)
                .pointer("/env")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<&str> = env.iter().filter_map(|e| str_at(e, "/name")).collect();
            for var in &names {
                assert!(
                    known.contains(*var),
                    "{dir}: DaemonSet {} sets {var}, which `pinip run` does not read",
                    name(ds)
                );
            }
            let unique: BTreeSet<_> = names.iter().collect();
            assert_eq!(
                unique.len(),
                names.len(),
                "{dir}: an env var is set twice: {names:?}"
            );
        }
    }
}

/// Kinds only the chart renders, each behind a value that is off by default.
const CHART_OPTIONAL_KINDS: &[&str] = &["PodMonitor", "PrometheusRule", "NetworkPolicy"];

#[test]
fn the_chart_contains_nothing_the_agent_does_not_use() {
    let mut known: BTreeSet<String> = run_settings().into_keys().collect();
    direct_env_reads(&root().join("src"), &mut known);
    for (what, objects) in rbac_renderings().into_iter().skip(1) {
        for object in &objects {
            assert!(
                AGENT_KINDS.contains(&kind(object)) || CHART_OPTIONAL_KINDS.contains(&kind(object)),
                "{what} renders a {} ({}), which the agent does not use",
                kind(object),
                name(object)
            );
        }
        let ds = daemonset_of(&objects);
        let names: Vec<&str> = kustomize::container(ds)
            .pointer("/env")
            .and_then(Value::as_array)
            .map(|env| env.iter().filter_map(|e| str_at(e, "/name")).collect())
            .unwrap_or_default();
        for var in &names {
            assert!(
                known.contains(*var),
                "{what}: the DaemonSet sets {var}, which `pinip run` does not read"
            );
        }
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "{what}: an env var is set twice: {names:?}"
        );
    }
}

/// The DaemonSet of a rendering with one.
fn daemonset_of(objects: &[Value]) -> &Value {
    kustomize::the_one(objects, "DaemonSet")
}

fn service_account_annotation<'a>(objects: &'a [Value], key: &str) -> Option<&'a str> {
    let account = kustomize::the_one(objects, "ServiceAccount");
    account
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

#[test]
fn the_aws_overlay_assumes_an_iam_role_and_takes_tagged_elastic_ips() {
    let objects = kustomize::render("deploy/overlays/aws");
    let role = service_account_annotation(&objects, "eks.amazonaws.com/role-arn")
        .expect("IRSA annotation on the ServiceAccount");
    assert!(
        role.starts_with("arn:aws:iam::") && role.contains(":role/"),
        "{role} is not an IAM role ARN"
    );
    let ds = daemonset_of(&objects);
    let filter: Vec<String> = kustomize::env_value(ds, "FILTER")
        .expect("FILTER is set")
        .split(';')
        .map(String::from)
        .collect();
    assert_eq!(check_filter(&filter), Ok(FilterForm::AwsShorthand));
    assert_eq!(filter, vec!["Name=tag:kubeip,Values=reserved".to_string()]);
    assert_eq!(
        kustomize::env_value(ds, "IPV6"),
        None,
        "IPv4 (Elastic IPs) on AWS"
    );
}

#[test]
fn the_gcp_overlays_use_workload_identity_and_take_labelled_addresses() {
    for (dir, ipv6) in [
        ("deploy/overlays/gcp", None),
        ("deploy/overlays/gcp-ipv6", Some("true")),
    ] {
        let objects = kustomize::render(dir);
        let account = service_account_annotation(&objects, "iam.gke.io/gcp-service-account")
            .expect("Workload Identity annotation on the ServiceAccount");
        assert!(
            account.ends_with(".iam.gserviceaccount.com") && account.contains('@'),
            "{dir}: {account} is not a Google service account"
        );
        let ds = daemonset_of(&objects);
        let filter = vec![kustomize::env_value(ds, "FILTER")
            .expect("FILTER is set")
            .to_string()];
        assert_eq!(
            check_filter(&filter),
            Ok(FilterForm::ComputeExpressions),
            "{dir}"
        );
        assert_eq!(filter, vec!["labels.kubeip=reserved".to_string()], "{dir}");
        assert_eq!(kustomize::env_value(ds, "IPV6"), ipv6, "{dir}");
    }
}

/// The port of `ADMIN_ADDR`'s default (`0.0.0.0:9090` → 9090).
fn admin_port() -> u64 {
    let settings = run_settings();
    let default = settings
        .get("ADMIN_ADDR")
        .cloned()
        .flatten()
        .expect("ADMIN_ADDR has a default");
    default
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("ADMIN_ADDR default {default:?} has no port"))
}

#[test]
fn probes_ask_the_admin_server_on_its_port() {
    let admin = std::fs::read_to_string(root().join("src/admin/server.rs"))
        .expect("read src/admin/server.rs");
    let container = container();
    let ports = container
        .pointer("/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let admin_port_entry = ports
        .iter()
        .find(|p| str_at(p, "/name") == Some("admin"))
        .expect("a container port named admin");
    assert_eq!(
        admin_port_entry
            .pointer("/containerPort")
            .and_then(Value::as_u64),
        Some(admin_port()),
        "the admin port is ADMIN_ADDR's default"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let probe_spec = container
            .pointer(&format!("/{probe}/httpGet"))
            .unwrap_or_else(|| panic!("{probe} is an httpGet"));
        assert_eq!(str_at(probe_spec, "/path"), Some(path), "{probe}");
        assert_eq!(str_at(probe_spec, "/port"), Some("admin"), "{probe}");
        assert!(
            admin.contains(&format!(".route(\"{path}\"")),
            "src/admin/server.rs serves no {path}"
        );
    }
}

#[test]
fn the_image_tag_is_the_crate_version() {
    let image = str_at(container(), "/image").expect("an image");
    assert_eq!(
        image.rsplit_once(':').map(|(_, tag)| tag),
        Some(env!("CARGO_PKG_VERSION")),
        "{image}: tag the image with the crate version (the Dockerfile bakes it into `pinip --version`)"
    );
}

#[test]
fn two_pools_run_two_daemonsets_that_never_share_nodes_pods_or_addresses() {
    let objects = kustomize::render("examples/two-pools");
    let sets = kustomize::of_kind(&objects, "DaemonSet");
    assert_eq!(sets.len(), 2);
    let (a, b) = (sets[0], sets[1]);
    assert_ne!(name(a), name(b));
    let selector = |ds: &Value| {
        ds.pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or_default()
    };
    let template = |ds: &Value| {
        ds.pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or_default()
    };
    let matches = |sel: &Value, labels: &Value| {
        sel.as_object()
            .is_some_and(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
    };
    for ds in [a, b] {
        assert!(
            matches(&selector(ds), &template(ds)),
            "{} selects its own pods",
            name(ds)
        );
    }
    assert!(
        !matches(&selector(a), &template(b)),
        "{}'s selector matches {}'s pods",
        name(a),
        name(b)
    );
    assert!(
        !matches(&selector(b), &template(a)),
        "{}'s selector matches {}'s pods",
        name(b),
        name(a)
    );
    let node_pool = |ds: &Value| {
        str_at(ds, "/spec/template/spec/nodeSelector/pinip.dev~1pool").map(String::from)
    };
    assert!(
        node_pool(a).is_some() && node_pool(a) != node_pool(b),
        "distinct node pools"
    );
    let filter = |ds: &Value| kustomize::env_value(ds, "FILTER").map(String::from);
    assert!(
        filter(a).is_some() && filter(a) != filter(b),
        "distinct address pools"
    );
    for ds in [a, b] {
        let entries: Vec<String> = filter(ds)
            .unwrap_or_default()
            .split(';')
            .map(String::from)
            .collect();
        assert_eq!(
            check_filter(&entries),
            Ok(FilterForm::AwsShorthand),
            "{}",
            name(ds)
        );
        assert_eq!(
            str_at(ds, "/spec/template/spec/serviceAccountName"),
            Some(SERVICE_ACCOUNT),
            "{} runs as the ServiceAccount the RBAC binds",
            name(ds)
        );
    }
}

#[test]
fn the_pinned_workload_selects_the_label_pinip_publishes() {
    let objects = kustomize::render("examples/pinned-workload");
    let deployment = kustomize::the_one(&objects, "Deployment");
    assert_eq!(
        str_at(
            deployment,
            "/spec/template/spec/nodeSelector/pinip.dev~1assigned"
        ),
        Some("true")
    );
    let publish = std::fs::read_to_string(root().join("src/cluster/publish.rs"))
        .expect("read src/cluster/publish.rs");
    assert!(
        publish.contains("ASSIGNED_LABEL: &str = \"pinip.dev/assigned\"")
            && publish.contains("ASSIGNED_LABEL: \"true\""),
        "src/cluster/publish.rs no longer publishes pinip.dev/assigned=true; update examples/pinned-workload"
    );
}
