//! Which instance is this node? `spec.providerID` says: `aws:///us-east-1a/i-0abc…`,
//! `gce://project/zone/name`, OKE's bare instance OCID `ocid1.instance.oc1.iad.…` (or
//! `oci://ocid1.instance…`), or any `scheme://[project]/zone/id` for other providers
//! (the simulator's `fake:///zone/id`). No node-pool labels are required, so
//! Karpenter, self-managed and kOps nodes work (KubeIP refused them).

use pinip_providers::InstanceRef;

/// Who the agent is: its node, its cluster, its pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSettings {
    pub name: String,
    /// `CLUSTER_NAME`, written on cloud addresses and claims as their owner.
    pub cluster: String,
    /// Named as the reporter of Events.
    pub pod_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderIdError {
    #[error("the node has no spec.providerID yet")]
    Missing,
    #[error("providerID {0:?} is not of the form scheme://[project]/zone/instance (aws:///us-east-1a/i-0abc, gce://project/zone/name)")]
    Malformed(String),
    #[error("providerID {id:?} belongs to cloud {scheme:?}, which pinip does not support; pinip supports aws, gce and oci nodes")]
    Unsupported { id: String, scheme: String },
    /// An OCID or `oci://` providerID that does not name an instance.
    #[error(transparent)]
    Oci(#[from] pinip_providers::oci::ProviderIdError),
}

/// Parse a providerID. Any scheme is parsed; whether a provider exists for it is the
/// provider factory's decision.
pub fn parse_provider_id(provider_id: &str) -> Result<InstanceRef, ProviderIdError> {
    let id = provider_id.trim();
    if id.is_empty() {
        return Err(ProviderIdError::Missing);
    }
    // OKE: the bare instance OCID (no scheme), or `oci://<OCID>`. `InstanceRef.cloud` is "oci".
    if id.starts_with("ocid1.") || id.starts_with("oci://") {
        return Ok(pinip_providers::oci::parse_provider_id(id)?);
    }
    let malformed = || ProviderIdError::Malformed(id.to_string());
    let (scheme, rest) = id.split_once("://").ok_or_else(malformed)?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(malformed());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (project, zone, instance) = match parts.as_slice() {
        [project, zone, instance] => (*project, *zone, *instance),
        _ => return Err(malformed()),
    };
    if zone.is_empty() || instance.is_empty() {
        return Err(malformed());
    }
    let project = match scheme {
        // GCP needs the project; AWS has none (the authority part is empty).
        "gce" if project.is_empty() => return Err(malformed()),
        "aws" if !project.is_empty() => return Err(malformed()),
        _ => (!project.is_empty()).then(|| project.to_string()),
    };
    Ok(InstanceRef {
        cloud: scheme.to_string(),
        project,
        zone: zone.to_string(),
        id: instance.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_aws_and_gcp() {
        let aws = parse_provider_id("aws:///us-east-1a/i-0123456789abcdef0").unwrap();
        assert_eq!(
            (
                aws.cloud.as_str(),
                aws.project.as_deref(),
                aws.zone.as_str(),
                aws.id.as_str()
            ),
            ("aws", None, "us-east-1a", "i-0123456789abcdef0")
        );
        assert_eq!(aws.region().as_deref(), Some("us-east-1"));
        let gce = parse_provider_id("gce://my-project/europe-west1-b/gke-pool-1-abcd").unwrap();
        assert_eq!(gce.project.as_deref(), Some("my-project"));
        assert_eq!(gce.zone, "europe-west1-b");
        assert_eq!(gce.id, "gke-pool-1-abcd");
        assert_eq!(gce.region().as_deref(), Some("europe-west1"));
        let fake = parse_provider_id("fake:///sim-a/i-7").unwrap();
        assert_eq!((fake.cloud.as_str(), fake.id.as_str()), ("fake", "i-7"));
    }

    #[test]
    fn refuses_malformed_ids() {
        assert_eq!(parse_provider_id(""), Err(ProviderIdError::Missing));
        assert_eq!(parse_provider_id("  "), Err(ProviderIdError::Missing));
        for bad in [
            "i-0123",
            "aws://",
            "aws:///us-east-1a",
            "aws:///us-east-1a/",
            "aws://acct/us-east-1a/i-1",
            "gce:///zone/name",
            "gce://p/z/n/extra",
            "://z/i",
        ] {
            assert!(
                matches!(parse_provider_id(bad), Err(ProviderIdError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_oke_provider_ids() {
        let ocid = "ocid1.instance.oc1.iad.anuwcljt2ahezkqcabc123";
        for text in [ocid.to_string(), format!("oci://{ocid}")] {
            let oci = parse_provider_id(&text).unwrap();
            assert_eq!(
                (
                    oci.cloud.as_str(),
                    oci.id.as_str(),
                    oci.project.clone(),
                    oci.region()
                ),
                ("oci", ocid, None, None)
            );
        }
        for bad in ["ocid1.vnic.oc1.iad.abc", "oci://", "ocid1.instance"] {
            let err = parse_provider_id(bad).unwrap_err();
            assert!(matches!(err, ProviderIdError::Oci(_)), "{bad}: {err:?}");
            assert!(err.to_string().contains("ocid1.instance"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(zone in "[a-z0-9-]{1,20}", id in "[a-zA-Z0-9-]{1,40}") {
            let parsed = parse_provider_id(&format!("aws:///{zone}/{id}")).unwrap();
            prop_assert_eq!(parsed.zone, zone);
            prop_assert_eq!(parsed.id, id);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = parse_provider_id(&text);
        }
    }
}
