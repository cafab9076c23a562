//! The one place where an outcome of the agent's work becomes a metric, an Event, a
//! status phase and a log line (controller-rs's `error_policy` + `ReconcileMetrics`),
//! so the control flow says what happened and this file says how it is shown.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::ErrorClass;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::admin::metrics::{AssignResult, Metrics, ReleaseResult};
use crate::admin::status::AgentStatus;
use crate::cloud::metered::error_class_label;
use crate::cluster::events::{reason, Notifier};
use crate::domain::exit_decision::Reason;

/// How an address came to be this node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HowAssigned {
    /// The instance already held it: kept without any cloud write.
    Adopted,
    /// Someone detached it; the same address was attached again.
    Reattached,
    /// Claimed and attached.
    Claimed,
}

/// Something the agent did or saw that people and machines should know about.
pub(crate) enum Outcome<'a> {
    /// The Node does not exist or has no providerID yet.
    WaitingForNode {
        why: &'a str,
        retry_in: Duration,
    },
    /// The Node's providerID names something pinip cannot manage.
    UnsupportedNode {
        error: &'a str,
    },
    Acquiring,
    /// One look at the pool (adoption, a fresh claim, a verification).
    PoolSeen {
        matched: usize,
        free: usize,
    },
    /// A candidate was claimed by another node.
    ClaimConflict,
    /// A waiting node stopped advertising an address it no longer holds.
    PublicationCleared,
    PoolExhausted {
        matched: usize,
        free: usize,
        note: String,
    },
    AttemptFailed {
        error: &'a str,
        class: Option<&'a ErrorClass>,
        attempt: u32,
    },
    /// The cloud throttled an attempt; the next comes after `pause` (paced).
    Throttled {
        error: &'a str,
        pause: Duration,
    },
    /// RETRY_ATTEMPTS attempts in a row failed; the agent keeps trying.
    Stalled {
        error: &'a str,
        note: String,
    },
    Assigned {
        address: IpAddr,
        instance: &'a str,
        how: HowAssigned,
        /// The first address of this agent's life (time to address is observed once).
        first: bool,
    },
    TaintRemoved {
        key: &'a str,
        how: &'a str,
    },
    TaintLiftedWithoutAddress {
        note: String,
    },
    /// The ownership record of a fresh attach could not be written (the next
    /// verification writes it; meanwhile the claim names our instance).
    RecordFailed {
        address: IpAddr,
        error: &'a str,
        class: &'a ErrorClass,
    },
    /// Our claim was replaced or dropped while the cloud shows the address on us.
    ClaimLost {
        address: IpAddr,
    },
    /// The address is no longer on our instance.
    AddressLost {
        address: IpAddr,
        instance: &'a str,
    },
    Kept {
        address: IpAddr,
        instance: &'a str,
        why: &'a Reason,
    },
    /// The Node object was deleted and the policy keeps the address.
    KeptAfterNodeDeletion {
        why: &'a Reason,
    },
    Releasing,
    Released {
        address: IpAddr,
        instance: &'a str,
        why: &'a Reason,
    },
    ReleaseFailed {
        why: &'a Reason,
        error: String,
    },
    Stopped {
        released: Option<IpAddr>,
    },
}

impl Outcome<'_> {
    /// What one read of the pool says: every read sets the pool gauges, not only the
    /// read of a fresh claim (the free count went stale while addresses were taken).
    pub(crate) fn pool_seen(pool: &[pinip_providers::PoolAddress]) -> Outcome<'static> {
        Outcome::PoolSeen {
            matched: pool.len(),
            free: pool.iter().filter(|a| a.is_free()).count(),
        }
    }
}

/// Turns outcomes into telemetry. Cheap to clone; every part of the agent holds one.
#[derive(Clone)]
pub(crate) struct Reporter {
    metrics: Arc<Metrics>,
    status: watch::Sender<AgentStatus>,
    started: Instant,
}

