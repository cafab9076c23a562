//! One scenario suite, two EC2s: every scenario runs through the real AWS provider
//! (aws-sdk-ec2, SigV4) against pinip's EC2 simulator and against moto, an
//! implementation nobody here wrote, so the simulator cannot drift from EC2 unnoticed.
//! The scenarios use only what both implement faithfully (see testing-notes §1, §5).

mod aws_support;

use std::collections::BTreeSet;
use std::net::IpAddr;

use aws_support::Backend;
use pinip_providers::aws::sdk::types::Filter;
use pinip_providers::{ErrorClass, Ownership, PoolAddress, PoolPart, PoolRead, Provider};
use pinip_providers::{OWNER_CLUSTER_TAG, OWNER_INSTANCE_TAG, OWNER_NODE_TAG};

fn owner(node: &aws_support::Node, name: &str) -> Ownership {
    Ownership {
        cluster: "scenario".into(),
        node: name.into(),
        instance: node.id.clone(),
    }
}

fn find(pool: &[PoolAddress], id: &str) -> PoolAddress {
    pool.iter()
        .find(|a| a.id == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in the pool listing {pool:?}"))
}

/// After a pod restart the instance already holds a pool address: one listing shows it
/// as this instance's, even where EC2 (or moto) only names the ENI.
async fn adopt(backend: Backend) {
    let me = backend.instance().await;
    let other = backend.instance().await;
    let (mine, _) = backend.address(&[("kubeip", "adopt")]).await;
    let (free, _) = backend.address(&[("kubeip", "adopt")]).await;
    backend.associate_by_hand(&mine, &me).await;
    let pool = backend
        .provider(&me, "adopt", None)
        .list_pool()
        .await
        .unwrap();
    assert_eq!(pool.len(), 2, "{}: {pool:?}", backend.name());
    assert_eq!(
        find(&pool, &mine).attached_to.as_deref(),
        Some(me.id.as_str()),
        "{}",
        backend.name()
    );
    assert!(find(&pool, &free).is_free());
    // Another node sees it taken (whatever it is called), not free.
    let seen_by_other = backend
        .provider(&other, "adopt", None)
        .list_pool()
        .await
        .unwrap();
    assert!(!find(&seen_by_other, &mine).is_free());
    assert_ne!(
        find(&seen_by_other, &mine).attached_to.as_deref(),
        Some(other.id.as_str())
    );
}

/// A free Elastic IP goes to the primary ENI and its primary private IP, and the owner
/// is recorded in tags.
async fn assign(backend: Backend) {
    let node = backend.instance().await;
    let (id, _) = backend.address(&[("kubeip", "assign")]).await;
    let provider = backend.provider(&node, "assign", None);
    let described = provider.describe_instance(&node.reference()).await.unwrap();
    assert_eq!(described.nic.as_deref(), Some(node.eni.as_str()));
    assert_eq!(described.private_ip, Some(IpAddr::V4(node.private_ip)));
    let pool = provider.list_pool().await.unwrap();
    provider
        .attach(&find(&pool, &id), &described, &owner(&node, "node-a"))
        .await
        .unwrap();
    let (eni, private_ip, tags) = backend.eip(&id).await;
    assert_eq!(
        eni.as_deref(),
        Some(node.eni.as_str()),
        "{}",
        backend.name()
    );
    assert_eq!(private_ip, Some(node.private_ip.to_string()));
    for key in [OWNER_CLUSTER_TAG, OWNER_NODE_TAG, OWNER_INSTANCE_TAG] {
        assert!(
            tags.iter().any(|(k, _)| k == key),
            "{key} missing: {tags:?}"
        );
    }
    let listed = find(&provider.list_pool().await.unwrap(), &id);
    assert_eq!(listed.attached_to.as_deref(), Some(node.id.as_str()));
    assert_eq!(listed.owner, Some(owner(&node, "node-a")));
    // Attaching again (an answer lost on the way back) is a success.
    provider
        .attach(&listed, &described, &owner(&node, "node-a"))
        .await
        .unwrap();
}

/// Two nodes attach the same address at the same moment: one wins, the other is told
/// "taken" (next candidate), and the address stays on the winner.
async fn race(backend: Backend) {
    let a = backend.instance().await;
    let b = backend.instance().await;
    let (id, _) = backend.address(&[("kubeip", "race")]).await;
    let pa = backend.provider(&a, "race", None);
    let pb = backend.provider(&b, "race", None);
    let (ia, ib) = (
        pa.describe_instance(&a.reference()).await.unwrap(),
        pb.describe_instance(&b.reference()).await.unwrap(),
    );
    let address = find(&pa.list_pool().await.unwrap(), &id);
    let (oa, ob) = (owner(&a, "node-a"), owner(&b, "node-b"));
    let (ra, rb) = tokio::join!(pa.attach(&address, &ia, &oa), pb.attach(&address, &ib, &ob));
    let winners = [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(winners, 1, "{}: {ra:?} {rb:?}", backend.name());
    let loser = ra.err().or(rb.err()).expect("one attach failed");
    assert_eq!(loser.class, ErrorClass::Conflict, "{loser}");
    assert_eq!(loser.code.as_deref(), Some("Resource.AlreadyAssociated"));
    let (eni, _, _) = backend.eip(&id).await;
    let winner = if eni.as_deref() == Some(a.eni.as_str()) {
        &a
    } else {
        &b
    };
    assert_eq!(eni.as_deref(), Some(winner.eni.as_str()));
    let listed = find(&pa.list_pool().await.unwrap(), &id);
    assert_eq!(listed.owner.map(|o| o.instance), Some(winner.id.clone()));
}

/// Release disassociates and clears the owner; releasing again is a success; a node
/// never releases an address that now sits on another instance.
async fn release(backend: Backend) {
    let a = backend.instance().await;
    let b = backend.instance().await;
    let (id, _) = backend.address(&[("kubeip", "release")]).await;
    let pa = backend.provider(&a, "release", None);
    let ia = pa.describe_instance(&a.reference()).await.unwrap();
    let address = find(&pa.list_pool().await.unwrap(), &id);
    pa.attach(&address, &ia, &owner(&a, "node-a"))
        .await
        .unwrap();
    pa.detach(&address, &a.reference()).await.unwrap();
    let listed = find(&pa.list_pool().await.unwrap(), &id);
    assert!(listed.is_free(), "{}: {listed:?}", backend.name());
    assert_eq!(listed.owner, None);
    assert!(!listed.labels.contains_key(OWNER_NODE_TAG));
    pa.detach(&address, &a.reference()).await.unwrap();
    // Now b holds it; a's (late) release must leave it there.
    let pb = backend.provider(&b, "release", None);
    let ib = pb.describe_instance(&b.reference()).await.unwrap();
    pb.attach(&listed, &ib, &owner(&b, "node-b")).await.unwrap();
    pa.detach(&address, &a.reference()).await.unwrap();
    let (eni, _, _) = backend.eip(&id).await;
    assert_eq!(eni.as_deref(), Some(b.eni.as_str()), "{}", backend.name());
    assert_eq!(
        find(&pb.list_pool().await.unwrap(), &id).owner,
        Some(owner(&b, "node-b"))
    );
}

/// Every pool address is on some other instance: nothing is free, and attaching one
/// anyway is refused as taken.
async fn exhausted_pool(backend: Backend) {
    let me = backend.instance().await;
    let holders = [backend.instance().await, backend.instance().await];
    let mut ids = Vec::new();
    for holder in &holders {
        let (id, _) = backend.address(&[("kubeip", "full")]).await;
        backend.associate_by_hand(&id, holder).await;
        ids.push(id);
    }
    let _outside = backend.address(&[("kubeip", "elsewhere")]).await;
    let provider = backend.provider(&me, "full", None);
    let pool = provider.list_pool().await.unwrap();
    assert_eq!(pool.len(), 2, "{}: {pool:?}", backend.name());
    assert!(pool.iter().all(|a| !a.is_free()));
    let described = provider.describe_instance(&me.reference()).await.unwrap();
    let err = provider
        .attach(&pool[0], &described, &owner(&me, "me"))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
}

/// FILTER with several entries (ANDed) and ORDER_BY on a tag, descending, with the
/// addresses that lack the tag last.
async fn filter_and_order(backend: Backend) {
    let me = backend.instance().await;
    let (low, _) = backend
        .address(&[("kubeip", "ordered"), ("env", "prod"), ("rank", "1")])
        .await;
    let (high, _) = backend
        .address(&[("kubeip", "ordered"), ("env", "prod"), ("rank", "2")])
        .await;
    let (unranked, _) = backend
        .address(&[("kubeip", "ordered"), ("env", "prod")])
        .await;
    let (_staging, _) = backend
        .address(&[("kubeip", "ordered"), ("env", "staging"), ("rank", "3")])
        .await;
    let settings = pinip_providers::aws::AwsSettings {
        pool: pinip_providers::PoolSpec {
            filter: vec![
                "Name=tag:kubeip,Values=ordered".into(),
                "Name=tag:env,Values=prod".into(),
            ],
            order_by: Some("Tag:rank desc".into()),
            family: pinip_providers::IpFamily::V4,
        },
        ipv6_pool: None,
    };
    let provider =
        pinip_providers::aws::AwsProvider::new(backend.client.clone(), me.reference(), &settings)
            .unwrap();
    let ids: Vec<String> = provider
        .list_pool()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, vec![high, low, unranked], "{}", backend.name());
    let by_ip = backend.provider(&me, "ordered", Some("PublicIp"));
    let ips: Vec<IpAddr> = by_ip
        .list_pool()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.ip)
        .collect();
    let mut sorted = ips.clone();
    sorted.sort();
    assert_eq!(ips, sorted);
}

