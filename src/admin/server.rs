//! The admin server: `/healthz` (the process is alive), `/readyz` (the node's address
//! is attached and published, so `kubectl rollout status` shows which nodes still wait)
//! and `/metrics` (Prometheus text). One port, `ADMIN_ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::admin::metrics::Metrics;
use crate::admin::status::AgentStatus;

#[derive(Clone)]
struct AdminState {
    status: watch::Receiver<AgentStatus>,
    metrics: Arc<Metrics>,
}

/// A bound admin server; `serve` runs it until `shutdown`.
pub struct AdminServer {
    listener: TcpListener,
    router: Router,
}

impl AdminServer {
    /// Bind now, so a busy port is a startup error rather than a silent failure.
    pub async fn bind(
        addr: SocketAddr,
        status: watch::Receiver<AgentStatus>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<AdminServer> {
        let listener = TcpListener::bind(addr).await?;
        let router = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/livez", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics_text))
            .with_state(AdminState { status, metrics });
        Ok(AdminServer { listener, router })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    let status = state.status.borrow().clone();
    if status.is_ready() {
        (StatusCode::OK, format!("ready: {status:?}\n"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {status:?}\n"),
        )
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    match state.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode metrics\n",
        )
            .into_response(),
    }
}
