//! The Nimbus provider against the Nimbus cloud over HTTP on 127.0.0.1: the contract
//! every pinip provider keeps (see `pinip_providers::Provider`), and the demo end to end.

use std::net::IpAddr;

use axum::http::StatusCode;
use pinip_example_custom_provider::cloud::NimbusCloud;
use pinip_example_custom_provider::provider::{NimbusConfig, NimbusProvider, OWNER_NODE};
use pinip_providers::{ErrorClass, InstanceRef, IpFamily, Ownership, PoolSpec, Provider};

const TOKEN: &str = "contract-token";

fn instance_ref(id: &str) -> InstanceRef {
    InstanceRef {
        cloud: "nimbus".into(),
        project: None,
        zone: "z1".into(),
        id: id.into(),
    }
}

fn owner(node: &str, instance: &str) -> Ownership {
    Ownership {
        cluster: "c1".into(),
        node: node.into(),
        instance: instance.into(),
    }
}

async fn setup(token: &str) -> (NimbusCloud, NimbusProvider) {
    let cloud = NimbusCloud::start(TOKEN).await.expect("cloud starts");
    for (id, last) in [("vm-1", 1u8), ("vm-2", 2)] {
        cloud.add_instance(id, "z1", IpAddr::from([10, 0, 0, last]));
    }
    cloud.add_address("a1", IpAddr::from([203, 0, 113, 1]), &[("pool", "egress")]);
    cloud.add_address("a2", IpAddr::from([203, 0, 113, 2]), &[("pool", "egress")]);
    cloud.add_address(
        "a6",
        "2001:db8::6".parse().expect("ip"),
        &[("pool", "egress")],
    );
    cloud.add_address(
        "other",
        IpAddr::from([203, 0, 113, 9]),
        &[("pool", "other")],
    );
    let pool = PoolSpec {
        filter: vec!["labels.pool=egress".into()],
        order_by: Some("ip desc".into()),
        family: IpFamily::V4,
    };
    let config = NimbusConfig {
        endpoint: cloud.endpoint(),
        token: token.into(),
    };
    let provider = NimbusProvider::new(config, &pool).expect("provider");
    (cloud, provider)
}

#[tokio::test]
async fn the_pool_is_the_filtered_family_in_order() {
    let (cloud, provider) = setup(TOKEN).await;
    let pool = provider.list_pool().await.expect("list");
    let ips: Vec<String> = pool.iter().map(|a| a.ip.to_string()).collect();
    assert_eq!(
        ips,
        ["203.0.113.2", "203.0.113.1"],
        "labels.pool=egress, IPv4, ip desc"
    );
    assert!(pool.iter().all(|a| a.is_free() && a.owner.is_none()));
    cloud.shutdown();
}

#[tokio::test]
async fn attach_is_idempotent_records_the_owner_and_never_moves_an_address() {
    let (cloud, provider) = setup(TOKEN).await;
    let vm1 = provider
        .describe_instance(&instance_ref("vm-1"))
        .await
        .expect("describe");
    assert_eq!(vm1.nic.as_deref(), Some("vm-1-nic0"));
    let vm2 = provider
        .describe_instance(&instance_ref("vm-2"))
        .await
        .expect("describe");
    let a1 = provider
        .list_pool()
        .await
        .expect("list")
        .into_iter()
        .find(|a| a.id == "a1")
        .expect("a1");

    provider
        .attach(&a1, &vm1, &owner("n1", "vm-1"))
        .await
        .expect("attach");
    provider
        .attach(&a1, &vm1, &owner("n1", "vm-1"))
        .await
        .expect("attach again is a success");
    let stolen = provider
        .attach(&a1, &vm2, &owner("n2", "vm-2"))
        .await
        .expect_err("no move");
    assert_eq!(stolen.class, ErrorClass::Conflict);
    assert_eq!(cloud.attached_to("vm-1"), vec![a1.ip]);
    assert!(cloud.attached_to("vm-2").is_empty());

    let listed = provider
        .list_pool()
        .await
        .expect("list")
        .into_iter()
        .find(|a| a.id == "a1")
        .expect("a1");
    assert_eq!(listed.attached_to.as_deref(), Some("vm-1"));
    assert_eq!(listed.owner, Some(owner("n1", "vm-1")));
    cloud.shutdown();
}