/// IPv6: a specific address of the subnet goes onto the primary ENI (claimed like any
/// other address), shows as this instance's, and is unassigned on release.
async fn ipv6(backend: Backend) {
    let me = backend.instance().await;
    let pool = [backend.ipv6(1), backend.ipv6(2)];
    let provider = backend.ipv6_provider(&me, &pool);
    let listed = provider.list_pool().await.unwrap();
    let ips: BTreeSet<IpAddr> = listed.iter().map(|a| a.ip).collect();
    assert_eq!(
        ips,
        pool.iter().map(|ip| IpAddr::V6(*ip)).collect(),
        "{}",
        backend.name()
    );
    assert!(listed.iter().all(PoolAddress::is_free));
    let described = provider.describe_instance(&me.reference()).await.unwrap();
    let target = listed[0].clone();
    let IpAddr::V6(v6) = target.ip else {
        panic!("an IPv4 address in an IPv6 pool: {target:?}")
    };
    provider
        .attach(&target, &described, &owner(&me, "v6"))
        .await
        .unwrap();
    assert!(
        backend.eni_ipv6(&me.eni).await.contains(&v6),
        "{}",
        backend.name()
    );
    let after = find(&provider.list_pool().await.unwrap(), &target.id);
    assert_eq!(
        after.attached_to.as_deref(),
        Some(me.id.as_str()),
        "{}",
        backend.name()
    );
    assert_eq!(after.owner, Some(owner(&me, "v6")));
    provider.detach(&after, &me.reference()).await.unwrap();
    assert!(!backend.eni_ipv6(&me.eni).await.contains(&v6));
    assert!(find(&provider.list_pool().await.unwrap(), &target.id).is_free());
    provider.detach(&after, &me.reference()).await.unwrap();
}

