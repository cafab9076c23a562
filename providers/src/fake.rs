//! An in-memory cloud that behaves like the real ones where pinip's safety depends on
//! it: attach refuses an address held by another instance, detach of a missing
//! attachment succeeds, terminating an instance frees its addresses but leaves the
//! ownership tags behind. It counts and logs every call, injects latency and
//! failures on request, and records every invariant breach it sees in `violations`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::filter::{parse_shorthand, value_matches, ShorthandFilter};
use crate::order::OrderBy;
use crate::{
    ErrorClass, Instance, InstanceRef, IpFamily, Ownership, PoolAddress, PoolPart, PoolRead,
    PoolSpec, Provider, ProviderError, PART_FILTER,
};

use crate::{OWNER_CLUSTER_TAG, OWNER_INSTANCE_TAG, OWNER_NODE_TAG};

/// Operation names, as they appear in the call log and counters.
pub mod op {
    pub const DESCRIBE_INSTANCE: &str = "DescribeInstance";
    pub const LIST_POOL: &str = "ListPool";
    pub const ATTACH: &str = "Attach";
    pub const DETACH: &str = "Detach";
    pub const ALL: [&str; 4] = [DESCRIBE_INSTANCE, LIST_POOL, ATTACH, DETACH];
}

/// Random faults applied to every call (chaos runs); reproducible from `seed`.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub latency: Duration,
    /// Probability that a call fails with a transient error.
    pub error_rate: f64,
    /// Probability that a call is throttled.
    pub throttle_rate: f64,
    pub seed: u64,
}

/// One entry of the call log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    /// Instance or address the call was about.
    pub target: String,
    pub outcome: Result<(), ErrorClass>,
}

#[derive(Clone, Debug)]
struct FakeAddress {
    ip: IpAddr,
    tags: Arc<BTreeMap<String, String>>,
    attached_to: Option<String>,
}

#[derive(Clone, Debug)]
struct FakeInstance {
    zone: String,
    /// A node pinip manages; anything else must never lose an address to pinip.
    managed: bool,
}

#[derive(Default)]
struct State {
    addresses: BTreeMap<String, FakeAddress>,
    instances: BTreeMap<String, FakeInstance>,
    calls: Vec<Call>,
    scripted: Vec<(String, ErrorClass)>,
    denied: BTreeSet<String>,
    hung_attach: BTreeSet<String>,
    faults: Faults,
    /// Attach moves an address held elsewhere instead of refusing (tests the claim layer alone).
    permissive: bool,
    rng: u64,
    violations: Vec<String>,
}

/// The shared cloud: hand each agent a [`FakeProvider`] onto it with [`FakeCloud::provider`].
#[derive(Default)]
pub struct FakeCloud {
    state: Mutex<State>,
}

