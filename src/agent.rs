//! One agent, one node: identity → adopt or claim → attach → publish → steady state
//! → exit decision. Domain decisions live in pure modules (`selection`, `claim::judge`,
//! `exit_decision`); this file sequences them and does the IO.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use pinip_providers::{
    ErrorClass, Instance, InstanceRef, Ownership, PoolAddress, ProviderError, ProviderHandle,
};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::claim::{Claim, ClaimAttempt, ClaimError, ClaimStore, Holder, Phase};
use crate::config::Settings;
use crate::dry_run::DryRunProvider;
use crate::events::{reason, Notifier};
use crate::exit_decision::{decide_on_exit, ExitDecision, Reason};
use crate::identity::{parse_provider_id, ProviderIdError};
use crate::kube_errors::is_forbidden;
use crate::metered::{error_class_label, MeteredProvider};
use crate::metrics::Metrics;
use crate::publish;
use crate::publish::NodePublisher;
use crate::selection::{candidates, held_by};
use crate::status::AgentStatus;
use crate::sweep::Sweeper;

/// A single cloud call never blocks the agent longer than this.
const CLOUD_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait between looks at a Node that is not ready for us yet.
const NODE_POLL_MAX: Duration = Duration::from_secs(30);

/// Builds the provider for a node's cloud (chosen from its providerID). Async: SDKs
/// load credentials and region on construction.
#[async_trait::async_trait]
pub trait ProviderFactory: Send + Sync {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &Settings,
    ) -> Result<ProviderHandle, ProviderError>;
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad configuration or an unsupported node: fix and restart (exit code 2).
    #[error("{0}")]
    Config(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// How the agent ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped before any address was held.
    NothingHeld,
    /// The address stays on the node (pod restart, rollout).
    Kept(IpAddr),
    Released(IpAddr),
}

/// An address this node holds: attached in the cloud and claimed in the cluster.
struct Held {
    address: PoolAddress,
    claim: Claim,
    adopted: bool,
    /// Another node whose claim on this address we replaced (the cloud shows the
    /// address on our instance): its publication of the address is stale.
    taken_from: Option<String>,
}

/// Why the steady state ended.
enum SteadyExit {
    Shutdown(Box<Option<Node>>),
    NodeDeleted,
    AddressLost,
    /// The address is still ours in the cloud, but our claim was replaced or dropped.
    ClaimLost,
}

/// Everything about the node once it is known.
struct NodeContext {
    nodes: Api<Node>,
    publisher: NodePublisher,
    instance: InstanceRef,
    described: Option<Instance>,
    provider: ProviderHandle,
    claims: ClaimStore,
    notifier: Notifier,
}

/// The outcome of one pass over the pool.
enum Pass {
    Assigned(Box<Held>),
    Exhausted { matched: usize, free: usize },
    Interrupted,
}

pub struct Agent {
    settings: Arc<Settings>,
    client: kube::Client,
    providers: Arc<dyn ProviderFactory>,
    status: watch::Sender<AgentStatus>,
    metrics: Arc<Metrics>,
    started: Instant,
}

impl Agent {
    pub fn new(
        settings: Settings,
        client: kube::Client,
        providers: Arc<dyn ProviderFactory>,
    ) -> (Agent, watch::Receiver<AgentStatus>) {
        let (status, receiver) = watch::channel(AgentStatus::Starting);
        let agent = Agent {
            settings: Arc::new(settings),
            client,
            providers,
            status,
            metrics: Arc::new(Metrics::new()),
            started: Instant::now(),
        };
        (agent, receiver)
    }