/// Several nodes hold addresses associated through their ENIs (moto leaves
/// `InstanceId` empty there). Every node's listing names each holder's *instance*, so
/// sweep after sweep drops and frees nothing of a live node, and `pinip status --cloud`
/// counts nothing as attached elsewhere. (Before, the sweep read `eni-…` as "another
/// instance" and dropped every live node's claim at every sweep.)
async fn live_holders_through_their_enis(backend: Backend) {
    use k8s_openapi::api::core::v1::{Node, NodeSpec};
    use pinip::domain::claim_record::{lease_name, ClaimRecord, Phase};
    use pinip::domain::sweep_plan::{plan, LiveNodes, Published};

    let mut nodes = Vec::new();
    for i in 0..3 {
        let node = backend.instance().await;
        let (id, _) = backend.address(&[("kubeip", "live")]).await;
        let provider = backend.provider(&node, "live", None);
        let described = provider.describe_instance(&node.reference()).await.unwrap();
        let address = find(&provider.list_pool().await.unwrap(), &id);
        let name = format!("node-{i}");
        provider
            .attach(&address, &described, &owner(&node, &name))
            .await
            .unwrap();
        nodes.push((name, node, address.ip));
    }
    let live: LiveNodes = nodes
        .iter()
        .map(|(name, node, _)| (name.clone(), Some(node.id.clone())))
        .collect();
    let published: Published = nodes
        .iter()
        .map(|(name, _, ip)| (name.clone(), *ip))
        .collect();
    let claims: Vec<ClaimRecord> = nodes
        .iter()
        .map(|(name, node, ip)| ClaimRecord {
            name: lease_name(ip),
            holder: name.clone(),
            instance: node.id.clone(),
            address: Some(*ip),
            phase: Phase::Held,
            resource_version: "1".into(),
            duration: std::time::Duration::from_secs(5),
        })
        .collect();
    // The sweep runs on any node; each sees the same.
    for (sweeper, node, _) in &nodes {
        let pool = backend
            .provider(node, "live", None)
            .list_pool()
            .await
            .unwrap();
        for (holder, held_by, ip) in &nodes {
            let listed = pool.iter().find(|a| a.ip == *ip).expect("listed");
            assert_eq!(
                listed.attached_to.as_deref(),
                Some(held_by.id.as_str()),
                "{}: {sweeper} sees {holder}'s address elsewhere",
                backend.name()
            );
        }
        let todo = plan(&pool, &live, &published, &claims, "scenario");
        assert!(
            todo.drop.is_empty() && todo.free.is_empty(),
            "{}: a sweep on {sweeper} would touch live nodes: {todo:?}",
            backend.name()
        );
        let k8s_nodes: Vec<Node> = nodes
            .iter()
            .map(|(name, n, ip)| {
                let mut k = Node {
                    spec: Some(NodeSpec {
                        provider_id: Some(format!("aws:///{}/{}", n.reference().zone, n.id)),
                        ..NodeSpec::default()
                    }),
                    ..Node::default()
                };
                k.metadata.name = Some(name.clone());
                k.metadata.annotations =
                    Some([("pinip.dev/address".to_string(), ip.to_string())].into());
                k
            })
            .collect();
        let status = pinip::cli::status_report::build(&k8s_nodes, &claims, Some(&pool));
        let summary = status.pool.expect("the pool was read");
        assert_eq!(
            (summary.ours, summary.foreign),
            (3, 0),
            "{}: {:?}",
            backend.name(),
            summary.addresses
        );
    }
}

