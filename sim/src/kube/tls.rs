//! HTTPS for the simulated API server. kubectl sends a bearer token only over TLS (over
//! plain HTTP it sends none and acts as `system:anonymous`), so a playground with
//! authentication on (`pinip simulate --serve`) needs a TLS listener: a CA made at start,
//! a serving certificate for 127.0.0.1 and `localhost`, and the CA handed to clients in
//! the kubeconfig's `certificate-authority-data`, as a real cluster's kubeconfig does.

use std::path::Path;

use super::{kubeconfig, routes, KubeSim};
use crate::https::{self, Serving};

/// The simulator's HTTPS endpoint ([`KubeSim::serve_tls`]).
#[derive(Clone, Debug)]
pub struct TlsEndpoint {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that signed the serving certificate (PEM).
    pub ca_pem: String,
}

impl KubeSim {
    /// Serves the same API over HTTPS too, on another loopback port, with a CA made now:
    /// for clients that send their bearer token only over TLS, as kubectl does. The
    /// listener serves until [`KubeSim::shutdown`]; the restart fault leaves it alone.
    pub async fn serve_tls(&self) -> anyhow::Result<TlsEndpoint> {
        let serving = self.serving()?;
        let app = routes::router(self.shared.clone());
        let addr = https::serve(
            app,
            serving.config.clone(),
            self.shared.shutdown.clone(),
            "the kube simulator",
        )
        .await?;
        tracing::debug!(%addr, "kube simulator listening (HTTPS)");
        Ok(TlsEndpoint {
            url: format!("https://{addr}"),
            ca_pem: serving.ca_pem.clone(),
        })
    }

    /// The simulator's CA and serving configuration, made once.
    pub(crate) fn serving(&self) -> anyhow::Result<&Serving> {
        if let Some(serving) = self.shared.tls.get() {
            return Ok(serving);
        }
        let made = https::serving("pinip-sim kubernetes CA", "kube-apiserver")?;
        Ok(self.shared.tls.get_or_init(|| made))
    }

    /// Writes a kubeconfig for the HTTPS endpoint `tls` with bearer `token`.
    pub fn write_tls_kubeconfig(
        &self,
        path: &Path,
        tls: &TlsEndpoint,
        token: &str,
    ) -> anyhow::Result<()> {
        kubeconfig::write(path, &tls.url, token, Some(&tls.ca_pem))
    }
}
