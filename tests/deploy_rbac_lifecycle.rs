//! The agent under the RBAC of `deploy/`, exactly as rendered: the simulated API server
//! enforces the Roles, ClusterRoles and bindings of each overlay (a request they do not
//! allow gets the real 403), the agent authenticates as the DaemonSet's ServiceAccount,
//! and goes through its whole life: assign (claim, attach), publish (annotation, label,
//! Events, taint removal), restart and adopt, release when its node goes away, the
//! address passing to a waiting node, the sweep after an abrupt node loss, and release
//! on node deletion. Not one request may be refused.
//!
//! A control run with one verb removed from the rendered RBAC shows that enforcement
//! bites, so a pass above means the manifests grant enough (and `deploy_manifests.rs`
//! shows they grant no more).

mod kustomize;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::agent::{Agent, AgentError, Exit};
use pinip::simulate::{SimulatedWorld, WorldSpec, LEASE_NAMESPACE};
use pinip_providers::IpFamily;
use pinip_sim::kube::{Kind, Rbac, UserInfo};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
/// The bearer token the agents present (their ServiceAccount's token in a real pod).
const AGENT_TOKEN: &str = "pinip-serviceaccount-token";
/// The startup taint the DaemonSet tolerates and `TAINT_KEY` lifts.
const STARTUP_TAINT: &str = "pinip.dev/not-ready";

/// A world whose API server enforces the RBAC rendered from `dir`, and a kubeconfig that
/// authenticates as the ServiceAccount the rendered DaemonSet runs as.
struct Deployed {
    world: SimulatedWorld,
    kubeconfig: PathBuf,
}

/// A kubeconfig for `token` next to the world's own (removed with the world).
fn kubeconfig_for(world: &SimulatedWorld, token: &str) -> PathBuf {
    let path = world
        .kubeconfig_path()
        .with_file_name(format!("kubeconfig-{token}"));
    world
        .kube
        .write_kubeconfig_with_token(&path, token)
        .expect("kubeconfig written");
    path
}

async fn deploy(
    dir: &str,
    nodes: usize,
    pool: usize,
    edit: impl FnOnce(&mut Vec<Value>),
) -> Deployed {
    let mut objects = kustomize::render(dir);
    edit(&mut objects);
    let world = SimulatedWorld::start(WorldSpec {
        nodes,
        pool,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 7,
    })
    .await
    .expect("simulated world starts");

    let daemonset = kustomize::the_one(&objects, "DaemonSet");
    let namespace =
        kustomize::str_at(daemonset, "/metadata/namespace").expect("the DaemonSet has a namespace");
    let account = kustomize::str_at(daemonset, "/spec/template/spec/serviceAccountName")
        .expect("the DaemonSet names its ServiceAccount");
    // LEASE_NAMESPACE is the pod's own namespace (fieldRef) in the manifests; the world's
    // agents use LEASE_NAMESPACE, so the two must agree for this test to mean anything.
    assert_eq!(
        namespace, LEASE_NAMESPACE,
        "{dir}: the DaemonSet's namespace is the claims' namespace"
    );
    // `kubectl apply` would create the namespaces first.
    for ns in kustomize::of_kind(&objects, "Namespace") {
        world
            .kube
            .upsert_object(ns.clone())
            .expect("namespace created");
    }

    let mut policy = Rbac::from_objects(&objects).expect("the rendered RBAC is well formed");
    policy.add_token(AGENT_TOKEN, UserInfo::service_account(namespace, account));
    world.kube.enforce_rbac(policy);
    let kubeconfig = kubeconfig_for(&world, AGENT_TOKEN);
    Deployed { world, kubeconfig }
}

/// One agent, authenticated as the ServiceAccount.
struct Running {
    status: watch::Receiver<AgentStatus>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<Exit, AgentError>>,
}

impl Running {
    /// Like SIGKILL: no exit decision, no release; its sweep loop stops with it.
    fn kill(self) {
        self.task.abort();
        self.shutdown.cancel();
    }

