//! The simulator refuses what a real kube-apiserver refuses, over raw HTTP on loopback:
//! create-on-update, 422 validation with upstream's field paths, selectors, field
//! validation, namespaces, server-side apply, self-reviews, the restart fault and
//! per-client accounting.

use std::collections::BTreeMap;
use std::time::Duration;

use pinip_sim::kube::{Kind, KubeSim, Rbac, Restart, UserInfo};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

type TestResult = anyhow::Result<()>;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

struct Http {
    client: Client,
    base: String,
    token: Option<String>,
}

impl Http {
    fn new(sim: &KubeSim) -> Self {
        Http::with_token(sim, Some(pinip_sim::kube::DEFAULT_TOKEN))
    }

    fn with_token(sim: &KubeSim, token: Option<&str>) -> Self {
        // reqwest is built without a crypto provider of its own (pinip uses ring throughout).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http {
            client: Client::new(),
            base: sim.url(),
            token: token.map(String::from),
        }
    }

    /// (status, body as JSON or Null, Warning headers).
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value, Vec<String>)> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(10));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            warnings,
        ))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(StatusCode, Value, Vec<String>)> {
        self.send(method, path, "application/json", Some(body))
            .await
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let (s, v, _) = self.send(Method::GET, path, "", None).await?;
        Ok((s, v))
    }
}

fn lease(name: &str, holder: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": name}, "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
}

/// The first cause's field, and the message.
fn cause(status: &Value) -> (String, String) {
    (
        status["details"]["causes"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        status["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn put_creates_a_missing_lease_even_with_a_stale_resource_version() -> TestResult {
    let sim = KubeSim::start().await?;
    let http = Http::new(&sim);
    let mut stale = lease("claim", "node-a");
    stale["metadata"]["resourceVersion"] = json!("12345");
    let (code, created, _) = http
        .json(Method::PUT, &format!("{LEASES}/claim"), stale)
        .await?;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_ne!(created["metadata"]["resourceVersion"], "12345");
    assert!(created["metadata"]["uid"].is_string());
    // Deleted, then written again by a stale PUT: it comes back (the issue-11 defect 1).
    sim.delete_object(Kind::Lease, Some("default"), "claim");
    let (code, _, _) = http
        .json(Method::PUT, &format!("{LEASES}/claim"), created.clone())
        .await?;
    assert_eq!(code, StatusCode::CREATED);
    // An existing object with a stale version is still a 409.
    let (code, _, _) = http
        .json(Method::PUT, &format!("{LEASES}/claim"), created)
        .await?;
    assert_eq!(code, StatusCode::CONFLICT);
    // PATCH never creates; PUT does not create Nodes.
    let (code, _, _) = http
        .send(
            Method::PATCH,
            &format!("{LEASES}/missing"),
            "application/merge-patch+json",
            Some(json!({"spec": {"holderIdentity": "x"}})),
        )
        .await?;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n9"}});
    let (code, _, _) = http.json(Method::PUT, "/api/v1/nodes/n9", node).await?;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // core/v1 Events are created on update too.
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "R", "type": "Normal"});
    let (code, _, _) = http
        .json(Method::PUT, "/api/v1/namespaces/default/events/e1", event)
        .await?;
    assert_eq!(code, StatusCode::CREATED);
    Ok(())
}

#[tokio::test]
async fn validation_answers_422_with_upstream_field_paths() -> TestResult {
    let sim = KubeSim::start().await?;
    let http = Http::new(&sim);
    let mut zero = lease("l0", "a");
    zero["spec"]["leaseDurationSeconds"] = json!(0);
    let (code, status, _) = http.json(Method::POST, LEASES, zero).await?;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        cause(&status),
        (
            "spec.leaseDurationSeconds".into(),
            "Lease.coordination.k8s.io \"l0\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0".into()
        )
    );
    let (code, status, _) = http
        .json(Method::POST, LEASES, lease("Bad_Name", "a"))
        .await?;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(cause(&status).0, "metadata.name");
    for labels in [json!({"-bad": "x"}), json!({"ok": "not ok"})] {
        let mut l = lease("labelled", "a");
        l["metadata"]["labels"] = labels.clone();
        let (code, status, _) = http.json(Method::POST, LEASES, l).await?;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{labels}");
        assert_eq!(cause(&status).0, "metadata.labels");
    }
    let mut big = lease("annotated", "a");
    big["metadata"]["annotations"] = json!({"a": "x".repeat(256 * 1024)});
    let (code, status, _) = http.json(Method::POST, LEASES, big).await?;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueTooLong"
    );
    // Namespaces are DNS labels: a dot is refused.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}});
    let (code, status, _) = http.json(Method::POST, "/api/v1/namespaces", ns).await?;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(cause(&status).0, "metadata.name");
    // events.k8s.io/v1 checks the type; core/v1 does not (upstream keeps it lenient).
    let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "ev"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "pinip.dev/agent",
        "reportingInstance": "node-a", "action": "Assign", "reason": "AddressAssigned",
        "type": "Bad", "regarding": {"kind": "Node", "name": "node-a"}});
    let (code, status, _) = http
        .json(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/default/events",
            v1,
        )
        .await?;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(cause(&status).0, "type");
    let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev"},
        "involvedObject": {"kind": "Node", "name": "node-a"}, "type": "Bad"});
    let (code, _, _) = http
        .json(Method::POST, "/api/v1/namespaces/default/events", core)
        .await?;
    assert_eq!(code, StatusCode::CREATED);
    Ok(())
}

