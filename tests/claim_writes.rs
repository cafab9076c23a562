//! Every claim write after the create is a resourceVersion-guarded PATCH: a renewal or a
//! mark-held that races a delete (a release, a leftover drop, a sweep) must find the
//! claim gone, never recreate it. A real API server *creates* a missing Lease on PUT,
//! and so does the simulator; with PUT these tests see the claim come back.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::DeleteParams;
use kube::Api;
use pinip::cluster::claim_store::{ClaimAttempt, ClaimError, ClaimSettings, ClaimStore};
use pinip::domain::claim_record::{lease_name, Holder, HOLDER_LABEL};
use pinip::simulate::{SimulatedWorld, LEASE_NAMESPACE};
use pinip_sim::kube::Kind;

mod kit;

async fn world() -> SimulatedWorld {
    kit::world(2, 2, 21).await
}

async fn store(world: &SimulatedWorld, node: usize) -> ClaimStore {
    let client = pinip::cluster::client::kube_client(Some(world.kubeconfig_path()))
        .await
        .expect("client");
    let holder = Holder {
        node: world.nodes[node].name.clone(),
        instance: world.nodes[node].instance.clone(),
        cluster: "sim".into(),
    };
    let settings = ClaimSettings {
        namespace: LEASE_NAMESPACE.into(),
        duration: Duration::from_secs(5),
    };
    ClaimStore::new(client, &settings, holder, false)
}

async fn delete_behind_its_back(world: &SimulatedWorld, address: IpAddr) {
    let client = pinip::cluster::client::kube_client(Some(world.kubeconfig_path()))
        .await
        .expect("client");
    Api::<Lease>::namespaced(client, LEASE_NAMESPACE)
        .delete(&lease_name(&address), &DeleteParams::default())
        .await
        .expect("the sweep deletes the claim");
}

fn exists(world: &SimulatedWorld, address: IpAddr) -> bool {
    world
        .kube
        .get(Kind::Lease, Some(LEASE_NAMESPACE), &lease_name(&address))
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_or_mark_held_after_a_delete_finds_the_claim_lost_and_does_not_recreate_it() {
    let world = world().await;
    let claims = store(&world, 0).await;
    let address = world.pool_addresses()[0].ip;
    let ClaimAttempt::Claimed(mut claim) = claims.try_claim(address).await.expect("claim") else {
        panic!("the first claim of a free address is ours");
    };
    claims
        .renew(&mut claim)
        .await
        .expect("a renewal of a live claim");

    delete_behind_its_back(&world, address).await;
    assert!(matches!(
        claims.renew(&mut claim).await,
        Err(ClaimError::Lost(_))
    ));
    assert!(
        !exists(&world, address),
        "the renewal resurrected the claim"
    );
    assert!(matches!(
        claims.mark_held(&mut claim).await,
        Err(ClaimError::Lost(_))
    ));
    assert!(!exists(&world, address), "mark-held resurrected the claim");
    assert_eq!(
        world.kube.request_counts().verb("update"),
        0,
        "no PUT at all"
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lists_only_its_own_claims_by_the_holder_label() {
    let world = world().await;
    let (mine, theirs) = (store(&world, 0).await, store(&world, 1).await);
    let pool = world.pool_addresses();
    assert!(matches!(
        mine.try_claim(pool[0].ip).await.expect("claim"),
        ClaimAttempt::Claimed(_)
    ));
    assert!(matches!(
        theirs.try_claim(pool[1].ip).await.expect("claim"),
        ClaimAttempt::Claimed(_)
    ));
    let listed = mine.list_mine().await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].address, Some(pool[0].ip));
    let lease = world
        .kube
        .get(Kind::Lease, Some(LEASE_NAMESPACE), &lease_name(&pool[0].ip))
        .expect("the claim");
    assert_eq!(
        lease["metadata"]["labels"][HOLDER_LABEL],
        world.nodes[0].name.as_str()
    );
    // Dropping leftovers touches only our own claims.
    assert_eq!(mine.release_leftovers(None).await.expect("drop"), 1);
    assert!(exists(&world, pool[1].ip), "another node's claim stays");
    world.shutdown();
}
