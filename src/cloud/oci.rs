//! OCI-only settings. `PROJECT` is the compartment OCID of the reserved public IPs
//! (KubeIP's meaning on OCI; unset: the node's own compartment), `REGION` the region
//! (else the credentials' `region` / `OCI_REGION`). Credentials: an API key, from the
//! `OCI_TENANCY_OCID`, `OCI_USER_OCID`, `OCI_FINGERPRINT`, `OCI_PRIVATE_KEY_PATH`
//! variables or an OCI config file (`OCI_CONFIG_FILE`, profile `OCI_CONFIG_PROFILE`);
//! `OCI_CORE_ENDPOINT` overrides the Core Services endpoint (other realms, the simulator).
//!
//! `OCI_AUTH` names the authentication explicitly: `api_key` (the default) or
//! `instance_principal` (the node's certificate from the instance metadata service,
//! `OCI_METADATA_BASE_URL`, exchanged at the auth service, `OCI_FEDERATION_ENDPOINT`,
//! for session tokens) or `workload_identity` (OKE: the pod's service account token
//! exchanged at the cluster's proxymux, `https://$KUBERNETES_SERVICE_HOST:12250` or
//! `OCI_PROXYMUX_ENDPOINT`, verified with `OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH`).
//! Anything else is refused at start, before the agent contacts anything.

use std::collections::BTreeMap;

use clap::Args;
use std::sync::Arc;

use pinip_providers::oci::{
    auth_mode, from_environment, AuthMode, Credentials, InstanceSettings, Loaded, OciProvider,
    OciSettings, Principal, WorkloadSettings,
};
use pinip_providers::{InstanceRef, IpFamily, ProviderError};

use crate::cloud::settings::CloudSettings;

/// What IPV6=true gets on an OCI node.
pub const NO_IPV6: &str = "IPV6=true is not supported on OCI: OCI has no reserved public IPv6 addresses to pin (a VNIC's IPv6 addresses come from its subnet's prefix and are public on a public subnet already); unset IPV6";

