//! An EC2 Query-API simulator on loopback: form-encoded POSTs, XML answers with EC2's
//! namespace, EC2's error codes and HTTP statuses. SigV4 is accepted, not verified.
//!
//! It serves what pinip calls (`DescribeAddresses`, `DescribeInstances`,
//! `DescribeNetworkInterfaces`, `DescribeSubnets`, `AssociateAddress`,
//! `DisassociateAddress`, `CreateTags`, `DeleteTags`, `AssignIpv6Addresses`,
//! `UnassignIpv6Addresses`) plus `AllocateAddress` and `ReleaseAddress` for tests, with
//! AWS's behaviour where moto differs (see [`model`]). Tests drive it in-process:
//! instances, addresses, hand-made changes, injected latency/throttling/failures,
//! EC2's published rate limits ([`Ec2RateLimits`]), per-action counters, and the
//! invariant breaches seen.

mod actions;
mod error;
mod faults;
mod filters;
mod limits;
mod model;
mod query;
mod xml;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ipnet::Ipv6Net;
use tokio_util::sync::CancellationToken;

pub use actions::{ACTIONS, WRITES};
pub use error::{status_of, Ec2Error};
pub use faults::Ec2Faults;
pub use filters::value_matches;
pub use limits::{is_unfiltered, Bucket, Ec2RateLimits, TokenBucket, UNFILTERED_ACTIONS};
pub use model::{HeldAddress, InstanceInfo};
pub use query::{FilterParam, Params};

use faults::FaultState;
use limits::LimitState;
use model::{Actor, Region};

struct Shared {
    region: Mutex<Region>,
    faults: Mutex<FaultState>,
    limits: Mutex<LimitState>,
    requests: AtomicU64,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the simulator down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle to a running EC2 simulator. Cheap to clone.
#[derive(Clone)]
pub struct Ec2Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Ec2Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Sim").field("addr", &self.addr).finish()
    }
}

