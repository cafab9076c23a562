//! How many Nodes the cluster has, without reading them: one list of one Node's
//! metadata (`limit=1`), whose `remainingItemCount` counts the rest. Constant work for
//! the API server whatever the cluster's size; the agents that share a cloud's rate
//! limit pace themselves by it once throttled.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

/// The number of Nodes, or None when the server did not count (a list served without
/// pagination, or an old server).
pub async fn count_nodes(client: &kube::Client) -> Result<Option<u64>, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let page = nodes.list_metadata(&ListParams::default().limit(1)).await?;
    let listed = page.items.len() as u64;
    Ok(match page.metadata.remaining_item_count {
        Some(rest) => Some(listed + u64::try_from(rest).unwrap_or(0)),
        // The whole list fit in the page: that is the count.
        None if page.metadata.continue_.as_deref().unwrap_or("").is_empty() => Some(listed),
        None => None,
    })
}