#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct OciArgs {
    /// OCI: how the agent authenticates. `api_key` (default; an OCI config file or the
    /// OCI_* key variables) or `instance_principal` (the node's identity; no secret).
    /// `workload_identity` (OKE workload identity: pinip's service account; docs/oci.md).
    #[arg(long = "oci-auth", env = "OCI_AUTH")]
    pub auth: Option<String>,
    /// OCI workload identity: the cluster's proxymux. Default:
    /// `https://$KUBERNETES_SERVICE_HOST:12250`.
    #[arg(long = "oci-proxymux-endpoint", env = "OCI_PROXYMUX_ENDPOINT")]
    pub proxymux_endpoint: Option<String>,
    /// OCI workload identity: the CA of the proxymux's certificate, as the OCI SDKs read
    /// it. Default: the service account's `ca.crt`.
    #[arg(
        long = "oci-service-account-cert-path",
        env = "OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH"
    )]
    pub service_account_cert_path: Option<String>,
    /// OCI instance principals: the instance metadata service, as the OCI SDKs read it.
    /// Default: `http://169.254.169.254/opc/v2`.
    #[arg(long = "oci-metadata-base-url", env = "OCI_METADATA_BASE_URL")]
    pub metadata_base_url: Option<String>,
    /// OCI instance principals: the auth service's federation URL (the SDKs'
    /// `federation_endpoint`). Default: `https://auth.<region>.oraclecloud.com/v1/x509`.
    #[arg(long = "oci-federation-endpoint", env = "OCI_FEDERATION_ENDPOINT")]
    pub federation_endpoint: Option<String>,
    /// OCI: base URL of Core Services, e.g. `http://127.0.0.1:8090` (the API paths
    /// `/20160918/…` are appended). Default: `https://iaas.<region>.oraclecloud.com`.
    #[arg(long = "oci-core-endpoint", env = "OCI_CORE_ENDPOINT")]
    pub endpoint: Option<String>,
    /// OCI: the config file (default `~/.oci/config`).
    #[arg(long = "oci-config-file", env = "OCI_CONFIG_FILE")]
    pub config_file: Option<String>,
    /// OCI: the profile of the config file (default `DEFAULT`).
    #[arg(long = "oci-config-profile", env = "OCI_CONFIG_PROFILE")]
    pub config_profile: Option<String>,
    /// OCI API key without a config file: tenancy OCID (with the three below).
    #[arg(long = "oci-tenancy-ocid", env = "OCI_TENANCY_OCID")]
    pub tenancy: Option<String>,
    /// OCI API key: user OCID.
    #[arg(long = "oci-user-ocid", env = "OCI_USER_OCID")]
    pub user: Option<String>,
    /// OCI API key: fingerprint of the uploaded public key.
    #[arg(long = "oci-fingerprint", env = "OCI_FINGERPRINT")]
    pub fingerprint: Option<String>,
    /// OCI API key: path of the unencrypted PEM private key.
    #[arg(long = "oci-private-key-path", env = "OCI_PRIVATE_KEY_PATH")]
    pub private_key_path: Option<String>,
    /// OCI: the region when REGION is unset and the config file names none.
    #[arg(long = "oci-region", env = "OCI_REGION")]
    pub oci_region: Option<String>,
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl OciArgs {
    /// Checked at start, before any contact: the authentication mode, the endpoint,
    /// an API key given by halves, and IPV6 with settings that only make sense on OCI.
    pub fn check(&self, ipv6: bool, oci_filter: bool) -> Result<(), String> {
        auth_mode(set(&self.auth))?;
        for (name, value, example) in [
            (
                "OCI_CORE_ENDPOINT",
                &self.endpoint,
                "https://iaas.us-ashburn-1.oraclecloud.com",
            ),
            (
                "OCI_METADATA_BASE_URL",
                &self.metadata_base_url,
                "http://169.254.169.254/opc/v2",
            ),
            (
                "OCI_FEDERATION_ENDPOINT",
                &self.federation_endpoint,
                "https://auth.us-ashburn-1.oraclecloud.com/v1/x509",
            ),
            (
                "OCI_PROXYMUX_ENDPOINT",
                &self.proxymux_endpoint,
                "https://10.96.0.1:12250",
            ),
        ] {
            if let Some(url) = set(value) {
                let ok = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"))
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
                if !ok {
                    return Err(format!(
                        "{name}={url:?} is not an http(s) URL (e.g. {example})"
                    ));
                }
            }
        }
        let key = [
            ("OCI_TENANCY_OCID", &self.tenancy),
            ("OCI_USER_OCID", &self.user),
            ("OCI_FINGERPRINT", &self.fingerprint),
            ("OCI_PRIVATE_KEY_PATH", &self.private_key_path),
        ];
        let missing: Vec<&str> = key
            .iter()
            .filter(|(_, v)| set(v).is_none())
            .map(|(k, _)| *k)
            .collect();
        if !missing.is_empty() && missing.len() < key.len() {
            return Err(format!(
                "the OCI API key is given by halves: {} missing (set all four, or none and use OCI_CONFIG_FILE)",
                missing.join(", ")
            ));
        }
        let explicit = oci_filter || set(&self.endpoint).is_some() || set(&self.auth).is_some();
        if ipv6 && explicit {
            return Err(NO_IPV6.to_string());
        }
        Ok(())
    }

    /// The variables the credential loader reads, from these settings (and `HOME`).
    fn lookup(&self) -> BTreeMap<&'static str, String> {
        let mut vars = BTreeMap::new();
        for (name, value) in [
            ("OCI_AUTH", &self.auth),
            ("OCI_CONFIG_FILE", &self.config_file),
            ("OCI_CONFIG_PROFILE", &self.config_profile),
            ("OCI_TENANCY_OCID", &self.tenancy),
            ("OCI_USER_OCID", &self.user),
            ("OCI_FINGERPRINT", &self.fingerprint),
            ("OCI_PRIVATE_KEY_PATH", &self.private_key_path),
            ("OCI_REGION", &self.oci_region),
        ] {
            if let Some(v) = set(value) {
                vars.insert(name, v.to_string());
            }
        }
        if let Ok(home) = std::env::var("HOME") {
            vars.insert("HOME", home);
        }
        vars
    }
}

