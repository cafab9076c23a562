//! The AWS provider: Elastic IPs on the primary ENI's primary private IP (IPv4), or a
//! configured static IPv6 address on the primary ENI, through `aws-sdk-ec2`.
//!
//! Calls per assignment: `DescribeAddresses` (filtered; answers "already mine?" and
//! "what is free?"), `DescribeInstances` (once per node), `AssociateAddress`
//! (`AllowReassociation=false`), `CreateTags` (ownership). Release: `DescribeAddresses`
//! by allocation ID, `DisassociateAddress`, `DeleteTags`.

mod client;
mod eip;
mod errors;
mod filters;
mod instance;
mod ipv6;
mod ordering;
mod pool_part;
mod provider;

pub use client::{client_for_endpoint, client_from_environment, SDK_MAX_ATTEMPTS};
pub use eip::{present, EipRecord};
pub use errors::{classify, from_sdk, missing_action};
pub use filters::{address_filters, ADDRESS_FILTER_NAMES};
pub use instance::InstanceFacts;
pub use ipv6::{Ipv6Pool, Ipv6PoolError, MAX_POOL_ADDRESSES};
pub use ordering::{AwsOrder, AwsOrderError, AwsOrderField, ORDER_FIELDS};
pub use pool_part::part_filters;
pub use provider::{AwsProvider, AwsSettings, OWNER_IPV6_TAG};

/// The SDK, for callers that build their own requests (tests setting up moto).
pub use aws_sdk_ec2 as sdk;

/// Every EC2 action the provider calls (what `deploy/iam/aws-policy.json` must allow).
pub const EC2_ACTIONS: &[&str] = &[
    "AssignIpv6Addresses",
    "AssociateAddress",
    "CreateTags",
    "DeleteTags",
    "DescribeAddresses",
    "DescribeInstances",
    "DescribeNetworkInterfaces",
    "DescribeSubnets",
    "DisassociateAddress",
    "UnassignIpv6Addresses",
];
