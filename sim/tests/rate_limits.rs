//! The published rate limits over HTTP: the EC2 simulator's token buckets through the
//! real `aws-sdk-ec2` (one attempt, so the SDK's own retries do not hide a refusal),
//! and the Compute simulator's quota windows through raw HTTP. Small buckets and
//! windows on a manual clock: nothing here waits for a refill.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::aws::client_for_endpoint;
use pinip_providers::aws::sdk::error::ProvideErrorMetadata;
use pinip_providers::aws::sdk::types::Filter;
use pinip_sim::clock::ManualClock;
use pinip_sim::compute::{ComputeRateLimits, ComputeSim};
use pinip_sim::ec2::{Bucket, Ec2RateLimits, Ec2Sim};
use serde_json::Value;

#[tokio::test]
async fn an_empty_ec2_bucket_answers_request_limit_exceeded_until_it_refills() {
    let sim = Ec2Sim::start().await.unwrap();
    sim.add_address("eipalloc-1", Ipv4Addr::new(198, 51, 100, 1), &[]);
    sim.add_instance("i-1", "us-east-1a", true, None);
    let clock = ManualClock::at(0);
    sim.set_rate_clock(Arc::new(clock.clone()));
    sim.set_rate_limits(Some(Ec2RateLimits::uniform(Bucket::new(2, 1))));
    let ec2 = client_for_endpoint(&sim.url(), "us-east-1", 1);

    for _ in 0..2 {
        ec2.describe_addresses().send().await.unwrap();
    }
    let refused = ec2.describe_addresses().send().await.unwrap_err();
    assert_eq!(refused.code(), Some("RequestLimitExceeded"));
    let status = refused.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(503));
    // Another action has its own bucket.
    ec2.describe_subnets().send().await.unwrap();
    // One second refills one token.
    clock.advance_ms(1000);
    ec2.describe_addresses().send().await.unwrap();
    assert!(ec2.describe_addresses().send().await.is_err());

    // Unfiltered DescribeInstances (InstanceIds alone) and filtered ones are two buckets.
    for _ in 0..2 {
        ec2.describe_instances()
            .instance_ids("i-1")
            .send()
            .await
            .unwrap();
    }
    let unfiltered = ec2.describe_instances().instance_ids("i-1").send().await;
    assert_eq!(unfiltered.unwrap_err().code(), Some("RequestLimitExceeded"));
    let zone = Filter::builder()
        .name("availability-zone")
        .values("us-east-1a")
        .build();
    ec2.describe_instances().filters(zone).send().await.unwrap();

    let throttled = sim.throttled_counts();
    assert_eq!(throttled["DescribeAddresses"], 2);
    assert_eq!(throttled["DescribeInstances"], 1);
    assert_eq!(throttled["AssociateAddress"], 0);
    assert_eq!(sim.throttled_total(), 3);
    // Refused requests are requests: they count like any other.
    assert_eq!(sim.call_counts()["DescribeAddresses"], 5);

    // Setting up the world is not traffic: it never meets the limits.
    let requests = sim.total_requests();
    for i in 0..10 {
        sim.add_instance(&format!("i-x{i}"), "us-east-1a", true, None);
        sim.attach_by_hand("eipalloc-1", &format!("i-x{i}"))
            .unwrap();
    }
    assert_eq!(sim.total_requests(), requests);
    sim.set_rate_limits(None);
    for _ in 0..10 {
        ec2.describe_addresses().send().await.unwrap();
    }
    assert_eq!(sim.throttled_total(), 3);
}

#[tokio::test]
async fn published_ec2_defaults_allow_fifty_associations_at_once() {
    let sim = Ec2Sim::start().await.unwrap();
    let clock = ManualClock::at(0);
    sim.set_rate_clock(Arc::new(clock.clone()));
    sim.set_rate_limits(Some(Ec2RateLimits::published_defaults()));
    let ec2 = client_for_endpoint(&sim.url(), "us-east-1", 1);
    let mut refused = 0;
    for _ in 0..51 {
        // Unknown allocation IDs: the answer is an error either way, but only the
        // 51st is a throttling one.
        let out = ec2
            .associate_address()
            .allocation_id("eipalloc-none")
            .instance_id("i-none")
            .send()
            .await;
        if out.unwrap_err().code() == Some("RequestLimitExceeded") {
            refused += 1;
        }
    }
    assert_eq!(refused, 1);
    clock.advance_ms(200);
    let after = ec2
        .associate_address()
        .allocation_id("eipalloc-none")
        .instance_id("i-none")
        .send()
        .await;
    assert_ne!(after.unwrap_err().code(), Some("RequestLimitExceeded"));
}

#[tokio::test]
async fn a_spent_compute_group_answers_403_rate_limit_exceeded_until_the_next_window() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = ComputeSim::start("p").await.unwrap();
    sim.add_instance("sim-1a", "vm-1", true);
    // 0.5 s into a 1 s window: the first window is partial, as a run's would be.
    let clock = ManualClock::at(10_500);
    sim.set_rate_clock(Arc::new(clock.clone()));
    sim.set_rate_limits(Some(ComputeRateLimits::uniform(Duration::from_secs(1), 2)));
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}projects/p/{path}", sim.url()))
            .bearer_auth("t")
            .send()
    };
    let instance = "zones/sim-1a/instances/vm-1";
    for _ in 0..2 {
        assert_eq!(get(instance).await.unwrap().status(), 200);
    }
    let refused = get(instance).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
    // Lists are another group.
    let list = get("regions/sim-1/addresses").await.unwrap();
    assert_eq!(list.status(), 200);
    // The window refills at its boundary (11.0 s), not a window after the refusal.
    clock.set_ms(10_999);
    assert_eq!(get(instance).await.unwrap().status(), 403);
    clock.set_ms(11_000);
    assert_eq!(get(instance).await.unwrap().status(), 200);
    assert_eq!(sim.throttled_counts()["instances.get"], 2);
    assert_eq!(sim.throttled_total(), 2);
    assert_eq!(sim.rate_clock_ms(), 11_000);
}
