//! The API-server restart fault: the server goes away (connections refused, open
//! watches cut), comes back answering 503 while it is not ready, then briefly refuses
//! authorized requests (401 while its token authenticator warms up, 403 while its RBAC
//! informers sync), then serves normally — what a real kube-apiserver did in the
//! issue-11 run. The listener itself is closed and re-bound on the same port.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lock;
use super::request::Target;
use super::status::ApiError;

/// How long each phase of one restart lasts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restart {
    /// Nothing listens: connections are refused.
    pub down: Duration,
    /// Listening, every request answered 503 (readyz failing).
    pub unavailable: Duration,
    /// Resource requests with a bearer token answered 401.
    pub unauthorized: Duration,
    /// Resource requests answered 403, even those RBAC allows.
    pub forbidden: Duration,
}

/// What a request meets at this moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Serving,
    Unavailable,
    Unauthorized,
    Forbidden,
}

/// The restart machinery shared by the handle, the server loop and the handler.
pub(crate) struct Restarts {
    count: AtomicU64,
    /// Cancelled to close the current listener and its connections.
    generation: Mutex<CancellationToken>,
    /// The pending down time, taken by the server loop.
    down: Mutex<Option<Duration>>,
    /// Deadlines of the phases after the listener is back.
    phases: Mutex<Option<(Instant, Instant, Instant)>>,
    plan: Mutex<Restart>,
}

impl Restarts {
    pub(crate) fn new(shutdown: &CancellationToken) -> Self {
        Restarts {
            count: AtomicU64::new(0),
            generation: Mutex::new(shutdown.child_token()),
            down: Mutex::new(None),
            phases: Mutex::new(None),
            plan: Mutex::new(Restart::default()),
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The token that ends this listener generation (watches listen to it too).
    pub(crate) fn generation(&self) -> CancellationToken {
        lock(&self.generation).clone()
    }

    /// Starts a restart: the current listener closes now.
    pub(crate) fn begin(&self, plan: Restart) {
        self.count.fetch_add(1, Ordering::Relaxed);
        *lock(&self.plan) = plan;
        *lock(&self.down) = Some(plan.down);
        // Answer 503 from now on too, for requests already in flight on old connections.
        let far = Instant::now() + Duration::from_secs(3600);
        *lock(&self.phases) = Some((far, far, far));
        lock(&self.generation).cancel();
    }

    /// The server loop: the down time to wait before re-binding, if a restart began.
    pub(crate) fn take_down(&self) -> Option<Duration> {
        lock(&self.down).take()
    }

    /// The server loop re-bound the listener: a new generation, and the clock of the
    /// phases starts now.
    pub(crate) fn back(&self, shutdown: &CancellationToken) {
        *lock(&self.generation) = shutdown.child_token();
        let plan = *lock(&self.plan);
        let t0 = Instant::now();
        let unavailable = t0 + plan.unavailable;
        let unauthorized = unavailable + plan.unauthorized;
        let forbidden = unauthorized + plan.forbidden;
        *lock(&self.phases) = Some((unavailable, unauthorized, forbidden));
    }

    pub(crate) fn phase(&self) -> Phase {
        let mut phases = lock(&self.phases);
        let Some((unavailable, unauthorized, forbidden)) = *phases else {
            return Phase::Serving;
        };
        let now = Instant::now();
        if now < unavailable {
            Phase::Unavailable
        } else if now < unauthorized {
            Phase::Unauthorized
        } else if now < forbidden {
            Phase::Forbidden
        } else {
            *phases = None;
            Phase::Serving
        }
    }
}

/// The answer of a restarting server to `target`, or `None` to serve it.
pub(crate) fn refusal(phase: Phase, target: &Target, user: &str) -> Option<Response> {
    let resource = match target {
        Target::Resource(info) => Some(info),
        Target::NonResource(_) | Target::Review(..) => None,
    };
    match (phase, resource) {
        (Phase::Serving, _) => None,
        (Phase::Unavailable, _) => Some(
            ApiError::Unavailable("apiserver is shutting down or not yet ready".into())
                .into_response(),
        ),
        (Phase::Unauthorized, Some(info)) if info.token.is_some() => {
            Some(super::rbac::Decision::Unauthorized.into_response())
        }
        (Phase::Unauthorized | Phase::Forbidden, Some(info)) => {
            let attrs = super::rbac::Attributes {
                verb: info.verb.as_str(),
                group: info.api_group(),
                resource: info.resource(),
                subresource: info.subresource.clone(),
                namespace: info.namespace.clone(),
                name: info.name.clone(),
            };
            Some(super::rbac::forbidden_while_starting(user, &attrs).into_response())
        }
        (_, None) => None,
    }
}
