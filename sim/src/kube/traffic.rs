//! Per-client accounting: requests and response body bytes (watch events included, as
//! they stream) for each client identity, so a harness can report what every agent
//! costs the API server.
//!
//! A client is named, in this order, by a token registered with
//! [`super::KubeSim::register_client`], by the RBAC user its token authenticates as, by
//! its `User-Agent`, or `anonymous`. Give every agent its own token (a kubeconfig per
//! node) to count per node: the User-Agent of one program is the same on every node.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, HttpBody as _};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;

use super::lock;

/// One client's traffic so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientTraffic {
    pub requests: u64,
    /// Response body bytes, watch streams included.
    pub response_bytes: u64,
}

#[derive(Default)]
struct Counter {
    requests: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Traffic {
    /// Registered tokens → client names.
    tokens: Mutex<HashMap<String, String>>,
    counters: Mutex<HashMap<String, Arc<Counter>>>,
}

impl Traffic {
    pub(crate) fn register(&self, token: &str, client: &str) {
        lock(&self.tokens).insert(token.to_string(), client.to_string());
    }

    pub(crate) fn registered_tokens(&self) -> Vec<String> {
        lock(&self.tokens).keys().cloned().collect()
    }

    /// Who is asking. `rbac_user` is the user RBAC authenticated the token as, if any.
    pub(crate) fn identify(
        &self,
        token: Option<&str>,
        rbac_user: Option<String>,
        headers: &HeaderMap,
    ) -> String {
        if let Some(name) = token.and_then(|t| lock(&self.tokens).get(t).cloned()) {
            return name;
        }
        if let Some(user) = rbac_user {
            return user;
        }
        headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|u| u.to_str().ok())
            .filter(|u| !u.is_empty())
            .unwrap_or("anonymous")
            .to_string()
    }

    fn counter(&self, client: &str) -> Arc<Counter> {
        lock(&self.counters)
            .entry(client.to_string())
            .or_default()
            .clone()
    }

    /// Counts one request and its response body (as it is sent).
    pub(crate) fn account(&self, client: &str, response: Response) -> Response {
        let counter = self.counter(client);
        counter.requests.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = response.into_parts();
        if let Some(n) = body.size_hint().exact() {
            counter.bytes.fetch_add(n, Ordering::Relaxed);
            return Response::from_parts(parts, body);
        }
        // A stream (a watch): count the bytes as they go out.
        let stream = body.into_data_stream().map(move |chunk| {
            if let Ok(bytes) = &chunk {
                counter
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            chunk
        });
        Response::from_parts(parts, Body::from_stream(stream))
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, ClientTraffic> {
        lock(&self.counters)
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    ClientTraffic {
                        requests: c.requests.load(Ordering::Relaxed),
                        response_bytes: c.bytes.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }

    pub(crate) fn reset(&self) {
        lock(&self.counters).clear();
    }
}
