//! Settings that only one cloud's provider reads. Each cloud has its own group, so
//! no shared flag carries a different meaning per cloud (KubeIP's `PROJECT`).

mod aws;
mod gcp;

pub use aws::AwsArgs;
pub use gcp::GcpArgs;
