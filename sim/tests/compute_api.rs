//! The Compute simulator over HTTP: the filter grammar pinip sends (and 400 for what
//! it does not support), paging, ordering, fingerprints (412 when stale), operations
//! and `wait`, auth, counters, injected failures. (What it refuses that real Compute
//! refuses, and its timing: `compute_fidelity.rs`.)

use std::net::IpAddr;
use std::time::Duration;

use pinip_sim::compute::{ComputeSim, Failure, Faults};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";

async fn sim() -> ComputeSim {
    // reqwest is built without a crypto provider of its own (pinip uses ring throughout).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = ComputeSim::start("p").await.expect("starts");
    for i in 0..7 {
        let labels: &[(&str, &str)] = if i % 2 == 0 {
            &[("kubeip", "reserved")]
        } else {
            &[("kubeip", "other")]
        };
        sim.add_address(
            REGION,
            &format!("pool-{i}"),
            ip(&format!("203.0.113.{}", 10 + i)),
            labels,
        );
    }
    sim.add_address(
        REGION,
        "v6",
        ip("2600:1900:4000:abcd::"),
        &[("kubeip", "reserved")],
    );
    sim.add_instance(ZONE, "node-1", true);
    sim
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

async fn call(
    sim: &ComputeSim,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}projects/p/{path}", sim.url()))
        .bearer_auth("t")
        .query(query);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let value = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, value)
}

