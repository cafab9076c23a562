//! Every provider keeps the trait's contract (`pinip_providers::contract`): the fake
//! cloud, AWS on the EC2 simulator, GCP on the Compute simulator and OCI on the OCI
//! simulator (OKE providerIDs, signed requests), each through the same function. (The example's made-up cloud runs it in its own crate.)

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pinip::cloud::settings::CloudSettings;
use pinip::domain::identity::parse_provider_id;
use pinip::simulate::{AwsSim, FakeSim, GcpSim, OciSimCloud, SimulatedCloud};
use pinip_providers::contract::{check_provider_contract, ContractSetup, ContractWorld};
use pinip_providers::fake::FakeCloud;
use pinip_providers::{IpFamily, PoolSpec};

/// Any simulated cloud: two managed instances, three pool addresses, one decoy.
struct Simulated<F>(F);

#[async_trait]
impl<F, Fut> ContractSetup for Simulated<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = anyhow::Result<Arc<dyn SimulatedCloud>>> + Send,
{
    async fn world(&self) -> Result<ContractWorld, String> {
        let cloud = (self.0)().await.map_err(|e| format!("{e:#}"))?;
        let zone = "sim-1a";
        let ids = [cloud.instance_id(0), cloud.instance_id(1)];
        for id in &ids {
            cloud.add_instance(id, zone, true);
        }
        for n in 1..=3u8 {
            cloud.add_address(
                &format!("eipalloc-{n:05}"),
                IpAddr::from([198, 18, 0, n]),
                &[("kubeip", "reserved")],
            );
        }
        cloud.add_address(
            "decoy",
            IpAddr::from([198, 18, 9, 9]),
            &[("kubeip", "other")],
        );
        let instances = ids
            .iter()
            .map(|id| parse_provider_id(&cloud.provider_id(zone, id)).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = CloudSettings {
            pool: PoolSpec {
                filter: cloud.pool_filter(),
                order_by: None,
                family: IpFamily::V4,
            },
            ..CloudSettings::default()
        };
        let provider = cloud
            .providers()
            .provider_for(&instances[0], &settings)
            .await
            .map_err(|e| e.to_string())?;
        let [first, second]: [_; 2] = instances
            .try_into()
            .map_err(|_| "two instances".to_string())?;
        Ok(ContractWorld {
            provider,
            instances: [first, second],
            pool_size: 3,
            guard: Some(Box::new(cloud)),
        })
    }
}

async fn fake() -> anyhow::Result<Arc<dyn SimulatedCloud>> {
    Ok(Arc::new(FakeSim(FakeCloud::new())))
}

async fn ec2() -> anyhow::Result<Arc<dyn SimulatedCloud>> {
    Ok(Arc::new(AwsSim::start().await?))
}

async fn compute() -> anyhow::Result<Arc<dyn SimulatedCloud>> {
    Ok(Arc::new(GcpSim::start().await?))
}

async fn oci() -> anyhow::Result<Arc<dyn SimulatedCloud>> {
    Ok(Arc::new(OciSimCloud::start().await?))
}

#[tokio::test]
async fn the_fake_cloud_keeps_the_provider_contract() {
    pinip::cloud::tls::install_crypto_provider();
    let report = check_provider_contract(&Simulated(fake)).await;
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn aws_on_the_ec2_simulator_keeps_the_provider_contract() {
    pinip::cloud::tls::install_crypto_provider();
    let report = check_provider_contract(&Simulated(ec2)).await;
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn gcp_on_the_compute_simulator_keeps_the_provider_contract() {
    pinip::cloud::tls::install_crypto_provider();
    let report = check_provider_contract(&Simulated(compute)).await;
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn oci_on_the_oci_simulator_keeps_the_provider_contract() {
    pinip::cloud::tls::install_crypto_provider();
    let report = check_provider_contract(&Simulated(oci)).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.map(|r| r.provider).unwrap_or_default(), "oci");
}
