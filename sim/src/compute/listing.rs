//! `addresses.list` and `addresses.aggregatedList`: the `filter` grammar, `orderBy`
//! (`name` or `creationTimestamp desc`, and never together with a filter: "Specifying
//! both a list filter and sort order is not currently supported", doitintl/kubeip#132),
//! `maxResults` 0–500 (0 means the default, 500), opaque page tokens, pages that may
//! come back empty with a `nextPageToken` (an injected fault: a client must follow the
//! token, not stop at the first empty page), and aggregated lists over every region of
//! the project (and `global`), the empty ones carrying a `NO_RESULTS_ON_PAGE` warning.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Unbounded};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::filter::Filter;
use super::model::{region_of_zone, render_address, SimAddress, ADDRESS_FIELDS};
use super::Shared;

const MAX_PAGE: usize = 500;

/// Compute's regions (an aggregated list names every one, addresses or not).
pub const REGIONS: &[&str] = &[
    "africa-south1",
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-south2",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-north1",
    "europe-north2",
    "europe-southwest1",
    "europe-west1",
    "europe-west10",
    "europe-west12",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "me-central1",
    "me-central2",
    "me-west1",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "northamerica-south1",
    "southamerica-east1",
    "southamerica-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
];

/// One page of addresses (`region` Some) or of the aggregated list (None).
pub fn list(
    sh: &Shared,
    region: Option<&str>,
    query: &BTreeMap<String, String>,
    empty_page: bool,
) -> Result<Value, ApiError> {
    let filter_text = query
        .get("filter")
        .map(|f| f.trim())
        .filter(|f| !f.is_empty());
    let order = query
        .get("orderBy")
        .map(|o| o.trim())
        .filter(|o| !o.is_empty());
    if let (Some(_), Some(order)) = (filter_text, order) {
        return Err(ApiError::invalid_field(
            "orderBy",
            order,
            "Specifying both a list filter and sort order is not currently supported.",
        ));
    }
    let filter = match filter_text {
        Some(text) => Some(Filter::parse(text, ADDRESS_FIELDS).map_err(|why| {
            ApiError::invalid_field(
                "filter",
                text,
                &format!("Invalid list filter expression: {why}."),
            )
        })?),
        None => None,
    };
    let max = match query.get("maxResults") {
        None => MAX_PAGE,
        Some(text) => match text.parse::<usize>().ok().filter(|n| *n <= MAX_PAGE) {
            Some(0) => MAX_PAGE,
            Some(n) => n,
            None => {
                return Err(ApiError::invalid_field(
                    "maxResults",
                    text,
                    "Must be between 0 and 500.",
                ))
            }
        },
    };
    let token = query.get("pageToken").filter(|t| !t.is_empty());
    let cursor = match token {
        None => None,
        Some(token) => Some(decode_token(token).ok_or_else(|| invalid_token(token))?),
    };
    let wanted = if empty_page { 0 } else { max };
    let (page, next, scopes) = {
        let state = sh.state();
        let holders = state.holders();
        // Rendered (and matched against the filter) only when reached: a page costs
        // its own rows, not the whole pool's (1 000 agents list 1 100 addresses).
        let render = |a: &SimAddress| -> Option<(String, Value)> {
            if region.is_some_and(|r| a.region != r) {
                return None;
            }
            let users = holders.get(&a.ip).cloned().unwrap_or_default();
            let rendered = render_address(a, &users, &sh.links, |i| state.zone_of(i));
            let matched = filter.as_ref().is_none_or(|f| f.matches(&rendered));
            matched.then(|| (a.region.clone(), rendered))
        };
        let (page, next) = match order {
            // By (region, name), the map's own order: the token is the last key served.
            None => {
                let (after, page_number) = match &cursor {
                    None => (None, 0),
                    Some(Cursor::After { key, page }) => (Some(key.clone()), *page),
                    // A token of an `orderBy` listing, sent without it.
                    Some(Cursor::Offset { .. }) => {
                        return Err(invalid_token(token.map_or("", |t| t.as_str())))
                    }
                };
                let rows = match &after {
                    None => state.addresses.range::<(String, String), _>(..),
                    Some(key) => state.addresses.range((Excluded(key.clone()), Unbounded)),
                };
                let mut page = Vec::new();
                let mut last = after.clone();
                let mut more = false;
                for (key, a) in rows {
                    let Some(row) = render(a) else { continue };
                    if page.len() == wanted {
                        more = true;
                        break;
                    }
                    last = Some(key.clone());
                    page.push(row);
                }
                let next = more.then(|| Cursor::After {
                    key: last.unwrap_or_default(),
                    page: page_number + 1,
                });
                (page, next)
            }
            Some(order) => {
                let (offset, page_number) = match &cursor {
                    None => (0, 0),
                    Some(Cursor::Offset { offset, page }) => (*offset, *page),
                    Some(Cursor::After { .. }) => {
                        return Err(invalid_token(token.map_or("", |t| t.as_str())))
                    }
                };
                let mut rows: Vec<(u64, &str, (String, Value))> = state
                    .addresses
                    .values()
                    .filter_map(|a| render(a).map(|row| (a.id, a.name.as_str(), row)))
                    .collect();
                match order.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["name"] => rows.sort_by(|a, b| a.1.cmp(b.1)),
                    ["creationTimestamp", "desc"] => {
                        rows.sort_by_key(|row| std::cmp::Reverse(row.0))
                    }
                    _ => {
                        return Err(ApiError::invalid_field(
                            "orderBy",
                            order,
                            "Sorting is only supported by name or creationTimestamp desc.",
                        ))
                    }
                }
                let total = rows.len();
                let page: Vec<(String, Value)> = rows
                    .into_iter()
                    .skip(offset)
                    .take(wanted)
                    .map(|(_, _, row)| row)
                    .collect();
                let next_offset = offset + page.len();
                let next = (next_offset < total).then_some(Cursor::Offset {
                    offset: next_offset,
                    page: page_number + 1,
                });
                (page, next)
            }
        };
        // Every region of the project (Compute's, and those the simulation uses): the
        // scopes of an aggregated list only.
        let mut scopes: BTreeSet<String> = BTreeSet::new();
        if region.is_none() {
            scopes.extend(REGIONS.iter().map(|r| r.to_string()));
            scopes.extend(state.addresses.values().map(|a| a.region.clone()));
            scopes.extend(state.instances.values().map(|i| region_of_zone(&i.zone)));
        }
        (page, next.map(encode_token), scopes)
    };
    let mut out = match region {
        Some(region) => {
            let mut out = json!({
                "kind": "compute#addressList",
                "id": format!("projects/{}/regions/{region}/addresses", sh.links.project),
                "selfLink": format!("{}/addresses", sh.links.region(region)),
            });
            if page.is_empty() && next.is_some() {
                out["warning"] = no_results(&format!("regions/{region}"));
            }
            if !page.is_empty() {
                out["items"] = json!(page.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
            }
            out
        }
        None => {
            let mut scoped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (region, v) in page {
                scoped
                    .entry(format!("regions/{region}"))
                    .or_default()
                    .push(v);
            }
            let mut items = Map::new();
            for scope in std::iter::once("global".to_string())
                .chain(scopes.into_iter().map(|r| format!("regions/{r}")))
            {
                let entry = match scoped.remove(&scope) {
                    Some(addresses) => json!({ "addresses": addresses }),
                    None => json!({ "warning": no_results(&scope) }),
                };
                items.insert(scope, entry);
            }
            json!({
                "kind": "compute#addressAggregatedList",
                "id": format!("projects/{}/aggregated/addresses", sh.links.project),
                "selfLink": format!("{}/aggregated/addresses", sh.links.project()),
                "items": items,
            })
        }
    };
    if let Some(token) = next {
        out["nextPageToken"] = json!(token);
    }
    Ok(out)
}

