//! Kubernetes' own rules for the names a setting carries (NODE_NAME, LEASE_NAMESPACE,
//! CLUSTER_NAME, TAINT_KEY), checked before the API server would refuse them.

use super::ConfigError;

pub(super) fn check_dns_label(var: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        ConfigError(format!(
            "{var}={value:?} is not a valid namespace name: use lowercase letters, digits and '-', at most 63 characters"
        ))
    })
}

pub(super) fn check_dns_subdomain(var: &str, value: &str) -> Result<(), ConfigError> {
    let ok = value.len() <= 253
        && value.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    ok.then_some(()).ok_or_else(|| {
        ConfigError(format!(
            "{var}={value:?} is not a valid node name (lowercase DNS subdomain); set it from the Downward API spec.nodeName"
        ))
    })
}

/// Label values: written into claims and cloud tags, so they must be safe there.
pub(super) fn check_label_value(var: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok.then_some(()).ok_or_else(|| {
        ConfigError(format!(
            "{var}={value:?} is not valid: use 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    })
}

pub(super) fn check_qualified_name(var: &str, value: &str) -> Result<(), ConfigError> {
    let (prefix, name) = match value.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, value),
    };
    let prefix_ok = prefix.is_none_or(|p| check_dns_subdomain(var, p).is_ok());
    if prefix_ok && check_label_value(var, name).is_ok() {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{var}={value:?} is not a valid taint key: use [prefix/]name, e.g. pinip.dev/not-ready"
        )))
    }
}
