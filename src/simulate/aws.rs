//! The EC2 simulator as a simulated cloud: `pinip simulate --cloud aws` (the default)
//! and the AWS lifecycle tests run the real AWS provider (`aws-sdk-ec2`, SigV4 with
//! static test credentials) against it over HTTP on loopback.
//!
//! Every instance of the world sits in one subnet, `subnet-sim`, whose IPv6 block
//! 2001:db8::/64 holds the world's IPv6 pool (a simplification: an AWS subnet lives in
//! one zone). The first four addresses of that block are AWS's own, so an IPv6 world
//! has three pool addresses fewer than asked for.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::Ipv6Net;
use pinip_providers::aws::sdk::Client;
use pinip_providers::aws::{client_for_endpoint, AwsProvider, Ipv6Pool};
use pinip_providers::fake::AddressView;
use pinip_providers::{InstanceRef, IpFamily, ProviderError, ProviderHandle};
use pinip_sim::ec2::{Ec2Faults, Ec2Sim};

use crate::cloud::factory::ProviderFactory;
use crate::cloud::settings::CloudSettings;

use super::cloud::SimulatedCloud;

/// The region agents sign for (the world's zones are `sim-1a`, `sim-1b`, `sim-1c`).
pub const REGION: &str = "sim-1";
pub const SUBNET: &str = "subnet-sim";

pub fn subnet_block() -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 64)
        .unwrap_or_else(|_| Ipv6Net::default())
}

pub struct AwsSim {
    ec2: Ec2Sim,
    client: Client,
    /// The world's IDs of its IPv6 pool addresses (EC2 has no object for them).
    ipv6_ids: Mutex<BTreeMap<String, Ipv6Addr>>,
}

impl AwsSim {
    pub async fn start() -> anyhow::Result<AwsSim> {
        let ec2 = Ec2Sim::start().await?;
        ec2.add_subnet(SUBNET, "sim-1a", Some(subnet_block()));
        // One attempt per call: the agent's own backoff is what is being simulated.
        let client = client_for_endpoint(&ec2.url(), REGION, 1);
        Ok(AwsSim {
            ec2,
            client,
            ipv6_ids: Mutex::new(BTreeMap::new()),
        })
    }

    /// The simulator's own knobs (scripted failures, denied actions, ENIs).
    pub fn ec2(&self) -> &Ec2Sim {
        &self.ec2
    }

    fn ipv6_ids(&self) -> MutexGuard<'_, BTreeMap<String, Ipv6Addr>> {
        self.ipv6_ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulator's ID for a world address ID (an IPv6 pool address is its text).
    fn sim_id(&self, world_id: &str) -> String {
        self.ipv6_ids()
            .get(world_id)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| world_id.to_string())
    }
}

impl Drop for AwsSim {
    fn drop(&mut self) {
        self.ec2.shutdown();
    }
}

impl SimulatedCloud for AwsSim {
    fn name(&self) -> &'static str {
        "aws"
    }
    fn instance_id(&self, n: usize) -> String {
        format!("i-{n:017x}")
    }
    fn provider_id(&self, zone: &str, instance: &str) -> String {
        format!("aws:///{zone}/{instance}")
    }
    fn pool_filter(&self) -> Vec<String> {
        vec!["Name=tag:kubeip,Values=reserved".to_string()]
    }
    fn endpoint(&self) -> Option<String> {
        Some(self.ec2.url())
    }
    fn add_instance(&self, id: &str, zone: &str, managed: bool) {
        self.ec2.add_instance(id, zone, managed, Some(SUBNET));
    }
    fn add_address(&self, id: &str, ip: IpAddr, tags: &[(&str, &str)]) {
        match ip {
            IpAddr::V4(v4) => self.ec2.add_address(id, v4, tags),
            IpAddr::V6(v6) => {
                let block = subnet_block();
                let offset = u128::from(v6).wrapping_sub(u128::from(block.network()));
                if block.contains(&v6) && offset >= 4 {
                    self.ec2.add_pool_ipv6(v6, tags);
                    self.ipv6_ids().insert(id.to_string(), v6);
                }
            }
        }
    }
    fn attach_by_hand(&self, address_id: &str, instance_id: &str) {
        if let Err(e) = self
            .ec2
            .attach_by_hand(&self.sim_id(address_id), instance_id)
        {
            tracing::warn!(address = %address_id, instance = %instance_id, error = ?e, "attach by hand refused");
        }
    }
    fn detach_by_hand(&self, address_id: &str) {
        self.ec2.detach_by_hand(&self.sim_id(address_id));
    }
    fn terminate_instance(&self, id: &str) {
        self.ec2.terminate_instance(id);
    }
    fn set_latency(&self, latency: Duration, seed: u64) {
        self.ec2.set_faults(Ec2Faults {
            latency,
            seed,
            ..Ec2Faults::default()
        });
    }
    fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        self.ec2.set_failure_rates(error_rate, throttle_rate);
    }
    fn attached_to(&self, instance_id: &str) -> Vec<IpAddr> {
        self.ec2.attached_to(instance_id)
    }
    fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        self.ec2.attachments()
    }
    fn addresses(&self) -> Vec<AddressView> {
        let by_ip: BTreeMap<Ipv6Addr, String> = self
            .ipv6_ids()
            .iter()
            .map(|(id, ip)| (*ip, id.clone()))
            .collect();
        self.ec2
            .addresses()
            .into_iter()
            .map(|a| AddressView {
                id: match a.ip {
                    IpAddr::V6(v6) => by_ip.get(&v6).cloned().unwrap_or(a.id),
                    IpAddr::V4(_) => a.id,
                },
                ip: a.ip,
                attached_to: a.instance,
                tags: a.tags,
            })
            .collect()
    }
    fn violations(&self) -> Vec<String> {
        self.ec2.violations()
    }
    fn duplicates(&self) -> usize {
        self.ec2.duplicates()
    }
    fn call_counts(&self) -> BTreeMap<String, u64> {
        self.ec2.call_counts()
    }
    fn write_calls(&self) -> usize {
        self.ec2.write_calls() as usize
    }
    fn providers(&self) -> Arc<dyn ProviderFactory> {
        let pool: Vec<String> = self.ipv6_ids().values().map(Ipv6Addr::to_string).collect();
        Arc::new(AwsSimProviders {
            client: self.client.clone(),
            ipv6_pool: pool.join(",").parse().ok(),
        })
    }
}

/// Agents of the simulated world: the real AWS provider on the simulator's endpoint.
struct AwsSimProviders {
    client: Client,
    /// The world's IPv6 pool, for agents whose settings name none.
    ipv6_pool: Option<Ipv6Pool>,
}

#[async_trait::async_trait]
impl ProviderFactory for AwsSimProviders {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError> {
        let mut aws = settings.aws.provider_settings(settings);
        if aws.pool.family == IpFamily::V6 && aws.ipv6_pool.is_none() {
            aws.ipv6_pool = self.ipv6_pool.clone();
        }
        let provider = AwsProvider::new(self.client.clone(), instance.clone(), &aws)?;
        Ok(Arc::new(provider))
    }
}