#[tokio::test]
async fn malformed_and_unsupported_selectors_are_400() -> TestResult {
    let sim = KubeSim::start().await?;
    let http = Http::new(&sim);
    for (path, needle) in [
        (
            "/api/v1/nodes?labelSelector=a%20in%201",
            "unable to parse requirement",
        ),
        (
            "/api/v1/nodes?labelSelector=-bad%3Dx",
            "key: Invalid value: \"-bad\"",
        ),
        (
            "/api/v1/nodes?labelSelector=a%3Dnot%20ok",
            "unable to parse requirement",
        ),
        (
            "/api/v1/nodes?fieldSelector=spec.providerID%3Dx",
            "field label not supported: spec.providerID",
        ),
        (
            "/api/v1/events?fieldSelector=regarding.name%3Dn",
            "field label not supported: regarding.name",
        ),
        (
            "/apis/events.k8s.io/v1/events?fieldSelector=involvedObject.name%3Dn",
            "field label not supported: involvedObject.name",
        ),
        ("/api/v1/nodes?fieldSelector=nonsense", "invalid selector"),
    ] {
        let (code, status) = http.get(path).await?;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{path}: {message}");
    }
    for path in [
        "/api/v1/events?fieldSelector=involvedObject.name%3Dn,reason%3DAddressAssigned",
        "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dn",
    ] {
        assert_eq!(http.get(path).await?.0, StatusCode::OK, "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn field_validation_strict_refuses_and_warn_warns() -> TestResult {
    let sim = KubeSim::start().await?;
    let http = Http::new(&sim);
    let mut typo = lease("typo", "a");
    typo["spec"]["holder"] = json!("b");
    let (code, status, _) = http
        .json(
            Method::POST,
            &format!("{LEASES}?fieldValidation=Strict"),
            typo.clone(),
        )
        .await?;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("strict decoding error: unknown field \"spec.holder\""),
        "{status}"
    );
    let (code, created, warnings) = http.json(Method::POST, LEASES, typo).await?;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(warnings, ["299 - \"unknown field \\\"spec.holder\\\"\""]);
    assert!(
        created["spec"].get("holder").is_none(),
        "dropped: {created}"
    );
    let (code, _, _) = http
        .json(
            Method::POST,
            &format!("{LEASES}?fieldValidation=Sometimes"),
            lease("x", "a"),
        )
        .await?;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn writes_into_a_missing_namespace_are_404() -> TestResult {
    let sim = KubeSim::start().await?;
    let http = Http::new(&sim);
    let nope = "/apis/coordination.k8s.io/v1/namespaces/nope/leases";
    let (code, status, _) = http.json(Method::POST, nope, lease("l", "a")).await?;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(status["message"], "namespaces \"nope\" not found");
    let (code, _, _) = http
        .json(Method::PUT, &format!("{nope}/l"), lease("l", "a"))
        .await?;
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "create-on-update needs the namespace too"
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nope"}});
    let (code, created, _) = http.json(Method::POST, "/api/v1/namespaces", ns).await?;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(created["status"]["phase"], "Active");
    let (code, _, _) = http.json(Method::POST, nope, lease("l", "a")).await?;
    assert_eq!(code, StatusCode::CREATED);
    let (_, list) = http.get("/api/v1/namespaces").await?;
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|n| n["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for want in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "pinip-system",
        "nope",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    Ok(())
}

#[tokio::test]
async fn server_side_apply_owns_fields_and_conflicts() -> TestResult {
    let sim = KubeSim::start().await?;
    let http = Http::new(&sim);
    let apply = |manager: &'static str, force: bool, body: Value| {
        let path = format!("{LEASES}/ssa?fieldManager={manager}&force={force}");
        let http = &http;
        async move {
            http.send(
                Method::PATCH,
                &path,
                "application/apply-patch+yaml",
                Some(body),
            )
            .await
        }
    };
    let (code, created, _) = apply("alice", false, lease("ssa", "a")).await?;
    assert_eq!(code, StatusCode::CREATED, "apply creates: {created}");
    assert_eq!(created["metadata"]["managedFields"][0]["manager"], "alice");
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
    // bob changes alice's field: 409 naming her and the field.
    let (code, status, _) = apply("bob", false, lease("ssa", "b")).await?;
    assert_eq!(code, StatusCode::CONFLICT);
    // (leaseDurationSeconds is applied with alice's value: shared, not a conflict)
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.holderIdentity"
    );
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".spec.holderIdentity"})
    );
    let (code, forced, _) = apply("bob", true, lease("ssa", "b")).await?;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(forced["spec"]["holderIdentity"], "b");
    // A merge patch by another manager records an Update entry.
    let (code, patched, _) = http
        .send(
            Method::PATCH,
            &format!("{LEASES}/ssa?fieldManager=carol"),
            "application/merge-patch+json",
            Some(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await?;
    assert_eq!(code, StatusCode::OK);
    let carol = patched["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == "carol").cloned())
        .unwrap_or_default();
    assert_eq!(carol["operation"], "Update");
    assert_eq!(
        carol["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:x": {}}}})
    );
    // Apply without a manager, force on a merge patch: 422 PatchOptions.
    for (path, ct) in [
        (format!("{LEASES}/ssa"), "application/apply-patch+yaml"),
        (
            format!("{LEASES}/ssa?force=true"),
            "application/merge-patch+json",
        ),
    ] {
        let (code, status, _) = http.send(Method::PATCH, &path, ct, Some(json!({}))).await?;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {status}");
        assert!(status["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("PatchOptions.meta.k8s.io \"\" is invalid"));
    }
    Ok(())
}

