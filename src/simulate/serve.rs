//! `simulate --serve`: the playground as a cluster presents itself to its clients. The
//! API server answers over HTTPS (kubectl sends bearer tokens only over TLS) and
//! authenticates and authorizes every request: a token nobody issued gets 401, none at
//! all 403 as `system:anonymous`, and `deploy/base`'s RBAC is loaded, so the printed
//! agent kubeconfig (the `pinip` ServiceAccount's token) can do exactly what a deployed
//! agent can (`kubectl auth can-i --list`, `pinip run`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::routing::get;
use pinip_sim::kube::{Rbac, UserInfo, DEFAULT_TOKEN};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::limits::Enforcer;
use super::report;
use super::world::{AgentHandle, SimulatedWorld};
use crate::admin::status::AgentStatus;

/// `deploy/base`'s ServiceAccount and RBAC, as the image's DaemonSet is granted them.
const DEPLOY_RBAC: &str = include_str!("../../deploy/base/rbac.yaml");
const DEPLOY_SERVICE_ACCOUNT: &str = include_str!("../../deploy/base/serviceaccount.yaml");

/// What `--serve` prints for other clients.
pub(super) struct Served {
    /// The HTTPS URL.
    pub url: String,
    /// A cluster admin's kubeconfig (HTTPS, the CA, a bearer token).
    pub admin_kubeconfig: PathBuf,
    /// The `pinip` ServiceAccount's kubeconfig, under `deploy/base`'s RBAC.
    pub agent_kubeconfig: PathBuf,
    /// `http://127.0.0.1:PORT/counters`: the run's counters while it runs.
    pub counters_url: String,
    counters: Arc<Mutex<Value>>,
}

impl Served {
    /// Keeps the counters endpoint's answer fresh (once a second) until `stop`, then
    /// returns the last counters: the report `--serve` prints on Ctrl-C.
    pub(super) async fn count_until(
        &self,
        stop: &CancellationToken,
        world: &SimulatedWorld,
        agents: &[AgentHandle],
        enforcer: Option<&Enforcer>,
    ) -> Value {
        let started = Instant::now();
        loop {
            let now = counters(world, agents, enforcer, started);
            *self.counters.lock().unwrap_or_else(|e| e.into_inner()) = now.clone();
            tokio::select! {
                _ = stop.cancelled() => return now,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Per-operation cloud calls and what the limits refused, Kubernetes requests and
/// response bytes (per in-process agent and per client, so an agent run outside the
/// process counts too), and the nodes' state: the simulate report, as it stands now.
fn counters(
    world: &SimulatedWorld,
    agents: &[AgentHandle],
    enforcer: Option<&Enforcer>,
    started: Instant,
) -> Value {
    let statuses: HashMap<String, AgentStatus> = agents
        .iter()
        .map(|a| (a.node.clone(), a.status.borrow().clone()))
        .collect();
    let mut now = report::build(world, &statuses, started.elapsed());
    if let Some(enforcer) = enforcer {
        now.cloud_limits = enforcer.report(None);
    }
    let clients: serde_json::Map<String, Value> = world
        .kube
        .client_traffic()
        .into_iter()
        .map(|(client, t)| {
            let traffic = json!({"requests": t.requests, "response_bytes": t.response_bytes});
            (client, traffic)
        })
        .collect();
    json!({"report": now, "kube_clients": clients})
}

/// Serves `GET /counters` on a loopback port of its own until `stop`.
async fn counters_endpoint(
    counters: Arc<Mutex<Value>>,
    stop: CancellationToken,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}/counters", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/counters",
        get(move || {
            let counters = counters.clone();
            async move {
                let now = counters.lock().unwrap_or_else(|e| e.into_inner()).clone();
                axum::Json(now)
            }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the counters endpoint stopped");
        }
    });
    Ok(url)
}

/// Opens the HTTPS endpoint, turns authentication and RBAC on, and writes both
/// kubeconfigs next to the world's own (the admin one replaces it).
pub(super) async fn open(
    world: &SimulatedWorld,
    stop: &CancellationToken,
) -> anyhow::Result<Served> {
    let tls = world.kube.serve_tls().await?;
    let objects = deploy_objects()?;
    let mut policy = Rbac::from_objects(&objects).context("deploy/base's RBAC")?;
    let (namespace, name) = service_account(&objects)?;
    let agent_token = format!("{DEFAULT_TOKEN}-serviceaccount-{namespace}-{name}");
    policy.add_token(&agent_token, UserInfo::service_account(&namespace, &name));
    world.kube.enforce_rbac(policy);

    let admin_kubeconfig = world.kubeconfig_path().to_path_buf();
    world
        .kube
        .write_tls_kubeconfig(&admin_kubeconfig, &tls, DEFAULT_TOKEN)?;
    let agent_kubeconfig = admin_kubeconfig.with_file_name(format!("kubeconfig-{name}"));
    world
        .kube
        .write_tls_kubeconfig(&agent_kubeconfig, &tls, &agent_token)?;
    let counters = Arc::new(Mutex::new(json!({})));
    let counters_url = counters_endpoint(counters.clone(), stop.clone()).await?;
    Ok(Served {
        url: tls.url,
        admin_kubeconfig,
        agent_kubeconfig,
        counters_url,
        counters,
    })
}

fn deploy_objects() -> anyhow::Result<Vec<Value>> {
    let mut objects: Vec<Value> =
        serde_saphyr::from_multiple(DEPLOY_RBAC).context("deploy/base/rbac.yaml")?;
    let accounts: Vec<Value> = serde_saphyr::from_multiple(DEPLOY_SERVICE_ACCOUNT)
        .context("deploy/base/serviceaccount.yaml")?;
    objects.extend(accounts);
    objects.retain(|o| !o.is_null());
    Ok(objects)
}

/// The namespace and name of the one ServiceAccount of `deploy/base`.
fn service_account(objects: &[Value]) -> anyhow::Result<(String, String)> {
    let account = objects
        .iter()
        .find(|o| o.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
        .context("deploy/base has no ServiceAccount")?;
    let field = |pointer: &str| {
        account
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("deploy/base's ServiceAccount has no {pointer}"))
    };
    Ok((field("/metadata/namespace")?, field("/metadata/name")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_base_parses_into_a_policy_for_its_service_account() {
        let objects = deploy_objects().expect("deploy/base parses");
        let (namespace, name) = service_account(&objects).expect("one ServiceAccount");
        assert_eq!(
            (namespace.as_str(), name.as_str()),
            ("pinip-system", "pinip")
        );
        let kinds: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.get("kind").and_then(Value::as_str))
            .collect();
        for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
        assert!(Rbac::from_objects(&objects).is_ok());
    }
}
