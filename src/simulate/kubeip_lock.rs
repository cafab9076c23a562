//! `simulate --coordination kubeip-lock`: KubeIP v2's coordination as a baseline, run
//! against the same simulated cluster, cloud, latency and limits as pinip.
//!
//! One global Lease `kubeip-lock` in LEASE_NAMESPACE (`internal/lease/lock.go`): create
//! it, or on AlreadyExists read it and delete it (without a precondition) once its
//! renewTime is older than its duration; poll with KubeIP's backoff (1 s, ×1.5, jitter
//! 0.5, 100 steps, cap 1 h). The holder renews every duration/2 with a PUT (as if the
//! RBAC granted `update`, which KubeIP's shipped RBAC does not: this is KubeIP at its
//! best), assigns (list the pool, take the first free address in order, attach), then
//! unlocks (GET, DELETE if still the holder). A failed attempt waits RETRY_INTERVAL; at
//! most RETRY_ATTEMPTS + 1 attempts, as `cmd/main.go` does.
//!
//! The cloud calls are pinip's provider's (one pool list answers "mine?" and "free?"),
//! so the comparison isolates coordination. The baseline also writes pinip's Node
//! annotation once it is attached, so the harness's invariant checks apply to it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use pinip_providers::{InstanceRef, Ownership, ProviderHandle};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::world::{AgentHandle, SimulatedWorld};
use crate::admin::metrics::Metrics;
use crate::admin::status::AgentStatus;
use crate::agent::{AgentError, Exit};
use crate::config::Settings;
use crate::domain::identity::parse_provider_id;
use crate::domain::selection::held_by;

/// KubeIP's lock name, hard-coded in `cmd/main.go`.
pub const LOCK_NAME: &str = "kubeip-lock";

/// KubeIP's lock backoff (`wait.Backoff` in `internal/lease/lock.go`).
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_FACTOR: f64 = 1.5;
const BACKOFF_JITTER: f64 = 0.5;
const BACKOFF_STEPS: u32 = 100;
const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// Starts one KubeIP-style agent for `settings.node`.
pub async fn spawn(world: &SimulatedWorld, settings: Settings) -> anyhow::Result<AgentHandle> {
    let client = world.client_of(&settings.node.name).await?;
    let (status, receiver) = watch::channel(AgentStatus::Starting);
    let shutdown = CancellationToken::new();
    let providers = world.cloud.providers();
    let node = settings.node.name.clone();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let agent = Baseline {
            nodes: Api::all(client.clone()),
            leases: Api::namespaced(client, &settings.claims.namespace),
            settings,
            status,
            started,
        };
        tokio::select! {
            exit = agent.run(providers) => exit,
            _ = stop.cancelled() => Ok(Exit::NothingHeld),
        }
    });
    Ok(AgentHandle {
        node,
        metrics: Arc::new(Metrics::new()),
        status: receiver,
        shutdown,
        task,
    })
}

struct Baseline {
    nodes: Api<k8s_openapi::api::core::v1::Node>,
    leases: Api<Lease>,
    settings: Settings,
    status: watch::Sender<AgentStatus>,
    started: Instant,
}

impl Baseline {
    async fn run(
        self,
        providers: Arc<dyn crate::cloud::factory::ProviderFactory>,
    ) -> Result<Exit, AgentError> {
        let instance = self.instance().await;
        let provider = loop {
            match providers
                .provider_for(&instance, &self.settings.cloud)
                .await
            {
                Ok(provider) => break provider,
                Err(e) => {
                    debug!(error = %e, "kubeip-lock: no provider yet");
                    tokio::time::sleep(self.settings.retry.interval).await;
                }
            }
        };
        let _ = self.status.send(AgentStatus::Acquiring);
        // `for i := 0; i <= attempts`: RETRY_ATTEMPTS + 1 attempts, one ticker.
        let mut ticker = tokio::time::interval(self.settings.retry.interval);
        ticker.tick().await;
        for _ in 0..=self.settings.retry.attempts {
            if self.lock(&instance.id).await {
                let renewal = self.renew_in_background(&instance.id);
                let assigned = self.assign(&provider, &instance).await;
                renewal.cancel();
                self.unlock(&instance.id).await;
                if let Some(address) = assigned {
                    self.publish(address).await;
                    let _ = self.status.send(AgentStatus::Assigned {
                        address,
                        adopted: false,
                        elapsed: self.started.elapsed(),
                    });
                    std::future::pending::<()>().await;
                }
            }
            ticker.tick().await;
        }
        let _ = self.status.send(AgentStatus::Stalled(
            "kubeip-lock: retry attempts exhausted (KubeIP exits 1 here)".into(),
        ));
        Ok(Exit::NothingHeld)
    }

