//! The instance metadata service (IMDS v2) of the simulated instances, on the
//! simulator's listener: instance `<ocid>`'s is at `<url>/imds/<ocid>/opc/v2`
//! ([`OciSim::metadata_base_url`], what `OCI_METADATA_BASE_URL` takes), where OCI's is
//! `http://169.254.169.254/opc/v2` on every instance.
//!
//! - `identity/cert.pem`, `identity/key.pem`, `identity/intermediate.pem`: the instance's
//!   leaf certificate, its private key and the intermediate ([`super::identity`]);
//! - `instance/`: a JSON document (`id`, `compartmentId`, `region` as the short key,
//!   `canonicalRegionName`, `availabilityDomain`, `displayName`, `tenantId`), and each of
//!   its fields as `instance/<field>` (plain text);
//! - every request needs `Authorization: Bearer Oracle` (v2), else 401; an unknown or
//!   terminated instance's is 404; [`OciSim::set_metadata_down`] makes it answer 503.

use std::sync::Arc;

use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::identity::TEST_INSTANCE_KEY_PEM;
use super::{OciSim, Shared};

/// `GET /imds/{instance}/opc/v2/{*path}`.
pub async fn serve(
    AxumState(sh): AxumState<Arc<Shared>>,
    Path((instance, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sh.count(None);
    sh.count(Some("InstanceMetadata"));
    if super::lock(&sh.principals).metadata_down {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response();
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if bearer != Some("Bearer Oracle") {
        return (
            StatusCode::UNAUTHORIZED,
            "Authorization: Bearer Oracle is required (instance metadata service v2)\n",
        )
            .into_response();
    }
    let document = {
        let state = sh.state();
        match state.instances.get(&instance).filter(|i| !i.terminated) {
            Some(i) => json!({
                "id": i.id,
                "displayName": i.display_name,
                "compartmentId": i.compartment,
                "availabilityDomain": i.availability_domain,
                "region": state.region_key,
                "canonicalRegionName": state.region,
                "tenantId": state.tenancy,
            }),
            None => return (StatusCode::NOT_FOUND, "Not Found\n").into_response(),
        }
    };
    let text = |s: &str| (StatusCode::OK, s.to_string()).into_response();
    match path.trim_end_matches('/') {
        "identity/cert.pem" => {
            let issued = super::lock(&sh.principals).pki.leaf_for(
                &instance,
                document["compartmentId"].as_str().unwrap_or_default(),
                document["tenantId"].as_str().unwrap_or_default(),
            );
            match issued {
                Ok(pem) => text(&pem),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
            }
        }
        "identity/key.pem" => text(TEST_INSTANCE_KEY_PEM),
        "identity/intermediate.pem" => text(super::lock(&sh.principals).pki.intermediate_pem()),
        "instance" => axum::Json(document).into_response(),
        other => match other.strip_prefix("instance/").map(|f| &document[f]) {
            Some(Value::String(s)) => text(s),
            _ => (StatusCode::NOT_FOUND, "Not Found\n").into_response(),
        },
    }
}

impl OciSim {
    /// The metadata service of `instance`, as `OCI_METADATA_BASE_URL` takes it.
    pub fn metadata_base_url(&self, instance: &str) -> String {
        format!("{}/imds/{instance}/opc/v2", self.url())
    }

    /// The auth service's federation endpoint, as `OCI_FEDERATION_ENDPOINT` takes it.
    pub fn federation_endpoint(&self) -> String {
        format!("{}/v1/x509", self.url())
    }

    /// While `down`, every metadata service answers 503.
    pub fn set_metadata_down(&self, down: bool) {
        super::lock(&self.shared.principals).metadata_down = down;
    }

    /// How long the session tokens issued from now on last.
    pub fn set_session_token_lifetime(&self, lifetime: std::time::Duration) {
        super::lock(&self.shared.principals).lifetime = lifetime;
    }

    /// Every session token issued so far is refused as expired from now on (as if their
    /// `exp` had passed).
    pub fn expire_session_tokens(&self) {
        let mut principals = super::lock(&self.shared.principals);
        principals.expired_through = principals.issued;
    }

    /// Session tokens issued so far.
    pub fn session_tokens_issued(&self) -> u64 {
        super::lock(&self.shared.principals).issued
    }

    /// New instance certificates at the next request (a rotation).
    pub fn rotate_instance_certificates(&self) {
        super::lock(&self.shared.principals).pki.rotate();
    }
}
