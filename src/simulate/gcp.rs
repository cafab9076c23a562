//! The Compute simulator as a simulated cloud: `pinip simulate --cloud gcp` and the
//! GCP lifecycle tests run the real GCP provider (reqwest, static token) against it
//! over HTTP on loopback.
//!
//! Addresses are reserved in region `sim-1`, the region of the world's zones
//! (`sim-1a`, `sim-1b`, `sim-1c`); instances are dual-stack VMs with ephemeral
//! external IPv4 and IPv6 addresses, as a GKE node of a dual-stack pool would be.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::fake::AddressView;
use pinip_providers::{InstanceRef, ProviderError, ProviderHandle};
use pinip_sim::compute::{ComputeSim, Faults, METHODS};

use crate::cloud::factory::ProviderFactory;
use crate::cloud::settings::CloudSettings;
use crate::cloud::{gcp_provider, AccessToken, GcpArgs};

use super::cloud::SimulatedCloud;

pub const PROJECT: &str = "pinip-sim";
pub const REGION: &str = "sim-1";
/// The bearer token agents send (the simulator accepts any non-empty one).
pub const TOKEN: &str = "pinip-sim-token";

pub struct GcpSim {
    compute: ComputeSim,
}

impl GcpSim {
    pub async fn start() -> anyhow::Result<GcpSim> {
        Ok(GcpSim {
            compute: ComputeSim::start(PROJECT).await?,
        })
    }

    /// The simulator's own knobs (scripted failures, denied methods, NIC state).
    pub fn compute(&self) -> &ComputeSim {
        &self.compute
    }

    /// The GCP settings an agent uses to reach this simulator.
    pub fn gcp_args(&self) -> GcpArgs {
        GcpArgs {
            compute_endpoint: Some(self.compute.url()),
            access_token: Some(AccessToken(TOKEN.into())),
        }
    }
}

impl Drop for GcpSim {
    fn drop(&mut self) {
        self.compute.shutdown();
    }
}

impl SimulatedCloud for GcpSim {
    fn name(&self) -> &'static str {
        "gcp"
    }
    fn instance_id(&self, n: usize) -> String {
        format!("gke-sim-pool-{n:05}")
    }
    fn provider_id(&self, zone: &str, instance: &str) -> String {
        format!("gce://{PROJECT}/{zone}/{instance}")
    }
    fn pool_filter(&self) -> Vec<String> {
        vec!["labels.kubeip=reserved".to_string()]
    }
    fn endpoint(&self) -> Option<String> {
        Some(self.compute.url())
    }
    fn add_instance(&self, id: &str, zone: &str, managed: bool) {
        self.compute.add_instance(zone, id, managed);
    }
    fn add_address(&self, id: &str, ip: IpAddr, tags: &[(&str, &str)]) {
        self.compute.add_address(REGION, id, ip, tags);
    }
    fn attach_by_hand(&self, address_id: &str, instance_id: &str) {
        self.compute.attach_by_hand(address_id, instance_id);
    }
    fn detach_by_hand(&self, address_id: &str) {
        self.compute.detach_by_hand(address_id);
    }
    fn terminate_instance(&self, id: &str) {
        self.compute.terminate_instance(id);
    }
    fn set_latency(&self, latency: Duration, seed: u64) {
        // Operations take about as long as a call: RUNNING first, then a `wait`.
        self.compute.set_faults(Faults {
            latency,
            operation_time: latency,
            seed,
            ..Faults::default()
        });
    }
    /// A chaos burst on Compute: besides 5xx and throttling, every answer the API gives
    /// a client to survive (`resourceNotReady`, an operation ending in
    /// `QUOTA_EXCEEDED`, an `operations.wait` that returns early, an empty page with a
    /// `nextPageToken`). Latency, operation time and the seed stay.
    fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        let current = self.compute.faults();
        self.compute.set_faults(Faults {
            error_rate,
            throttle_rate,
            not_ready_rate: error_rate,
            quota_rate: error_rate / 3.0,
            wait_early_rate: error_rate.max(throttle_rate),
            empty_page_rate: error_rate,
            ..current
        });
    }
    fn attached_to(&self, instance_id: &str) -> Vec<IpAddr> {
        self.compute.attached_to(instance_id)
    }
    fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        self.compute.attachments()
    }
    fn addresses(&self) -> Vec<AddressView> {
        self.compute
            .addresses()
            .into_iter()
            .map(|a| AddressView {
                id: a.name,
                ip: a.ip,
                attached_to: a.users.first().cloned(),
                tags: a.labels,
            })
            .collect()
    }
    fn violations(&self) -> Vec<String> {
        self.compute.violations()
    }
    fn without_external_ipv4(&self) -> Vec<String> {
        self.compute.managed_without_external_ipv4()
    }
    fn duplicates(&self) -> usize {
        self.compute.duplicates()
    }
    fn call_counts(&self) -> BTreeMap<String, u64> {
        let counts = self.compute.request_counts();
        METHODS
            .iter()
            .map(|m| (m.to_string(), counts.method(m)))
            .collect()
    }
    fn write_calls(&self) -> usize {
        self.compute.request_counts().writes() as usize
    }
    fn providers(&self) -> Arc<dyn ProviderFactory> {
        Arc::new(GcpSimProviders(self.gcp_args()))
    }
}

/// The real GCP provider, pointed at the simulator with a static token.
struct GcpSimProviders(GcpArgs);

#[async_trait::async_trait]
impl ProviderFactory for GcpSimProviders {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError> {
        let simulated = CloudSettings {
            gcp: self.0.clone(),
            ..settings.clone()
        };
        Ok(Arc::new(gcp_provider(instance, &simulated).await?))
    }
}
