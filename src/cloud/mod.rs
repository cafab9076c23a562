//! The cloud side: which provider serves a node, each cloud's own settings (no shared
//! flag carries a different meaning per cloud, unlike KubeIP's `PROJECT`), and the
//! decorators every provider is wrapped in (metering, dry run).

pub(crate) mod aws;
pub(crate) mod dry_run;
pub mod factory;
pub(crate) mod gcp;
pub mod metered;
pub(crate) mod oci;
pub mod settings;
pub mod tls;

pub use aws::{aws_provider, AwsArgs};
pub use gcp::{gcp_provider, AccessToken, GcpArgs};
pub use oci::{oci_provider, OciArgs};
