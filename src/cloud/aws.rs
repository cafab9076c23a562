//! AWS-only settings. Credentials, region and endpoint come from the standard AWS
//! chain (IRSA web identity, EKS Pod Identity, environment; `AWS_REGION`,
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EC2`); `REGION` and the node's zone come first
//! for the region.

use clap::Args;
use pinip_providers::aws::{client_from_environment, AwsProvider, AwsSettings, Ipv6Pool};
use pinip_providers::{InstanceRef, ProviderError};

use crate::cloud::settings::CloudSettings;

#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsArgs {
    /// With IPV6=true on AWS: the IPv6 addresses pinip may assign, as addresses and/or
    /// CIDRs inside the node subnet's IPv6 block, comma-separated (e.g.
    /// `2600:1f18:aa:bb00::100/120`). Reserve them in the subnet so AWS hands them to no
    /// one else (docs/aws.md).
    #[arg(long = "ipv6-pool", env = "IPV6_POOL", value_parser = parse_ipv6_pool)]
    pub ipv6_pool: Option<Ipv6Pool>,
}

/// The error names `IPV6_POOL` and the entry at fault.
fn parse_ipv6_pool(text: &str) -> Result<Ipv6Pool, String> {
    text.parse()
        .map_err(|e: pinip_providers::aws::Ipv6PoolError| e.to_string())
}

impl AwsArgs {
    /// What the provider needs from the agent's settings.
    pub fn provider_settings(&self, settings: &CloudSettings) -> AwsSettings {
        AwsSettings {
            pool: settings.pool.clone(),
            ipv6_pool: self.ipv6_pool.clone(),
        }
    }
}

/// The AWS provider for a node, with the default credential chain. Region: `REGION`,
/// else the node's zone (`us-east-1a` → `us-east-1`), else the chain's `AWS_REGION`.
pub async fn aws_provider(
    instance: &InstanceRef,
    settings: &CloudSettings,
) -> Result<AwsProvider, ProviderError> {
    let region = settings.region.clone().or_else(|| instance.region());
    let client = client_from_environment(region).await;
    AwsProvider::new(
        client,
        instance.clone(),
        &settings.aws.provider_settings(settings),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        aws: AwsArgs,
    }

    #[test]
    fn the_ipv6_pool_is_a_list_or_a_cidr() {
        let cli =
            Cli::try_parse_from(["t", "--ipv6-pool", "2001:db8::10,2001:db8::20/126"]).unwrap();
        assert_eq!(
            cli.aws.ipv6_pool.map(|p| p.to_string()).as_deref(),
            Some("2001:db8::10,2001:db8::20/126")
        );
        assert_eq!(Cli::try_parse_from(["t"]).unwrap().aws.ipv6_pool, None);
    }

    #[test]
    fn a_bad_pool_is_refused_naming_the_variable_and_the_entry() {
        let err = Cli::try_parse_from(["t", "--ipv6-pool", "2001:db8::1,10.0.0.1"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("IPV6_POOL") && text.contains("10.0.0.1"),
            "{text}"
        );
    }
}
