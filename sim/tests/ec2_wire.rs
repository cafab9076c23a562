//! The EC2 simulator through the real `aws-sdk-ec2` client (SigV4, Query protocol,
//! XML): the shapes it parses, EC2's error codes and HTTP statuses, and the AWS
//! behaviour moto lacks (a second Elastic IP displaces the first, `PrivateIpAddress`
//! is checked, `InvalidIPAddress.InUse`, IPv6 conflicts, unknown filters refused
//! with `InvalidParameterValue` rather than an HTML 500).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pinip_providers::aws::client_for_endpoint;
use pinip_providers::aws::sdk::error::ProvideErrorMetadata;
use pinip_providers::aws::sdk::types::{DomainType, Filter, ResourceType, Tag, TagSpecification};
use pinip_providers::aws::sdk::Client;
use pinip_sim::ec2::{Ec2Faults, Ec2Sim};

async fn setup() -> (Ec2Sim, Client) {
    let sim = Ec2Sim::start().await.unwrap();
    let client = client_for_endpoint(&sim.url(), "us-east-1", 1);
    (sim, client)
}

/// The EC2 error code and HTTP status of a failed call.
fn code_and_status<E: ProvideErrorMetadata>(
    error: &pinip_providers::aws::sdk::error::SdkError<
        E,
        pinip_providers::aws::sdk::config::http::HttpResponse,
    >,
) -> (String, u16) {
    (
        error.code().unwrap_or("").to_string(),
        error
            .raw_response()
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
    )
}

#[tokio::test]
async fn allocate_describe_and_filter_elastic_ips() {
    let (sim, ec2) = setup().await;
    let allocated = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::ElasticIp)
                .tags(Tag::builder().key("kubeip").value("reserved").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = allocated.allocation_id().unwrap().to_string();
    sim.add_address(
        "eipalloc-other",
        Ipv4Addr::new(198, 51, 100, 7),
        &[("kubeip", "other")],
    );
    let listed = ec2
        .describe_addresses()
        .filters(Filter::builder().name("tag:kubeip").values("res*").build())
        .filters(Filter::builder().name("domain").values("vpc").build())
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .addresses()
        .iter()
        .filter_map(|a| a.allocation_id())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    let a = &listed.addresses()[0];
    assert_eq!(a.tags()[0].key(), Some("kubeip"));
    assert_eq!(a.association_id(), None);
    assert_eq!(
        a.instance_id(),
        None,
        "EC2 omits the field; moto sends an empty string"
    );

    let unknown = ec2
        .describe_addresses()
        .allocation_ids("eipalloc-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&unknown),
        ("InvalidAllocationID.NotFound".into(), 400)
    );
    let bad_filter = ec2
        .describe_addresses()
        .filters(Filter::builder().name("bogus").values("x").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&bad_filter),
        ("InvalidParameterValue".into(), 400)
    );
}

#[tokio::test]
async fn instances_and_interfaces_parse_with_their_primary_eni() {
    let (sim, ec2) = setup().await;
    let node = sim.add_instance("i-0123456789abcdef0", "us-east-1a", true, None);
    let out = ec2
        .describe_instances()
        .instance_ids(&node.id)
        .send()
        .await
        .unwrap();
    let instance = &out.reservations()[0].instances()[0];
    assert_eq!(instance.instance_id(), Some(node.id.as_str()));
    assert_eq!(
        instance.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1a")
    );
    let eni = &instance.network_interfaces()[0];
    assert_eq!(eni.network_interface_id(), Some(node.eni.as_str()));
    assert_eq!(eni.attachment().and_then(|a| a.device_index()), Some(0));
    assert_eq!(
        eni.private_ip_address(),
        Some(node.private_ip.to_string().as_str())
    );
    assert_eq!(eni.private_ip_addresses()[0].primary(), Some(true));

    let enis = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&node.id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        enis.network_interfaces()[0]
            .attachment()
            .and_then(|a| a.instance_id()),
        Some(node.id.as_str())
    );
    let subnets = ec2
        .describe_subnets()
        .subnet_ids(&node.subnet_id)
        .send()
        .await
        .unwrap();
    let block = subnets.subnets()[0].ipv6_cidr_block_association_set()[0].ipv6_cidr_block();
    assert!(block.is_some_and(|b| b.ends_with("/64")), "{block:?}");

    let missing = ec2
        .describe_instances()
        .instance_ids("i-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&missing),
        ("InvalidInstanceID.NotFound".into(), 400)
    );
}

