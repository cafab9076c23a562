//! Principals that sign with session tokens they obtain themselves: instance principals
//! (`OCI_AUTH=instance_principal`, [`super::instance`]) and OKE workload identity
//! (`OCI_AUTH=workload_identity`, [`super::workload`]). Both end the same way: a token
//! (a JWT) and a session key made for it, every Core Services call signed with keyId
//! `ST$<token>` and that key.
//!
//! [`Principal`] keeps the current session: the token is renewed shortly before its
//! `exp` ([`super::token`]) and after a 401, never on every call; callers arriving
//! during a renewal wait for it and share its result. Nothing is contacted before the
//! first call, so a metadata service or proxymux that is down at start is a transient
//! failure the agent retries, not an exit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use tokio::sync::{Mutex, OnceCell};
use tracing::{info, warn};

use super::instance::{InstanceSettings, InstanceSource};
use super::signer::SigningKey;
use super::token::{self, SessionToken};
use super::wire::ErrorBody;
use super::workload::{WorkloadSettings, WorkloadSource};
use crate::{ErrorClass, ProviderError};

/// The wall clock tokens are judged by (tests move it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A session just obtained.
pub(crate) struct Fresh {
    pub key: SigningKey,
    pub token: SessionToken,
    /// What must not change between sessions (the instance's tenancy), if anything.
    pub identity: Option<String>,
}

struct Session {
    fresh: Fresh,
    /// When it was fetched, Unix seconds by `clock`.
    fetched: i64,
}

pub(crate) enum Source {
    Instance(InstanceSource),
    Workload(WorkloadSource),
}

