//! An OKE cluster's proxymux for workload identity (resource principals 2.2), on a
//! loopback HTTPS listener of its own ([`OciSim::serve_proxymux`]) whose certificate a
//! "cluster CA" made then signs, as the SDKs verify it with the service account's
//! `ca.crt`:
//!
//! - `POST /resourcePrincipalSessionTokens` with `Authorization: Bearer <service account
//!   token>` and `{"podKey": <base64 SubjectPublicKeyInfo DER, RSA ≥ 2048>}`;
//! - the service account token must be one the simulated cluster issued
//!   ([`OciSim::issue_service_account_token`]) and not expired, else 401; a basic
//!   (not enhanced) cluster answers 403 ([`OciSim::set_cluster_enhanced`]);
//! - the answer is base64 of `{"token": "ST$<jwt>"}`, a resource-principal session
//!   token from the same token authority as instance principals, so Core Services
//!   accepts it with the `podKey` as its `jwk`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::signature::rsa_key_of_spki;
use super::x509::rsa_components;
use super::{OciSim, Shared};

/// The simulated cluster's side of workload identity.
#[derive(Default)]
pub struct Cluster {
    /// Service account tokens issued: token → (namespace, name, exp).
    pub tokens: BTreeMap<String, (String, String, i64)>,
    /// A basic cluster has no workload identity (403).
    pub basic: bool,
}

/// The proxymux's HTTPS endpoint.
#[derive(Clone, Debug)]
pub struct ProxymuxEndpoint {
    /// `https://127.0.0.1:PORT`: what `OCI_PROXYMUX_ENDPOINT` takes.
    pub url: String,
    pub port: u16,
    /// The cluster CA (PEM), what `OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH` names.
    pub ca_pem: String,
}

impl OciSim {
    /// Serve the proxymux on another loopback port (HTTPS, a CA made now) until
    /// [`OciSim::shutdown`].
    pub async fn serve_proxymux(&self) -> anyhow::Result<ProxymuxEndpoint> {
        let serving = crate::https::serving("pinip-sim OKE cluster CA", "proxymux")?;
        let app = axum::Router::new()
            .route(
                "/resourcePrincipalSessionTokens",
                axum::routing::post(exchange),
            )
            .with_state(self.shared.clone());
        let addr = crate::https::serve(
            app,
            serving.config,
            self.shared.shutdown.clone(),
            "the OCI proxymux",
        )
        .await?;
        Ok(ProxymuxEndpoint {
            url: format!("https://{addr}"),
            port: addr.port(),
            ca_pem: serving.ca_pem,
        })
    }

    /// A service account token of the simulated cluster (a JWT, valid for `lifetime`),
    /// as the kubelet projects into a pod.
    pub fn issue_service_account_token(
        &self,
        namespace: &str,
        name: &str,
        lifetime: Duration,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let exp = now + lifetime.as_secs() as i64;
        let mut cluster = super::lock(&self.shared.cluster);
        let claims = json!({
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "aud": ["api"],
            "iat": now,
            "exp": exp,
            "jti": cluster.tokens.len() + 1,
        });
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"sim"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(b"not-checked-here")
        );
        cluster
            .tokens
            .insert(token.clone(), (namespace.into(), name.into(), exp));
        token
    }

    /// An enhanced cluster (the default) has workload identity; a basic one answers 403.
    pub fn set_cluster_enhanced(&self, enhanced: bool) {
        super::lock(&self.shared.cluster).basic = !enhanced;
    }
}

/// `POST /resourcePrincipalSessionTokens`.
async fn exchange(
    AxumState(sh): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sh.count(None);
    sh.count(Some("ResourcePrincipalSessionToken"));
    match answer(&sh, &headers, &body) {
        Ok(token) => {
            let document = json!({ "token": format!("ST${token}") }).to_string();
            (StatusCode::OK, STANDARD.encode(document)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn answer(sh: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::not_authenticated("A service account token is required."))?;
    let (namespace, name) = {
        let cluster = super::lock(&sh.cluster);
        if cluster.basic {
            return Err(ApiError::new(
                403,
                "NotAuthorized",
                "Workload identity needs an enhanced cluster.",
            ));
        }
        match cluster.tokens.get(bearer.trim()) {
            Some((ns, n, exp)) if *exp > now => (ns.clone(), n.clone()),
            Some(_) => {
                return Err(ApiError::not_authenticated(
                    "The service account token has expired.",
                ))
            }
            None => {
                return Err(ApiError::not_authenticated(
                    "The service account token was not issued by this cluster.",
                ))
            }
        }
    };
    let request: Value = serde_json::from_slice(body).map_err(ApiError::cannot_parse)?;
    let pod_key = request["podKey"]
        .as_str()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("podKey"))?;
    let spki = STANDARD
        .decode(pod_key)
        .map_err(|_| ApiError::invalid_parameter("podKey is not base64 DER."))?;
    let rsa =
        rsa_key_of_spki(&spki).map_err(|e| ApiError::invalid_parameter(format!("podKey: {e}.")))?;
    let (n, e) =
        rsa_components(&rsa).map_err(|e| ApiError::invalid_parameter(format!("podKey: {e}.")))?;
    if n.len() < 256 {
        return Err(ApiError::invalid_parameter(
            "podKey must be an RSA key of 2048 bits or more.",
        ));
    }
    let (tenancy, compartment) = {
        let state = sh.state();
        let compartment = state
            .compartments
            .iter()
            .find(|c| **c != state.tenancy)
            .cloned()
            .unwrap_or_else(|| state.tenancy.clone());
        (state.tenancy.clone(), compartment)
    };
    let jwk = json!({
        "kid": format!("{namespace}-{name}-pod"),
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&n),
        "e": URL_SAFE_NO_PAD.encode(&e),
    });
    let claims = json!({
        "sub": format!("ocid1.workload.oc1..{namespace}.{name}"),
        "iss": "authService.oracle.com",
        "aud": "oci",
        "ptype": "resource",
        "res_type": "workload",
        "res_tenant": tenancy,
        "res_compartment": compartment,
        "sa_namespace": namespace,
        "sa_name": name,
        "jwk": jwk.to_string(),
    });
    super::lock(&sh.principals).issue(claims, now)
}
