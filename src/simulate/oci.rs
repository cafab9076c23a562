//! The OCI simulator as a simulated cloud: `pinip simulate --cloud oci` and the provider
//! contract run the real OCI provider (reqwest, requests signed with the simulator's
//! test API key) against it over HTTP on loopback.
//!
//! Nodes are OKE workers: their providerID is the bare instance OCID
//! (`ocid1.instance.oc1.iad.…`), each launched with an ephemeral public IP on its primary
//! private IP, as a node of a public node pool is. The reserved public IPs live in the
//! nodes' compartment, which agents learn from their instance (`PROJECT` unset, as a
//! user may leave it; a `PROJECT` in the settings is used as given).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pinip_providers::fake::AddressView;
use pinip_providers::oci::{Loaded, SigningKey};
use pinip_providers::{InstanceRef, ProviderError, ProviderHandle};
use pinip_sim::oci::{Faults, Lifetime, OciSim, OPERATIONS, TEST_PRIVATE_KEY_PEM};

use crate::cloud::factory::ProviderFactory;
use crate::cloud::oci::oci_provider_with;
use crate::cloud::settings::CloudSettings;
use crate::cloud::OciArgs;

use super::cloud::SimulatedCloud;

/// How long a public IP stays ASSIGNING / UNASSIGNING at least (OCI's lifecycle is
/// asynchronous; the provider polls until ASSIGNED).
const MIN_TRANSITION: Duration = Duration::from_millis(50);

pub struct OciSimCloud {
    sim: OciSim,
    compartment: String,
    key: SigningKey,
    /// World address IDs → the simulator's public IP OCIDs.
    address_ids: Mutex<BTreeMap<String, String>>,
}

impl OciSimCloud {
    pub async fn start() -> anyhow::Result<OciSimCloud> {
        let sim = OciSim::start().await?;
        let compartment = sim.add_compartment();
        let key = SigningKey::new(&sim.test_key_id(), TEST_PRIVATE_KEY_PEM)
            .map_err(|e| anyhow::anyhow!("the simulator's test key: {e}"))?;
        Ok(OciSimCloud {
            sim,
            compartment,
            key,
            address_ids: Mutex::new(BTreeMap::new()),
        })
    }

    /// The simulator's own knobs (scripted failures, denied operations).
    pub fn sim(&self) -> &OciSim {
        &self.sim
    }

    /// The compartment of the world's instances and reserved public IPs (`PROJECT`).
    pub fn compartment(&self) -> &str {
        &self.compartment
    }

    fn address_ids(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.address_ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulator's OCID for a world address ID (OCIDs pass through).
    fn sim_id(&self, world_id: &str) -> String {
        self.address_ids()
            .get(world_id)
            .cloned()
            .unwrap_or_else(|| world_id.to_string())
    }
}

impl Drop for OciSimCloud {
    fn drop(&mut self) {
        self.sim.shutdown();
    }
}

impl SimulatedCloud for OciSimCloud {
    fn name(&self) -> &'static str {
        "oci"
    }
    fn instance_id(&self, n: usize) -> String {
        // The simulator's own OCIDs end in 16 hex digits; these cannot collide with them.
        format!("ocid1.instance.oc1.iad.anuwcljtpinipsimnode{n:06}")
    }
    fn provider_id(&self, _zone: &str, instance: &str) -> String {
        // What the OCI cloud controller manager sets on an OKE node: the bare OCID.
        instance.to_string()
    }
    fn pool_filter(&self) -> Vec<String> {
        vec!["freeformTags.kubeip=reserved".to_string()]
    }
    fn endpoint(&self) -> Option<String> {
        Some(self.sim.url())
    }
    fn add_instance(&self, id: &str, _zone: &str, managed: bool) {
        let name = id.rsplit('.').next().unwrap_or(id);
        // Managed nodes are workers of a public node pool: an ephemeral public IP each.
        self.sim
            .add_instance_as(id, &self.compartment, name, managed, managed);
    }
    fn add_address(&self, id: &str, ip: IpAddr, tags: &[(&str, &str)]) {
        // OCI's reserved public IPs are IPv4 only.
        if let IpAddr::V4(v4) = ip {
            let ocid = self.sim.add_reserved_ip(&self.compartment, v4, tags, &[]);
            self.address_ids().insert(id.to_string(), ocid);
        }
    }
    fn attach_by_hand(&self, address_id: &str, instance_id: &str) {
        self.sim
            .assign_by_hand(&self.sim_id(address_id), instance_id);
    }
    fn detach_by_hand(&self, address_id: &str) {
        self.sim.unassign_by_hand(&self.sim_id(address_id));
    }
    fn terminate_instance(&self, id: &str) {
        self.sim.terminate_instance(id);
    }
    fn set_latency(&self, latency: Duration, seed: u64) {
        self.sim.set_faults(Faults {
            latency,
            transition_time: latency.max(MIN_TRANSITION),
            seed,
            ..Faults::default()
        });
    }
    fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        self.sim.set_failure_rates(error_rate, throttle_rate);
    }
    fn attached_to(&self, instance_id: &str) -> Vec<IpAddr> {
        self.sim
            .attached_to(instance_id)
            .into_iter()
            .map(IpAddr::V4)
            .collect()
    }
    fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        self.sim
            .attachments()
            .into_iter()
            .map(|(instance, ips)| (instance, ips.into_iter().map(IpAddr::V4).collect()))
            .collect()
    }
    fn addresses(&self) -> Vec<AddressView> {
        self.sim
            .public_ips()
            .into_iter()
            .filter(|p| p.lifetime == Lifetime::Reserved)
            .map(|p| AddressView {
                id: p.id,
                ip: IpAddr::V4(p.ip),
                attached_to: p.instance_id,
                tags: p.freeform_tags,
            })
            .collect()
    }
    fn violations(&self) -> Vec<String> {
        self.sim.violations()
    }
    fn without_external_ipv4(&self) -> Vec<String> {
        self.sim.managed_without_public_ip()
    }
    fn duplicates(&self) -> usize {
        // A public IP has one private IP by construction; moves land in violations.
        0
    }
    fn call_counts(&self) -> BTreeMap<String, u64> {
        let counts = self.sim.request_counts();
        OPERATIONS
            .iter()
            .map(|o| (o.to_string(), counts.operation(o)))
            .collect()
    }
    fn write_calls(&self) -> usize {
        self.sim.request_counts().writes() as usize
    }
    fn providers(&self) -> Arc<dyn ProviderFactory> {
        Arc::new(OciSimProviders {
            endpoint: self.sim.url(),
            region: self.sim.region(),
            key: self.key.clone(),
        })
    }
}

/// The real OCI provider on the simulator's endpoint, signing with its test key.
struct OciSimProviders {
    endpoint: String,
    region: String,
    key: SigningKey,
}

#[async_trait::async_trait]
impl ProviderFactory for OciSimProviders {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError> {
        let simulated = CloudSettings {
            region: settings
                .region
                .clone()
                .or_else(|| Some(self.region.clone())),
            oci: OciArgs {
                endpoint: Some(self.endpoint.clone()),
                ..settings.oci.clone()
            },
            ..settings.clone()
        };
        let loaded = Loaded {
            key: self.key.clone(),
            region: None,
        };
        Ok(Arc::new(oci_provider_with(instance, &simulated, loaded)?))
    }
}
