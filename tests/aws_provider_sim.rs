//! The AWS provider against the EC2 simulator where moto cannot judge it: EC2's
//! behaviour that moto lacks (IPv6 conflicts, termination), error classes through the
//! real SDK (throttling, missing permissions, server errors), and the cost of one
//! assignment in EC2 calls.

mod aws_support;

use aws_support::Backend;
use pinip_providers::{ErrorClass, Ownership, PoolAddress, Provider};

fn owner(instance: &str) -> Ownership {
    Ownership {
        cluster: "c".into(),
        node: "n".into(),
        instance: instance.into(),
    }
}

fn find(pool: &[PoolAddress], id: &str) -> PoolAddress {
    pool.iter()
        .find(|a| a.id == id)
        .cloned()
        .expect("in the pool")
}

#[tokio::test]
async fn one_assignment_costs_four_ec2_calls() {
    let backend = Backend::simulator().await;
    let sim = backend.sim().unwrap();
    let me = backend.instance().await;
    let (id, _) = backend.address(&[("kubeip", "cost")]).await;
    let before = sim.call_counts();
    let provider = backend.provider(&me, "cost", None);
    let pool = provider.list_pool().await.unwrap();
    let described = provider.describe_instance(&me.reference()).await.unwrap();
    provider
        .attach(&find(&pool, &id), &described, &owner(&me.id))
        .await
        .unwrap();
    let after = sim.call_counts();
    let delta: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        delta,
        vec![
            ("AssociateAddress".to_string(), 1),
            ("CreateTags".to_string(), 1),
            ("DescribeAddresses".to_string(), 1),
            ("DescribeInstances".to_string(), 1),
        ]
    );
}

#[tokio::test]
async fn an_ipv6_address_on_another_interface_is_taken() {
    // moto lets one IPv6 address sit on two ENIs; EC2 (and the simulator) refuse.
    let backend = Backend::simulator().await;
    let (a, b) = (backend.instance().await, backend.instance().await);
    let pool = [backend.ipv6(3)];
    let pa = backend.ipv6_provider(&a, &pool);
    let pb = backend.ipv6_provider(&b, &pool);
    let listed = pa.list_pool().await.unwrap();
    pa.attach(
        &listed[0],
        &pa.describe_instance(&a.reference()).await.unwrap(),
        &owner(&a.id),
    )
    .await
    .unwrap();
    let err = pb
        .attach(
            &listed[0],
            &pb.describe_instance(&b.reference()).await.unwrap(),
            &owner(&b.id),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.code.as_deref()),
        (ErrorClass::Conflict, Some("InvalidIPAddress.InUse"))
    );
    assert_eq!(
        pb.list_pool().await.unwrap()[0].attached_to.as_deref(),
        Some(a.id.as_str())
    );
}

#[tokio::test]
async fn release_after_the_instance_is_gone_succeeds_and_clears_the_owner() {
    let backend = Backend::simulator().await;
    let sim = backend.sim().unwrap();
    let me = backend.instance().await;
    let (id, _) = backend.address(&[("kubeip", "gone")]).await;
    let provider = backend.provider(&me, "gone", None);
    let described = provider.describe_instance(&me.reference()).await.unwrap();
    let address = find(&provider.list_pool().await.unwrap(), &id);
    provider
        .attach(&address, &described, &owner(&me.id))
        .await
        .unwrap();
    sim.terminate_instance(&me.id);
    let listed = find(&provider.list_pool().await.unwrap(), &id);
    assert!(listed.is_free());
    assert_eq!(
        listed.owner,
        Some(owner(&me.id)),
        "termination leaves the tags"
    );
    provider.detach(&listed, &me.reference()).await.unwrap();
    assert_eq!(find(&provider.list_pool().await.unwrap(), &id).owner, None);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn errors_reach_the_agent_with_the_right_class() {
    let backend = Backend::simulator().await;
    let sim = backend.sim().unwrap();
    let me = backend.instance().await;
    let (id, _) = backend.address(&[("kubeip", "errors")]).await;
    let provider = backend.provider(&me, "errors", None);

    sim.fail_next("DescribeAddresses", "RequestLimitExceeded");
    let throttled = provider.list_pool().await.unwrap_err();
    assert_eq!(
        (throttled.class, throttled.code.as_deref()),
        (ErrorClass::Throttled, Some("RequestLimitExceeded"))
    );

    sim.fail_next("DescribeAddresses", "InternalError");
    assert_eq!(
        provider.list_pool().await.unwrap_err().class,
        ErrorClass::Transient
    );

    let described = provider.describe_instance(&me.reference()).await.unwrap();
    let address = find(&provider.list_pool().await.unwrap(), &id);
    sim.deny("AssociateAddress");
    let denied = provider
        .attach(&address, &described, &owner(&me.id))
        .await
        .unwrap_err();
    assert_eq!(
        denied.class,
        ErrorClass::PermissionDenied {
            action: "ec2:AssociateAddress".into()
        }
    );
    assert!(
        denied
            .to_string()
            .contains("grant the permission `ec2:AssociateAddress`"),
        "{denied}"
    );
    sim.allow("AssociateAddress");

    sim.fail_next("AssociateAddress", "Unavailable");
    assert_eq!(
        provider
            .attach(&address, &described, &owner(&me.id))
            .await
            .unwrap_err()
            .class,
        ErrorClass::Throttled
    );

    // A lost answer: EC2 says "already associated", and it is with us: success.
    provider
        .attach(&address, &described, &owner(&me.id))
        .await
        .unwrap();
    sim.fail_next("AssociateAddress", "Resource.AlreadyAssociated");
    provider
        .attach(&address, &described, &owner(&me.id))
        .await
        .unwrap();

    // Release: an association that vanished meanwhile is success.
    sim.fail_next("DisassociateAddress", "InvalidAssociationID.NotFound");
    provider.detach(&address, &me.reference()).await.unwrap();
    // An address released from the account is success too.
    sim.fail_next("DescribeAddresses", "InvalidAllocationID.NotFound");
    provider.detach(&address, &me.reference()).await.unwrap();
}

#[tokio::test]
async fn an_unknown_instance_is_not_found() {
    let backend = Backend::simulator().await;
    let me = backend.instance().await;
    let provider = backend.provider(&me, "x", None);
    let mut ghost = me.reference();
    ghost.id = "i-0000000000000dead".into();
    assert_eq!(
        provider.describe_instance(&ghost).await.unwrap_err().class,
        ErrorClass::NotFound
    );
}
