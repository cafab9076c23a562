//! Loopback simulators for pinip's tests and `pinip simulate`.

pub mod clock;
pub mod compute;
pub mod ec2;
mod https;
pub mod kube;
pub mod oci;
