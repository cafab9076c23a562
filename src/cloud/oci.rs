//! OCI-only settings. `PROJECT` is the compartment OCID of the reserved public IPs
//! (KubeIP's meaning on OCI; unset: the node's own compartment), `REGION` the region
//! (else the credentials' `region` / `OCI_REGION`). Credentials: an API key, from the
//! `OCI_TENANCY_OCID`, `OCI_USER_OCID`, `OCI_FINGERPRINT`, `OCI_PRIVATE_KEY_PATH`
//! variables or an OCI config file (`OCI_CONFIG_FILE`, profile `OCI_CONFIG_PROFILE`);
//! `OCI_CORE_ENDPOINT` overrides the Core Services endpoint (other realms, the simulator).
//!
//! `OCI_AUTH` names the authentication explicitly: `api_key` (the default). Instance
//! principals and OKE workload identity are not implemented yet; naming them is refused
//! at start, before the agent contacts anything, rather than silently using something else.

use std::collections::BTreeMap;

use clap::Args;
use pinip_providers::oci::{from_environment, Loaded, OciProvider, OciSettings};
use pinip_providers::{InstanceRef, IpFamily, ProviderError};

use crate::cloud::settings::CloudSettings;

/// What IPV6=true gets on an OCI node.
pub const NO_IPV6: &str = "IPV6=true is not supported on OCI: OCI has no reserved public IPv6 addresses to pin (a VNIC's IPv6 addresses come from its subnet's prefix and are public on a public subnet already); unset IPV6";

#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct OciArgs {
    /// OCI: how the agent authenticates. `api_key` (default; an OCI config file or the
    /// OCI_* key variables). `instance_principal` and `workload_identity` are refused:
    /// not implemented yet (docs/oci.md).
    #[arg(long = "oci-auth", env = "OCI_AUTH")]
    pub auth: Option<String>,
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
        match set(&self.auth).map(str::to_ascii_lowercase).as_deref() {
            None | Some("api_key") | Some("config_file") => {}
            Some(mode @ ("instance_principal" | "workload_identity")) => {
                return Err(format!(
                    "OCI_AUTH={mode} is not supported yet: pinip signs with an API key (an OCI config file, or OCI_TENANCY_OCID, OCI_USER_OCID, OCI_FINGERPRINT and OCI_PRIVATE_KEY_PATH); see docs/oci.md"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "OCI_AUTH={other:?} is not known: use api_key (instance_principal and workload_identity are not supported yet)"
                ))
            }
        }
        if let Some(url) = set(&self.endpoint) {
            let ok = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
            if !ok {
                return Err(format!(
                    "OCI_CORE_ENDPOINT={url:?} is not an http(s) URL (e.g. https://iaas.us-ashburn-1.oraclecloud.com)"
                ));
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

/// The OCI provider for a node, with the API key of the settings (config file or
/// variables). IPV6 is refused before any credential is read.
pub async fn oci_provider(
    instance: &InstanceRef,
    settings: &CloudSettings,
) -> Result<OciProvider, ProviderError> {
    if settings.pool.family == IpFamily::V6 {
        return Err(ProviderError::invalid_input("configuration", NO_IPV6));
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
    let region = settings
        .region
        .clone()
        .or(loaded.region)
        .or_else(|| set(&settings.oci.oci_region).map(String::from))
        .or_else(|| instance.region())
        .unwrap_or_default();
    let provider = OciProvider::new(OciSettings {
        compartment: settings.project.clone(),
        region,
        endpoint: set(&settings.oci.endpoint).map(String::from),
        key: loaded.key,
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
            ..OciArgs::default()
        }
    }

    #[test]
    fn bad_oci_settings_are_named() {
        // (settings, IPV6, an OCI FILTER, what the error names)
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool, &'a str);
        let cases: &[Case] = &[
            (
                &[("auth", "instance_principal")],
                false,
                false,
                "not supported yet",
            ),
            (&[("auth", "workload_identity")], false, false, "OCI_AUTH"),
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
