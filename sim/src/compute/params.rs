//! The query parameters each method declares (`compute.v1.json`), plus the standard
//! ones every Google API takes. Anything else is refused with 400, as Google's front
//! end does ("Cannot bind query parameter"), so a client cannot lean on a parameter
//! the real API would reject.
//!
//! `returnPartialSuccess` on the two lists: the discovery revision of the
//! `google-api-python-client` package no longer lists it as a parameter (its method
//! descriptions still recommend it), while gcloud's generated client declares and
//! sends it; the API takes it.

use std::collections::BTreeMap;

use super::errors::ApiError;

/// `$.xgafv`, `alt`, `fields`, … (the discovery document's top-level `parameters`).
const STANDARD: &[&str] = &[
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
    "userIp",
];

const BOOLEANS: &[&str] = &["includeAllScopes", "returnPartialSuccess", "prettyPrint"];

/// (declared, required) query parameters of `method`.
fn declared(method: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match method {
        "addresses.list" => (
            &[
                "filter",
                "maxResults",
                "orderBy",
                "pageToken",
                "returnPartialSuccess",
            ],
            &[],
        ),
        "addresses.aggregatedList" => (
            &[
                "filter",
                "includeAllScopes",
                "maxResults",
                "orderBy",
                "pageToken",
                "returnPartialSuccess",
                "serviceProjectNumber",
            ],
            &[],
        ),
        "addresses.setLabels" => (&["requestId"], &[]),
        "instances.addAccessConfig"
        | "instances.updateAccessConfig"
        | "instances.updateNetworkInterface" => {
            (&["networkInterface", "requestId"], &["networkInterface"])
        }
        "instances.deleteAccessConfig" => (
            &["accessConfig", "networkInterface", "requestId"],
            &["accessConfig", "networkInterface"],
        ),
        _ => (&[], &[]),
    }
}

/// Refuse undeclared, missing required, and mistyped parameters.
pub fn check(method: &str, query: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let (known, required) = declared(method);
    for (name, value) in query {
        if !known.contains(&name.as_str()) && !STANDARD.contains(&name.as_str()) {
            return Err(ApiError::new(
                400,
                "invalid",
                format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. Field '{name}' could not be found in request message."),
            ));
        }
        if BOOLEANS.contains(&name.as_str())
            && !matches!(value.to_ascii_lowercase().as_str(), "true" | "false")
        {
            return Err(ApiError::new(
                400,
                "invalid",
                format!("Invalid value at '{name}' (TYPE_BOOL), \"{value}\""),
            ));
        }
        if name == "alt" && !matches!(value.as_str(), "json" | "media" | "proto") {
            return Err(ApiError::new(
                400,
                "invalid",
                format!("Invalid value at 'alt' (enum), \"{value}\""),
            ));
        }
    }
    match required.iter().find(|r| !query.contains_key(**r)) {
        Some(missing) => Err(ApiError::new(
            400,
            "required",
            format!("Required parameter '{missing}' is missing"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn declared_parameters_pass_and_others_are_refused() {
        let gcloud = query(&[
            ("alt", "json"),
            ("includeAllScopes", "True"),
            ("maxResults", "500"),
            ("returnPartialSuccess", "True"),
        ]);
        assert!(check("addresses.aggregatedList", &gcloud).is_ok());
        let unknown = check("addresses.list", &query(&[("colour", "red")])).unwrap_err();
        assert_eq!(unknown.status, 400);
        assert!(unknown.message.contains("Unknown name \"colour\""));
        assert!(check("instances.get", &query(&[("networkInterface", "nic0")])).is_err());
        assert!(check(
            "addresses.list",
            &query(&[("returnPartialSuccess", "maybe")])
        )
        .is_err());
        let missing = check(
            "instances.deleteAccessConfig",
            &query(&[("networkInterface", "nic0")]),
        )
        .unwrap_err();
        assert!(missing.message.contains("'accessConfig'"));
    }
}