/// The OCI provider for a node, with the credentials of the settings: the API key
/// (config file or variables), or a principal (instance principals, workload identity:
/// nothing contacted until the first call). IPV6 is refused before any credential is read.
pub async fn oci_provider(
    instance: &InstanceRef,
    settings: &CloudSettings,
) -> Result<OciProvider, ProviderError> {
    if settings.pool.family == IpFamily::V6 {
        return Err(ProviderError::invalid_input("configuration", NO_IPV6));
    }
    let mode = auth_mode(set(&settings.oci.auth))
        .map_err(|e| ProviderError::invalid_input("configuration", e))?;
    let principal = match mode {
        AuthMode::ApiKey => None,
        AuthMode::InstancePrincipal => {
            let region = known_region(instance, settings, None);
            let principal = Principal::instance(InstanceSettings {
                metadata_base_url: set(&settings.oci.metadata_base_url).map(String::from),
                federation_endpoint: set(&settings.oci.federation_endpoint).map(String::from),
                region: region.clone(),
            })?;
            Some((principal, region))
        }
        AuthMode::WorkloadIdentity => {
            // The SDKs' region variable for resource principals, after REGION.
            let sdk_region = std::env::var("OCI_RESOURCE_PRINCIPAL_REGION").ok();
            let region = known_region(instance, settings, sdk_region);
            let principal = Principal::workload(WorkloadSettings {
                service_host: std::env::var("KUBERNETES_SERVICE_HOST").ok(),
                endpoint: set(&settings.oci.proxymux_endpoint).map(String::from),
                token_path: None,
                ca_path: set(&settings.oci.service_account_cert_path).map(Into::into),
                region: region.clone(),
            })?;
            Some((principal, region))
        }
    };
    if let Some((principal, region)) = principal {
        let credentials = Credentials::Principal(Arc::new(principal));
        return provider(instance, settings, region.unwrap_or_default(), credentials);
    }
    let vars = settings.oci.lookup();
    let loaded = from_environment(&|k| vars.get(k).cloned())?;
    oci_provider_with(instance, settings, loaded)
}

/// The OCI provider with a key already at hand (the simulator's test key).
pub fn oci_provider_with(
    instance: &InstanceRef,
    settings: &CloudSettings,
    loaded: Loaded,
) -> Result<OciProvider, ProviderError> {
    if settings.pool.family == IpFamily::V6 {
        return Err(ProviderError::invalid_input("configuration", NO_IPV6));
    }
    let region = known_region(instance, settings, loaded.region).unwrap_or_default();
    provider(instance, settings, region, loaded.key.into())
}

/// `REGION`, else the credentials' region, else `OCI_REGION`, else the providerID's.
fn known_region(
    instance: &InstanceRef,
    settings: &CloudSettings,
    from_credentials: Option<String>,
) -> Option<String> {
    settings
        .region
        .clone()
        .or(from_credentials)
        .or_else(|| set(&settings.oci.oci_region).map(String::from))
        .or_else(|| instance.region())
        .filter(|r| !r.trim().is_empty())
}

