//! A simulated cloud as `pinip simulate` and the tests drive it: set it up, break it
//! by hand, read its state and counters, and hand agents a provider onto it. The
//! in-memory fake implements it here; the EC2 and Compute simulators implement it in
//! their own files.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::fake::{AddressView, FakeCloud, Faults};
use pinip_providers::{InstanceRef, ProviderError, ProviderHandle};

use crate::cloud::factory::ProviderFactory;
use crate::cloud::settings::CloudSettings;

pub trait SimulatedCloud: Send + Sync {
    /// "fake", "aws", "gcp".
    fn name(&self) -> &'static str;
    /// The n-th node's instance ID (AWS `i-…`, GCP instance name).
    fn instance_id(&self, n: usize) -> String;
    /// The providerID a kubelet on that instance would register.
    fn provider_id(&self, zone: &str, instance: &str) -> String;
    /// The `FILTER` that selects addresses tagged `kubeip=reserved`.
    fn pool_filter(&self) -> Vec<String>;
    /// Base URL of the wire-protocol endpoint, if the cloud has one (for `--serve`).
    fn endpoint(&self) -> Option<String>;

    fn add_instance(&self, id: &str, zone: &str, managed: bool);
    fn add_address(&self, id: &str, ip: IpAddr, tags: &[(&str, &str)]);
    fn attach_by_hand(&self, address_id: &str, instance_id: &str);
    fn detach_by_hand(&self, address_id: &str);
    fn terminate_instance(&self, id: &str);
    fn set_latency(&self, latency: Duration, seed: u64);
    /// Random failures for chaos runs: the share of calls that fail transiently or are
    /// throttled. Clouds without such knobs ignore it.
    fn set_failure_rates(&self, _error_rate: f64, _throttle_rate: f64) {}

    fn attached_to(&self, instance_id: &str) -> Vec<IpAddr>;
    /// [`SimulatedCloud::attached_to`] of every instance that holds an address, read in
    /// one look: the simulated cloud controller's per-tick view (one call per node and
    /// tick made the harness's own work grow with nodes × pool).
    fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>>;
    fn addresses(&self) -> Vec<AddressView>;
    /// Invariant breaches seen so far (two instances on one address, a node with two,
    /// an address taken from an instance pinip does not manage, ...).
    fn violations(&self) -> Vec<String>;
    /// Managed instances with no external IPv4 at all (GCP: a swap cut in half would
    /// leave one so). Checked when asked: the report asks once every agent has settled,
    /// when no swap is in flight.
    fn without_external_ipv4(&self) -> Vec<String> {
        Vec::new()
    }
    /// Addresses attached to more than one instance, as the cloud sees it.
    fn duplicates(&self) -> usize;
    /// Calls per operation, every operation listed (zero included).
    fn call_counts(&self) -> BTreeMap<String, u64>;
    /// Calls that changed cloud state.
    fn write_calls(&self) -> usize;

    /// What agents use to reach this cloud.
    fn providers(&self) -> Arc<dyn ProviderFactory>;
}

/// The in-memory fake as a simulated cloud.
pub struct FakeSim(pub Arc<FakeCloud>);

impl SimulatedCloud for FakeSim {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn instance_id(&self, n: usize) -> String {
        format!("i-{n:017x}")
    }
    fn provider_id(&self, zone: &str, instance: &str) -> String {
        format!("fake:///{zone}/{instance}")
    }
    fn pool_filter(&self) -> Vec<String> {
        vec!["Name=tag:kubeip,Values=reserved".to_string()]
    }
    fn endpoint(&self) -> Option<String> {
        None
    }
    fn add_instance(&self, id: &str, zone: &str, managed: bool) {
        self.0.add_instance(id, zone, managed);
    }
    fn add_address(&self, id: &str, ip: IpAddr, tags: &[(&str, &str)]) {
        self.0.add_address(id, ip, tags);
    }
    fn attach_by_hand(&self, address_id: &str, instance_id: &str) {
        self.0.attach_by_hand(address_id, instance_id);
    }
    fn detach_by_hand(&self, address_id: &str) {
        self.0.detach_by_hand(address_id);
    }
    fn terminate_instance(&self, id: &str) {
        self.0.terminate_instance(id);
    }
    fn set_latency(&self, latency: Duration, seed: u64) {
        self.0.set_faults(Faults {
            latency,
            seed,
            ..Faults::default()
        });
    }
    fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        self.0.set_failure_rates(error_rate, throttle_rate);
    }
    fn attached_to(&self, instance_id: &str) -> Vec<IpAddr> {
        self.0.attached_to(instance_id)
    }
    fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        self.0.attachments()
    }
    fn addresses(&self) -> Vec<AddressView> {
        self.0.addresses()
    }
    fn violations(&self) -> Vec<String> {
        self.0.violations()
    }
    fn duplicates(&self) -> usize {
        // One attachment per address by construction; moves land in violations.
        0
    }
    fn call_counts(&self) -> BTreeMap<String, u64> {
        self.0.call_counts()
    }
    fn write_calls(&self) -> usize {
        self.0.write_calls()
    }
    fn providers(&self) -> Arc<dyn ProviderFactory> {
        Arc::new(FakeProviders(Arc::clone(&self.0)))
    }
}

/// Every node served by one in-memory cloud.
pub struct FakeProviders(pub Arc<FakeCloud>);

#[async_trait::async_trait]
impl ProviderFactory for FakeProviders {
    async fn provider_for(
        &self,
        _instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError> {
        Ok(Arc::new(self.0.provider(&settings.pool)?))
    }
}
