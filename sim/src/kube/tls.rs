//! HTTPS for the simulated API server. kubectl sends a bearer token only over TLS (over
//! plain HTTP it sends none and acts as `system:anonymous`), so a playground with
//! authentication on (`pinip simulate --serve`) needs a TLS listener: a CA made at start,
//! a serving certificate for 127.0.0.1 and `localhost`, and the CA handed to clients in
//! the kubeconfig's `certificate-authority-data`, as a real cluster's kubeconfig does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{kubeconfig, routes, KubeSim};

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
        let tcp = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = tcp.local_addr()?;
        let listener = TlsListener::new(tcp, serving.config.clone(), self.shared.shutdown.clone())?;
        let app = routes::router(self.shared.clone());
        let shutdown = self.shared.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "kube simulator stopped serving HTTPS");
            }
        });
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
        let made = make_serving()?;
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

/// How long a client may take over its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A CA of the simulator's own and the server configuration it signed.
pub(crate) struct Serving {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// Makes a CA and a serving certificate for 127.0.0.1, ::1 and `localhost`.
pub(crate) fn make_serving() -> anyhow::Result<Serving> {
    let ca_key = KeyPair::generate().context("generating the simulator's CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "pinip-sim kubernetes CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate().context("generating the serving key")?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf.subject_alt_names.extend([
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
    ]);
    leaf.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    // The router speaks HTTP/1.1 only (axum's `http1` feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Serving {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}

/// An `axum::serve` listener that hands over connections once their TLS handshake is
/// done. Handshakes run on tasks of their own, so one slow client delays nobody.
pub(crate) struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub(crate) fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = tcp.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::debug!(error = %e, "kube simulator (TLS): accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                    _ = shutdown.cancelled() => return,
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(pair) => pair,
            // The accept loop ended (shutdown): never hand out another connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
