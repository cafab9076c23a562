//! Where the OCI provider's signing key comes from, the way OKE users run it:
//!
//! - an API key in an OCI config file (`OCI_CONFIG_FILE`, default `~/.oci/config`;
//!   profile `OCI_CONFIG_PROFILE`, default `DEFAULT`, whose values other profiles
//!   inherit): `user`, `fingerprint`, `tenancy`, `key_file`, optional `region`; a
//!   `security_token_file` makes it a session-token profile (`oci session
//!   authenticate`), signed with keyId `ST$<token>`;
//! - or the same API key from `OCI_TENANCY_OCID`, `OCI_USER_OCID`, `OCI_FINGERPRINT`,
//!   `OCI_PRIVATE_KEY_PATH` (and `OCI_REGION`), the names the Terraform provider uses;
//! - or a key handed over directly ([`SigningKey::new`]: tests and the simulator).
//!
//! `OCI_AUTH` ([`auth_mode`]) chooses: `api_key` (default; `config_file` is accepted as
//! the SDKs' loader spells it) loads a key here; `instance_principal` and
//! `workload_identity` use [`super::principal`] instead; anything else is refused with a
//! clear error rather than silently falling back to something else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::signer::SigningKey;
use crate::ProviderError;

/// A signing key and, when the source named one, the region.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub key: SigningKey,
    pub region: Option<String>,
}

fn config_error(message: String) -> ProviderError {
    ProviderError::invalid_input("configuration", message)
}

/// How the agent authenticates (`OCI_AUTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// `api_key` (or `config_file`, or unset).
    ApiKey,
    /// `instance_principal`.
    InstancePrincipal,
    /// `workload_identity` (OKE, resource principals 2.2).
    WorkloadIdentity,
}

/// `OCI_AUTH`, case-insensitive. Unknown values are errors that say what is supported.
pub fn auth_mode(value: Option<&str>) -> Result<AuthMode, String> {
    match value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("api_key") | Some("config_file") => Ok(AuthMode::ApiKey),
        Some("instance_principal") => Ok(AuthMode::InstancePrincipal),
        Some("workload_identity") => Ok(AuthMode::WorkloadIdentity),
        Some(other) => Err(format!(
            "OCI_AUTH={other:?} is not known: use api_key, instance_principal or workload_identity"
        )),
    }
}

/// Load an API key from `lookup` (the environment: pass `|k| std::env::var(k).ok()`).
/// Refused when `OCI_AUTH` names something other than an API key.
pub fn from_environment(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ProviderError> {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    match auth_mode(get("OCI_AUTH").as_deref()) {
        Ok(AuthMode::ApiKey) => {}
        Ok(mode @ (AuthMode::InstancePrincipal | AuthMode::WorkloadIdentity)) => {
            return Err(config_error(format!(
                "OCI_AUTH={mode:?} signs with session tokens, not an API key (pinip_providers::oci::Principal)"
            )))
        }
        Err(message) => return Err(config_error(message)),
    }
    let home = get("HOME").map(PathBuf::from);
    if let (Some(tenancy), Some(user), Some(fingerprint), Some(key_path)) = (
        get("OCI_TENANCY_OCID"),
        get("OCI_USER_OCID"),
        get("OCI_FINGERPRINT"),
        get("OCI_PRIVATE_KEY_PATH"),
    ) {
        let pem = read(&expand(&key_path, home.as_deref()), "OCI_PRIVATE_KEY_PATH")?;
        return Ok(Loaded {
            key: SigningKey::new(&format!("{tenancy}/{user}/{fingerprint}"), &pem)?,
            region: get("OCI_REGION"),
        });
    }
    let path = match get("OCI_CONFIG_FILE") {
        Some(p) => expand(&p, home.as_deref()),
        None => home
            .as_deref()
            .unwrap_or(Path::new("/root"))
            .join(".oci/config"),
    };
    let profile = get("OCI_CONFIG_PROFILE").unwrap_or_else(|| "DEFAULT".into());
    let text = read(&path, "OCI_CONFIG_FILE")?;
    from_config(&text, &profile, home.as_deref())
        .map_err(|e| config_error(format!("{}: {}", path.display(), e.message)))
}

/// Credentials of `profile` in an OCI config file's text.
pub fn from_config(
    text: &str,
    profile: &str,
    home: Option<&Path>,
) -> Result<Loaded, ProviderError> {
    let sections = parse_ini(text);
    let mut values = sections.get("DEFAULT").cloned().unwrap_or_default();
    match sections.get(profile) {
        Some(own) => values.extend(own.clone()),
        None if profile == "DEFAULT" && !values.is_empty() => {}
        None => return Err(config_error(format!("there is no profile [{profile}]"))),
    }
    let need = |k: &str| {
        values
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| config_error(format!("profile [{profile}] has no {k}")))
    };
    if values.get("pass_phrase").is_some_and(|p| !p.is_empty()) {
        return Err(config_error(format!(
            "profile [{profile}] sets pass_phrase: pinip reads unencrypted keys only"
        )));
    }
    let pem = read(&expand(&need("key_file")?, home), "key_file")?;
    let key_id = match values.get("security_token_file").filter(|v| !v.is_empty()) {
        Some(token_file) => format!(
            "ST${}",
            read(&expand(token_file, home), "security_token_file")?.trim()
        ),
        None => format!(
            "{}/{}/{}",
            need("tenancy")?,
            need("user")?,
            need("fingerprint")?
        ),
    };
    Ok(Loaded {
        key: SigningKey::new(&key_id, &pem)?,
        region: values.get("region").filter(|r| !r.is_empty()).cloned(),
    })
}

