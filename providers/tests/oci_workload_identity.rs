//! pinip's OCI provider with OKE workload identity, against the OCI simulator's
//! proxymux (HTTPS, verified with the simulated cluster's CA): the pod's service
//! account token and a session key exchanged for a resource-principal session token,
//! every Core Services call signed `ST$<token>`; the token file re-read at each exchange
//! (the kubelet rotates it), a token the cluster did not issue and a basic cluster
//! refused, a proxymux that is down or presents another CA a transient failure.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::oci::{Credentials, OciProvider, OciSettings, Principal, WorkloadSettings};
use pinip_providers::{ErrorClass, InstanceRef, Ownership, PoolSpec, Provider};
use pinip_sim::oci::{Faults, Lifetime, OciSim, ProxymuxEndpoint, SeededInstance};
use tempfile::TempDir;

struct World {
    sim: OciSim,
    node: SeededInstance,
    mux: ProxymuxEndpoint,
    dir: TempDir,
}

async fn world() -> World {
    let sim = OciSim::start().await.expect("simulator starts");
    sim.set_faults(Faults {
        transition_time: Duration::from_millis(20),
        ..Faults::default()
    });
    let compartment = sim.add_compartment();
    for i in 0..2 {
        sim.add_reserved_ip(
            &compartment,
            Ipv4Addr::new(198, 18, 1, 10 + i),
            &[("kubeip", "reserved")],
            &[],
        );
    }
    let node = sim.add_instance(&compartment, "node-1", true, true);
    let mux = sim.serve_proxymux().await.expect("proxymux serves");
    let dir = TempDir::new().expect("temp dir");
    std::fs::write(dir.path().join("ca.crt"), &mux.ca_pem).expect("CA written");
    let token = sim.issue_service_account_token("pinip-system", "pinip", Duration::from_secs(3600));
    std::fs::write(dir.path().join("token"), token).expect("token written");
    World {
        sim,
        node,
        mux,
        dir,
    }
}

fn principal(w: &World, endpoint: &str, ca: &Path) -> Arc<Principal> {
    Arc::new(
        Principal::workload(WorkloadSettings {
            service_host: None,
            endpoint: Some(endpoint.to_string()),
            token_path: Some(w.dir.path().join("token")),
            ca_path: Some(ca.to_path_buf()),
            region: Some("us-ashburn-1".into()),
        })
        .expect("settings are valid"),
    )
}

fn provider(w: &World, principal: &Arc<Principal>) -> OciProvider {
    OciProvider::new(OciSettings {
        compartment: None,
        region: "us-ashburn-1".into(),
        endpoint: Some(w.sim.url()),
        credentials: Credentials::Principal(Arc::clone(principal)),
        pool: PoolSpec {
            filter: vec!["freeformTags.kubeip=reserved".into()],
            ..PoolSpec::default()
        },
    })
    .expect("provider builds")
    .for_instance(&w.node.instance_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_signs_with_the_workload_identity_session_token() {
    let w = world().await;
    let wi = principal(&w, &w.mux.url, &w.dir.path().join("ca.crt"));
    let p = provider(&w, &wi);
    let pool = p.list_pool().await.expect("list");
    assert_eq!(pool.len(), 2);
    let instance = p
        .describe_instance(&InstanceRef {
            cloud: "oci".into(),
            project: None,
            zone: String::new(),
            id: w.node.instance_id.clone(),
        })
        .await
        .expect("describe");
    let owner = Ownership {
        cluster: "prod".into(),
        node: "node-1".into(),
        instance: w.node.instance_id.clone(),
    };
    p.attach(&pool[0], &instance, &owner).await.expect("attach");
    assert_eq!(
        w.sim.public_ip_of(&w.node.instance_id),
        Some((Ipv4Addr::new(198, 18, 1, 10), Lifetime::Reserved))
    );
    assert_eq!((wi.federations(), w.sim.session_tokens_issued()), (1, 1));
    assert_eq!(
        w.sim
            .request_counts()
            .operation("ResourcePrincipalSessionToken"),
        1
    );
    assert!(w.sim.last_key_id().is_some_and(|k| k.starts_with("ST$")));

    // A rotated service account token is read at the next exchange (after a 401).
    let rotated =
        w.sim
            .issue_service_account_token("pinip-system", "pinip", Duration::from_secs(3600));
    std::fs::write(w.dir.path().join("token"), rotated).expect("rotated");
    w.sim.expire_session_tokens();
    assert_eq!(p.list_pool().await.expect("list after 401").len(), 2);
    assert_eq!(wi.federations(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxymux_refuses_tokens_it_did_not_issue_and_basic_clusters() {
    let w = world().await;
    std::fs::write(w.dir.path().join("token"), "eyJhbGciOiJub25lIn0.e30.").expect("forged");
    let wi = principal(&w, &w.mux.url, &w.dir.path().join("ca.crt"));
    let e = provider(&w, &wi).list_pool().await.unwrap_err();
    assert!(
        matches!(e.class, ErrorClass::PermissionDenied { .. }),
        "{e}"
    );
    assert!(e.message.contains("401"), "{e}");

    let token =
        w.sim
            .issue_service_account_token("pinip-system", "pinip", Duration::from_secs(3600));
    std::fs::write(w.dir.path().join("token"), token).expect("token");
    w.sim.set_cluster_enhanced(false);
    let e = provider(&w, &wi).list_pool().await.unwrap_err();
    assert!(
        matches!(e.class, ErrorClass::PermissionDenied { .. }),
        "{e}"
    );
    assert!(
        e.message.contains("403") && e.message.contains("enhanced"),
        "{e}"
    );
    assert_eq!(w.sim.session_tokens_issued(), 0);
    assert_eq!(w.sim.request_counts().operation("ListPublicIps"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxymux_that_is_down_or_not_the_clusters_is_a_transient_failure() {
    let w = world().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let wi = principal(
        &w,
        &format!("https://{closed}"),
        &w.dir.path().join("ca.crt"),
    );
    let e = provider(&w, &wi).list_pool().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");

    // Another simulator's proxymux: its certificate is not signed by our cluster's CA.
    let other = OciSim::start().await.expect("second simulator");
    let other_mux = other.serve_proxymux().await.expect("serves");
    let wi = principal(&w, &other_mux.url, &w.dir.path().join("ca.crt"));
    let e = provider(&w, &wi).list_pool().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert_eq!(
        other
            .request_counts()
            .operation("ResourcePrincipalSessionToken"),
        0
    );
    other.shutdown();
}