/// DescribeInstances with an `instance-id` filter (how the agent describes its own
/// instance): exact ids select those instances, an unknown id matches nothing (a filter
/// is not validated, unlike `InstanceIds`), and the filter joins the others with AND.
/// (Wildcards are the simulator's own test, `sim/tests/ec2_wire.rs`: moto 5.2.1 does
/// not match a `?` on `instance-id`.)
async fn instance_id_filter(backend: Backend) {
    let a = backend.instance().await;
    let b = backend.instance().await;
    let ids = |filters: Vec<Filter>| {
        let client = backend.client.clone();
        async move {
            let out = client
                .describe_instances()
                .set_filters(Some(filters))
                .send()
                .await
                .unwrap();
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect::<BTreeSet<_>>()
        }
    };
    let by_id = |values: &[&str]| {
        Filter::builder()
            .name("instance-id")
            .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
            .build()
    };
    let both: BTreeSet<String> = [a.id.clone(), b.id.clone()].into();
    assert_eq!(
        ids(vec![by_id(&[&a.id, &b.id])]).await,
        both,
        "{}",
        backend.name()
    );
    assert!(
        ids(vec![by_id(&["i-0123456789abcdef0"])]).await.is_empty(),
        "{}",
        backend.name()
    );
    let stopped = Filter::builder()
        .name("instance-state-name")
        .values("stopped")
        .build();
    assert!(
        ids(vec![by_id(&[&a.id, &b.id]), stopped]).await.is_empty(),
        "{}",
        backend.name()
    );
}

/// A part (`list_pool_part`) is the Elastic IPs whose last digit the seed picks, by a
/// `public-ip` wildcard filter: the ten one-digit parts split the pool exactly, and a
/// share of every digit is the whole pool. The instance's description names the
/// Elastic IP associated with it as reserved.
async fn pool_parts(backend: Backend) {
    let me = backend.instance().await;
    let mut ips = Vec::new();
    for _ in 0..12 {
        ips.push(backend.address(&[("kubeip", "parts")]).await);
    }
    backend.associate_by_hand(&ips[0].0, &me).await;
    let provider = backend.provider(&me, "parts", None);
    let mut whole = provider.list_pool().await.unwrap();
    assert_eq!(whole.len(), ips.len(), "{}", backend.name());
    let mut parts = Vec::new();
    for seed in 0..10 {
        let part = PoolPart { seed, share: 0.1 };
        let PoolRead::Part(addresses) = provider.list_pool_part(&part).await.unwrap() else {
            panic!("{}: a tenth of the pool is a part", backend.name());
        };
        for a in &addresses {
            assert!(
                a.ip.to_string().ends_with(&seed.to_string()),
                "{}: {a:?}",
                backend.name()
            );
        }
        parts.extend(addresses);
    }
    whole.sort_by(|a, b| a.id.cmp(&b.id));
    parts.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(parts, whole, "{}", backend.name());
    let all = PoolPart {
        seed: 3,
        share: 1.0,
    };
    let PoolRead::Whole(mut read) = provider.list_pool_part(&all).await.unwrap() else {
        panic!(
            "{}: a share of every digit is the whole pool",
            backend.name()
        );
    };
    read.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(read, whole, "{}", backend.name());
    let described = provider.describe_instance(&me.reference()).await.unwrap();
    assert_eq!(
        described.reserved_ips,
        vec![IpAddr::V4(ips[0].1)],
        "{}",
        backend.name()
    );
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod simulator {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::simulator().await).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(backend) = super::Backend::moto().await else { return };
                    super::$scenario(backend).await;
                }
            )*
        }
    };
}

on_both!(
    adopt,
    pool_parts,
    assign,
    race,
    release,
    exhausted_pool,
    filter_and_order,
    ipv6,
    live_holders_through_their_enis,
    instance_id_filter
);