pub struct Principal {
    source: Source,
    region: OnceCell<String>,
    session: Mutex<Option<Session>>,
    clock: Clock,
    exchanges: AtomicU64,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Source::Instance(_) => "instance principal",
            Source::Workload(_) => "workload identity",
        };
        f.debug_struct("Principal")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// Instance principals (checks the settings; contacts nothing).
    pub fn instance(settings: InstanceSettings) -> Result<Principal, ProviderError> {
        let region = settings.region.clone();
        Ok(Principal::with_source(
            Source::Instance(InstanceSource::new(settings)?),
            region,
        ))
    }

    /// OKE workload identity (checks the settings; contacts nothing).
    pub fn workload(settings: WorkloadSettings) -> Result<Principal, ProviderError> {
        let region = settings.region.clone();
        Ok(Principal::with_source(
            Source::Workload(WorkloadSource::new(settings)?),
            region,
        ))
    }

    fn with_source(source: Source, region: Option<String>) -> Principal {
        let cell = OnceCell::new();
        if let Some(r) = region.filter(|r| !r.trim().is_empty()) {
            let _ = cell.set(r.trim().to_string());
        }
        Principal {
            source,
            region: cell,
            session: Mutex::new(None),
            clock: Arc::new(SystemTime::now),
            exchanges: AtomicU64::new(0),
        }
    }

    /// Judge tokens by this clock instead of the system's (tests).
    pub fn with_clock(mut self, clock: Clock) -> Principal {
        self.clock = clock;
        self
    }

    /// Session tokens obtained so far.
    pub fn federations(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    /// The region: the settings', else (instance principals) the metadata service's.
    pub async fn region(&self) -> Result<String, ProviderError> {
        self.region
            .get_or_try_init(|| async {
                match &self.source {
                    Source::Instance(s) => s.region().await,
                    Source::Workload(_) => Err(ProviderError::invalid_input(
                        "configuration",
                        "the OCI region is unknown: set REGION (or OCI_RESOURCE_PRINCIPAL_REGION)",
                    )),
                }
            })
            .await
            .cloned()
    }

    /// The key to sign the next call with: the current session's, renewed first when
    /// due. Concurrent callers wait for one renewal.
    pub async fn signing_key(&self) -> Result<SigningKey, ProviderError> {
        let mut session = self.session.lock().await;
        let now = unix((self.clock)());
        if let Some(current) = session.as_ref() {
            let age = Duration::from_secs(now.saturating_sub(current.fetched).max(0) as u64);
            if !token::refresh_due(&current.fresh.token, now, age) {
                return Ok(current.fresh.key.clone());
            }
        }
        let previous = session.as_ref().and_then(|s| s.fresh.identity.clone());
        let exchanged = match &self.source {
            Source::Instance(s) => s.exchange(self, previous.as_deref()).await,
            Source::Workload(s) => s.exchange().await,
        };
        match exchanged {
            Ok(fresh) => {
                self.exchanges.fetch_add(1, Ordering::Relaxed);
                info!(expires = fresh.token.expires, "OCI session token obtained");
                let key = fresh.key.clone();
                *session = Some(Session {
                    fresh,
                    fetched: now,
                });
                Ok(key)
            }
            // Not expired yet: keep using it, and try again at the next call.
            Err(e) => match session.as_ref() {
                Some(current) if now < current.fresh.token.expires => {
                    warn!(error = %e, "could not renew the OCI session token; the current one is still valid");
                    Ok(current.fresh.key.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Core Services refused a call signed with `key_id` (401): forget that session,
    /// unless a renewal already replaced it.
    pub async fn rejected(&self, key_id: &str) {
        let mut session = self.session.lock().await;
        if session
            .as_ref()
            .is_some_and(|s| s.fresh.key.key_id() == key_id)
        {
            *session = None;
        }
    }
}

pub(crate) fn url_setting(name: &str, value: &str) -> Result<Url, ProviderError> {
    Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ProviderError::invalid_input(
                "configuration",
                format!("{name}={value:?} is not an http(s) URL"),
            )
        })
}

/// A token service's refusal as the class the agent acts on. Pure.
pub fn refused(
    operation: &'static str,
    what: &str,
    status: u16,
    body: &str,
    request_id: Option<&str>,
) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let code = Some(parsed.code.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| status.to_string());
    let mut message = format!("{what}: HTTP {status} {code}: {}", parsed.message);
    if let Some(id) = request_id {
        message.push_str(&format!(" (opc-request-id {id})"));
    }
    let class = match status {
        429 => ErrorClass::Throttled,
        408 | 500..=599 => ErrorClass::Transient,
        400..=499 => ErrorClass::PermissionDenied {
            action: match operation {
                "X509Federation" => "an instance principal: this instance must be an OCI instance of the tenancy, its dynamic group matched by deploy/iam/oci-dynamic-group.txt".into(),
                _ => "a workload identity: pinip's service account must be allowed by the policy (deploy/iam/oci-workload-identity.txt) on an enhanced OKE cluster".into(),
            },
        },
        _ => ErrorClass::Permanent,
    };
    ProviderError::new(class, operation, message).with_code(code)
}

pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An error and its causes on one line (reqwest hides the cause behind "error sending").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified() {
        let body = r#"{"code":"NotAuthenticated","message":"bad cert"}"#;
        let e = refused("X509Federation", "refused", 401, body, Some("R1"));
        assert!(
            matches!(&e.class, ErrorClass::PermissionDenied { action } if action.contains("dynamic group"))
        );
        assert!(
            e.message.contains("bad cert") && e.message.contains("R1"),
            "{e}"
        );
        assert_eq!(e.code.as_deref(), Some("NotAuthenticated"));
        let e = refused("ResourcePrincipalSessionToken", "refused", 403, "", None);
        assert!(
            matches!(e.class, ErrorClass::PermissionDenied { action } if action.contains("service account"))
        );
        assert_eq!(
            refused("X", "r", 429, "", None).class,
            ErrorClass::Throttled
        );
        assert_eq!(
            refused("X", "r", 503, "<html>", None).class,
            ErrorClass::Transient
        );
        assert_eq!(
            refused("X", "r", 302, "", None).class,
            ErrorClass::Permanent
        );
    }
}
