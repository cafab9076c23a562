//! The Kubernetes client every command builds the same way.

use std::path::Path;

use kube::config::Kubeconfig;

/// A client from `KUBECONFIG`/`--kubeconfig`, else the in-cluster configuration.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    match kubeconfig {
        Some(path) => kube_client_from(Kubeconfig::read_from(path)?).await,
        None => {
            crate::cloud::tls::install_crypto_provider();
            Ok(kube::Client::try_from(kube::Config::infer().await?)?)
        }
    }
}

/// A client from a kubeconfig already read (or, for the simulated agents, built in
/// memory).
pub async fn kube_client_from(kubeconfig: Kubeconfig) -> anyhow::Result<kube::Client> {
    crate::cloud::tls::install_crypto_provider();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    Ok(kube::Client::try_from(config)?)
}
