//! The two EC2 implementations the AWS scenarios run against: pinip's simulator and
//! moto (`moto_server`, started here on 127.0.0.1 with a free port, stopped on drop).
//! Both are set up through the same calls where both implement them faithfully
//! (AllocateAddress, AssociateAddress, DescribeAddresses); only instances differ
//! (moto: RunInstances in a dual-stack subnet; the simulator: its in-process knob).

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ipnet::Ipv6Net;
use pinip_providers::aws::sdk::types::{Filter, ResourceType, Tag, TagSpecification};
use pinip_providers::aws::sdk::Client;
use pinip_providers::aws::{client_for_endpoint, AwsProvider, AwsSettings, Ipv6Pool};
use pinip_providers::{InstanceRef, IpFamily, PoolSpec};
use pinip_sim::ec2::Ec2Sim;
use tokio::process::{Child, Command};

pub const ZONE: &str = "us-east-1a";
pub const REGION: &str = "us-east-1";

/// A running moto server, killed when dropped.
pub struct Moto {
    pub url: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `PINIP_MOTO_SERVER`, else `moto_server` on the PATH.
pub fn moto_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PINIP_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Moto {
    /// Start moto. A missing moto fails the test, everywhere: a scenario that returned
    /// early would be counted as passed by the test harness, which hides its output
    /// (`.ci/test`, the README's test command, installs moto first). Always `Some`; the
    /// `Option` stays for the callers' `let … else`.
    pub async fn start() -> Option<Moto> {
        let Some(binary) = moto_binary() else {
            panic!(
                "moto_server not found: `. .ci/tools/moto.sh` installs moto[server] into ~/.cache and sets \
                 PINIP_MOTO_SERVER (`.ci/test`, the README's test command, does it for every tool)"
            );
        };
        let port = free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let client = client_for_endpoint(&moto.url, REGION, 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if client.describe_addresses().send().await.is_ok() {
                return Some(moto);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto did not answer on {} within 60 s",
                moto.url
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Where the scenario runs.
pub enum Kind {
    Simulator(Ec2Sim),
    Moto { server: Moto, subnet: String },
}

pub struct Backend {
    pub kind: Kind,
    pub client: Client,
    /// The IPv6 block of the subnet instances are created in.
    pub ipv6_block: Ipv6Net,
    counter: std::sync::atomic::AtomicUsize,
}

/// An instance as created for a scenario.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: String,
    pub eni: String,
    pub private_ip: Ipv4Addr,
}

impl Node {
    pub fn reference(&self) -> InstanceRef {
        InstanceRef {
            cloud: "aws".into(),
            project: None,
            zone: ZONE.into(),
            id: self.id.clone(),
        }
    }
}

impl Backend {
    pub async fn simulator() -> Backend {
        let sim = Ec2Sim::start().await.expect("EC2 simulator starts");
        let block: Ipv6Net = "2001:db8:5::/64".parse().expect("block");
        sim.add_subnet("subnet-scenario", ZONE, Some(block));
        let client = client_for_endpoint(&sim.url(), REGION, 1);
        Backend {
            kind: Kind::Simulator(sim),
            client,
            ipv6_block: block,
            counter: Default::default(),
        }
    }

    /// moto with a dual-stack VPC and subnet (a missing moto fails the test).
    pub async fn moto() -> Option<Backend> {
        let server = Moto::start().await?;
        let client = client_for_endpoint(&server.url, REGION, 1);
        let vpc = client
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .amazon_provided_ipv6_cidr_block(true)
            .send()
            .await
            .expect("CreateVpc");
        let vpc_id = vpc
            .vpc()
            .and_then(|v| v.vpc_id())
            .expect("vpc id")
            .to_string();
        let described = client
            .describe_vpcs()
            .vpc_ids(&vpc_id)
            .send()
            .await
            .expect("DescribeVpcs");
        let vpc_block: Ipv6Net = described
            .vpcs()
            .first()
            .and_then(|v| v.ipv6_cidr_block_association_set().first())
            .and_then(|a| a.ipv6_cidr_block())
            .and_then(|b| b.parse().ok())
            .expect("the VPC has an IPv6 block");
        let block = Ipv6Net::new(vpc_block.network(), 64).expect("a /64");
        let subnet = client
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.1.0/24")
            .ipv6_cidr_block(block.to_string())
            .availability_zone(ZONE)
            .send()
            .await
            .expect("CreateSubnet");
        let subnet = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("subnet id")
            .to_string();
        Some(Backend {
            kind: Kind::Moto { server, subnet },
            client,
            ipv6_block: block,
            counter: Default::default(),
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Simulator(_) => "simulator",
            Kind::Moto { .. } => "moto",
        }
    }

    /// The endpoint (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        match &self.kind {
            Kind::Simulator(sim) => sim.url(),
            Kind::Moto { server, .. } => server.url.clone(),
        }
    }

    pub fn sim(&self) -> Option<&Ec2Sim> {
        match &self.kind {
            Kind::Simulator(sim) => Some(sim),
            Kind::Moto { .. } => None,
        }
    }

    /// A running instance with its primary ENI in the dual-stack subnet.
    pub async fn instance(&self) -> Node {
        match &self.kind {
            Kind::Simulator(sim) => {
                let n = self
                    .counter
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let info = sim.add_instance(
                    &format!("i-{:017x}", 0xa000 + n),
                    ZONE,
                    true,
                    Some("subnet-scenario"),
                );
                Node {
                    id: info.id,
                    eni: info.eni,
                    private_ip: info.private_ip,
                }
            }
            Kind::Moto { subnet, .. } => {
                let out = self
                    .client
                    .run_instances()
                    .image_id("ami-12c6146b")
                    .instance_type(pinip_providers::aws::sdk::types::InstanceType::T3Micro)
                    .min_count(1)
                    .max_count(1)
                    .subnet_id(subnet)
                    .send()
                    .await
                    .expect("RunInstances");
                let instance = out.instances().first().expect("one instance");
                let eni = instance
                    .network_interfaces()
                    .first()
                    .expect("a primary ENI");
                Node {
                    id: instance.instance_id().expect("instance id").to_string(),
                    eni: eni.network_interface_id().expect("eni id").to_string(),
                    private_ip: eni
                        .private_ip_address()
                        .and_then(|ip| ip.parse().ok())
                        .expect("private ip"),
                }
            }
        }
    }

    /// A new Elastic IP with `tags` (AllocateAddress with a TagSpecification).
    pub async fn address(&self, tags: &[(&str, &str)]) -> (String, Ipv4Addr) {
        let spec = tags.iter().fold(
            TagSpecification::builder().resource_type(ResourceType::ElasticIp),
            |spec, (k, v)| spec.tags(Tag::builder().key(*k).value(*v).build()),
        );
        let out = self
            .client
            .allocate_address()
            .domain(pinip_providers::aws::sdk::types::DomainType::Vpc)
            .tag_specifications(spec.build())
            .send()
            .await
            .expect("AllocateAddress");
        (
            out.allocation_id().expect("allocation id").to_string(),
            out.public_ip()
                .and_then(|ip| ip.parse().ok())
                .expect("public ip"),
        )
    }

    /// Someone associates an Elastic IP with an instance's ENI, outside pinip.
    pub async fn associate_by_hand(&self, allocation_id: &str, node: &Node) {
        self.client
            .associate_address()
            .allocation_id(allocation_id)
            .network_interface_id(&node.eni)
            .send()
            .await
            .expect("AssociateAddress by hand");
    }

    /// Where an Elastic IP is: (ENI, private IP, tags), empty strings as absent.
    pub async fn eip(
        &self,
        allocation_id: &str,
    ) -> (Option<String>, Option<String>, Vec<(String, String)>) {
        let out = self
            .client
            .describe_addresses()
            .allocation_ids(allocation_id)
            .send()
            .await
            .expect("DescribeAddresses");
        let a = out.addresses().first().expect("the address exists");
        let present = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(String::from);
        let mut tags: Vec<(String, String)> = a
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or("").to_string(),
                    t.value().unwrap_or("").to_string(),
                )
            })
            .collect();
        tags.sort();
        (
            present(a.network_interface_id()),
            present(a.private_ip_address()),
            tags,
        )
    }