/// What the fake holds for one address (for tests and reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressView {
    pub id: String,
    pub ip: IpAddr,
    pub attached_to: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl FakeCloud {
    pub fn new() -> Arc<FakeCloud> {
        Arc::new(FakeCloud::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a test bug; keep serving the state anyway.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_address(&self, id: &str, ip: IpAddr, tags: &[(&str, &str)]) {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.lock().addresses.insert(
            id.to_string(),
            FakeAddress {
                ip,
                tags: Arc::new(tags),
                attached_to: None,
            },
        );
    }

    pub fn add_instance(&self, id: &str, zone: &str, managed: bool) {
        self.lock().instances.insert(
            id.to_string(),
            FakeInstance {
                zone: zone.to_string(),
                managed,
            },
        );
    }

    /// The instance is terminated: like AWS and GCP, its addresses are detached,
    /// but the ownership tags stay (finding those is the sweep's job).
    pub fn terminate_instance(&self, id: &str) {
        let mut state = self.lock();
        state.instances.remove(id);
        for address in state.addresses.values_mut() {
            if address.attached_to.as_deref() == Some(id) {
                address.attached_to = None;
            }
        }
    }

    /// Someone outside pinip attaches an address (e.g. to an instance pinip does not manage).
    pub fn attach_by_hand(&self, address_id: &str, instance_id: &str) {
        if let Some(address) = self.lock().addresses.get_mut(address_id) {
            address.attached_to = Some(instance_id.to_string());
        }
    }

    /// Someone outside pinip detaches an address.
    pub fn detach_by_hand(&self, address_id: &str) {
        if let Some(address) = self.lock().addresses.get_mut(address_id) {
            address.attached_to = None;
        }
    }

    /// The next call of `operation` fails with `class` (queued; one failure per call).
    pub fn fail_next(&self, operation: &str, class: ErrorClass) {
        self.lock().scripted.push((operation.to_string(), class));
    }

    /// Every call of `operation` fails with PermissionDenied until [`FakeCloud::allow`].
    pub fn deny(&self, operation: &str) {
        self.lock().denied.insert(operation.to_string());
    }

    pub fn allow(&self, operation: &str) {
        self.lock().denied.remove(operation);
    }

    /// Attach calls for this instance never return (simulates a crash mid-attach when the
    /// agent task is then aborted).
    pub fn hang_attach(&self, instance_id: &str) {
        self.lock().hung_attach.insert(instance_id.to_string());
    }

    /// Make attach move an address that another instance holds, like AWS with
    /// `AllowReassociation=true` or OCI's `UpdatePublicIp`, recording each such move as a
    /// violation. With the cloud's own guard gone, only pinip's claims keep addresses apart.
    /// Undo every [`FakeCloud::hang_attach`].
    pub fn unhang_all(&self) {
        self.lock().hung_attach.clear();
    }

    /// Undo [`FakeCloud::hang_attach`] for later calls.
    pub fn unhang_attach(&self, instance_id: &str) {
        self.lock().hung_attach.remove(instance_id);
    }

    pub fn set_permissive(&self, permissive: bool) {
        self.lock().permissive = permissive;
    }

    /// Change only the random failure rates (chaos bursts), keeping latency and the RNG.
    pub fn set_failure_rates(&self, error_rate: f64, throttle_rate: f64) {
        let mut state = self.lock();
        state.faults.error_rate = error_rate;
        state.faults.throttle_rate = throttle_rate;
    }

    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.lock();
        state.rng = faults.seed ^ 0x9E37_79B9_7F4A_7C15;
        state.faults = faults;
    }

    pub fn addresses(&self) -> Vec<AddressView> {
        self.lock()
            .addresses
            .iter()
            .map(|(id, a)| AddressView {
                id: id.clone(),
                ip: a.ip,
                attached_to: a.attached_to.clone(),
                tags: (*a.tags).clone(),
            })
            .collect()
    }

    /// Addresses currently attached to `instance_id`.
    /// The addresses of every instance that holds one, in one look.
    pub fn attachments(&self) -> BTreeMap<String, Vec<IpAddr>> {
        let mut out: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for a in self.lock().addresses.values() {
            if let Some(instance) = &a.attached_to {
                out.entry(instance.clone()).or_default().push(a.ip);
            }
        }
        out
    }

    pub fn attached_to(&self, instance_id: &str) -> Vec<IpAddr> {
        self.lock()
            .addresses
            .values()
            .filter(|a| a.attached_to.as_deref() == Some(instance_id))
            .map(|a| a.ip)
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Calls per operation, every operation listed (zero included).
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        let state = self.lock();
        let mut counts: BTreeMap<String, u64> =
            op::ALL.iter().map(|o| (o.to_string(), 0)).collect();
        for call in &state.calls {
            *counts.entry(call.operation.to_string()).or_default() += 1;
        }
        counts
    }

    /// Calls that change cloud state (attach, detach).
    pub fn write_calls(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == op::ATTACH || c.operation == op::DETACH)
            .count()
    }

    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// A provider handle for one agent, with that agent's pool settings.
    pub fn provider(self: &Arc<Self>, spec: &PoolSpec) -> Result<FakeProvider, ProviderError> {
        let filters = parse_shorthand(&spec.filter)
            .map_err(|e| ProviderError::invalid_input("ParseFilter", e.to_string()))?;
        for f in &filters {
            let known = f.name.starts_with("tag:")
                || matches!(f.name.as_str(), "tag-key" | "public-ip" | "allocation-id");
            if !known {
                return Err(ProviderError::invalid_input(
                    "ParseFilter",
                    format!(
                        "FILTER name {:?} is not supported; use tag:<key>, tag-key, public-ip or allocation-id",
                        f.name
                    ),
                ));
            }
        }
        let order = match spec.order_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                OrderBy::parse(text)
                    .map_err(|e| ProviderError::invalid_input("ParseOrderBy", e.to_string()))?,
            ),
        };
        Ok(FakeProvider {
            cloud: Arc::clone(self),
            filters,
            order,
            spec: spec.clone(),
        })
    }

    /// Common prologue of every call: latency, then scripted, denied and random failures.
    async fn enter(&self, operation: &'static str, target: &str) -> Result<(), ProviderError> {
        let latency = self.lock().faults.latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut state = self.lock();
        let failure = if let Some(pos) = state.scripted.iter().position(|(o, _)| o == operation) {
            Some(state.scripted.remove(pos).1)
        } else if state.denied.contains(operation) {
            Some(ErrorClass::PermissionDenied {
                action: format!("fake:{operation}"),
            })
        } else {
            let (error_rate, throttle_rate) = (state.faults.error_rate, state.faults.throttle_rate);
            let roll = next_unit(&mut state.rng);
            if roll < error_rate {
                Some(ErrorClass::Transient)
            } else if roll < error_rate + throttle_rate {
                Some(ErrorClass::Throttled)
            } else {
                None
            }
        };
        match failure {
            None => Ok(()),
            Some(class) => {
                state.calls.push(Call {
                    operation,
                    target: target.to_string(),
                    outcome: Err(class.clone()),
                });
                Err(ProviderError::new(class, operation, "injected failure"))
            }
        }
    }

    fn record(
        state: &mut State,
        operation: &'static str,
        target: &str,
        outcome: &Result<(), ProviderError>,
    ) {
        state.calls.push(Call {
            operation,
            target: target.to_string(),
            outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.class.clone()),
        });
    }
}

