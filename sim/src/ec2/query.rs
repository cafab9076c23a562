//! Reading an EC2 Query-protocol request: a form-encoded body with `Action`, scalar
//! parameters and flattened lists (`AllocationId.1`, `Filter.1.Name`,
//! `Filter.1.Value.2`, `Tag.1.Key`, `TagSpecification.1.Tag.1.Value`).

use std::collections::BTreeMap;

use super::error::Ec2Error;

#[derive(Clone, Debug, Default)]
pub struct Params(BTreeMap<String, String>);

/// One `Filter.N`: a name and the values any of which may match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterParam {
    pub name: String,
    pub values: Vec<String>,
}

impl Params {
    pub fn parse(body: &[u8]) -> Result<Params, Ec2Error> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
            Ec2Error::new(
                "MalformedQueryString",
                format!("the request body is not a form: {e}"),
            )
        })?;
        Ok(Params(pairs.into_iter().collect()))
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn require(&self, key: &str) -> Result<&str, Ec2Error> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Ec2Error::missing(key))
    }

    pub fn flag(&self, key: &str) -> Result<bool, Ec2Error> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Ec2Error::invalid_value(format!(
                "Value ({v}) for parameter {key} is invalid. Expected: 'true' or 'false'."
            ))),
        }
    }

    /// `prefix.1`, `prefix.2`, … in index order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.indexed(prefix)
            .into_iter()
            .filter_map(|(_, rest, value)| rest.is_empty().then_some(value))
            .collect()
    }

    /// `prefix.N.field` for each N, as (N, map of field → value), in index order.
    pub fn structs(&self, prefix: &str) -> Vec<BTreeMap<String, String>> {
        let mut by_index: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (index, rest, value) in self.indexed(prefix) {
            if let Some(field) = rest.strip_prefix('.') {
                by_index
                    .entry(index)
                    .or_default()
                    .insert(field.to_string(), value);
            }
        }
        by_index.into_values().collect()
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M`.
    pub fn filters(&self) -> Vec<FilterParam> {
        self.structs("Filter")
            .into_iter()
            .map(|fields| {
                let mut values: Vec<(u32, String)> = fields
                    .iter()
                    .filter_map(|(k, v)| {
                        let n = k.strip_prefix("Value.")?.parse().ok()?;
                        Some((n, v.clone()))
                    })
                    .collect();
                values.sort();
                FilterParam {
                    name: fields.get("Name").cloned().unwrap_or_default(),
                    values: values.into_iter().map(|(_, v)| v).collect(),
                }
            })
            .collect()
    }

    /// `Tag.N.Key` / `Tag.N.Value` (a missing Value is None: "whatever the value").
    pub fn tags(&self, prefix: &str) -> Vec<(String, Option<String>)> {
        self.structs(prefix)
            .into_iter()
            .filter_map(|fields| Some((fields.get("Key")?.clone(), fields.get("Value").cloned())))
            .collect()
    }

    /// Tags of the `TagSpecification.N` whose ResourceType is `resource_type`.
    pub fn tag_specifications(&self, resource_type: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (index, spec) in self.structs("TagSpecification").into_iter().enumerate() {
            if spec.get("ResourceType").map(String::as_str) != Some(resource_type) {
                continue;
            }
            let nested = Params(
                spec.into_iter()
                    .map(|(k, v)| (format!("Spec.{}.{k}", index + 1), v))
                    .collect(),
            );
            let prefix = format!("Spec.{}.Tag", index + 1);
            out.extend(
                nested
                    .tags(&prefix)
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default())),
            );
        }
        out
    }

    /// (index, text after the index, value) for every key `prefix.N…`.
    fn indexed(&self, prefix: &str) -> Vec<(u32, String, String)> {
        let mut out: Vec<(u32, String, String)> = self
            .0
            .iter()
            .filter_map(|(key, value)| {
                let rest = key.strip_prefix(prefix)?.strip_prefix('.')?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let index = digits.parse().ok()?;
                Some((index, rest[digits.len()..].to_string(), value.clone()))
            })
            .collect();
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_lists_filters_and_tags() {
        let p = Params::parse(
            b"Action=DescribeAddresses&AllocationId.2=b&AllocationId.1=a&AllocationId.10=c\
              &Filter.1.Name=tag%3Akubeip&Filter.1.Value.1=reserved&Filter.1.Value.2=spare\
              &Filter.2.Name=domain&Filter.2.Value.1=vpc\
              &Tag.1.Key=k1&Tag.1.Value=v1&Tag.2.Key=k2\
              &TagSpecification.1.ResourceType=elastic-ip&TagSpecification.1.Tag.1.Key=kubeip&TagSpecification.1.Tag.1.Value=reserved",
        )
        .unwrap();
        assert_eq!(p.get("Action"), Some("DescribeAddresses"));
        assert_eq!(p.list("AllocationId"), ["a", "b", "c"]);
        assert_eq!(
            p.filters(),
            vec![
                FilterParam {
                    name: "tag:kubeip".into(),
                    values: vec!["reserved".into(), "spare".into()]
                },
                FilterParam {
                    name: "domain".into(),
                    values: vec!["vpc".into()]
                },
            ]
        );
        assert_eq!(
            p.tags("Tag"),
            vec![("k1".into(), Some("v1".into())), ("k2".into(), None)]
        );
        assert_eq!(
            p.tag_specifications("elastic-ip"),
            vec![("kubeip".to_string(), "reserved".to_string())]
        );
        assert!(p.tag_specifications("instance").is_empty());
    }

    #[test]
    fn booleans_and_required_parameters() {
        let p = Params::from_pairs(&[("AllowReassociation", "false"), ("DryRun", "maybe")]);
        assert!(!p.flag("AllowReassociation").unwrap());
        assert_eq!(p.flag("DryRun").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(
            p.require("AllocationId").unwrap_err().code,
            "MissingParameter"
        );
    }
}
