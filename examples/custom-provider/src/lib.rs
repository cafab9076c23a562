//! pinip with a provider for a cloud it has never heard of: "Nimbus", made up for this
//! example. Shows what a new cloud takes: implement [`pinip_providers::Provider`]
//! ([`provider::NimbusProvider`]), choose it from the node's providerID
//! ([`provider::NimbusProviders`]), and run pinip's agent with it (`src/main.rs`).
//!
//! - [`wire`]: the made-up cloud's JSON API;
//! - [`cloud`]: a tiny in-memory Nimbus server on 127.0.0.1, for the demo and tests;
//! - [`provider`]: the provider (the part you would write for a real cloud);
//! - [`demo`]: the agent, the provider, the cloud and a simulated cluster, end to end.

pub mod cloud;
pub mod demo;
pub mod provider;
pub mod wire;