fn item_names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|a| a["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_filter_pinip_sends_selects_the_pool() {
    let sim = sim().await;
    let path = format!("regions/{REGION}/addresses");
    let filter =
        "(status=RESERVED) (addressType=EXTERNAL) (ipVersion!=IPV6) (labels.kubeip=reserved)";
    let (status, list) = call(
        &sim,
        Method::GET,
        &path,
        &[
            ("filter", filter),
            ("alt", "json"),
            ("returnPartialSuccess", "True"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item_names(&list), ["pool-0", "pool-2", "pool-4", "pool-6"]);
    let (_, v6) = call(
        &sim,
        Method::GET,
        &path,
        &[("filter", "(ipVersion=IPV6) (labels.kubeip=reserved)")],
        None,
    )
    .await;
    assert_eq!(item_names(&v6), ["v6"]);
    // An order comes without a filter (Compute refuses the two together).
    let (_, ordered) = call(
        &sim,
        Method::GET,
        &path,
        &[("orderBy", "creationTimestamp desc")],
        None,
    )
    .await;
    assert_eq!(item_names(&ordered)[..3], ["v6", "pool-6", "pool-5"]);
    // Nothing matches: no `items` at all, as the API answers.
    let (_, none) = call(
        &sim,
        Method::GET,
        &path,
        &[("filter", "labels.kubeip=nothing")],
        None,
    )
    .await;
    assert!(none.get("items").is_none());
    sim.shutdown();
}

#[tokio::test]
async fn unsupported_filters_and_orders_are_refused_with_400() {
    let sim = sim().await;
    let path = format!("regions/{REGION}/addresses");
    for bad in [
        "(labels.kubeip=reserved",
        "colour=red",
        "(status=RESERVED) (name eq pool-.*)",
        "(status=RESERVED) OR (status=IN_USE)",
    ] {
        let (status, body) = call(&sim, Method::GET, &path, &[("filter", bad)], None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Invalid value for field 'filter'"),
            "{message}"
        );
    }
    let (status, body) = call(&sim, Method::GET, &path, &[("orderBy", "address")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Sorting is only supported"));
    sim.shutdown();
}

#[tokio::test]
async fn pages_follow_next_page_token() {
    let sim = sim().await;
    let path = format!("regions/{REGION}/addresses");
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut query = vec![("maxResults", "3")];
        if let Some(t) = &token {
            query.push(("pageToken", t.as_str()));
        }
        let (status, page) = call(&sim, Method::GET, &path, &query, None).await;
        assert_eq!(status, StatusCode::OK);
        names.extend(item_names(&page));
        token = page["nextPageToken"].as_str().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 8);
    let (status, _) = call(&sim, Method::GET, &path, &[("pageToken", "garbage")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&sim, Method::GET, &path, &[("maxResults", "501")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, aggregated) = call(
        &sim,
        Method::GET,
        "aggregated/addresses",
        &[("includeAllScopes", "True")],
        None,
    )
    .await;
    assert_eq!(
        aggregated["items"][format!("regions/{REGION}")]["addresses"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    sim.shutdown();
}

#[tokio::test]
async fn requests_need_a_bearer_token() {
    let sim = sim().await;
    let response = reqwest::get(format!(
        "{}projects/p/regions/{REGION}/addresses",
        sim.url()
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &sim,
        Method::GET,
        "zones/us-central1-a/instances/nope",
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sim.shutdown();
}

#[tokio::test]
async fn operations_run_then_wait_reports_done_with_their_error() {
    let sim = sim().await;
    sim.set_faults(Faults {
        operation_time: Duration::from_millis(200),
        ..Faults::default()
    });
    let instance = format!("zones/{ZONE}/instances/node-1");
    let (status, op) = call(
        &sim,
        Method::POST,
        &format!("{instance}/deleteAccessConfig"),
        &[
            ("networkInterface", "nic0"),
            ("accessConfig", "external-nat"),
            ("requestId", "x"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{op}");
    assert_eq!(op["status"], "RUNNING");
    let name = op["name"].as_str().unwrap().to_string();
    let (_, waited) = call(
        &sim,
        Method::POST,
        &format!("zones/{ZONE}/operations/{name}/wait"),
        &[],
        None,
    )
    .await;
    assert_eq!(waited["status"], "DONE");
    assert!(waited.get("error").is_none());
    let (_, got) = call(
        &sim,
        Method::GET,
        &format!("zones/{ZONE}/operations/{name}"),
        &[],
        None,
    )
    .await;
    assert_eq!(got["status"], "DONE");

    // A scripted failure: accepted, nothing changes, the operation ends in error.
    sim.fail_next(
        "instances.addAccessConfig",
        Failure::Operation {
            code: "INTERNAL_ERROR".into(),
            message: "boom".into(),
        },
    );
    let body = json!({"type": "ONE_TO_ONE_NAT", "name": "external-nat", "natIP": "203.0.113.10"});
    let (_, op) = call(
        &sim,
        Method::POST,
        &format!("{instance}/addAccessConfig"),
        &[("networkInterface", "nic0")],
        Some(body.clone()),
    )
    .await;
    let name = op["name"].as_str().unwrap().to_string();
    let (_, waited) = call(
        &sim,
        Method::POST,
        &format!("zones/{ZONE}/operations/{name}/wait"),
        &[],
        None,
    )
    .await;
    assert_eq!(waited["error"]["errors"][0]["code"], "INTERNAL_ERROR");
    assert_eq!(waited["httpErrorStatusCode"], 400);
    assert!(
        sim.external_ips("node-1").iter().all(IpAddr::is_ipv6),
        "nothing was added"
    );
    // Unscripted, it works; a second one is refused outright (one access config per NIC).
    let (_, op) = call(
        &sim,
        Method::POST,
        &format!("{instance}/addAccessConfig"),
        &[("networkInterface", "nic0")],
        Some(body.clone()),
    )
    .await;
    let (_, waited) = call(
        &sim,
        Method::POST,
        &format!(
            "zones/{ZONE}/operations/{}/wait",
            op["name"].as_str().unwrap()
        ),
        &[],
        None,
    )
    .await;
    assert!(waited.get("error").is_none(), "{waited}");
    let (status, refused) = call(
        &sim,
        Method::POST,
        &format!("{instance}/addAccessConfig"),
        &[("networkInterface", "nic0")],
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("At most one access config"));
    let counts = sim.request_counts();
    assert_eq!(counts.method("instances.addAccessConfig"), 3);
    assert_eq!(counts.method("zoneOperations.wait"), 3);
    assert_eq!(counts.writes(), 4);
    sim.shutdown();
}

#[tokio::test]
async fn stale_fingerprints_get_412_and_invalid_ones_400() {
    let sim = sim().await;
    let instance = format!("zones/{ZONE}/instances/node-1");
    let (_, read) = call(&sim, Method::GET, &instance, &[], None).await;
    let fingerprint = read["networkInterfaces"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let update = |fp: &str| {
        json!({"fingerprint": fp, "stackType": "IPV4_IPV6", "ipv6AccessConfigs": [
        {"type": "DIRECT_IPV6", "name": "external-ipv6", "externalIpv6": "2600:1900:4000:abcd::", "externalIpv6PrefixLength": 96, "networkTier": "PREMIUM"}]})
    };
    let path = format!("{instance}/updateNetworkInterface");
    // The external IPv6 is set on the way from IPV4_ONLY to IPV4_IPV6 (two steps).
    let (status, _) = call(
        &sim,
        Method::PATCH,
        &path,
        &[("networkInterface", "nic0")],
        Some(json!({"fingerprint": fingerprint, "stackType": "IPV4_ONLY"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, read) = call(&sim, Method::GET, &instance, &[], None).await;
    let fingerprint = read["networkInterfaces"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        &sim,
        Method::PATCH,
        &path,
        &[("networkInterface", "nic0")],
        Some(update(&fingerprint)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim
        .attached_to("node-1")
        .contains(&ip("2600:1900:4000:abcd::")));
    let (status, body) = call(
        &sim,
        Method::PATCH,
        &path,
        &[("networkInterface", "nic0")],
        Some(update(&fingerprint)),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["errors"][0]["reason"], "conditionNotMet");
    let (status, _) = call(
        &sim,
        Method::PATCH,
        &path,
        &[("networkInterface", "nic0")],
        Some(update("nicfp=")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let address = format!("regions/{REGION}/addresses/pool-0");
    let (_, read) = call(&sim, Method::GET, &address, &[], None).await;
    let label_fp = read["labelFingerprint"].as_str().unwrap().to_string();
    let labels = json!({"labels": {"kubeip": "reserved", "pinip-node": "node-1"}, "labelFingerprint": label_fp});
    let (status, _) = call(
        &sim,
        Method::POST,
        &format!("{address}/setLabels"),
        &[],
        Some(labels.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &sim,
        Method::POST,
        &format!("{address}/setLabels"),
        &[],
        Some(labels),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    sim.shutdown();
}

#[tokio::test]
async fn status_and_users_follow_the_instances() {
    let sim = sim().await;
    sim.attach_by_hand("pool-0", "node-1");
    let (_, read) = call(
        &sim,
        Method::GET,
        &format!("regions/{REGION}/addresses/pool-0"),
        &[],
        None,
    )
    .await;
    assert_eq!(read["status"], "IN_USE");
    assert!(read["users"][0]
        .as_str()
        .unwrap()
        .ends_with("/instances/node-1"));
    sim.terminate_instance("node-1");
    let (_, read) = call(
        &sim,
        Method::GET,
        &format!("regions/{REGION}/addresses/pool-0"),
        &[],
        None,
    )
    .await;
    assert_eq!(read["status"], "RESERVED");
    assert!(read.get("users").is_none());
    assert_eq!(
        read["labels"]["kubeip"], "reserved",
        "labels outlive the instance"
    );
    sim.shutdown();
}

#[tokio::test]
async fn injected_failures_throttling_and_denials() {
    let sim = sim().await;
    let path = format!("regions/{REGION}/addresses");
    sim.deny("addresses.list");
    let (status, body) = call(&sim, Method::GET, &path, &[], None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Required 'compute.addresses.list' permission"));
    sim.allow("addresses.list");
    sim.fail_next(
        "addresses.list",
        Failure::Http {
            status: 503,
            reason: "backendError",
            message: "try later".into(),
        },
    );
    assert_eq!(
        call(&sim, Method::GET, &path, &[], None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&sim, Method::GET, &path, &[], None).await.0,
        StatusCode::OK
    );
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        seed: 3,
        ..Faults::default()
    });
    for _ in 0..4 {
        let (status, body) = call(&sim, Method::GET, &path, &[], None).await;
        assert!(matches!(status.as_u16(), 403 | 429), "{status}");
        assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
    }
    sim.set_faults(Faults {
        error_rate: 1.0,
        seed: 3,
        ..Faults::default()
    });
    assert!(call(&sim, Method::GET, &path, &[], None)
        .await
        .0
        .is_server_error());
    sim.set_faults(Faults::default());
    let counts = sim.request_counts();
    assert_eq!(counts.method("addresses.list"), 8);
    assert_eq!(counts.total, 8);
    sim.shutdown();
}
