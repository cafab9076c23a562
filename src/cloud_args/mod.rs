//! Settings that only one cloud's provider reads. Each cloud has its own group, so
//! no shared flag carries a different meaning per cloud (KubeIP's `PROJECT`).

mod aws;
mod gcp;

pub use aws::{aws_provider, AwsArgs};
pub use gcp::{gcp_provider, AccessToken, GcpArgs};