    /// The agent's metrics, for the admin server.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    fn set_status(&self, status: AgentStatus) {
        self.status.send_replace(status);
    }

    /// Run until `shutdown`; then keep or release the address as the node's fate says.
    pub async fn run(self, shutdown: CancellationToken) -> Result<Exit, AgentError> {
        let span = info_span!("agent", node = %self.settings.node_name);
        let result = self.run_inner(&shutdown).instrument(span).await;
        let released = match &result {
            Ok(Exit::Released(ip)) => Some(*ip),
            _ => None,
        };
        self.set_status(AgentStatus::Stopped { released });
        result
    }

    async fn run_inner(&self, shutdown: &CancellationToken) -> Result<Exit, AgentError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        loop {
            let Some((node, instance)) = self.wait_for_identity(&nodes, shutdown).await? else {
                return Ok(Exit::NothingHeld);
            };
            let provider = self
                .providers
                .provider_for(&instance, &self.settings)
                .await
                .map_err(|e| AgentError::Config(e.to_string()))?;
            // Metered inside, dry-run outside: only calls that reach the cloud are counted.
            let provider = MeteredProvider::wrap(provider, self.metrics());
            let provider = if self.settings.dry_run {
                DryRunProvider::wrap(provider)
            } else {
                provider
            };
            let holder = Holder {
                node: self.settings.node_name.clone(),
                instance: instance.id.clone(),
                cluster: self.settings.cluster_name.clone(),
            };
            let mut ctx = NodeContext {
                nodes: nodes.clone(),
                publisher: NodePublisher::new(
                    nodes.clone(),
                    &self.settings.node_name,
                    self.settings.dry_run,
                ),
                claims: ClaimStore::new(
                    self.client.clone(),
                    &self.settings.lease_namespace,
                    holder,
                    self.settings.lease_duration,
                    self.settings.dry_run,
                )
                .with_clock_skew(self.settings.clock_skew),
                notifier: Notifier::new(
                    self.client.clone(),
                    &self.settings,
                    node.metadata.uid.clone(),
                ),
                instance,
                described: None,
                provider,
            };
            let span =
                info_span!("node", instance = %ctx.instance.id, cloud = %ctx.provider.name());
            // The sweeper runs inside this task (not spawned), so it dies with the agent.
            let sweeper_stop = shutdown.child_token();
            let sweeping = self
                .sweeper(&ctx)
                .run(sweeper_stop.clone())
                .instrument(span.clone());
            let serving = async {
                let served = self
                    .serve_node(&mut ctx, node, shutdown)
                    .instrument(span)
                    .await;
                sweeper_stop.cancel();
                served
            };
            let (served, ()) = tokio::join!(serving, sweeping);
            match served.map_err(explain_forbidden) {
                Ok(Some(exit)) => return Ok(exit),
                // The Node was deleted and its address released: wait for it to come back.
                Ok(None) => continue,
                // A transient API failure: start over from the Node (adoption makes that
                // safe: what the node holds is kept), after a pause.
                Err(AgentError::Kube(e)) => {
                    warn!(error = %e, "Kubernetes API call failed; starting over from the Node");
                    if !sleep_or_shutdown(Duration::from_secs(1), shutdown).await {
                        return Ok(Exit::NothingHeld);
                    }
                    continue;
                }
                Err(config) => return Err(config),
            }
        }
    }

    fn sweeper(&self, ctx: &NodeContext) -> Sweeper {
        Sweeper {
            leases: Api::namespaced(self.client.clone(), &self.settings.lease_namespace),
            nodes: ctx.nodes.clone(),
            provider: Arc::clone(&ctx.provider),
            home: ctx.instance.clone(),
            node_name: self.settings.node_name.clone(),
            cluster: self.settings.cluster_name.clone(),
            interval: self.settings.sweep_interval,
            metrics: self.metrics(),
            dry_run: self.settings.dry_run,
            release_on_exit: self.settings.release_on_exit,
        }
    }

    /// Serve one node identity until shutdown (Some) or the Node's deletion (None).
    async fn serve_node(
        &self,
        ctx: &mut NodeContext,
        mut node: Node,
        shutdown: &CancellationToken,
    ) -> Result<Option<Exit>, AgentError> {
        // After a restart, the address the node still shows is tried first.
        let mut preferred: Option<IpAddr> = publish::published_address(&node);
        let mut first_assignment = true;
        loop {
            let Some(held) = self.acquire(ctx, preferred, shutdown).await? else {
                // Stopped while (re-)acquiring. The claim of the address the node still
                // publishes stays: it keeps that address reserved to this node for the
                // next agent, which re-attaches it first (dropping it let another node
                // take and publish an address this Node still showed; soak seed 123).
                // Claims of anything else are leftovers.
                ctx.claims.release_leftovers(preferred).await.ok();
                return Ok(Some(Exit::NothingHeld));
            };
            let address = held.address.ip;
            let span = info_span!("address", %address);
            let outcome = async {
                if let Some(previous) = &held.taken_from {
                    self.withdraw_stale_publication(ctx, previous, &address).await;
                }
                if !publish::is_published(&node, &address) {
                    ctx.publisher.publish_address(&address).await?;
                }
                // Only now: until the node shows its new address, the old one stays claimed,
                // so no other node can take it while this node still publishes it.
                if let Err(e) = ctx.claims.release_leftovers(Some(address)).await {
                    warn!(error = %e, "could not drop leftover claims; retried on the next assignment");
                }
                let (result, why) = match (held.adopted, preferred) {
                    (true, _) => ("adopted", "already_attached"),
                    (false, Some(previous)) if previous == address => ("reattached", "detached_elsewhere"),
                    (false, _) => ("assigned", "claimed"),
                };
                self.metrics.assigned(result, why);
                if first_assignment {
                    self.metrics.time_to_address.observe(self.started.elapsed().as_secs_f64());
                    first_assignment = false;
                }
                self.metrics.has_address.set(1);
                let (event_reason, verb) = if held.adopted { (reason::ADOPTED, "kept") } else { (reason::ASSIGNED, "attached") };
                info!(adopted = held.adopted, "address {verb} and published");
                if !held.adopted {
                    ctx.notifier
                        .normal(event_reason, "Assign", format!("static address {address} attached to instance {}", ctx.instance.id))
                        .await;
                } else {
                    ctx.notifier
                        .normal(event_reason, "Adopt", format!("instance {} already holds {address}; kept it without any cloud write", ctx.instance.id))
                        .await;
                }
                self.set_status(AgentStatus::Assigned {
                    address,
                    adopted: held.adopted,
                    elapsed: self.started.elapsed(),
                });
                self.steady_state(ctx, &held, node.clone(), shutdown).await
            }
            .instrument(span.clone())
            .await?;
            match outcome {
                SteadyExit::Shutdown(last_seen) => {
                    let exit = self
                        .on_shutdown(ctx, &held, *last_seen)
                        .instrument(span)
                        .await;
                    return Ok(Some(exit));
                }
                SteadyExit::NodeDeleted => {
                    match decide_on_exit(self.settings.release_on_exit, None) {
                        ExitDecision::Release(why) => {
                            self.release(ctx, &held, &why).instrument(span).await
                        }
                        ExitDecision::Keep(why) => {
                            self.metrics.released("kept", why.code);
                            info!(%why, "the Node object was deleted; keeping the address")
                        }
                    }
                    return Ok(None);
                }
                SteadyExit::ClaimLost => {
                    warn!(%address, "our claim on the address was replaced or dropped while the cloud shows it on this instance; checking again");
                    preferred = Some(address);
                    node = ctx.nodes.get(&self.settings.node_name).await?;
                }
                SteadyExit::AddressLost => {
                    warn!(%address, "the address is no longer attached to this instance; re-attaching (same address first)");
                    ctx.notifier
                        .warning(reason::REATTACHED, "Reattach", format!("{address} was detached from instance {} by someone else; re-attaching", ctx.instance.id))
                        .await;
                    preferred = Some(address);
                    self.metrics.has_address.set(0);
                    node = ctx.nodes.get(&self.settings.node_name).await?;
                }
            }
        }
    }

    /// GET the Node until it exists and has a providerID (new nodes get it from the
    /// cloud controller a little after registering). None: shutdown while waiting.
    async fn wait_for_identity(
        &self,
        nodes: &Api<Node>,
        shutdown: &CancellationToken,
    ) -> Result<Option<(Node, InstanceRef)>, AgentError> {
        let name = &self.settings.node_name;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(NODE_POLL_MAX.min(self.settings.retry_interval))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            let why = match nodes.get_opt(name).await {
                Ok(Some(node)) => {
                    let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap_or_default();
                    match parse_provider_id(&provider_id) {
                        Ok(instance) => return Ok(Some((node, instance))),
                        Err(ProviderIdError::Missing) => {
                            format!("node {name} has no spec.providerID yet (the cloud controller sets it once the instance is registered)")
                        }
                        Err(e) => {
                            Notifier::new(self.client.clone(), &self.settings, node.metadata.uid.clone())
                                .warning(reason::UNSUPPORTED_NODE, "Identify", e.to_string())
                                .await;
                            return Err(AgentError::Config(e.to_string()));
                        }
                    }
                }
                Ok(None) => format!("node {name} does not exist (yet)"),
                Err(e) if is_forbidden(&e) => {
                    return Err(AgentError::Config(format!(
                        "not allowed to read node {name}: {e}; grant get, list, watch and patch on nodes (deploy/base/rbac.yaml)"
                    )))
                }
                Err(e) => format!("could not read node {name}: {e}"),
            };
            self.set_status(AgentStatus::WaitingForNode(why.clone()));
            let delay = delays.next().unwrap_or(NODE_POLL_MAX);
            info!(retry_in = ?delay, "{why}");
            if !sleep_or_shutdown(delay, shutdown).await {
                return Ok(None);
            }
        }
    }

    /// Adopt or claim+attach, retrying until it works or shutdown (None).
    async fn acquire(
        &self,
        ctx: &mut NodeContext,
        preferred: Option<IpAddr>,
        shutdown: &CancellationToken,
    ) -> Result<Option<Held>, AgentError> {
        self.set_status(AgentStatus::Acquiring);
        let interval = self.settings.retry_interval;
        let new_backoff = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(1).min(interval))
                .with_max_delay(interval)
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = new_backoff();
        let mut failures: u32 = 0;
        let mut taint_given_up = false;
        let mut publication_cleared = false;
        loop {
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            let delay = match self.pass(ctx, preferred, shutdown).await {
                Ok(Pass::Assigned(held)) => return Ok(Some(*held)),
                Ok(Pass::Interrupted) => return Ok(None),
                Ok(Pass::Exhausted { matched, free }) => {
                    failures = 0;
                    delays = new_backoff();
                    // The node may still publish an address it no longer holds (lost while
                    // this agent was down): a waiting node must not advertise it.
                    if preferred.is_some() && !publication_cleared {
                        match ctx.publisher.clear_address().await {
                            Ok(()) => publication_cleared = true,
                            Err(e) => {
                                warn!(error = %e, "could not clear the stale publication; retrying")
                            }
                        }
                        self.metrics.has_address.set(0);
                    }
                    let note = exhausted_note(&self.settings.pool.filter, matched, free, interval);
                    warn!(
                        matched,
                        free, "pool exhausted; waiting for an address to be freed"
                    );
                    // The Event first: whoever sees the status can rely on the Event.
                    ctx.notifier
                        .warning(reason::POOL_EXHAUSTED, "Assign", note)
                        .await;
                    self.set_status(AgentStatus::PoolExhausted { matched, free });
                    self.metrics.assigned("waiting", "pool_exhausted");
                    interval
                }
                Err(PassError::Config(message)) => return Err(AgentError::Config(message)),
                Err(error) => {
                    failures += 1;
                    let class = match &error {
                        PassError::Cloud(e) => error_class_label(&e.class),
                        PassError::Kube(_) => "kubernetes_api",
                        PassError::Config(_) => "invalid_input",
                    };
                    self.metrics.assigned("failed", class);
                    let throttled =
                        matches!(&error, PassError::Cloud(e) if e.class == ErrorClass::Throttled);
                    warn!(%error, attempt = failures, "assignment attempt failed");
                    if let PassError::Cloud(ProviderError {
                        class: ErrorClass::PermissionDenied { .. },
                        ..
                    }) = &error
                    {
                        ctx.notifier
                            .warning(reason::PERMISSION_DENIED, "Assign", error.to_string())
                            .await;
                    }
                    if failures == self.settings.retry_attempts {
                        let note = format!(
                            "{failures} attempts in a row failed (last: {error}); still trying every {}",
                            humanize(interval)
                        );
                        error!("{note}");
                        self.set_status(AgentStatus::Stalled(error.to_string()));
                        ctx.notifier.warning(reason::STALLED, "Assign", note).await;
                    }
                    let base = if failures >= self.settings.retry_attempts {
                        interval
                    } else {
                        delays.next().unwrap_or(interval)
                    };
                    // A throttled cloud gets twice the pause (and at least what it asked for).
                    let asked = match &error {
                        PassError::Cloud(e) => e.retry_after.unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    if throttled {
                        (base * 2).max(asked)
                    } else {
                        base.max(asked)
                    }
                }
            };
            self.maybe_give_up_taint(ctx, &mut taint_given_up).await;
            if !sleep_or_shutdown(delay, shutdown).await {
                return Ok(None);
            }
        }
    }

    /// TAINT_GIVE_UP (KubeIP issue #156): when no address could be had for that long,
    /// lift the taint and label the node `pinip.dev/assigned=false`, so a mixed pool keeps
    /// scheduling. The agent keeps trying; a later assignment relabels the node.
    async fn maybe_give_up_taint(&self, ctx: &NodeContext, done: &mut bool) {
        let (Some(key), Some(after)) = (&self.settings.taint_key, self.settings.taint_give_up)
        else {
            return;
        };
        if *done || self.started.elapsed() < after {
            return;
        }
        *done = true;
        let lifted = match ctx.publisher.remove_taint(key).await {
            Ok(lifted) => lifted,
            Err(e) => {
                warn!(error = %e, taint = %key, "could not lift the taint after TAINT_GIVE_UP");
                return;
            }
        };
        if let Err(e) = ctx.publisher.mark_unassigned().await {
            warn!(error = %e, "could not label the node as without an address");
        }
        if lifted {
            let note = format!("no address after {}; removed taint {key} so the node can run workloads without a static address (label pinip.dev/assigned=false)", humanize(after));
            warn!("{note}");
            ctx.notifier
                .warning(reason::TAINT_LIFTED_WITHOUT_ADDRESS, "Untaint", note)
                .await;
        }
    }

    /// One pass: list the pool (one cloud call answers "already mine?" and "what is
    /// free?"), then claim and attach the first candidate that is free in both places.
    async fn pass(
        &self,
        ctx: &mut NodeContext,
        preferred: Option<IpAddr>,
        shutdown: &CancellationToken,
    ) -> Result<Pass, PassError> {
        let pool = cloud(ctx.provider.list_pool()).await?;
        if let Some(mine) = held_by(&pool, &ctx.instance.id).into_iter().next() {
            let adopted = ctx.claims.ensure_held(mine.ip).await?;
            self.repair_ownership(ctx, mine).await;
            return Ok(Pass::Assigned(Box::new(Held {
                address: mine.clone(),
                claim: adopted.claim,
                adopted: true,
                taken_from: adopted.taken_from,
            })));
        }
        let ordered = self.settings.pool.order_by.is_some();
        let free = candidates(&pool, &self.settings.node_name, ordered, preferred);
        self.metrics
            .pool_seen(pool.len(), pool.iter().filter(|a| a.is_free()).count());
        if free.is_empty() {
            return Ok(Pass::Exhausted {
                matched: pool.len(),
                free: 0,
            });
        }
        let instance = match &ctx.described {
            Some(instance) => instance.clone(),
            None => {
                let described = cloud(ctx.provider.describe_instance(&ctx.instance)).await?;
                ctx.described = Some(described.clone());
                described
            }
        };
        let owner = self.owner(ctx);
        for candidate in &free {
            if shutdown.is_cancelled() {
                return Ok(Pass::Interrupted);
            }
            let mut claim = match ctx.claims.try_claim(candidate.ip).await? {
                ClaimAttempt::Taken { holder } => {
                    self.metrics.claim_conflicts.inc();
                    debug!(address = %candidate.ip, %holder, "claimed by another node; next candidate");
                    continue;
                }
                ClaimAttempt::Claimed(claim) => claim,
            };
            match self
                .attach_renewing(ctx, candidate, &instance, &owner, &mut claim)
                .await
            {
                Ok(()) => {
                    let mut taken_from = None;
                    match ctx.claims.mark_held(&mut claim).await {
                        Ok(()) => {}
                        // Someone took the claim over while we attached: the cloud says the
                        // address is ours, so the claim is corrected to match.
                        Err(ClaimError::Lost(_)) => {
                            let adopted = ctx.claims.ensure_held(candidate.ip).await?;
                            claim = adopted.claim;
                            taken_from = adopted.taken_from;
                        }
                        Err(ClaimError::Kube(e)) => return Err(PassError::Kube(e)),
                    }
                    return Ok(Pass::Assigned(Box::new(Held {
                        address: candidate.clone(),
                        claim,
                        adopted: false,
                        taken_from,
                    })));
                }
                Err(e) => {
                    // A fresh claim goes back. Our held claim (the address our node still
                    // publishes) stays, keeping the address reserved while we retry, unless
                    // the cloud says the address is no longer to be had.
                    let unavailable =
                        matches!(e.class, ErrorClass::Conflict | ErrorClass::NotFound);
                    if claim.phase == Phase::Claiming || unavailable {
                        if let Err(release_error) = ctx.claims.release(&claim).await {
                            warn!(error = %release_error, "could not release a claim after a failed attach; it expires after LEASE_DURATION");
                        }
                    }
                    match e.class {
                        ErrorClass::Conflict | ErrorClass::NotFound => {
                            debug!(address = %candidate.ip, error = %e, "address unavailable in the cloud; next candidate");
                            continue;
                        }
                        _ => return Err(PassError::Cloud(e)),
                    }
                }
            }
        }
        Ok(Pass::Exhausted {
            matched: pool.len(),
            free: free.len(),
        })
    }

    /// The cloud shows `address` on our instance and we replaced `previous`'s claim on it:
    /// take the address off that node's publication before ours goes up.
    async fn withdraw_stale_publication(
        &self,
        ctx: &NodeContext,
        previous: &str,
        address: &IpAddr,
    ) {
        match publish::withdraw_stale(&ctx.nodes, previous, address, self.settings.dry_run).await {
            Ok(true) => {
                info!(previous_holder = %previous, "withdrew the address from the node that published it before")
            }
            Ok(false) => {}
            Err(e) => {
                warn!(previous_holder = %previous, error = %e, "could not withdraw the stale publication of the previous holder; its agent drops it at its next verification")
            }
        }
    }

    /// Who we are, as the cloud's ownership record should say.
    fn owner(&self, ctx: &NodeContext) -> Ownership {
        Ownership {
            cluster: self.settings.cluster_name.clone(),
            node: self.settings.node_name.clone(),
            instance: ctx.instance.id.clone(),
        }
    }

    /// Correct an ownership record that does not name this node: a tag/label write that
    /// failed after the attach, or an address attached before pinip ran. Attach is
    /// idempotent on our own instance and records the owner; one cloud write, only then.
    async fn repair_ownership(&self, ctx: &NodeContext, address: &PoolAddress) {
        let owner = self.owner(ctx);
        if address.owner.as_ref() == Some(&owner) {
            return;
        }
        let instance = match &ctx.described {
            Some(instance) => instance.clone(),
            None => match cloud(ctx.provider.describe_instance(&ctx.instance)).await {
                Ok(instance) => instance,
                Err(e) => {
                    warn!(error = %e, "could not read the instance to correct the ownership record; retried at the next verification");
                    return;
                }
            },
        };
        match cloud(ctx.provider.attach(address, &instance, &owner)).await {
            Ok(()) => {
                info!(address = %address.ip, previous_owner = ?address.owner, "ownership record corrected")
            }
            Err(e) => {
                warn!(address = %address.ip, error = %e, "could not correct the ownership record; retried at the next verification")
            }
        }
    }

    /// Attach while renewing the claim, so a slow cloud does not let it expire.
    async fn attach_renewing(
        &self,
        ctx: &NodeContext,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
        claim: &mut Claim,
    ) -> Result<(), ProviderError> {
        let attach = cloud(ctx.provider.attach(address, instance, owner));
        tokio::pin!(attach);
        let period = (self.settings.lease_duration / 3).max(Duration::from_millis(200));
        let mut renew = tokio::time::interval_at(Instant::now() + period, period);
        loop {
            tokio::select! {
                result = &mut attach => return result,
                _ = renew.tick() => {
                    if let Err(e) = ctx.claims.renew(claim).await {
                        warn!(error = %e, "could not renew the claim during attach");
                    }
                }
            }
        }
    }

    /// Nothing to do but watch: the own Node (no cloud calls), plus a cloud check every
    /// VERIFY_INTERVAL, plus lifting the taint once the node reports the address.
    async fn steady_state(
        &self,
        ctx: &NodeContext,
        held: &Held,
        node: Node,
        shutdown: &CancellationToken,
    ) -> Result<SteadyExit, AgentError> {
        let name = self.settings.node_name.clone();
        let address = held.address.ip;
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut node_events = watcher(ctx.nodes.clone(), config).default_backoff().boxed();
        let verify_every = self.settings.verify_interval;
        let mut verify = tokio::time::interval_at(Instant::now() + verify_every, verify_every);
        let taint_key = self
            .settings
            .taint_key
            .clone()
            .filter(|key| publish::has_taint(&node, key));
        let taint_deadline = Instant::now() + self.settings.taint_wait;
        let mut taint_pending = taint_key.is_some();
        let mut last_seen = Some(node);
        let mut seen_in_relist = true;
        loop {
            if let (true, Some(key), Some(current)) = (taint_pending, &taint_key, &last_seen) {
                let reported = publish::reports_address(current, &address);
                if reported || Instant::now() >= taint_deadline {
                    if ctx.publisher.remove_taint(key).await? {
                        let how = if reported {
                            "the node reports the address"
                        } else {
                            "the node did not report the address within TAINT_WAIT"
                        };
                        info!(taint = %key, "taint removed: {how}");
                        ctx.notifier
                            .normal(
                                reason::TAINT_REMOVED,
                                "Untaint",
                                format!("removed taint {key}: {how}"),
                            )
                            .await;
                    }
                    taint_pending = false;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(SteadyExit::Shutdown(Box::new(last_seen))),
                _ = tokio::time::sleep_until(taint_deadline), if taint_pending => {}
                event = node_events.next() => match event {
                    Some(Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => {
                        seen_in_relist = true;
                        if !publish::is_published(&n, &address) {
                            // Only while the claim is ours: a node that took the address
                            // over withdrew this publication, and it must stay withdrawn.
                            if !ctx.claims.is_ours(&held.claim).await? {
                                return Ok(SteadyExit::ClaimLost);
                            }
                            info!("node publication missing; restoring it");
                            ctx.publisher.publish_address(&address).await?;
                            // Checked again after the write: a takeover that fell between
                            // the check and the write would otherwise leave our
                            // publication up until the next verification.
                            if !ctx.claims.is_ours(&held.claim).await? {
                                ctx.publisher.clear_address().await?;
                                return Ok(SteadyExit::ClaimLost);
                            }
                        }
                        last_seen = Some(n);
                    }
                    Some(Ok(watcher::Event::Delete(_))) => return Ok(SteadyExit::NodeDeleted),
                    Some(Ok(watcher::Event::Init)) => seen_in_relist = false,
                    // A (re)list that did not contain the node means it is gone.
                    Some(Ok(watcher::Event::InitDone)) if !seen_in_relist => return Ok(SteadyExit::NodeDeleted),
                    Some(Ok(watcher::Event::InitDone)) => {}
                    Some(Err(e)) => debug!(error = %e, "node watch interrupted; it resumes by itself"),
                    None => return Ok(SteadyExit::Shutdown(Box::new(last_seen))),
                },
                _ = verify.tick(), if !self.settings.dry_run => {
                    match cloud(ctx.provider.list_pool()).await {
                        Ok(pool) if held_by(&pool, &ctx.instance.id).iter().any(|a| a.ip == address) => {
                            debug!("attachment verified");
                            if let Some(listed) = pool.iter().find(|a| a.ip == address) {
                                self.repair_ownership(ctx, listed).await;
                            }
                            // The claim too: an address held without its claim could be
                            // claimed (and, once detached, published) by another node.
                            match ctx.claims.is_ours(&held.claim).await {
                                Ok(true) => {}
                                Ok(false) => return Ok(SteadyExit::ClaimLost),
                                Err(e) => warn!(error = %e, "could not check the claim; will check again"),
                            }
                        }
                        Ok(_) => return Ok(SteadyExit::AddressLost),
                        Err(e) => warn!(error = %e, "could not verify the attachment; will check again"),
                    }
                }
            }
        }
    }

    async fn on_shutdown(&self, ctx: &NodeContext, held: &Held, last_seen: Option<Node>) -> Exit {
        let address = held.address.ip;
        // A fresh read: the watch may lag behind a deletion that caused the SIGTERM.
        let node = match tokio::time::timeout(
            Duration::from_secs(5),
            ctx.nodes.get_opt(&self.settings.node_name),
        )
        .await
        {
            Ok(Ok(node)) => node,
            _ => {
                warn!("could not read the Node on exit; deciding from the last state seen");
                last_seen
            }
        };
        match decide_on_exit(self.settings.release_on_exit, node.as_ref()) {
            ExitDecision::Keep(why) => {
                info!(%why, "keeping the address on exit");
                self.metrics.released("kept", why.code);
                let note = format!(
                    "agent stopping; {address} stays on instance {}: {why}",
                    ctx.instance.id
                );
                ctx.notifier.normal(reason::KEPT, "Keep", note).await;
                Exit::Kept(address)
            }
            ExitDecision::Release(why) => {
                self.release(ctx, held, &why).await;
                Exit::Released(address)
            }
        }
    }

    /// Detach, drop the claim, clear the publication; bounded by RELEASE_TIMEOUT. Each
    /// step is idempotent, so a release cut short is finished by the next release (the agent restarted on this node, or a later sweep).
    async fn release(&self, ctx: &NodeContext, held: &Held, why: &Reason) {
        self.set_status(AgentStatus::Releasing);
        let address = held.address.ip;
        info!(%why, "releasing the address");
        let steps = async {
            let mut delays = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(2))
                .with_jitter()
                .with_max_times(5)
                .build();
            loop {
                match cloud(ctx.provider.detach(&held.address, &ctx.instance)).await {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() => match delays.next() {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Err(e.to_string()),
                    },
                    Err(e) => return Err(e.to_string()),
                }
            }
            ctx.claims
                .release(&held.claim)
                .await
                .map_err(|e| e.to_string())?;
            ctx.publisher
                .clear_address()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        };
        match tokio::time::timeout(self.settings.release_timeout, steps).await {
            Ok(Ok(())) => {
                info!("address released");
                self.metrics.released("released", why.code);
                self.metrics.has_address.set(0);
                ctx.notifier
                    .normal(
                        reason::RELEASED,
                        "Release",
                        format!(
                            "released {address} from instance {}: {why}",
                            ctx.instance.id
                        ),
                    )
                    .await;
            }
            Ok(Err(e)) => {
                self.metrics.released("failed", why.code);
                error!(error = %e, "release failed; every step is idempotent, so a later release finishes it")
            }
            Err(_) => {
                self.metrics.released("failed", why.code);
                error!(timeout = ?self.settings.release_timeout, "release did not finish within RELEASE_TIMEOUT; a later release finishes it")
            }
        }
    }
}