#[tokio::test]
async fn associations_follow_ec2_rules() {
    let (sim, ec2) = setup().await;
    let a = sim.add_instance("i-000000000000000a1", "z", true, None);
    let b = sim.add_instance("i-000000000000000b2", "z", true, None);
    sim.add_address("eipalloc-1", Ipv4Addr::new(198, 51, 100, 1), &[]);
    sim.add_address("eipalloc-2", Ipv4Addr::new(198, 51, 100, 2), &[]);
    let associated = ec2
        .associate_address()
        .allocation_id("eipalloc-1")
        .network_interface_id(&a.eni)
        .private_ip_address(a.private_ip.to_string())
        .allow_reassociation(false)
        .send()
        .await
        .unwrap();
    let association = associated.association_id().unwrap().to_string();
    // EC2 names the instance of an ENI association (moto leaves it empty).
    let described = ec2
        .describe_addresses()
        .allocation_ids("eipalloc-1")
        .send()
        .await
        .unwrap();
    assert_eq!(described.addresses()[0].instance_id(), Some(a.id.as_str()));

    let steal = ec2
        .associate_address()
        .allocation_id("eipalloc-1")
        .network_interface_id(&b.eni)
        .allow_reassociation(false)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&steal),
        ("Resource.AlreadyAssociated".into(), 400)
    );

    let wrong_ip = ec2
        .associate_address()
        .allocation_id("eipalloc-2")
        .network_interface_id(&a.eni)
        .private_ip_address(b.private_ip.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&wrong_ip).0, "InvalidParameterValue");

    // A second Elastic IP on the same private IP displaces the first.
    ec2.associate_address()
        .allocation_id("eipalloc-2")
        .instance_id(&a.id)
        .send()
        .await
        .unwrap();
    let first = ec2
        .describe_addresses()
        .allocation_ids("eipalloc-1")
        .send()
        .await
        .unwrap();
    assert_eq!(first.addresses()[0].association_id(), None);
    assert_eq!(sim.violations().len(), 1, "{:?}", sim.violations());

    let gone = ec2
        .disassociate_address()
        .association_id(&association)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&gone),
        ("InvalidAssociationID.NotFound".into(), 400)
    );
    let in_use = ec2
        .release_address()
        .allocation_id("eipalloc-2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&in_use),
        ("InvalidIPAddress.InUse".into(), 400)
    );
}

#[tokio::test]
async fn tags_are_created_and_deleted_only_when_the_value_still_matches() {
    let (sim, ec2) = setup().await;
    sim.add_address(
        "eipalloc-t",
        Ipv4Addr::new(198, 51, 100, 9),
        &[("kubeip", "reserved")],
    );
    ec2.create_tags()
        .resources("eipalloc-t")
        .tags(Tag::builder().key("pinip.dev/node").value("n1").build())
        .send()
        .await
        .unwrap();
    ec2.delete_tags()
        .resources("eipalloc-t")
        .tags(
            Tag::builder()
                .key("pinip.dev/node")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags = |out: pinip_providers::aws::sdk::operation::describe_addresses::DescribeAddressesOutput| -> Vec<String> {
        out.addresses()[0].tags().iter().filter_map(|t| t.key().map(String::from)).collect()
    };
    let kept = tags(
        ec2.describe_addresses()
            .allocation_ids("eipalloc-t")
            .send()
            .await
            .unwrap(),
    );
    assert!(kept.contains(&"pinip.dev/node".to_string()));
    ec2.delete_tags()
        .resources("eipalloc-t")
        .tags(Tag::builder().key("pinip.dev/node").value("n1").build())
        .send()
        .await
        .unwrap();
    let left = tags(
        ec2.describe_addresses()
            .allocation_ids("eipalloc-t")
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(left, vec!["kubeip".to_string()]);
    let unknown = ec2
        .create_tags()
        .resources("eipalloc-nope")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&unknown).0, "InvalidAllocationID.NotFound");
}

