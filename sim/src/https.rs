//! HTTPS for the simulators' loopback servers that clients reach over TLS only (the
//! Kubernetes API for kubectl with a token, OKE's proxymux): a CA made at start, a
//! serving certificate it signed for 127.0.0.1, ::1 and `localhost`, and an
//! `axum::serve` listener that hands over connections once their handshake is done.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client may take over its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A CA of the simulator's own and the server configuration it signed.
pub(crate) struct Serving {
    /// The CA certificate (PEM), what clients are told to trust.
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// Makes a CA named `ca_name` and a serving certificate `server_name` for 127.0.0.1,
/// ::1 and `localhost`.
pub(crate) fn serving(ca_name: &str, server_name: &str) -> anyhow::Result<Serving> {
    let ca_key = KeyPair::generate().context("generating a CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate().context("generating a serving key")?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf.subject_alt_names.extend([
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]);
    leaf.distinguished_name
        .push(DnType::CommonName, server_name);
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
    // The routers speak HTTP/1.1 only (axum's `http1` feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Serving {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}

/// Serves `app` over HTTPS with `config` on a free loopback port until `shutdown`;
/// returns the address. `what` names the server in its log line if it stops.
pub(crate) async fn serve(
    app: axum::Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
    what: &'static str,
) -> anyhow::Result<SocketAddr> {
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = tcp.local_addr()?;
    let listener = TlsListener::new(tcp, addr, config, shutdown.clone());
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "{what} stopped serving HTTPS");
        }
    });
    Ok(addr)
}

/// Connections whose TLS handshake is done. Handshakes run on tasks of their own, so
/// one slow client delays nobody.
struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(
        tcp: TcpListener,
        local: SocketAddr,
        config: Arc<rustls::ServerConfig>,
        shutdown: CancellationToken,
    ) -> TlsListener {
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = tcp.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::debug!(error = %e, "HTTPS accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                    _ = shutdown.cancelled() => return,
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
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
        TlsListener { accepted, local }
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