/// A 403 from the API server is a deployment problem: say which manifest to fix.
fn explain_forbidden(error: AgentError) -> AgentError {
    match error {
        AgentError::Kube(e) if is_forbidden(&e) => AgentError::Config(format!(
            "the Kubernetes API refused a call: {e}; apply the RBAC of deploy/base/rbac.yaml (nodes: get, list, watch, patch; leases in LEASE_NAMESPACE: create, get, list, update, delete; events.k8s.io events in default: create, patch)"
        )),
        other => other,
    }
}

/// A failed pass, by what the agent does about it.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("{0}")]
    Cloud(ProviderError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Config(String),
}

impl From<ProviderError> for PassError {
    fn from(e: ProviderError) -> Self {
        match e.class {
            ErrorClass::InvalidInput => PassError::Config(e.to_string()),
            _ => PassError::Cloud(e),
        }
    }
}

/// A cloud call with a deadline; a call that hangs becomes a transient error.
async fn cloud<T>(
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(CLOUD_CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::new(
            ErrorClass::Transient,
            "cloud call",
            format!("no answer within {CLOUD_CALL_TIMEOUT:?}"),
        )),
    }
}

/// Sleep unless shutdown comes first; false means shutdown.
async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// What a PoolExhausted Event says: the filter, what it matched, and what happens next.
fn exhausted_note(filter: &[String], matched: usize, free: usize, retry: Duration) -> String {
    let filter = if filter.is_empty() {
        "(none)".to_string()
    } else {
        filter.join(";")
    };
    let why = if free == 0 {
        format!("all {matched} addresses matched by FILTER {filter} are attached")
    } else {
        format!("FILTER {filter} matches {matched} addresses; the {free} unattached ones are claimed by other nodes")
    };
    format!(
        "no free address: {why}; looking again in {}",
        humanize(retry)
    )
}

/// `1m`, `30s`, `250ms`: the units RETRY_INTERVAL is written in.
fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_note_names_the_filter_and_counts() {
        let filter = vec!["Name=tag:kubeip,Values=reserved".to_string()];
        let note = exhausted_note(&filter, 40, 0, Duration::from_secs(60));
        assert!(
            note.contains("all 40 addresses")
                && note.contains("Name=tag:kubeip,Values=reserved")
                && note.contains("1m"),
            "{note}"
        );
        let note = exhausted_note(&[], 5, 2, Duration::from_secs(30));
        assert!(
            note.contains("(none)") && note.contains("2 unattached") && note.contains("30s"),
            "{note}"
        );
    }

    #[test]
    fn durations_read_like_settings() {
        assert_eq!(humanize(Duration::from_secs(3600)), "1h");
        assert_eq!(humanize(Duration::from_secs(120)), "2m");
        assert_eq!(humanize(Duration::from_secs(45)), "45s");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
    }
}