#[tokio::test]
async fn ipv6_addresses_stay_in_their_subnet_and_on_one_eni() {
    let (sim, ec2) = setup().await;
    let a = sim.add_instance("i-000000000000000a1", "z", true, None);
    let b = sim.add_instance("i-000000000000000b2", "z", true, None);
    let subnets = ec2
        .describe_subnets()
        .subnet_ids(&a.subnet_id)
        .send()
        .await
        .unwrap();
    let block: ipnet::Ipv6Net = subnets.subnets()[0].ipv6_cidr_block_association_set()[0]
        .ipv6_cidr_block()
        .unwrap()
        .parse()
        .unwrap();
    let ip = Ipv6Addr::from(u128::from(block.network()) + 0x42);
    let assigned = ec2
        .assign_ipv6_addresses()
        .network_interface_id(&a.eni)
        .ipv6_addresses(ip.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(assigned.assigned_ipv6_addresses(), [ip.to_string()]);
    let conflict = ec2
        .assign_ipv6_addresses()
        .network_interface_id(&b.eni)
        .ipv6_addresses(ip.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&conflict),
        ("InvalidIPAddress.InUse".into(), 400)
    );
    let outside = ec2
        .assign_ipv6_addresses()
        .network_interface_id(&b.eni)
        .ipv6_addresses("2001:db8:ffff::1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&outside).0, "InvalidParameterValue");
    let on_eni = ec2
        .describe_instances()
        .instance_ids(&a.id)
        .send()
        .await
        .unwrap();
    let v6: Vec<&str> = on_eni.reservations()[0].instances()[0].network_interfaces()[0]
        .ipv6_addresses()
        .iter()
        .filter_map(|x| x.ipv6_address())
        .collect();
    assert_eq!(v6, vec![ip.to_string()]);
    let unassigned = ec2
        .unassign_ipv6_addresses()
        .network_interface_id(&a.eni)
        .ipv6_addresses(ip.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unassigned.unassigned_ipv6_addresses(), [ip.to_string()]);
    assert!(sim.eni_ipv6(&a.eni).is_empty());
    assert_eq!(sim.duplicates(), 0);
}

#[tokio::test]
async fn injected_faults_use_ec2_codes_and_statuses_and_are_counted() {
    let (sim, ec2) = setup().await;
    sim.deny("DescribeAddresses");
    let denied = ec2.describe_addresses().send().await.unwrap_err();
    assert_eq!(
        code_and_status(&denied),
        ("UnauthorizedOperation".into(), 403)
    );
    assert!(denied
        .message()
        .unwrap_or("")
        .contains("ec2:DescribeAddresses"));
    sim.allow("DescribeAddresses");
    sim.fail_next("DescribeAddresses", "RequestLimitExceeded");
    let throttled = ec2.describe_addresses().send().await.unwrap_err();
    assert_eq!(
        code_and_status(&throttled),
        ("RequestLimitExceeded".into(), 503)
    );
    sim.set_faults(Ec2Faults {
        latency: Duration::from_millis(1),
        throttle_rate: 1.0,
        seed: 3,
        ..Ec2Faults::default()
    });
    let always = ec2.describe_instances().send().await.unwrap_err();
    assert_eq!(code_and_status(&always).0, "RequestLimitExceeded");
    sim.set_faults(Ec2Faults::default());
    ec2.describe_instances().send().await.unwrap();
    let counts = sim.call_counts();
    assert_eq!(
        (
            counts["DescribeAddresses"],
            counts["DescribeInstances"],
            counts["AssociateAddress"]
        ),
        (2, 2, 0)
    );
}

/// An `instance-id` filter with wildcards (`*` any run, `?` one character) is matched
/// against every instance, as EC2 does; exact ids are looked up (that, and AND with the
/// other filters, runs against moto too in `tests/aws_scenarios.rs`; moto lacks `?`).
#[tokio::test]
async fn an_instance_id_filter_matches_wildcards() {
    let (sim, ec2) = setup().await;
    let a = sim.add_instance("i-0aaaaaaaaaaaaaaa1", "us-east-1a", true, None);
    let b = sim.add_instance("i-0aaaaaaaaaaaaaaa2", "us-east-1b", true, None);
    sim.add_instance("i-0bbbbbbbbbbbbbbb3", "us-east-1a", true, None);
    for pattern in ["i-0a*", "i-0aaaaaaaaaaaaaaa?"] {
        let out = ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .values(pattern)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let ids: Vec<&str> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id())
            .collect();
        assert_eq!(ids, [a.id.as_str(), b.id.as_str()], "{pattern}");
    }
}
