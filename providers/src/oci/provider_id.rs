//! OKE node providerIDs: the bare instance OCID (`ocid1.instance.oc1.iad.…`, what the
//! OCI cloud controller manager sets) or `oci://ocid1.instance.…`. Pure; the agent's
//! providerID parser (`src/identity.rs`) calls this for anything starting with `oci`.

use crate::InstanceRef;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("providerID {input:?} is not an OCI instance: {reason}; expected `ocid1.instance.<realm>.<region>.<id>` or `oci://ocid1.instance.…`")]
pub struct ProviderIdError {
    pub input: String,
    pub reason: String,
}

/// The instance behind an OKE providerID. The availability domain is not in it, so
/// `zone` is empty (REGION names the region; the provider reads the AD from the instance).
pub fn parse_provider_id(provider_id: &str) -> Result<InstanceRef, ProviderIdError> {
    let fail = |reason: &str| ProviderIdError {
        input: provider_id.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = provider_id.trim();
    let ocid = trimmed
        .strip_prefix("oci://")
        .unwrap_or(trimmed)
        .trim_matches('/');
    let parts: Vec<&str> = ocid.split('.').collect();
    if parts.len() < 5 || parts[0] != "ocid1" {
        return Err(fail("it is not an OCID"));
    }
    if parts[1] != "instance" {
        return Err(fail(&format!(
            "it is an OCID of a {}, not of an instance",
            parts[1]
        )));
    }
    if parts[2].is_empty() || parts[4..].iter().any(|p| p.is_empty()) {
        return Err(fail("the OCID has empty parts"));
    }
    if !ocid
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(fail("the OCID has characters OCIDs never have"));
    }
    Ok(InstanceRef {
        cloud: "oci".into(),
        project: None,
        zone: String::new(),
        id: ocid.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_scheme_forms() {
        let id = "ocid1.instance.oc1.iad.anuwcljt2ahezkqcabc123";
        for input in [id.to_string(), format!("oci://{id}"), format!(" {id} ")] {
            let r = parse_provider_id(&input).unwrap();
            assert_eq!(
                (r.cloud.as_str(), r.id.as_str(), r.zone.as_str()),
                ("oci", id, "")
            );
        }
        assert!(
            parse_provider_id("ocid1.instance.oc1..x").is_ok(),
            "an empty region part is allowed (tenancy-style OCIDs)"
        );
    }

    #[test]
    fn other_ids_are_refused() {
        for bad in [
            "",
            "oci://",
            "ocid1.vnic.oc1.iad.x",
            "aws:///us-east-1a/i-1",
            "ocid1.instance",
            "ocid1.instance.oc1.iad.",
            "ocid1.instance.oc1.iad.a b",
        ] {
            let e = parse_provider_id(bad).unwrap_err();
            assert_eq!(e.input, bad);
        }
    }
}