#[tokio::test]
async fn detach_is_idempotent_and_only_from_the_named_instance() {
    let (cloud, provider) = setup(TOKEN).await;
    let vm1 = provider
        .describe_instance(&instance_ref("vm-1"))
        .await
        .expect("describe");
    let a1 = provider
        .list_pool()
        .await
        .expect("list")
        .into_iter()
        .find(|a| a.id == "a1")
        .expect("a1");
    provider
        .attach(&a1, &vm1, &owner("n1", "vm-1"))
        .await
        .expect("attach");

    // vm-2 does not hold it: nothing happens, and that is a success.
    provider
        .detach(&a1, &instance_ref("vm-2"))
        .await
        .expect("detach elsewhere");
    assert_eq!(cloud.attached_to("vm-1"), vec![a1.ip]);
    assert!(
        cloud
            .address("a1")
            .expect("a1")
            .labels
            .contains_key(OWNER_NODE),
        "owner kept"
    );

    provider
        .detach(&a1, &instance_ref("vm-1"))
        .await
        .expect("detach");
    provider
        .detach(&a1, &instance_ref("vm-1"))
        .await
        .expect("detach again is a success");
    assert!(cloud.attached_to("vm-1").is_empty());
    assert!(
        !cloud
            .address("a1")
            .expect("a1")
            .labels
            .contains_key(OWNER_NODE),
        "owner cleared"
    );
    cloud.shutdown();
}

#[tokio::test]
async fn errors_carry_the_class_the_agent_acts_on() {
    let (cloud, provider) = setup(TOKEN).await;
    let missing = provider
        .describe_instance(&instance_ref("vm-404"))
        .await
        .expect_err("missing");
    assert_eq!(
        (missing.class, missing.code.as_deref()),
        (ErrorClass::NotFound, Some("InstanceNotFound"))
    );

    cloud.fail_next(StatusCode::TOO_MANY_REQUESTS, "Throttled");
    let throttled = provider.list_pool().await.expect_err("throttled");
    assert_eq!(throttled.class, ErrorClass::Throttled);
    assert_eq!(
        throttled.retry_after,
        Some(std::time::Duration::from_secs(1))
    );

    cloud.fail_next(StatusCode::SERVICE_UNAVAILABLE, "Internal");
    assert!(provider.list_pool().await.expect_err("5xx").is_retryable());
    assert!(
        provider.list_pool().await.is_ok(),
        "one failure, then served again"
    );

    let (other_cloud, wrong_token) = setup("not-the-token").await;
    let denied = wrong_token.list_pool().await.expect_err("forbidden");
    assert_eq!(
        denied.class,
        ErrorClass::PermissionDenied {
            action: "nimbus:ListAddresses".into()
        }
    );
    assert!(
        denied
            .to_string()
            .contains("grant the permission `nimbus:ListAddresses`"),
        "{denied}"
    );

    let bad_filter = NimbusProvider::new(
        NimbusConfig {
            endpoint: cloud.endpoint(),
            token: TOKEN.into(),
        },
        &PoolSpec {
            filter: vec!["Name=tag:kubeip,Values=reserved".into()],
            ..PoolSpec::default()
        },
    );
    assert_eq!(
        bad_filter.err().map(|e| e.class),
        Some(ErrorClass::InvalidInput)
    );
    cloud.shutdown();
    other_cloud.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_end_to_end() {
    let report = pinip_example_custom_provider::demo::run()
        .await
        .expect("demo");
    assert_eq!(report.assigned.len(), 2);
    let (gone, ip, heir) = &report.handover;
    assert_eq!(report.assigned.get(gone), Some(ip));
    assert_eq!(heir, &report.waited);
    assert!(
        report
            .calls
            .get("POST /v1/addresses/{id}/attach")
            .copied()
            .unwrap_or(0)
            >= 3
    );
    assert!(
        report
            .calls
            .get("POST /v1/addresses/{id}/detach")
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

/// The same contract every built-in provider runs (`pinip_providers::contract`).
struct NimbusSetup;

#[async_trait::async_trait]
impl pinip_providers::contract::ContractSetup for NimbusSetup {
    async fn world(&self) -> Result<pinip_providers::contract::ContractWorld, String> {
        let cloud = NimbusCloud::start(TOKEN).await.map_err(|e| e.to_string())?;
        for (id, last) in [("vm-1", 1u8), ("vm-2", 2)] {
            cloud.add_instance(id, "z1", IpAddr::from([10, 0, 0, last]));
        }
        for n in 1..=3u8 {
            cloud.add_address(
                &format!("a{n}"),
                IpAddr::from([203, 0, 113, n]),
                &[("pool", "egress")],
            );
        }
        cloud.add_address(
            "other",
            IpAddr::from([203, 0, 113, 9]),
            &[("pool", "other")],
        );
        let pool = PoolSpec {
            filter: vec!["labels.pool=egress".into()],
            order_by: None,
            family: IpFamily::V4,
        };
        let config = NimbusConfig {
            endpoint: cloud.endpoint(),
            token: TOKEN.into(),
        };
        let provider = NimbusProvider::new(config, &pool).map_err(|e| e.to_string())?;
        Ok(pinip_providers::contract::ContractWorld {
            provider: std::sync::Arc::new(provider),
            instances: [instance_ref("vm-1"), instance_ref("vm-2")],
            pool_size: 3,
            guard: Some(Box::new(cloud)),
        })
    }
}

#[tokio::test]
async fn the_nimbus_provider_keeps_the_provider_contract() {
    let report = pinip_providers::contract::check_provider_contract(&NimbusSetup).await;
    assert!(report.is_ok(), "{report:?}");
}