fn policy() -> anyhow::Result<Rbac> {
    let objects = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "claims", "namespace": "pinip-system"},
               "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                          "verbs": ["get", "list", "create", "patch", "delete"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "claims", "namespace": "pinip-system"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "claims"},
               "subjects": [{"kind": "ServiceAccount", "name": "pinip", "namespace": "pinip-system"}]}),
    ];
    let mut rbac = Rbac::from_objects(&objects)?;
    rbac.add_token("agent", UserInfo::service_account("pinip-system", "pinip"));
    Ok(rbac)
}

#[tokio::test]
async fn self_reviews_answer_from_the_enforced_rbac() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.enforce_rbac(policy()?);
    let agent = Http::with_token(&sim, Some("agent"));
    let ssar = |verb: &str, resource: &str, group: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"namespace": "pinip-system", "verb": verb,
                                               "group": group, "resource": resource}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, yes, _) = agent
        .json(
            Method::POST,
            path,
            ssar("patch", "leases", "coordination.k8s.io"),
        )
        .await?;
    assert_eq!(
        (code, &yes["status"]["allowed"]),
        (StatusCode::CREATED, &json!(true))
    );
    let (_, no, _) = agent
        .json(
            Method::POST,
            path,
            ssar("update", "leases", "coordination.k8s.io"),
        )
        .await?;
    assert_eq!(no["status"]["allowed"], false);
    let rules = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                       "spec": {"namespace": "pinip-system"}});
    let (code, review, _) = agent
        .json(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            rules,
        )
        .await?;
    assert_eq!(code, StatusCode::CREATED);
    let granted = review["status"]["resourceRules"].to_string();
    assert!(
        granted.contains("leases") && granted.contains("selfsubjectaccessreviews"),
        "{granted}"
    );
    // Wrong token: 401; no token: 403 as system:anonymous.
    let (code, _, _) = Http::with_token(&sim, Some("stolen"))
        .json(Method::POST, path, ssar("get", "nodes", ""))
        .await?;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, status) = Http::with_token(&sim, None).get("/api/v1/nodes").await?;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(status["message"]
        .as_str()
        .unwrap_or_default()
        .contains("User \"system:anonymous\" cannot list resource \"nodes\""));
    Ok(())
}

