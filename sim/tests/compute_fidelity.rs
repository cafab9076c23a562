//! The Compute simulator refuses what real Compute refuses and behaves as documented
//! where clients get it wrong: `filter` with `orderBy`, undeclared parameters,
//! `maxResults` 0–500, empty pages with a token, aggregated lists over every region,
//! operations that apply their change when they complete (and `resourceNotReady`
//! meanwhile), a best-effort `wait`, the two-step IPv6 swap and its pool constraints,
//! and the fault knobs chaos uses.

use std::net::IpAddr;
use std::time::Duration;

use pinip_sim::compute::{ComputeSim, Failure, Faults};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";
const INSTANCE: &str = "zones/us-central1-a/instances/node-1";

async fn sim() -> ComputeSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = ComputeSim::start("p").await.expect("starts");
    for i in 0..5 {
        sim.add_address(
            REGION,
            &format!("pool-{i}"),
            ip(&format!("203.0.113.{}", 10 + i)),
            &[("kubeip", "reserved")],
        );
    }
    sim.add_address(REGION, "v6-1", ip("2600:1900:4000:abcd::"), &[]);
    sim.add_ipv6_address(
        REGION,
        "v6-lb",
        ip("2600:1900:4000:abce::"),
        &[],
        "NETLB",
        "default",
    );
    sim.add_ipv6_address(
        REGION,
        "v6-elsewhere",
        ip("2600:1900:4000:abcf::"),
        &[],
        "VM",
        "other",
    );
    sim.add_instance(ZONE, "node-1", true);
    sim.add_instance(ZONE, "node-2", true);
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
    (
        status,
        response.json::<Value>().await.unwrap_or(Value::Null),
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|a| a["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn fingerprint(sim: &ComputeSim, instance: &str) -> String {
    let (_, read) = call(sim, Method::GET, instance, &[], None).await;
    read["networkInterfaces"][0]["fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn patch_nic(sim: &ComputeSim, instance: &str, body: Value) -> (StatusCode, Value) {
    call(
        sim,
        Method::PATCH,
        &format!("{instance}/updateNetworkInterface"),
        &[("networkInterface", "nic0")],
        Some(body),
    )
    .await
}

async fn wait(sim: &ComputeSim, op: &Value) -> Value {
    let name = op["name"].as_str().unwrap_or_default();
    call(
        sim,
        Method::POST,
        &format!("zones/{ZONE}/operations/{name}/wait"),
        &[],
        None,
    )
    .await
    .1
}

fn assign(fp: &str, ip: &str) -> Value {
    json!({"fingerprint": fp, "stackType": "IPV4_IPV6", "ipv6AccessConfigs": [
        {"type": "DIRECT_IPV6", "name": "external-ipv6", "externalIpv6": ip,
         "externalIpv6PrefixLength": 96, "networkTier": "PREMIUM"}]})
}

#[tokio::test]
async fn a_filter_with_an_order_is_refused_as_compute_does() {
    let sim = sim().await;
    let path = format!("regions/{REGION}/addresses");
    let (status, body) = call(
        &sim,
        Method::GET,
        &path,
        &[
            ("filter", "labels.kubeip=reserved"),
            ("orderBy", "creationTimestamp"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["errors"][0]["reason"], "invalid");
    assert_eq!(
        message(&body),
        "Invalid value for field 'orderBy': 'creationTimestamp'. Specifying both a list filter and sort order is not currently supported."
    );
    // Either alone is fine.
    let (status, ordered) = call(
        &sim,
        Method::GET,
        &path,
        &[("orderBy", "creationTimestamp desc")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&ordered)[0], "v6-elsewhere");
    sim.shutdown();
}

#[tokio::test]
async fn undeclared_parameters_and_out_of_range_page_sizes_are_refused() {
    let sim = sim().await;
    let path = format!("regions/{REGION}/addresses");
    let (status, body) = call(&sim, Method::GET, &path, &[("colour", "red")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("Unknown name \"colour\""), "{body}");
    let (status, _) = call(&sim, Method::GET, INSTANCE, &[("filter", "x=y")], None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "instances.get has no filter"
    );
    for (value, ok) in [("0", true), ("500", true), ("501", false), ("-1", false)] {
        let (status, list) = call(&sim, Method::GET, &path, &[("maxResults", value)], None).await;
        assert_eq!(status.is_success(), ok, "maxResults={value}: {list}");
        if value == "0" {
            assert_eq!(names(&list).len(), 8, "0 is the default page size");
        }
    }
    // What gcloud and the Python client send is declared.
    let (status, _) = call(
        &sim,
        Method::GET,
        "aggregated/addresses",
        &[
            ("alt", "json"),
            ("includeAllScopes", "True"),
            ("returnPartialSuccess", "True"),
            ("prettyPrint", "false"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    sim.shutdown();
}

#[tokio::test]
async fn aggregated_lists_name_every_region_and_empty_pages_carry_a_token() {
    let sim = sim().await;
    let (_, all) = call(&sim, Method::GET, "aggregated/addresses", &[], None).await;
    let items = all["items"].as_object().expect("items");
    assert_eq!(
        items[&format!("regions/{REGION}")]["addresses"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    for empty in ["regions/asia-east1", "regions/europe-west1", "global"] {
        assert_eq!(
            items[empty]["warning"]["code"], "NO_RESULTS_ON_PAGE",
            "{empty}"
        );
        assert!(items[empty].get("addresses").is_none());
    }
    assert!(items.len() > 40, "every region: {}", items.len());

    sim.set_faults(Faults {
        empty_page_rate: 0.5,
        seed: 11,
        ..Faults::default()
    });
    let path = format!("regions/{REGION}/addresses");
    let (mut seen, mut empty_with_token) = (Vec::new(), 0);
    let mut token: Option<String> = None;
    for _ in 0..200 {
        let mut query = vec![("maxResults", "1")];
        if let Some(t) = &token {
            query.push(("pageToken", t.as_str()));
        }
        let (status, page) = call(&sim, Method::GET, &path, &query, None).await;
        assert_eq!(status, StatusCode::OK);
        let next = page["nextPageToken"].as_str().map(String::from);
        if page.get("items").is_none() && next.is_some() {
            empty_with_token += 1;
            assert_eq!(page["warning"]["code"], "NO_RESULTS_ON_PAGE");
            assert_ne!(next, token, "an empty page's token moves on");
        }
        seen.extend(names(&page));
        token = next;
        if token.is_none() {
            break;
        }
    }
    assert!(empty_with_token > 0, "the knob produced empty pages");
    assert_eq!(seen.len(), 8, "every address once: {seen:?}");
    sim.shutdown();
}

#[tokio::test]
async fn a_write_lands_when_its_operation_completes_and_blocks_others_meanwhile() {
    let sim = sim().await;
    sim.set_faults(Faults {
        operation_time: Duration::from_millis(300),
        ..Faults::default()
    });
    let (status, op) = call(
        &sim,
        Method::POST,
        &format!("{INSTANCE}/deleteAccessConfig"),
        &[
            ("networkInterface", "nic0"),
            ("accessConfig", "external-nat"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{op}");
    assert_eq!(op["status"], "RUNNING");
    assert!(
        sim.external_ips("node-1").iter().any(IpAddr::is_ipv4),
        "nothing changes before the operation completes"
    );
    assert_eq!(sim.running_operations(), 1);
    let (status, busy) = call(
        &sim,
        Method::POST,
        &format!("{INSTANCE}/addAccessConfig"),
        &[("networkInterface", "nic0")],
        Some(json!({"type": "ONE_TO_ONE_NAT"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(busy["error"]["errors"][0]["reason"], "resourceNotReady");
    assert_eq!(
        message(&busy),
        "The resource 'projects/p/zones/us-central1-a/instances/node-1' is not ready"
    );
    let done = wait(&sim, &op).await;
    assert_eq!(done["status"], "DONE");
    assert!(sim.external_ips("node-1").iter().all(IpAddr::is_ipv6));
    assert_eq!(sim.running_operations(), 0);

    // `wait` is best-effort: it may answer at once with the operation still RUNNING.
    sim.set_faults(Faults {
        operation_time: Duration::from_millis(300),
        wait_early_rate: 1.0,
        ..Faults::default()
    });
    let (_, op) = call(
        &sim,
        Method::POST,
        &format!("{INSTANCE}/addAccessConfig"),
        &[("networkInterface", "nic0")],
        Some(json!({"type": "ONE_TO_ONE_NAT"})),
    )
    .await;
    assert_eq!(wait(&sim, &op).await["status"], "RUNNING");
    sim.shutdown();
}

#[tokio::test]
async fn the_ipv6_swap_takes_two_steps_and_only_fitting_addresses() {
    let sim = sim().await;
    let fp = fingerprint(&sim, INSTANCE).await;
    let (status, refused) = patch_nic(&sim, INSTANCE, assign(&fp, "2600:1900:4000:abcd::")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the one-step swap: {refused}"
    );
    assert!(message(&refused).contains("IPV4_ONLY"), "{refused}");
    let (status, _) = patch_nic(
        &sim,
        INSTANCE,
        json!({"fingerprint": fp, "stackType": "IPV4_ONLY"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.stack_type("node-1").as_deref(), Some("IPV4_ONLY"));
    assert_eq!(
        sim.managed_without_external_ipv6(),
        vec!["node-1".to_string()]
    );
    for misfit in ["2600:1900:4000:abce::", "2600:1900:4000:abcf::"] {
        let fp = fingerprint(&sim, INSTANCE).await;
        let (status, body) = patch_nic(&sim, INSTANCE, assign(&fp, misfit)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{misfit}: {body}");
        assert!(message(&body).contains("externalIpv6"), "{body}");
    }
    let fp = fingerprint(&sim, INSTANCE).await;
    let (status, _) = patch_nic(&sim, INSTANCE, assign(&fp, "2600:1900:4000:abcd::")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.attached_to("node-1"), vec![ip("2600:1900:4000:abcd::")]);
    assert_eq!(sim.stack_type("node-1").as_deref(), Some("IPV4_IPV6"));
    let (_, address) = call(
        &sim,
        Method::GET,
        &format!("regions/{REGION}/addresses/v6-lb"),
        &[],
        None,
    )
    .await;
    assert_eq!(address["ipv6EndpointType"], "NETLB");
    assert!(address["subnetwork"]
        .as_str()
        .unwrap_or_default()
        .ends_with("/subnetworks/default"));
    sim.shutdown();
}

#[tokio::test]
async fn fault_knobs_emit_not_ready_quota_and_403_throttling() {
    let sim = sim().await;
    sim.set_faults(Faults {
        not_ready_rate: 1.0,
        ..Faults::default()
    });
    let (status, body) = call(
        &sim,
        Method::POST,
        &format!("{INSTANCE}/deleteAccessConfig"),
        &[
            ("networkInterface", "nic0"),
            ("accessConfig", "external-nat"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].clone()),
        (StatusCode::BAD_REQUEST, json!("resourceNotReady"))
    );
    let (status, _) = call(&sim, Method::GET, INSTANCE, &[], None).await;
    assert_eq!(status, StatusCode::OK, "reads are never 'not ready'");

    sim.set_faults(Faults {
        quota_rate: 1.0,
        ..Faults::default()
    });
    let (_, op) = call(
        &sim,
        Method::POST,
        &format!("{INSTANCE}/deleteAccessConfig"),
        &[
            ("networkInterface", "nic0"),
            ("accessConfig", "external-nat"),
        ],
        None,
    )
    .await;
    let done = wait(&sim, &op).await;
    assert_eq!(done["error"]["errors"][0]["code"], "QUOTA_EXCEEDED");
    assert_eq!(done["httpErrorStatusCode"], 403);
    assert!(
        sim.external_ips("node-1").iter().any(IpAddr::is_ipv4),
        "nothing changed"
    );

    sim.set_faults(Faults::default());
    sim.fail_next("addresses.list", Failure::rate_limited());
    let path = format!("regions/{REGION}/addresses");
    let (status, body) = call(&sim, Method::GET, &path, &[], None).await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].clone()),
        (StatusCode::FORBIDDEN, json!("rateLimitExceeded"))
    );
    sim.fail_next(
        "instances.addAccessConfig",
        Failure::not_ready("projects/p/zones/z/instances/node-1"),
    );
    sim.fail_next("instances.addAccessConfig", Failure::quota_exceeded());
    let (status, _) = call(
        &sim,
        Method::POST,
        &format!("{INSTANCE}/addAccessConfig"),
        &[("networkInterface", "nic0")],
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(sim.request_counts().injected >= 4);
    sim.shutdown();
}