/// splitmix64 → [0, 1): small, seedable, no dependency.
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One agent's view of the [`FakeCloud`].
pub struct FakeProvider {
    cloud: Arc<FakeCloud>,
    filters: Vec<ShorthandFilter>,
    order: Option<OrderBy>,
    spec: PoolSpec,
}

impl FakeProvider {
    /// The pool's addresses, narrowed by `extra` (a part) too, as one `ListPool` call.
    async fn list_where(
        &self,
        extra: Option<&ShorthandFilter>,
    ) -> Result<Vec<PoolAddress>, ProviderError> {
        self.cloud.enter(op::LIST_POOL, "pool").await?;
        let mut state = self.cloud.lock();
        // Sized once: grown by doubling, a thousand agents' listings were reallocations
        // and page faults.
        let mut pool = Vec::with_capacity(state.addresses.len());
        pool.extend(
            state
                .addresses
                .iter()
                .filter(|(id, a)| self.in_pool(id, a, extra))
                .map(|(id, a)| PoolAddress {
                    id: id.clone(),
                    ip: a.ip,
                    attached_to: a.attached_to.clone(),
                    owner: ownership_of(&a.tags),
                    labels: a.tags.clone(),
                }),
        );
        if let Some(order) = &self.order {
            order.sort(&mut pool);
        }
        FakeCloud::record(&mut state, op::LIST_POOL, "pool", &Ok(()));
        Ok(pool)
    }

    fn in_pool(&self, id: &str, address: &FakeAddress, extra: Option<&ShorthandFilter>) -> bool {
        self.spec.family.matches(&address.ip)
            && self.filters.iter().chain(extra).all(|f| {
                let field: Option<std::borrow::Cow<'_, str>> =
                    if let Some(key) = f.name.strip_prefix("tag:") {
                        address.tags.get(key).map(|v| v.as_str().into())
                    } else {
                        match f.name.as_str() {
                            "public-ip" => Some(address.ip.to_string().into()),
                            "allocation-id" => Some(id.into()),
                            // tag-key: any tag key matches one of the values
                            _ => {
                                return address
                                    .tags
                                    .keys()
                                    .any(|k| f.values.iter().any(|v| value_matches(v, k)))
                            }
                        }
                    };
                field.is_some_and(|value| f.values.iter().any(|p| value_matches(p, &value)))
            })
    }
}