/// What one probe of a restarting server met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Refused,
    Unavailable,
    Unauthorized,
    Forbidden,
    Served,
}

#[tokio::test]
async fn restart_refuses_then_503_then_401_403_then_serves() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let http = Http::new(&sim);
    assert_eq!(http.get("/api/v1/nodes/n1").await?.0, StatusCode::OK);
    // A watch open across the restart is cut.
    let watch = http
        .client
        .get(format!("{}/api/v1/nodes?watch=true", sim.url()))
        .bearer_auth(pinip_sim::kube::DEFAULT_TOKEN)
        .send()
        .await?;
    // Phases long enough that a probe every few milliseconds meets each one.
    let phase = Duration::from_millis(1500);
    sim.restart(Restart {
        down: phase,
        unavailable: phase,
        unauthorized: phase,
        forbidden: phase,
    });
    assert_eq!(sim.restarts(), 1);
    let rest = tokio::time::timeout(Duration::from_secs(30), watch.bytes()).await;
    assert!(rest.is_ok(), "the watch ended with the restart");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.last() != Some(&Seen::Served) && tokio::time::Instant::now() < deadline {
        let probe = match http.get("/api/v1/nodes/n1").await {
            Err(_) => Seen::Refused,
            Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => Seen::Unavailable,
            Ok((StatusCode::UNAUTHORIZED, _)) => Seen::Unauthorized,
            Ok((StatusCode::FORBIDDEN, _)) => Seen::Forbidden,
            Ok((StatusCode::OK, _)) => Seen::Served,
            Ok((other, body)) => anyhow::bail!("unexpected {other}: {body}"),
        };
        if seen.last() != Some(&probe) {
            seen.push(probe);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen,
        [
            Seen::Refused,
            Seen::Unavailable,
            Seen::Unauthorized,
            Seen::Forbidden,
            Seen::Served
        ]
    );
    Ok(())
}

#[tokio::test]
async fn traffic_is_counted_per_client_with_watch_bytes() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let dir = tempfile::tempdir()?;
    let token_a = sim.write_client_kubeconfig(&dir.path().join("a"), "node-a")?;
    let token_b = sim.write_client_kubeconfig(&dir.path().join("b"), "node-b")?;
    let a = Http::with_token(&sim, Some(&token_a));
    let mut read_by_a = 0;
    for _ in 0..3 {
        let resp = a
            .client
            .get(format!("{}/api/v1/nodes/n1", sim.url()))
            .bearer_auth(&token_a)
            .send()
            .await?;
        read_by_a += resp.bytes().await?.len() as u64;
    }
    let watch = a
        .client
        .get(format!(
            "{}/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn1&timeoutSeconds=1",
            sim.url()
        ))
        .bearer_auth(&token_b)
        .send()
        .await?;
    sim.update_node("n1", |n| n["metadata"]["labels"]["x"] = json!("1"));
    let streamed = watch.bytes().await?;
    let lines = streamed
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(lines, 2, "ADDED then MODIFIED");
    let traffic = sim.client_traffic();
    assert_eq!(traffic["node-a"].requests, 3);
    assert_eq!(traffic["node-a"].response_bytes, read_by_a);
    assert_eq!(traffic["node-b"].requests, 1);
    assert_eq!(traffic["node-b"].response_bytes, streamed.len() as u64);
    Ok(())
}