    /// The Node's providerID, read until it is there.
    async fn instance(&self) -> InstanceRef {
        loop {
            let read = self.nodes.get(&self.settings.node.name).await;
            if let Ok(node) = read {
                let id = node.spec.and_then(|s| s.provider_id).unwrap_or_default();
                if let Ok(instance) = parse_provider_id(&id) {
                    return instance;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `kubeLeaseLock.Lock`: true once this instance holds `kubeip-lock`.
    async fn lock(&self, holder: &str) -> bool {
        let duration = self.lease_seconds();
        let mut pause = BACKOFF_START;
        for _ in 0..BACKOFF_STEPS {
            let now = MicroTime(Timestamp::now());
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LOCK_NAME.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.into()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    ..LeaseSpec::default()
                }),
            };
            match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => return true,
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    if let Ok(current) = self.leases.get(LOCK_NAME).await {
                        let spec = current.spec.unwrap_or_default();
                        let renewed = spec.renew_time.map(|t| t.0);
                        let expired = renewed.is_none_or(|t| {
                            Timestamp::now().as_millisecond() - t.as_millisecond()
                                > i64::from(duration) * 1000
                        });
                        if expired {
                            // No resourceVersion precondition, as in KubeIP.
                            let _ = self
                                .leases
                                .delete(LOCK_NAME, &DeleteParams::default())
                                .await;
                        } else if spec.holder_identity.as_deref() == Some(holder) {
                            return true;
                        }
                    }
                }
                Err(e) => {
                    debug!(error = %e, "kubeip-lock: create failed; the attempt fails");
                    return false;
                }
            }
            let jittered = pause.mul_f64(1.0 + BACKOFF_JITTER * fastrand::f64());
            tokio::time::sleep(jittered).await;
            pause = pause.mul_f64(BACKOFF_FACTOR).min(BACKOFF_CAP);
        }
        false
    }

    /// `renewLeasePeriodically`: every duration/2, GET and PUT with a new renewTime,
    /// until the GET fails or someone else holds the lock.
    fn renew_in_background(&self, holder: &str) -> CancellationToken {
        let stop = CancellationToken::new();
        let (leases, holder, every) = (
            self.leases.clone(),
            holder.to_string(),
            self.settings.claims.duration / 2,
        );
        let cancelled = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = cancelled.cancelled() => return,
                }
                let Ok(mut lease) = leases.get(LOCK_NAME).await else {
                    return;
                };
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() != Some(holder.as_str()) {
                    return;
                }
                spec.renew_time = Some(MicroTime(Timestamp::now()));
                let _ = leases
                    .replace(LOCK_NAME, &PostParams::default(), &lease)
                    .await;
            }
        });
        stop
    }

    /// `Unlock`: GET, then DELETE if this instance still holds the lock.
    async fn unlock(&self, holder: &str) {
        if let Ok(lease) = self.leases.get(LOCK_NAME).await {
            let held = lease.spec.and_then(|s| s.holder_identity);
            if held.as_deref() == Some(holder) {
                let _ = self
                    .leases
                    .delete(LOCK_NAME, &DeleteParams::default())
                    .await;
            }
        }
    }

    /// `Assign`: the address the instance already holds, or the first free one in the
    /// pool's order, attached.
    async fn assign(
        &self,
        provider: &ProviderHandle,
        instance: &InstanceRef,
    ) -> Option<std::net::IpAddr> {
        let pool = provider.list_pool().await.ok()?;
        if let Some(mine) = held_by(&pool, &instance.id).first() {
            return Some(mine.ip);
        }
        let free = pool.iter().find(|a| a.attached_to.is_none())?;
        let described = provider.describe_instance(instance).await.ok()?;
        let owner = Ownership {
            cluster: self.settings.node.cluster.clone(),
            node: self.settings.node.name.clone(),
            instance: instance.id.clone(),
        };
        provider.attach(free, &described, &owner).await.ok()?;
        Some(free.ip)
    }

    /// pinip's annotation, so the harness checks the baseline like pinip.
    async fn publish(&self, address: std::net::IpAddr) {
        let patch = json!({"metadata": {"annotations": {crate::cluster::publish::ADDRESS_KEY: address.to_string()}}});
        let _ = self
            .nodes
            .patch(
                &self.settings.node.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.settings.claims.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}
