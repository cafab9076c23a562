//! The sweep reads claims, the pool and the Nodes at three different moments. A node
//! that joins and takes its address between those reads must not look vanished.
//! (Chaos seed 5 found this: with the Nodes read first, a node that joined mid-sweep
//! had its fresh address detached and its claim dropped while it published the
//! address, and another node then took and published the same address.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use pinip::admin::metrics::Metrics;
use pinip::agent::sweeper::{SweepOutcome, Sweeper};
use pinip::cluster::claim_store::{ClaimSettings, ClaimStore};
use pinip::domain::claim_record::Holder;
use pinip::simulate::{SimulatedWorld, WorldSpec, LEASE_NAMESPACE};
use pinip_providers::{
    Instance, InstanceRef, IpFamily, Ownership, PoolAddress, Provider, ProviderError,
    ProviderHandle,
};
use pinip_sim::kube::{Kind, KubeSim};

const JOINED: &str = "node-joined";
const JOINED_INSTANCE: &str = "i-0000000000000joined";
const ZONE: &str = "sim-1a";

/// What a node that joins during the sweep does: appear, claim an address, attach it.
struct Joiner {
    kube: KubeSim,
    client: kube::Client,
    provider_id: String,
}

impl Joiner {
    async fn join(&self, inner: &ProviderHandle) -> Result<(), ProviderError> {
        self.kube
            .add_node(JOINED, Some(&self.provider_id), BTreeMap::new(), Vec::new());
        let pool = inner.list_pool().await?;
        let Some(free) = pool.iter().find(|a| a.is_free()) else {
            panic!("the test pool has free addresses");
        };
        let holder = Holder {
            node: JOINED.into(),
            instance: JOINED_INSTANCE.into(),
            cluster: "sim".into(),
        };
        let settings = ClaimSettings {
            namespace: LEASE_NAMESPACE.into(),
            duration: Duration::from_secs(5),
        };
        let claims = ClaimStore::new(self.client.clone(), &settings, holder, false);
        claims
            .ensure_held(free.ip)
            .await
            .expect("the joined node claims its address");
        let reference = InstanceRef {
            cloud: "fake".into(),
            project: None,
            zone: ZONE.into(),
            id: JOINED_INSTANCE.into(),
        };
        let instance = inner.describe_instance(&reference).await?;
        let owner = Ownership {
            cluster: "sim".into(),
            node: JOINED.into(),
            instance: JOINED_INSTANCE.into(),
        };
        inner.attach(free, &instance, &owner).await
    }
}

/// The fake cloud, except that a node joins (once) just before the pool is read.
struct NodeJoinsDuringPoolRead {
    inner: ProviderHandle,
    joiner: Mutex<Option<Joiner>>,
}

#[async_trait]
impl Provider for NodeJoinsDuringPoolRead {
    fn name(&self) -> &'static str {
        "fake"
    }
    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        self.inner.describe_instance(instance).await
    }
    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        let joiner = self.joiner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(joiner) = joiner {
            joiner.join(&self.inner).await?;
        }
        self.inner.list_pool().await
    }
    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.inner.attach(address, instance, owner).await
    }
    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        self.inner.detach(address, instance).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_during_a_sweep_keeps_its_address_and_its_claim() {
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 1,
        pool: 3,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 7,
    })
    .await
    .expect("world");
    let fake = world.fake().expect("the fake cloud").clone();
    fake.add_instance(JOINED_INSTANCE, ZONE, true);
    let settings = world.settings_for("node-000");
    let inner: ProviderHandle = Arc::new(fake.provider(&settings.cloud.pool).expect("provider"));
    let client = pinip::cluster::client::kube_client(Some(world.kubeconfig_path()))
        .await
        .expect("client");
    let joiner = Joiner {
        kube: world.kube.clone(),
        client: client.clone(),
        provider_id: format!("fake:///{ZONE}/{JOINED_INSTANCE}"),
    };
    let home = InstanceRef {
        cloud: "fake".into(),
        project: None,
        zone: ZONE.into(),
        id: world.nodes[0].instance.clone(),
    };
    let sweeper = Sweeper {
        leases: Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        nodes: Api::<Node>::all(client.clone()),
        provider: Arc::new(NodeJoinsDuringPoolRead {
            inner,
            joiner: Mutex::new(Some(joiner)),
        }),
        home,
        node_name: "node-000".into(),
        cluster: "sim".into(),
        interval: Duration::from_secs(300),
        metrics: Arc::new(Metrics::new()),
        dry_run: false,
        release_on_exit: pinip::domain::exit_decision::ReleasePolicy::Auto,
    };

    let outcome = sweeper.sweep().await.expect("sweep");

    assert_eq!(
        outcome,
        SweepOutcome::default(),
        "the sweep freed or dropped something of a node that had just joined"
    );
    assert_eq!(
        fake.attached_to(JOINED_INSTANCE).len(),
        1,
        "the joined node's address stays attached"
    );
    let claims: Vec<String> = world
        .kube
        .list(Kind::Lease, Some(LEASE_NAMESPACE))
        .iter()
        .filter_map(|l| {
            l.pointer("/spec/holderIdentity")
                .and_then(|h| h.as_str())
                .map(String::from)
        })
        .collect();
    assert!(
        claims.iter().any(|h| h == JOINED),
        "the joined node's claim stays: {claims:?}"
    );
}