    /// IPv6 addresses on an ENI, as DescribeNetworkInterfaces reports them.
    pub async fn eni_ipv6(&self, eni: &str) -> Vec<Ipv6Addr> {
        let out = self
            .client
            .describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("network-interface-id")
                    .values(eni)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeNetworkInterfaces");
        out.network_interfaces()
            .iter()
            .flat_map(|e| e.ipv6_addresses())
            .filter_map(|a| a.ipv6_address()?.parse().ok())
            .collect()
    }

    /// The provider of the agent on `node`, for the pool tagged `kubeip=<pool>`.
    pub fn provider(&self, node: &Node, pool: &str, order_by: Option<&str>) -> AwsProvider {
        let settings = AwsSettings {
            pool: PoolSpec {
                filter: vec![format!("Name=tag:kubeip,Values={pool}")],
                order_by: order_by.map(String::from),
                family: IpFamily::V4,
            },
            ipv6_pool: None,
        };
        AwsProvider::new(self.client.clone(), node.reference(), &settings).expect("valid settings")
    }

    /// The provider of the agent on `node`, assigning from `pool` (IPv6).
    pub fn ipv6_provider(&self, node: &Node, pool: &[Ipv6Addr]) -> AwsProvider {
        let list: Vec<String> = pool.iter().map(Ipv6Addr::to_string).collect();
        let pool: Ipv6Pool = list.join(",").parse().expect("an IPv6 pool");
        let settings = AwsSettings {
            pool: PoolSpec {
                filter: Vec::new(),
                order_by: None,
                family: IpFamily::V6,
            },
            ipv6_pool: Some(pool),
        };
        AwsProvider::new(self.client.clone(), node.reference(), &settings).expect("valid settings")
    }

    /// The n-th usable address of the subnet's IPv6 block (past AWS's reserved ones).
    pub fn ipv6(&self, n: u128) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.ipv6_block.network()) + 0x100 + n)
    }
}
