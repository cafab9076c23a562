use clap::Args;

/// GCP-only settings (credentials come from Application Default Credentials).
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct GcpArgs {}