fn ownership_of(tags: &BTreeMap<String, String>) -> Option<Ownership> {
    Ownership::from_tags(tags)
}

#[async_trait]
impl Provider for FakeProvider {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        self.cloud
            .enter(op::DESCRIBE_INSTANCE, &instance.id)
            .await?;
        let mut state = self.cloud.lock();
        let result = match state.instances.get(&instance.id) {
            Some(found) if found.zone == instance.zone => Ok(()),
            Some(found) => Err(ProviderError::new(
                ErrorClass::NotFound,
                op::DESCRIBE_INSTANCE,
                format!(
                    "instance {} is in zone {}, not {}",
                    instance.id, found.zone, instance.zone
                ),
            )),
            None => Err(ProviderError::new(
                ErrorClass::NotFound,
                op::DESCRIBE_INSTANCE,
                format!("instance {} does not exist", instance.id),
            )),
        };
        FakeCloud::record(&mut state, op::DESCRIBE_INSTANCE, &instance.id, &result);
        // Every address of this cloud is reserved: the ones on the instance, as EC2's
        // description names its Elastic IPs.
        let reserved_ips = state
            .addresses
            .values()
            .filter(|a| a.attached_to.as_deref() == Some(instance.id.as_str()))
            .map(|a| a.ip)
            .collect();
        result.map(|()| Instance {
            reference: instance.clone(),
            nic: Some(format!("nic-{}", instance.id)),
            private_ip: None,
            reserved_ips,
        })
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        self.list_where(None).await
    }

    fn reads_pool_parts(&self) -> bool {
        self.spec.family == IpFamily::V4
    }

    /// The addresses whose last digit `part` chose, selected as EC2 selects them: one
    /// more `public-ip` wildcard filter (`aws::pool_part`).
    async fn list_pool_part(&self, part: &PoolPart) -> Result<PoolRead, ProviderError> {
        let names = self.filters.iter().map(|f| f.name.as_str());
        match part
            .public_ip_patterns(names)
            .filter(|_| self.reads_pool_parts())
        {
            Some(values) => {
                let part = ShorthandFilter {
                    name: PART_FILTER.into(),
                    values,
                };
                self.list_where(Some(&part)).await.map(PoolRead::Part)
            }
            None => self.list_pool().await.map(PoolRead::Whole),
        }
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let target = format!("{}->{}", address.ip, instance.reference.id);
        self.cloud.enter(op::ATTACH, &target).await?;
        if self
            .cloud
            .lock()
            .hung_attach
            .contains(&instance.reference.id)
        {
            std::future::pending::<()>().await;
        }
        let mut guard = self.cloud.lock();
        let state = &mut *guard;
        let instance_id = &instance.reference.id;
        let result = if !state.instances.contains_key(instance_id) {
            Err(ProviderError::new(
                ErrorClass::NotFound,
                op::ATTACH,
                format!("instance {instance_id} does not exist"),
            ))
        } else {
            match state.addresses.get(&address.id) {
                None => Err(ProviderError::new(
                    ErrorClass::NotFound,
                    op::ATTACH,
                    format!("address {} does not exist", address.id),
                )),
                Some(a)
                    if a.attached_to
                        .as_deref()
                        .is_some_and(|holder| holder != instance_id)
                        && state.permissive =>
                {
                    let holder = a.attached_to.clone().unwrap_or_default();
                    state.violations.push(format!(
                        "address {} taken from instance {holder} by an attach for {instance_id}",
                        a.ip
                    ));
                    Ok(())
                }
                Some(a)
                    if a.attached_to
                        .as_deref()
                        .is_some_and(|holder| holder != instance_id) =>
                {
                    Err(ProviderError::new(
                        ErrorClass::Conflict,
                        op::ATTACH,
                        format!("address {} is attached to another instance", a.ip),
                    )
                    .with_code("Resource.AlreadyAssociated"))
                }
                Some(_) => Ok(()),
            }
        };
        if result.is_ok() {
            let others: Vec<IpAddr> = state
                .addresses
                .iter()
                .filter(|(id, a)| {
                    *id != &address.id
                        && a.attached_to.as_deref() == Some(instance_id)
                        && self.in_pool(id, a, None)
                })
                .map(|(_, a)| a.ip)
                .collect();
            if !others.is_empty() {
                state.violations.push(format!(
                    "instance {instance_id} given pool address {} while it already holds {others:?}",
                    address.ip
                ));
            }
            if let Some(a) = state.addresses.get_mut(&address.id) {
                a.attached_to = Some(instance_id.clone());
                let tags = Arc::make_mut(&mut a.tags);
                tags.insert(OWNER_CLUSTER_TAG.into(), owner.cluster.clone());
                tags.insert(OWNER_NODE_TAG.into(), owner.node.clone());
                tags.insert(OWNER_INSTANCE_TAG.into(), owner.instance.clone());
            }
        }
        FakeCloud::record(state, op::ATTACH, &target, &result);
        result
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        let target = format!("{}-/->{}", address.ip, instance.id);
        self.cloud.enter(op::DETACH, &target).await?;
        let mut guard = self.cloud.lock();
        let state = &mut *guard;
        let managed = state.instances.get(&instance.id).is_none_or(|i| i.managed);
        if let Some(a) = state.addresses.get_mut(&address.id) {
            if a.attached_to.as_deref() == Some(instance.id.as_str()) {
                a.attached_to = None;
                if !managed {
                    state.violations.push(format!(
                        "address {} detached from instance {} which pinip does not manage",
                        address.ip, instance.id
                    ));
                }
            }
            let owned_by_target = a
                .tags
                .get(OWNER_INSTANCE_TAG)
                .is_some_and(|i| i == &instance.id);
            if owned_by_target && a.attached_to.is_none() {
                let tags = Arc::make_mut(&mut a.tags);
                for key in [OWNER_CLUSTER_TAG, OWNER_NODE_TAG, OWNER_INSTANCE_TAG] {
                    tags.remove(key);
                }
            }
        }
        FakeCloud::record(state, op::DETACH, &target, &Ok(()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IpFamily;

    fn setup() -> (Arc<FakeCloud>, FakeProvider, Instance) {
        let cloud = FakeCloud::new();
        cloud.add_address(
            "eip-1",
            "192.0.2.1".parse().unwrap(),
            &[("kubeip", "reserved")],
        );
        cloud.add_address(
            "eip-2",
            "192.0.2.2".parse().unwrap(),
            &[("kubeip", "reserved")],
        );
        cloud.add_address(
            "eip-x",
            "192.0.2.99".parse().unwrap(),
            &[("kubeip", "other")],
        );
        cloud.add_address(
            "eip-6",
            "2001:db8::1".parse().unwrap(),
            &[("kubeip", "reserved")],
        );
        cloud.add_instance("i-1", "zone-a", true);
        cloud.add_instance("i-2", "zone-a", true);
        let spec = PoolSpec {
            filter: vec!["Name=tag:kubeip,Values=reserved".into()],
            order_by: None,
            family: IpFamily::V4,
        };
        let provider = cloud.provider(&spec).unwrap();
        let instance = Instance {
            reference: InstanceRef {
                cloud: "fake".into(),
                project: None,
                zone: "zone-a".into(),
                id: "i-1".into(),
            },
            nic: None,
            private_ip: None,
            reserved_ips: Vec::new(),
        };
        (cloud, provider, instance)
    }

    fn owner(node: &str, instance: &str) -> Ownership {
        Ownership {
            cluster: "c".into(),
            node: node.into(),
            instance: instance.into(),
        }
    }

    #[tokio::test]
    async fn pool_honours_filter_and_family() {
        let (_, provider, _) = setup();
        let pool = provider.list_pool().await.unwrap();
        let ids: Vec<_> = pool.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["eip-1", "eip-2"]);
    }

    #[tokio::test]
    async fn attach_is_idempotent_and_refuses_other_instances() {
        let (cloud, provider, me) = setup();
        let pool = provider.list_pool().await.unwrap();
        provider
            .attach(&pool[0], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        provider
            .attach(&pool[0], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        let mut other = me.clone();
        other.reference.id = "i-2".into();
        let err = provider
            .attach(&pool[0], &other, &owner("n2", "i-2"))
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::Conflict);
        assert_eq!(
            cloud.attached_to("i-1"),
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        let listed = provider.list_pool().await.unwrap();
        assert_eq!(listed[0].owner, Some(owner("n1", "i-1")));
        assert!(cloud.violations().is_empty());
    }

    #[tokio::test]
    async fn a_permissive_cloud_moves_addresses_and_records_it() {
        let (cloud, provider, me) = setup();
        cloud.set_permissive(true);
        let pool = provider.list_pool().await.unwrap();
        cloud.attach_by_hand(&pool[0].id, "i-2");
        provider
            .attach(&pool[0], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        assert_eq!(cloud.attached_to("i-1").len(), 1);
        assert_eq!(cloud.violations().len(), 1);
    }

    #[tokio::test]
    async fn detach_is_idempotent_and_clears_ownership() {
        let (cloud, provider, me) = setup();
        let pool = provider.list_pool().await.unwrap();
        provider
            .attach(&pool[0], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        provider.detach(&pool[0], &me.reference).await.unwrap();
        provider.detach(&pool[0], &me.reference).await.unwrap();
        let listed = provider.list_pool().await.unwrap();
        assert!(listed[0].is_free());
        assert_eq!(listed[0].owner, None);
        assert_eq!(cloud.write_calls(), 3);
    }

    #[tokio::test]
    async fn second_pool_address_on_one_instance_is_a_violation() {
        let (cloud, provider, me) = setup();
        let pool = provider.list_pool().await.unwrap();
        provider
            .attach(&pool[0], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        provider
            .attach(&pool[1], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        assert_eq!(cloud.violations().len(), 1);
    }

    #[tokio::test]
    async fn detaching_from_an_unmanaged_instance_is_a_violation() {
        let (cloud, provider, _) = setup();
        cloud.add_instance("i-foreign", "zone-a", false);
        cloud.attach_by_hand("eip-2", "i-foreign");
        let pool = provider.list_pool().await.unwrap();
        let foreign = InstanceRef {
            cloud: "fake".into(),
            project: None,
            zone: "zone-a".into(),
            id: "i-foreign".into(),
        };
        provider.detach(&pool[1], &foreign).await.unwrap();
        assert_eq!(cloud.violations().len(), 1);
    }

    #[tokio::test]
    async fn knobs_fail_deny_and_log() {
        let (cloud, provider, _) = setup();
        cloud.fail_next(op::LIST_POOL, ErrorClass::Throttled);
        assert_eq!(
            provider.list_pool().await.unwrap_err().class,
            ErrorClass::Throttled
        );
        assert!(provider.list_pool().await.is_ok());
        cloud.deny(op::LIST_POOL);
        let err = provider.list_pool().await.unwrap_err();
        assert!(matches!(err.class, ErrorClass::PermissionDenied { .. }));
        assert!(err.to_string().contains("grant the permission"));
        assert_eq!(cloud.call_counts()[op::LIST_POOL], 3);
    }

    #[tokio::test]
    async fn terminated_instance_frees_address_but_keeps_tags() {
        let (cloud, provider, me) = setup();
        let pool = provider.list_pool().await.unwrap();
        provider
            .attach(&pool[0], &me, &owner("n1", "i-1"))
            .await
            .unwrap();
        cloud.terminate_instance("i-1");
        let listed = provider.list_pool().await.unwrap();
        assert!(listed[0].is_free());
        assert_eq!(listed[0].owner, Some(owner("n1", "i-1")));
    }

    #[test]
    fn unsupported_filter_names_and_orders_are_refused() {
        let cloud = FakeCloud::new();
        let bad_name = PoolSpec {
            filter: vec!["Name=colour,Values=red".into()],
            ..PoolSpec::default()
        };
        assert_eq!(
            cloud.provider(&bad_name).err().unwrap().class,
            ErrorClass::InvalidInput
        );
        let bad_order = PoolSpec {
            order_by: Some("Colour".into()),
            ..PoolSpec::default()
        };
        assert!(cloud
            .provider(&bad_order)
            .err()
            .unwrap()
            .message
            .contains("Colour"));
    }
}