    async fn stop(self) -> Exit {
        self.shutdown.cancel();
        match tokio::time::timeout(WAIT, self.task).await {
            Ok(Ok(Ok(exit))) => exit,
            other => panic!("the agent did not stop cleanly: {other:?}"),
        }
    }

    async fn wait_for(&mut self, what: &str, pred: impl Fn(&AgentStatus) -> bool) -> AgentStatus {
        let outcome = tokio::time::timeout(WAIT, self.status.wait_for(|s| pred(s)))
            .await
            .map(|waited| waited.map(|status| status.clone()));
        match outcome {
            Ok(Ok(status)) => status,
            Ok(Err(_)) => panic!("the agent ended while waiting for {what}"),
            Err(_) => panic!(
                "no {what} within {WAIT:?}; last status {:?}",
                self.status.borrow()
            ),
        }
    }

    async fn assigned(&mut self) -> (IpAddr, bool) {
        match self.wait_for("an address", AgentStatus::is_ready).await {
            AgentStatus::Assigned {
                address, adopted, ..
            } => (address, adopted),
            other => unreachable!("{other:?}"),
        }
    }
}

async fn spawn(deployed: &Deployed, node: &str) -> Running {
    let world = &deployed.world;
    let mut settings = world.settings_for(node);
    settings.kubeconfig = Some(deployed.kubeconfig.clone());
    settings.taint.key = Some(STARTUP_TAINT.into());
    settings.retry.interval = Duration::from_millis(500);
    settings.claims.duration = Duration::from_secs(1);
    settings.sweep_interval = Duration::from_secs(2);
    let client = pinip::cluster::client::kube_client(Some(&deployed.kubeconfig))
        .await
        .expect("kube client from the ServiceAccount's kubeconfig");
    let (agent, status) = Agent::new(settings, client, world.cloud.providers());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(agent.run(shutdown.clone()));
    Running {
        status,
        shutdown,
        task,
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn node(world: &SimulatedWorld, name: &str) -> Value {
    world
        .kube
        .get(Kind::Node, None, name)
        .unwrap_or(Value::Null)
}

fn events(world: &SimulatedWorld, node: &str, reason: &str) -> usize {
    world
        .kube
        .list(Kind::EventV1, None)
        .iter()
        .filter(|e| kustomize::str_at(e, "/reason") == Some(reason))
        .filter(|e| kustomize::str_at(e, "/regarding/name") == Some(node))
        .count()
}

fn has_taint(world: &SimulatedWorld, name: &str, key: &str) -> bool {
    node(world, name)
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|taints| taints.iter().any(|t| t["key"] == key))
}

/// The whole life of three agents under `dir`'s RBAC, with not one 403: assign and
/// publish, restart and adopt, release when the node goes away, the sweep after an abrupt
/// loss, and release on node deletion.
async fn full_lifecycle_without_a_403(dir: &str) {
    let deployed = deploy(dir, 3, 1, |_| {}).await;
    let world = &deployed.world;
    let nodes = world.nodes.clone();
    for n in &nodes {
        world.kube.update_node(&n.name, |node| {
            node["spec"]["taints"] = json!([{"key": STARTUP_TAINT, "effect": "NoSchedule"}]);
        });
    }
    let a = &nodes[0];

    // Assign and publish.
    let mut first = spawn(&deployed, &a.name).await;
    let (address, adopted) = first.assigned().await;
    assert!(!adopted);
    assert_eq!(world.cloud.attached_to(&a.instance), vec![address]);
    let published = node(world, &a.name);
    assert_eq!(
        kustomize::str_at(&published, "/metadata/annotations/pinip.dev~1address"),
        Some(address.to_string().as_str())
    );
    assert_eq!(
        kustomize::str_at(&published, "/metadata/labels/pinip.dev~1assigned"),
        Some("true")
    );
    eventually("the startup taint lifted", || {
        !has_taint(world, &a.name, STARTUP_TAINT)
    })
    .await;
    eventually("an AddressAssigned Event", || {
        events(world, &a.name, "AddressAssigned") == 1
    })
    .await;

    // Two more nodes wait, and say so.
    let mut waiting = Vec::new();
    for n in &nodes[1..] {
        let mut agent = spawn(&deployed, &n.name).await;
        agent
            .wait_for("pool exhausted", |s| {
                matches!(s, AgentStatus::PoolExhausted { .. })
            })
            .await;
        eventually("a PoolExhausted Event", || {
            events(world, &n.name, "PoolExhausted") > 0
        })
        .await;
        waiting.push((n.clone(), agent));
    }

    // A pod restart keeps the address; the new pod adopts it.
    assert_eq!(first.stop().await, Exit::Kept(address));
    let mut restarted = spawn(&deployed, &a.name).await;
    assert_eq!(restarted.assigned().await, (address, true));

    // The node goes away: the address is released and goes to a waiting node.
    world.kube.update_node(&a.name, |node| {
        node["spec"]["taints"] = json!([{"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"}]);
    });
    assert_eq!(restarted.stop().await, Exit::Released(address));
    assert!(world.cloud.attached_to(&a.instance).is_empty());
    eventually("a waiting node to take the released address", || {
        waiting
            .iter()
            .any(|(_, agent)| agent.status.borrow().is_ready())
    })
    .await;
    let winner_at = waiting
        .iter()
        .position(|(_, agent)| agent.status.borrow().is_ready())
        .unwrap_or_default();
    let (winner, mut winner_agent) = waiting.remove(winner_at);
    let (loser, mut loser_agent) = waiting.remove(0);
    assert_eq!(winner_agent.assigned().await.0, address);
    eventually("the winner's taint lifted", || {
        !has_taint(world, &winner.name, STARTUP_TAINT)
    })
    .await;

    // Abrupt loss: the winner's pod dies without a word and its Node is deleted, while
    // its instance keeps running with the address. The sweep (run by the agent that is
    // left) frees it, and that agent takes it.
    winner_agent.kill();
    assert!(world.kube.delete_node(&winner.name));
    let (taken, _) = loser_agent.assigned().await;
    assert_eq!(taken, address, "the sweep freed the lost node's address");
    assert!(world.cloud.attached_to(&winner.instance).is_empty());

    // And when that node is deleted outright, its agent releases too.
    assert!(world.kube.delete_node(&loser.name));
    loser_agent
        .wait_for("the release after deletion", |s| {
            matches!(s, AgentStatus::WaitingForNode(_))
        })
        .await;
    assert!(world.cloud.attached_to(&loser.instance).is_empty());
    loser_agent.stop().await;

    assert!(
        world
            .kube
            .get(
                Kind::Lease,
                Some(LEASE_NAMESPACE),
                pinip::agent::sweeper::SWEEP_LEASE
            )
            .is_none(),
        "{dir}: the sweeper (elected under the RBAC; it freed the lost node's address above) gave its Lease up when it stopped"
    );
    let denials = world.kube.rbac_denials();
    assert!(
        denials.is_empty(),
        "{dir}: RBAC refused {} request(s): {denials:#?}",
        denials.len()
    );
    // The run went through every kind of call the RBAC grants (so "no 403" covers them).
    let counts = world.kube.request_counts();
    for verb in ["get", "list", "watch", "patch", "create", "delete"] {
        assert!(
            counts.verb(verb) > 0,
            "{dir}: the lifecycle made no {verb} request: {counts:?}"
        );
    }
    // Never a PUT: on a Lease it would create a claim that was just deleted.
    assert_eq!(counts.verb("update"), 0, "{dir}: {counts:?}");
    for resource in ["nodes", "leases", "events"] {
        assert!(
            counts.resource(resource) > 0,
            "{dir}: no request on {resource}: {counts:?}"
        );
    }
    assert!(
        world.cloud.violations().is_empty(),
        "{:?}",
        world.cloud.violations()
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_overlay_rbac_carries_the_full_lifecycle_without_a_403() {
    full_lifecycle_without_a_403("deploy/overlays/aws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_overlay_rbac_carries_the_full_lifecycle_without_a_403() {
    full_lifecycle_without_a_403("deploy/overlays/gcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_ipv6_overlay_rbac_carries_the_full_lifecycle_without_a_403() {
    full_lifecycle_without_a_403("deploy/overlays/gcp-ipv6").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_example_rbac_carries_the_full_lifecycle_without_a_403() {
    full_lifecycle_without_a_403_for_each_daemonset("examples/two-pools").await;
}

/// The two-pools example has two DaemonSets under one ServiceAccount: check that both
/// run as it, then run the lifecycle under that RBAC.
async fn full_lifecycle_without_a_403_for_each_daemonset(dir: &str) {
    let objects = kustomize::render(dir);
    let accounts: Vec<_> = kustomize::of_kind(&objects, "DaemonSet")
        .iter()
        .map(|d| kustomize::str_at(d, "/spec/template/spec/serviceAccountName").map(String::from))
        .collect();
    assert_eq!(
        accounts,
        vec![Some("pinip".to_string()); 2],
        "{dir}: both DaemonSets run as pinip"
    );
    // Render again with one DaemonSet kept, so `deploy` finds the ServiceAccount the same way.
    let deployed = deploy(dir, 1, 1, |objects| {
        let mut seen = false;
        objects
            .retain(|o| kustomize::kind(o) != "DaemonSet" || !std::mem::replace(&mut seen, true));
    })
    .await;
    let world = &deployed.world;
    let node = world.nodes[0].clone();
    let mut agent = spawn(&deployed, &node.name).await;
    let (address, _) = agent.assigned().await;
    world.kube.update_node(&node.name, |n| {
        n["spec"]["taints"] = json!([{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]);
    });
    assert_eq!(agent.stop().await, Exit::Released(address));
    let denials = world.kube.rbac_denials();
    assert!(denials.is_empty(), "{dir}: {denials:#?}");
    world.shutdown();
}

/// Remove `verb` from every rule that grants it on `resource`.
fn without_verb(objects: &mut [Value], resource: &str, verb: &str) {
    for object in objects
        .iter_mut()
        .filter(|o| matches!(kustomize::kind(o), "Role" | "ClusterRole"))
    {
        for rule in object["rules"].as_array_mut().into_iter().flatten() {
            let grants_resource = rule["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == resource));
            if let (true, Some(verbs)) = (grants_resource, rule["verbs"].as_array_mut()) {
                verbs.retain(|v| v != verb);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_lease_patch_the_agent_is_refused_with_the_api_servers_403() {
    let deployed = deploy("deploy/overlays/aws", 1, 1, |objects| {
        without_verb(objects, "leases", "patch")
    })
    .await;
    let world = &deployed.world;
    let node = world.nodes[0].clone();
    let agent = spawn(&deployed, &node.name).await;
    eventually("a refused lease patch", || {
        world.kube.rbac_denials().iter().any(|d| {
            d.user == "system:serviceaccount:pinip-system:pinip"
                && d.message.contains("cannot patch resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"pinip-system\"")
        })
    })
    .await;
    // Without `patch` a claim can never be marked held: the agent must not report success.
    assert!(!agent.status.borrow().is_ready());
    agent.shutdown.cancel();
    let _ = tokio::time::timeout(WAIT, agent.task).await;
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_a_token_nobody_issued_is_unauthorized() {
    let deployed = deploy("deploy/overlays/aws", 1, 1, |_| {}).await;
    let world = &deployed.world;
    let stranger = kubeconfig_for(world, "not-a-token");
    let client = pinip::cluster::client::kube_client(Some(&stranger))
        .await
        .expect("client");
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    match nodes.get(&world.nodes[0].name).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"))
        }
        other => panic!("expected 401, got {other:?}"),
    }
    world.shutdown();
}