fn provider(
    instance: &InstanceRef,
    settings: &CloudSettings,
    region: String,
    credentials: Credentials,
) -> Result<OciProvider, ProviderError> {
    let provider = OciProvider::new(OciSettings {
        compartment: settings.project.clone(),
        region,
        endpoint: set(&settings.oci.endpoint).map(String::from),
        credentials,
        pool: settings.pool.clone(),
    })?;
    Ok(provider.for_instance(&instance.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> OciArgs {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        OciArgs {
            auth: get("auth"),
            endpoint: get("endpoint"),
            tenancy: get("tenancy"),
            user: get("user"),
            fingerprint: get("fingerprint"),
            private_key_path: get("key"),
            metadata_base_url: get("metadata"),
            federation_endpoint: get("federation"),
            proxymux_endpoint: get("proxymux"),
            ..OciArgs::default()
        }
    }

    #[test]
    fn bad_oci_settings_are_named() {
        // (settings, IPV6, an OCI FILTER, what the error names)
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool, &'a str);
        let cases: &[Case] = &[
            (
                &[("proxymux", "10.96.0.1:12250")],
                false,
                false,
                "OCI_PROXYMUX_ENDPOINT",
            ),
            (
                &[("metadata", "169.254.169.254")],
                false,
                false,
                "OCI_METADATA_BASE_URL",
            ),
            (
                &[("federation", "auth.example/v1/x509")],
                false,
                false,
                "OCI_FEDERATION_ENDPOINT",
            ),
            (&[("auth", "kerberos")], false, false, "OCI_AUTH"),
            (
                &[("endpoint", "iaas.example")],
                false,
                false,
                "OCI_CORE_ENDPOINT",
            ),
            (
                &[("tenancy", "ocid1.tenancy.oc1..a")],
                false,
                false,
                "OCI_FINGERPRINT",
            ),
            (&[], true, true, "IPV6"),
            (&[("endpoint", "http://127.0.0.1:1")], true, false, "IPV6"),
        ];
        for (pairs, ipv6, oci_filter, expected) in cases {
            let err = args(pairs).check(*ipv6, *oci_filter).unwrap_err();
            assert!(err.contains(expected), "{pairs:?}: {err}");
        }
        assert_eq!(
            args(&[]).check(true, false),
            Ok(()),
            "IPv6 on another cloud"
        );
        assert_eq!(args(&[("auth", "API_KEY")]).check(false, true), Ok(()));
        let principal = args(&[
            ("auth", "instance_principal"),
            ("metadata", "http://127.0.0.1:1/opc/v2"),
        ]);
        assert_eq!(principal.check(false, true), Ok(()));
    }

    #[tokio::test]
    async fn an_instance_principal_provider_is_built_without_contacting_anything() {
        // Nothing listens there: building must not need it (the first call will).
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let settings = CloudSettings {
            oci: args(&[
                ("auth", "instance_principal"),
                ("metadata", &format!("http://{closed}/opc/v2")),
            ]),
            ..CloudSettings::default()
        };
        let instance =
            pinip_providers::oci::parse_provider_id("ocid1.instance.oc1.iad.abc").unwrap();
        assert!(oci_provider(&instance, &settings).await.is_ok());
        // Workload identity reads the cluster's CA at once: a missing one is a
        // configuration error, before any contact.
        let workload = CloudSettings {
            region: Some("us-ashburn-1".into()),
            oci: OciArgs {
                service_account_cert_path: Some("/nonexistent/ca.crt".into()),
                proxymux_endpoint: Some(format!("https://{closed}")),
                ..args(&[("auth", "workload_identity")])
            },
            ..CloudSettings::default()
        };
        let err = oci_provider(&instance, &workload)
            .await
            .err()
            .expect("refused");
        assert_eq!(
            err.class,
            pinip_providers::ErrorClass::InvalidInput,
            "{err}"
        );
        assert!(
            err.message
                .contains("OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn ipv6_is_refused_before_credentials_are_read() {
        let settings = CloudSettings {
            pool: pinip_providers::PoolSpec {
                family: IpFamily::V6,
                ..Default::default()
            },
            oci: args(&[
                ("tenancy", "t"),
                ("user", "u"),
                ("fingerprint", "f"),
                ("key", "/nonexistent"),
            ]),
            ..CloudSettings::default()
        };
        let instance =
            pinip_providers::oci::parse_provider_id("ocid1.instance.oc1.iad.abc").unwrap();
        let err = oci_provider(&instance, &settings)
            .await
            .err()
            .expect("refused");
        assert!(err.message.contains("IPV6"), "{err}");
        let v4 = CloudSettings {
            pool: Default::default(),
            ..settings
        };
        let err = oci_provider(&instance, &v4)
            .await
            .err()
            .expect("no key file");
        assert!(err.message.contains("OCI_PRIVATE_KEY_PATH"), "{err}");
    }
}
