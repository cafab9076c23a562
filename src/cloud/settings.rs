//! What the cloud side needs to build a provider: the pool (`FILTER`, `ORDER_BY`,
//! `IPV6`), where to look (`PROJECT`, `REGION`), and each cloud's own group.

use pinip_providers::PoolSpec;

use crate::cloud::{AwsArgs, GcpArgs, OciArgs};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloudSettings {
    /// `PROJECT`: the GCP project (default: from the node's providerID), or on OCI the
    /// compartment OCID of the reserved public IPs (default: the node's compartment).
    pub project: Option<String>,
    /// `REGION` (default: derived from the node's zone).
    pub region: Option<String>,
    pub pool: PoolSpec,
    pub aws: AwsArgs,
    pub gcp: GcpArgs,
    pub oci: OciArgs,
}
