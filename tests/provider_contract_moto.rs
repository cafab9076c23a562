//! The provider contract (`pinip_providers::contract`) for AWS against moto, an EC2
//! nobody here wrote, through the same function that checks the fake cloud and the
//! simulators (tests/provider_contract.rs): the simulator cannot make the AWS provider
//! look right where EC2 behaves differently.

mod aws_support;

use async_trait::async_trait;
use aws_support::Backend;
use pinip_providers::contract::{check_provider_contract, ContractSetup, ContractWorld};
use std::sync::Arc;

struct OnMoto;

#[async_trait]
impl ContractSetup for OnMoto {
    async fn world(&self) -> Result<ContractWorld, String> {
        let backend = Backend::moto()
            .await
            .ok_or("moto did not start (.ci/tools/moto.sh installs it)")?;
        let first = backend.instance().await;
        let second = backend.instance().await;
        for _ in 0..3 {
            backend.address(&[("kubeip", "contract")]).await;
        }
        backend.address(&[("kubeip", "other")]).await;
        let provider = Arc::new(backend.provider(&first, "contract", None));
        Ok(ContractWorld {
            provider,
            instances: [first.reference(), second.reference()],
            pool_size: 3,
            guard: Some(Box::new(backend)),
        })
    }
}

#[tokio::test]
async fn aws_on_moto_keeps_the_provider_contract() {
    pinip::cloud::tls::install_crypto_provider();
    let report = check_provider_contract(&OnMoto).await;
    assert!(report.is_ok(), "{report:?}");
}