impl Ec2Sim {
    /// Binds 127.0.0.1 on a free port and serves until [`Ec2Sim::shutdown`].
    pub async fn start() -> anyhow::Result<Ec2Sim> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            region: Mutex::new(Region::default()),
            faults: Mutex::new(FaultState::default()),
            limits: Mutex::new(LimitState::default()),
            requests: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "EC2 simulator stopped serving");
            }
        });
        tracing::debug!(%addr, "EC2 simulator listening");
        Ok(Ec2Sim { shared, addr })
    }

    /// `http://127.0.0.1:PORT` (what `AWS_ENDPOINT_URL` should be).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    fn region(&self) -> MutexGuard<'_, Region> {
        lock(&self.shared.region)
    }

    fn fault_state(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.shared.faults)
    }

    /// A subnet with an optional IPv6 block.
    pub fn add_subnet(&self, id: &str, zone: &str, ipv6: Option<Ipv6Net>) {
        self.region().add_subnet(id, zone, ipv6);
    }

    /// A running instance with one ENI (device index 0) and a private IP, in `subnet`
    /// (or the zone's default subnet, which has an IPv6 /64 of 2001:db8::/32).
    pub fn add_instance(
        &self,
        id: &str,
        zone: &str,
        managed: bool,
        subnet: Option<&str>,
    ) -> InstanceInfo {
        self.region().add_instance(id, zone, managed, subnet)
    }

    /// A secondary private IP on an ENI.
    pub fn add_private_ip(&self, eni: &str) -> Option<Ipv4Addr> {
        self.region().add_private_ip(eni)
    }

    /// An Elastic IP with the given allocation ID.
    pub fn add_address(&self, id: &str, ip: Ipv4Addr, tags: &[(&str, &str)]) {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.region().add_address(id, ip, tags);
    }

    /// Count `ip` as a pool IPv6 address in reports (EC2 itself has no such object).
    pub fn add_pool_ipv6(&self, ip: Ipv6Addr, tags: &[(&str, &str)]) {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.region().ipv6_pool.insert(ip, tags);
    }

    /// Someone outside pinip associates an Elastic IP with an instance's primary ENI
    /// (moving it if needed), or assigns a pool IPv6 address to it.
    pub fn attach_by_hand(&self, address: &str, instance: &str) -> Result<(), Ec2Error> {
        let mut region = self.region();
        if let Ok(ip) = address.parse::<Ipv6Addr>() {
            let eni = region
                .instances
                .get(instance)
                .and_then(|i| i.enis.first().cloned())
                .ok_or_else(|| {
                    Ec2Error::not_found("InvalidInstanceID.NotFound", "instance ID", instance)
                })?;
            return region.assign_ipv6(&eni, &[ip], 0).map(|_| ());
        }
        region
            .associate(address, Some(instance), None, None, true, Actor::Hand)
            .map(|_| ())
    }

    /// Someone outside pinip disassociates an Elastic IP (or unassigns an IPv6 address).
    pub fn detach_by_hand(&self, address: &str) {
        let mut region = self.region();
        if let Ok(ip) = address.parse::<Ipv6Addr>() {
            for eni in region.enis.values_mut() {
                eni.ipv6.retain(|a| *a != ip);
            }
            return;
        }
        if let Some(a) = region.addresses.get_mut(address) {
            a.association = None;
        }
    }

    pub fn terminate_instance(&self, id: &str) {
        self.region().terminate(id);
    }

    pub fn set_faults(&self, faults: Ec2Faults) {
        self.fault_state().set(faults);
    }

    /// Random `InternalError`/`Unavailable` and `RequestLimitExceeded` rates (chaos runs),
    /// keeping the latency and the seed's sequence.
    pub fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        self.fault_state().set_rates(error_rate, throttle_rate);
    }

    /// The next request of `action` fails with EC2 error `code` (and its HTTP status).
    pub fn fail_next(&self, action: &str, code: &str) {
        self.fault_state().fail_next(action, code);
    }

    /// Every request of `action` fails with `UnauthorizedOperation` until [`Ec2Sim::allow`].
    pub fn deny(&self, action: &str) {
        self.fault_state().deny(action);
    }

    pub fn allow(&self, action: &str) {
        self.fault_state().allow(action);
    }

    /// Requests per action (every action listed, zero included; failed requests count).
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        let counts = self.fault_state().counts.clone();
        let mut all: BTreeMap<String, u64> = ACTIONS.iter().map(|a| (a.to_string(), 0)).collect();
        all.extend(counts);
        all
    }

    /// Requests of actions that change state.
    pub fn write_calls(&self) -> u64 {
        self.fault_state()
            .counts
            .iter()
            .filter(|(a, _)| WRITES.contains(&a.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request served, including unknown actions.
    pub fn total_requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    pub fn violations(&self) -> Vec<String> {
        self.region().violations.clone()
    }

    /// Every Elastic IP and pool IPv6 address, with the instance holding it.
    pub fn addresses(&self) -> Vec<HeldAddress> {
        self.region().holdings()
    }

    /// The Elastic IPs and pool IPv6 addresses of every instance that holds one, in one
    /// look.
    pub fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        let mut out: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for a in self.addresses() {
            if let Some(instance) = a.instance {
                out.entry(instance).or_default().push(a.ip);
            }
        }
        out
    }

    /// Elastic IPs and pool IPv6 addresses on `instance`.
    pub fn attached_to(&self, instance: &str) -> Vec<IpAddr> {
        self.addresses()
            .into_iter()
            .filter(|a| a.instance.as_deref() == Some(instance))
            .map(|a| a.ip)
            .collect()
    }

    /// IPv6 addresses on an ENI.
    pub fn eni_ipv6(&self, eni: &str) -> Vec<Ipv6Addr> {
        self.region()
            .enis
            .get(eni)
            .map(|e| e.ipv6.clone())
            .unwrap_or_default()
    }

    /// Tags of an ENI.
    pub fn eni_tags(&self, eni: &str) -> BTreeMap<String, String> {
        self.region()
            .enis
            .get(eni)
            .map(|e| e.tags.clone())
            .unwrap_or_default()
    }

    /// Addresses held by more than one ENI (EC2 refuses that, so does this: 0).
    pub fn duplicates(&self) -> usize {
        self.region().ipv6_duplicates()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let number = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("00000000-0000-4000-8000-{number:012x}");
    let outcome = match Params::parse(&body) {
        Err(e) => Err(e),
        Ok(params) => match params.get("Action").map(str::to_string) {
            None => Err(Ec2Error::new(
                "MissingAction",
                "The request must contain the parameter Action",
            )),
            Some(action) => {
                let latency = lock(&shared.faults).faults.latency;
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                let limited = lock(&shared.limits).admit(&action, &params);
                let admitted = lock(&shared.faults).admit_after(&action, limited);
                admitted
                    .and_then(|()| actions::serve(&action, &params, &mut lock(&shared.region)))
                    .map(|body| (action, body))
            }
        },
    };
    match outcome {
        Ok((action, body)) => {
            xml_response(StatusCode::OK, xml::response(&action, &request_id, body))
        }
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, "EC2 simulator error");
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            xml_response(status, xml::error(&e.code, &e.message, &request_id))
        }
    }
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        body,
    )
        .into_response()
}
