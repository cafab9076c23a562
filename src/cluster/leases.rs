//! The Lease IO every writer shares (claims and the sweeper's election): the list of
//! pinip's claims, and the only two ways an existing Lease is changed, both guarded by
//! the resourceVersion that was read.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::Api;

use crate::domain::claim_record::{ClaimRecord, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Every pinip claim among these Leases (Leases pinip did not write are left out).
pub async fn list_claims(leases: &Api<Lease>) -> Result<Vec<ClaimRecord>, kube::Error> {
    let params = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    Ok(leases
        .list(&params)
        .await?
        .items
        .iter()
        .filter_map(ClaimRecord::from_lease)
        .collect())
}

/// Every write to an existing Lease: a JSON merge patch that carries the
/// resourceVersion it was made against. The API server refuses it with 409 if anyone
/// wrote the Lease since, and with 404 if it is gone: unlike a `PUT`, which on a Lease
/// *creates* a missing object even with a resourceVersion in the body, a patch never
/// resurrects a claim that a release, a leftover drop or a sweep just deleted.
pub async fn guarded_write(
    leases: &Api<Lease>,
    name: &str,
    lease: &Lease,
) -> Result<Lease, kube::Error> {
    debug_assert!(lease.metadata.resource_version.is_some());
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(lease))
        .await
}

/// Every delete of a Lease we read: preconditioned on that resourceVersion, so a Lease
/// someone wrote since (a takeover, a renewal) is never deleted by mistake.
pub async fn guarded_delete(
    leases: &Api<Lease>,
    name: &str,
    resource_version: &str,
) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: Some(resource_version.to_string()),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    leases.delete(name, &params).await.map(|_| ())
}
