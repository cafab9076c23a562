//! Loopback simulators for pinip's tests and `pinip simulate`.

pub mod kube;