impl Reporter {
    pub(crate) fn new(metrics: Arc<Metrics>) -> (Reporter, watch::Receiver<AgentStatus>) {
        let (status, receiver) = watch::channel(AgentStatus::Starting);
        let reporter = Reporter {
            metrics,
            status,
            started: Instant::now(),
        };
        (reporter, receiver)
    }

    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Since the agent started (TAINT_GIVE_UP counts from here).
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn status(&self, status: AgentStatus) {
        self.status.send_replace(status);
    }

    /// Show `outcome`; `events` is the Node's Event recorder, once the Node is known.
    pub(crate) async fn report(&self, events: Option<&Notifier>, outcome: Outcome<'_>) {
        let m = &self.metrics;
        match outcome {
            Outcome::WaitingForNode { why, retry_in } => {
                self.status(AgentStatus::WaitingForNode(why.to_string()));
                info!(?retry_in, "{why}");
            }
            Outcome::UnsupportedNode { error } => {
                if let Some(events) = events {
                    events
                        .warning(reason::UNSUPPORTED_NODE, "Identify", error.to_string())
                        .await;
                }
            }
            Outcome::Acquiring => self.status(AgentStatus::Acquiring),
            Outcome::PoolSeen { matched, free } => m.pool_seen(matched, free),
            Outcome::ClaimConflict => {
                m.claim_conflicts.inc();
            }
            Outcome::PublicationCleared => {
                m.has_address.set(0);
            }
            Outcome::PoolExhausted {
                matched,
                free,
                note,
            } => {
                warn!(
                    matched,
                    free, "pool exhausted; waiting for an address to be freed"
                );
                // The Event and the metric first: whoever sees the status can rely on
                // both (as for an assignment below).
                m.assigned(AssignResult::Waiting, "pool_exhausted");
                if let Some(events) = events {
                    events.warning(reason::POOL_EXHAUSTED, "Assign", note).await;
                }
                self.status(AgentStatus::PoolExhausted { matched, free });
            }
            Outcome::AttemptFailed {
                error,
                class,
                attempt,
            } => {
                let label = class.map_or("kubernetes_api", error_class_label);
                m.assigned(AssignResult::Failed, label);
                warn!(%error, attempt, "assignment attempt failed");
                if let (Some(events), Some(ErrorClass::PermissionDenied { .. })) = (events, class) {
                    events
                        .warning(reason::PERMISSION_DENIED, "Assign", error.to_string())
                        .await;
                }
            }
            Outcome::RecordFailed {
                address,
                error,
                class,
            } => {
                warn!(%address, %error, "could not write the ownership record; the next verification writes it");
                if let (Some(events), ErrorClass::PermissionDenied { .. }) = (events, class) {
                    events
                        .warning(reason::PERMISSION_DENIED, "RecordOwner", error.to_string())
                        .await;
                }
            }
            Outcome::Throttled { error, pause } => {
                m.assigned(AssignResult::Throttled, "paced");
                info!(%error, pause = %humanize(pause), "the cloud throttled us; next attempt paced");
            }
            Outcome::Stalled { error, note } => {
                error!("{note}");
                if let Some(events) = events {
                    events.warning(reason::STALLED, "Assign", note).await;
                }
                self.status(AgentStatus::Stalled(error.to_string()));
            }
            Outcome::Assigned {
                address,
                instance,
                how,
                first,
            } => {
                let (result, why) = match how {
                    HowAssigned::Adopted => (AssignResult::Adopted, "already_attached"),
                    HowAssigned::Reattached => (AssignResult::Reattached, "detached_elsewhere"),
                    HowAssigned::Claimed => (AssignResult::Assigned, "claimed"),
                };
                m.assigned(result, why);
                if first {
                    m.time_to_address.observe(self.elapsed().as_secs_f64());
                }
                m.has_address.set(1);
                let adopted = how == HowAssigned::Adopted;
                if adopted {
                    info!(adopted, "address kept and published");
                } else {
                    info!(adopted, "address attached and published");
                }
                if let Some(events) = events {
                    if adopted {
                        events
                            .normal(reason::ADOPTED, "Adopt", format!("instance {instance} already holds {address}; kept it without any cloud write"))
                            .await;
                    } else {
                        events
                            .normal(
                                reason::ASSIGNED,
                                "Assign",
                                format!("static address {address} attached to instance {instance}"),
                            )
                            .await;
                    }
                }
                self.status(AgentStatus::Assigned {
                    address,
                    adopted,
                    elapsed: self.elapsed(),
                });
            }
            Outcome::TaintRemoved { key, how } => {
                info!(taint = %key, "taint removed: {how}");
                if let Some(events) = events {
                    events
                        .normal(
                            reason::TAINT_REMOVED,
                            "Untaint",
                            format!("removed taint {key}: {how}"),
                        )
                        .await;
                }
            }
            Outcome::TaintLiftedWithoutAddress { note } => {
                warn!("{note}");
                if let Some(events) = events {
                    events
                        .warning(reason::TAINT_LIFTED_WITHOUT_ADDRESS, "Untaint", note)
                        .await;
                }
            }
            Outcome::ClaimLost { address } => {
                warn!(%address, "our claim on the address was replaced or dropped while the cloud shows it on this instance; checking again");
            }
            Outcome::AddressLost { address, instance } => {
                warn!(%address, "the address is no longer attached to this instance; re-attaching (same address first)");
                if let Some(events) = events {
                    events
                        .warning(
                            reason::REATTACHED,
                            "Reattach",
                            format!("{address} was detached from instance {instance} by someone else; re-attaching"),
                        )
                        .await;
                }
                m.has_address.set(0);
            }
            Outcome::Kept {
                address,
                instance,
                why,
            } => {
                info!(%why, "keeping the address on exit");
                m.released(ReleaseResult::Kept, why.code);
                if let Some(events) = events {
                    let note =
                        format!("agent stopping; {address} stays on instance {instance}: {why}");
                    events.normal(reason::KEPT, "Keep", note).await;
                }
            }
            Outcome::KeptAfterNodeDeletion { why } => {
                m.released(ReleaseResult::Kept, why.code);
                info!(%why, "the Node object was deleted; keeping the address");
            }
            Outcome::Releasing => {
                self.status(AgentStatus::Releasing);
            }
            Outcome::Released {
                address,
                instance,
                why,
            } => {
                info!("address released");
                m.released(ReleaseResult::Released, why.code);
                m.has_address.set(0);
                if let Some(events) = events {
                    events
                        .normal(
                            reason::RELEASED,
                            "Release",
                            format!("released {address} from instance {instance}: {why}"),
                        )
                        .await;
                }
            }
            Outcome::ReleaseFailed { why, error } => {
                m.released(ReleaseResult::Failed, why.code);
                error!("{error}");
            }
            Outcome::Stopped { released } => self.status(AgentStatus::Stopped { released }),
        }
    }
}

