//! `pinip run` as a process against `pinip simulate --serve` (EC2 simulator + Kubernetes
//! API simulator): it gets an address, `/readyz` turns ready, `/metrics` says so, the
//! Node shows the address and the Events tell the story; SIGTERM keeps the address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

fn kubectl(kubeconfig: &str, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs (CI installs it)");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// kubectl's stderr for a command that must fail.
fn kubectl_refused(kubeconfig: &str, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs (CI installs it)");
    assert!(!out.status.success(), "kubectl {args:?} was allowed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The API server's answer to a Node list over HTTPS without any credentials (kubectl
/// would prompt for a username instead of sending none).
fn list_nodes_without_a_token(kubeconfig: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let text = std::fs::read_to_string(kubeconfig).expect("the kubeconfig");
        let mut file = kube::config::Kubeconfig::from_yaml(&text).expect("a kubeconfig");
        for user in &mut file.auth_infos {
            if let Some(info) = user.auth_info.as_mut() {
                info.token = None;
            }
        }
        let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .expect("a client configuration");
        let client = kube::Client::try_from(config).expect("a client");
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
        match nodes.list(&Default::default()).await {
            Ok(list) => panic!("an anonymous request listed {} nodes", list.items.len()),
            Err(e) => e.to_string(),
        }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[test]
fn pinip_run_against_pinip_simulate_serve_gets_ready_and_reports_it() {
    let bin = env!("CARGO_BIN_EXE_pinip");
    let mut serve = Command::new(bin)
        .args([
            "simulate", "--serve", "--json", "--cloud", "aws", "--nodes", "3", "--pool", "3",
            "--agents", "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pinip simulate --serve");
    let stdout = serve.stdout.take().expect("stdout");
    let serve = Reaper(serve);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let info: Value = serde_json::from_str(&first).expect("the first line is JSON");
    let kubeconfig = info["kubeconfig"].as_str().expect("kubeconfig").to_string();
    // deploy/base's ServiceAccount: the agent runs with exactly what a DaemonSet is granted.
    let agent_kubeconfig = info["agent_kubeconfig"]
        .as_str()
        .expect("agent_kubeconfig")
        .to_string();
    let kube_url = info["kube_url"].as_str().expect("kube_url");
    assert!(kube_url.starts_with("https://127.0.0.1:"), "{kube_url}");
    let ec2_url = info["ec2_url"]
        .as_str()
        .expect("ec2_url of the EC2 simulator")
        .to_string();
    assert!(ec2_url.starts_with("http://127.0.0.1:"), "{ec2_url}");
    let node = info["nodes"][2]["name"]
        .as_str()
        .expect("a node left for us")
        .to_string();

    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let empty = std::env::temp_dir().join(format!("pinip-run-process-{}", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let agent = Command::new(bin)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NODE_NAME", &node)
        .env("KUBECONFIG", &agent_kubeconfig)
        .env("LEASE_NAMESPACE", "pinip-system")
        .env("FILTER", "Name=tag:kubeip,Values=reserved")
        .env("CLUSTER_NAME", "sim")
        .env("RETRY_INTERVAL", "1s")
        .env("ADMIN_ADDR", admin.to_string())
        .env("LOG_JSON", "true")
        .env("AWS_ENDPOINT_URL", &ec2_url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pinip run");
    let mut agent = Reaper(agent);

    // /readyz turns ready once the address is attached and published.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, _)) = get(admin, "/readyz") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pinip run never became ready: {:?}",
            get(admin, "/readyz")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(admin, "/healthz").map(|r| r.0), Some(200));
    let (_, metrics) = get(admin, "/metrics").expect("/metrics");
    for expected in [
        "pinip_node_has_address 1",
        "pinip_assignments_total{result=\"assigned\",reason=\"claimed\"} 1",
        "pinip_cloud_calls_total{provider=\"aws\",operation=\"attach\",outcome=\"ok\"} 1",
        "pinip_time_to_address_seconds_count 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }

    // Through the API: the Node shows the address, an Event says it was assigned.
    let address = kubectl(
        &kubeconfig,
        &[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.metadata.annotations.pinip\\.dev/address}",
        ],
    );
    assert!(
        address.trim().parse::<std::net::IpAddr>().is_ok(),
        "annotation {address:?}"
    );
    let label = kubectl(
        &kubeconfig,
        &[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.metadata.labels.pinip\\.dev/assigned}",
        ],
    );
    assert_eq!(label.trim(), "true");
    let events: Value = serde_json::from_str(&kubectl(
        &kubeconfig,
        &["get", "events", "-n", "default", "-o", "json"],
    ))
    .expect("events JSON");
    let assigned = events["items"].as_array().into_iter().flatten().any(|e| {
        e["reason"] == "AddressAssigned"
            && (e["involvedObject"]["name"] == node.as_str()
                || e["regarding"]["name"] == node.as_str())
    });
    assert!(assigned, "no AddressAssigned Event for {node}");

    // Authentication as on a cluster: the ServiceAccount can do what deploy/base grants
    // and no more, a token nobody issued is 401, and no token is system:anonymous.
    let rules = kubectl(
        &agent_kubeconfig,
        &["auth", "can-i", "--list", "-n", "pinip-system"],
    );
    assert!(rules.contains("leases.coordination.k8s.io"), "{rules}");
    let denied = kubectl_refused(&agent_kubeconfig, &["get", "pods", "-n", "kube-system"]);
    assert!(
        denied.contains("system:serviceaccount:pinip-system:pinip"),
        "{denied}"
    );
    let forged = kubectl_refused(&kubeconfig, &["--token", "forged", "get", "nodes"]);
    assert!(forged.contains("Unauthorized"), "{forged}");
    let anonymous = list_nodes_without_a_token(&kubeconfig);
    assert!(anonymous.contains("system:anonymous"), "{anonymous}");

    // The counters of the run, while it runs: the agent outside the process counts as
    // its ServiceAccount's client, and its EC2 calls are there by operation.
    let counters_url = info["counters_url"].as_str().expect("counters_url");
    let (counters_addr, counters_path) = counters_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .expect("http://ADDR/PATH");
    let counters_addr: SocketAddr = counters_addr.parse().expect("a loopback address");
    let deadline = Instant::now() + Duration::from_secs(10);
    let counters = loop {
        let (code, body) =
            get(counters_addr, &format!("/{counters_path}")).expect("the counters answer");
        assert_eq!(code, 200, "{body}");
        let counters: Value = serde_json::from_str(&body).expect("counters JSON");
        let outside = &counters["kube_clients"]["system:serviceaccount:pinip-system:pinip"];
        if outside["requests"].as_u64().unwrap_or_default() > 0 || Instant::now() > deadline {
            break counters;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let outside = &counters["kube_clients"]["system:serviceaccount:pinip-system:pinip"];
    assert!(
        outside["response_bytes"].as_u64().unwrap_or_default() > 0,
        "{counters}"
    );
    let associations = counters["report"]["cloud_calls"]["by_operation"]["AssociateAddress"]
        .as_u64()
        .unwrap_or_default();
    assert!(associations >= 3, "{counters}");
    assert_eq!(
        counters["report"]["violations"],
        serde_json::json!([]),
        "{counters}"
    );

    // SIGTERM: a pod restart, not a node removal: exit 0 and the address stays.
    let pid = agent.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = agent.0.wait().expect("pinip run exits");
    let mut logs = String::new();
    if let Some(mut stderr) = agent.0.stderr.take() {
        let _ = stderr.read_to_string(&mut logs);
    }
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(logs.contains("keeping the address on exit"), "{logs}");
    let still = kubectl(
        &kubeconfig,
        &[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.metadata.annotations.pinip\\.dev/address}",
        ],
    );
    assert_eq!(still, address, "the address stays on a pod restart");
    drop(serve);
    let _ = std::fs::remove_file(empty);
}