/// `[section]` → `key=value` lines; `#`/`;` comments; keys lowercased, values trimmed.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = "DEFAULT".to_string();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            out.entry(section.clone()).or_default();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn expand(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

fn read(path: &Path, what: &str) -> Result<String, ProviderError> {
    std::fs::read_to_string(path)
        .map_err(|e| config_error(format!("cannot read {what} {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_inherit_default_and_missing_fields_are_named() {
        let ini = parse_ini(
            "# c\n[DEFAULT]\nregion = us-ashburn-1\nuser=u\n[other]\nuser=v\nKEY_FILE=~/k.pem\n",
        );
        assert_eq!(ini["DEFAULT"]["region"], "us-ashburn-1");
        assert_eq!(ini["other"]["key_file"], "~/k.pem");
        let e = from_config("[DEFAULT]\nuser=u\n", "DEFAULT", None).unwrap_err();
        assert!(e.message.contains("key_file"), "{e}");
        let e = from_config("[DEFAULT]\nuser=u\n", "prod", None).unwrap_err();
        assert!(e.message.contains("[prod]"), "{e}");
        let e =
            from_config("[DEFAULT]\nkey_file=/k\npass_phrase=x\n", "DEFAULT", None).unwrap_err();
        assert!(e.message.contains("pass_phrase"), "{e}");
        assert_eq!(
            expand("~/a/b", Some(Path::new("/h"))),
            PathBuf::from("/h/a/b")
        );
    }

    #[test]
    fn auth_modes() {
        assert_eq!(auth_mode(None), Ok(AuthMode::ApiKey));
        assert_eq!(auth_mode(Some(" ")), Ok(AuthMode::ApiKey));
        assert_eq!(auth_mode(Some("Config_File")), Ok(AuthMode::ApiKey));
        assert_eq!(
            auth_mode(Some("INSTANCE_PRINCIPAL")),
            Ok(AuthMode::InstancePrincipal)
        );
        assert_eq!(
            auth_mode(Some("workload_identity")),
            Ok(AuthMode::WorkloadIdentity)
        );
        assert!(auth_mode(Some("kerberos"))
            .unwrap_err()
            .contains("not known"));
        let lookup = |k: &str| (k == "OCI_AUTH").then(|| "instance_principal".to_string());
        let e = from_environment(&lookup).unwrap_err();
        assert!(e.message.contains("not an API key"), "{e}");
    }
}
