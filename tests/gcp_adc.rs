//! Application Default Credentials through gcp_auth, end to end and on loopback only:
//! `GOOGLE_APPLICATION_CREDENTIALS` names a service-account key whose `token_uri` is a
//! local token endpoint, gcp_auth signs a JWT with the key and exchanges it there, and
//! the provider calls the Compute simulator with the token it got. Nothing reaches
//! Google or a metadata server. (This binary sets the variable for itself alone.)

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pinip_providers::gcp::{GcpProvider, GcpSettings, TokenSource};
use pinip_providers::{IpFamily, PoolSpec, Provider};
use pinip_sim::compute::ComputeSim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ISSUED: &str = "adc-token-from-the-local-endpoint";

/// A token endpoint that answers every POST with a fresh token, counting the JWT
/// bearer grants it saw.
async fn token_endpoint(grants: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let grants = grants.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then the form body (Content-Length bytes).
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            if body.contains(
                                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
                            ) && body.contains("assertion=")
                            {
                                grants.fetch_add(1, Ordering::SeqCst);
                            }
                            break;
                        }
                    }
                }
                let json = format!(
                    r#"{{"access_token":"{ISSUED}","expires_in":3600,"token_type":"Bearer"}}"#
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn private_key_pem() -> String {
    let output = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl is needed to make a throw-away service-account key");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_default_credentials_reach_compute_with_the_exchanged_token() {
    let grants = Arc::new(AtomicUsize::new(0));
    let token_uri = token_endpoint(grants.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.json");
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "test",
        "private_key": private_key_pem(),
        "client_email": "pinip@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    std::fs::write(&key_file, key.to_string()).unwrap();
    std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", &key_file);

    let sim = ComputeSim::start("p").await.unwrap();
    sim.add_address(
        "us-central1",
        "pool-1",
        "203.0.113.10".parse::<IpAddr>().unwrap(),
        &[("kubeip", "reserved")],
    );
    let token = TokenSource::application_default()
        .await
        .expect("ADC finds the key file");
    let provider = GcpProvider::new(GcpSettings {
        project: "p".into(),
        region: "us-central1".into(),
        endpoint: Some(sim.url()),
        token,
        pool: PoolSpec {
            filter: vec!["labels.kubeip=reserved".into()],
            order_by: None,
            family: IpFamily::V4,
        },
    })
    .unwrap();
    let pool = provider
        .list_pool()
        .await
        .expect("listed with the ADC token");
    assert_eq!(pool.len(), 1);
    assert_eq!(sim.last_token().as_deref(), Some(ISSUED));
    // Cached until it expires: the two list calls and a second pass cost one exchange.
    provider.list_pool().await.unwrap();
    assert_eq!(grants.load(Ordering::SeqCst), 1);
    sim.shutdown();
}