fn no_results(scope: &str) -> Value {
    json!({
        "code": "NO_RESULTS_ON_PAGE",
        "message": format!("There are no results for scope '{scope}' on this page."),
        "data": [{"key": "scope", "value": scope}],
    })
}

/// Where the next page starts: after a key (by region and name, the default order), or
/// at an offset (an `orderBy`). Opaque to clients; the page number keeps every token
/// distinct (an empty page's token is not the token that asked for it).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cursor {
    After { key: (String, String), page: usize },
    Offset { offset: usize, page: usize },
}

fn invalid_token(token: &str) -> ApiError {
    ApiError::invalid_field("pageToken", token, "Invalid page token.")
}

fn encode_token(cursor: Cursor) -> String {
    let text = match cursor {
        Cursor::After {
            key: (region, name),
            page,
        } => format!("after:{region}:{name}:page:{page}"),
        Cursor::Offset { offset, page } => format!("offset:{offset}:page:{page}"),
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_token(token: &str) -> Option<Cursor> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (at, page) = text.rsplit_once(":page:")?;
    let page = page.parse().ok()?;
    if let Some(offset) = at.strip_prefix("offset:") {
        return Some(Cursor::Offset {
            offset: offset.parse().ok()?,
            page,
        });
    }
    let (region, name) = at.strip_prefix("after:")?.split_once(':')?;
    Some(Cursor::After {
        key: (region.to_string(), name.to_string()),
        page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let offset = Cursor::Offset {
            offset: 500,
            page: 1,
        };
        assert_eq!(decode_token(&encode_token(offset.clone())), Some(offset));
        let after = |page| Cursor::After {
            key: ("sim-1".into(), "pool-0499".into()),
            page,
        };
        assert_eq!(decode_token(&encode_token(after(2))), Some(after(2)));
        assert_ne!(encode_token(after(1)), encode_token(after(2)));
        assert_eq!(decode_token("garbage"), None);
    }
}
