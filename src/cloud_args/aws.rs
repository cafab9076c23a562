use clap::Args;

/// AWS-only settings (credentials and endpoints come from the standard AWS chain:
/// IRSA, EKS Pod Identity, environment; `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EC2`).
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsArgs {}