/// What a PoolExhausted Event says: the filter, what it matched, and what happens next.
pub(crate) fn exhausted_note(
    filter: &[String],
    matched: usize,
    free: usize,
    retry: Duration,
) -> String {
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
pub(crate) fn humanize(d: Duration) -> String {
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

    #[tokio::test]
    async fn outcomes_set_the_status_and_the_metrics() {
        let (reporter, status) = Reporter::new(Arc::new(Metrics::new()));
        reporter
            .report(
                None,
                Outcome::PoolExhausted {
                    matched: 3,
                    free: 0,
                    note: "n".into(),
                },
            )
            .await;
        assert_eq!(
            *status.borrow(),
            AgentStatus::PoolExhausted {
                matched: 3,
                free: 0
            }
        );
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        reporter
            .report(
                None,
                Outcome::Assigned {
                    address,
                    instance: "i-1",
                    how: HowAssigned::Claimed,
                    first: true,
                },
            )
            .await;
        assert!(status.borrow().is_ready());
        let text = reporter.metrics().encode().unwrap();
        for line in [
            "pinip_assignments_total{result=\"waiting\",reason=\"pool_exhausted\"} 1",
            "pinip_assignments_total{result=\"assigned\",reason=\"claimed\"} 1",
            "pinip_node_has_address 1",
            "pinip_time_to_address_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
