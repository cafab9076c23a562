//! The made-up Nimbus cloud itself: a tiny HTTP server on 127.0.0.1 holding instances
//! and reserved addresses in memory, with the one rule pinip's safety needs from any
//! cloud: an address attached to one instance is never moved to another.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::wire::{
    AddressList, AddressView, AttachRequest, DetachRequest, ErrorBody, ErrorDetail, InstanceView,
    NicView,
};

#[derive(Default)]
struct CloudState {
    instances: BTreeMap<String, InstanceView>,
    addresses: BTreeMap<String, AddressView>,
    /// Answers to give instead of serving the next requests (tests' fault knob).
    scripted: VecDeque<(StatusCode, &'static str)>,
    /// Requests served, by `METHOD path-pattern`.
    calls: BTreeMap<String, u64>,
}

struct Shared {
    state: Mutex<CloudState>,
    token: String,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, CloudState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running Nimbus cloud. Cheap to clone; stops when [`NimbusCloud::shutdown`] is called.
#[derive(Clone)]
pub struct NimbusCloud {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl NimbusCloud {
    /// Serves on 127.0.0.1 (a free port), accepting only `token`.
    pub async fn start(token: &str) -> std::io::Result<NimbusCloud> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(CloudState::default()),
            token: token.to_string(),
        });
        let app = Router::new()
            .route("/v1/instances/{id}", get(describe_instance))
            .route("/v1/addresses", get(list_addresses))
            .route("/v1/addresses/{id}/attach", post(attach))
            .route("/v1/addresses/{id}/detach", post(detach))
            .with_state(Arc::clone(&shared));
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(until.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "nimbus cloud stopped serving");
            }
        });
        Ok(NimbusCloud { shared, addr, stop })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_instance(&self, id: &str, zone: &str, private_ip: IpAddr) {
        self.shared.state().instances.insert(
            id.to_string(),
            InstanceView {
                id: id.to_string(),
                zone: zone.to_string(),
                nic: NicView {
                    id: format!("{id}-nic0"),
                    private_ip,
                },
            },
        );
    }

    pub fn add_address(&self, id: &str, ip: IpAddr, labels: &[(&str, &str)]) {
        self.shared.state().addresses.insert(
            id.to_string(),
            AddressView {
                id: id.to_string(),
                ip,
                attached_to: None,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
    }

    /// Attach behind pinip's back (another tool, a human).
    pub fn attach_by_hand(&self, address: &str, instance: &str) {
        if let Some(a) = self.shared.state().addresses.get_mut(address) {
            a.attached_to = Some(instance.to_string());
        }
    }

    /// The addresses attached to `instance`.
    pub fn attached_to(&self, instance: &str) -> Vec<IpAddr> {
        self.shared
            .state()
            .addresses
            .values()
            .filter(|a| a.attached_to.as_deref() == Some(instance))
            .map(|a| a.ip)
            .collect()
    }

    pub fn address(&self, id: &str) -> Option<AddressView> {
        self.shared.state().addresses.get(id).cloned()
    }

    /// The next request is answered with `status` and error `code` instead of served.
    pub fn fail_next(&self, status: StatusCode, code: &'static str) {
        self.shared.state().scripted.push_back((status, code));
    }

    /// Requests served so far, by `METHOD /path/pattern`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.state().calls.clone()
    }

    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.into(),
        },
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Authentication, the call counter and scripted faults, before any handler runs: the
/// refusal to send instead of serving, if any.
fn refusal(shared: &Shared, headers: &HeaderMap, call: &str) -> Option<Response> {
    let mut state = shared.state();
    *state.calls.entry(call.to_string()).or_default() += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        None => {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "no bearer token",
            ))
        }
        Some(t) if t != shared.token => {
            return Some(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("{call} is not allowed for this token"),
            ))
        }
        Some(_) => {}
    }
    state
        .scripted
        .pop_front()
        .map(|(status, code)| error(status, code, "scripted failure"))
}

async fn describe_instance(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers, "GET /v1/instances/{id}") {
        return refused;
    }
    match shared.state().instances.get(&id) {
        Some(instance) => Json(instance.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "InstanceNotFound",
            format!("instance {id} does not exist"),
        ),
    }
}

async fn list_addresses(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers, "GET /v1/addresses") {
        return refused;
    }
    let mut wanted = Vec::new();
    for (key, value) in query {
        if key != "label" {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("unknown parameter {key}"),
            );
        }
        match value.split_once('=') {
            Some((k, v)) => wanted.push((k.to_string(), v.to_string())),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("label {value:?} is not K=V"),
                )
            }
        }
    }
    let addresses = shared
        .state()
        .addresses
        .values()
        .filter(|a| wanted.iter().all(|(k, v)| a.labels.get(k) == Some(v)))
        .cloned()
        .collect();
    Json(AddressList { addresses }).into_response()
}

async fn attach(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<AttachRequest>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers, "POST /v1/addresses/{id}/attach") {
        return refused;
    }
    let mut state = shared.state();
    if !state.instances.contains_key(&request.instance) {
        return error(
            StatusCode::NOT_FOUND,
            "InstanceNotFound",
            format!("instance {} does not exist", request.instance),
        );
    }
    let Some(address) = state.addresses.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "AddressNotFound",
            format!("address {id} does not exist"),
        );
    };
    match address.attached_to.as_deref() {
        // Never move an attached address: the guard pinip's safety argument relies on.
        Some(other) if other != request.instance => {
            return error(
                StatusCode::CONFLICT,
                "AddressInUse",
                format!("address {id} is attached to {other}"),
            )
        }
        _ => {}
    }
    address.attached_to = Some(request.instance);
    address.labels.extend(request.labels);
    Json(address.clone()).into_response()
}

async fn detach(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<DetachRequest>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers, "POST /v1/addresses/{id}/detach") {
        return refused;
    }
    let mut state = shared.state();
    let Some(address) = state.addresses.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "AddressNotFound",
            format!("address {id} does not exist"),
        );
    };
    // Only from the instance named: an address that moved on is someone else's now.
    match address.attached_to.as_deref() {
        Some(current) if current == request.instance => address.attached_to = None,
        Some(_) => return Json(address.clone()).into_response(),
        None => {}
    }
    for key in &request.remove_labels {
        address.labels.remove(key);
    }
    Json(address.clone()).into_response()
}
