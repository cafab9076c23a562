//! Watch streams: newline-delimited `{"type":..,"object":..}` JSON, starting
//! from a snapshot or a resourceVersion, with selectors, bookmarks, a
//! timeout and 410 Expired for versions older than the kept history.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::events::view;
use super::kind::Kind;
use super::meta;
use super::request::{Query, RequestInfo};
use super::selector::{FieldSelector, LabelSelector, Selectors};
use super::status::ApiError;
use super::store::{Change, EventType, Store, Subscription, WatchStart};
use super::table::Repr;

/// Watches end after this long unless `timeoutSeconds` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Annotation on the bookmark that ends `sendInitialEvents`.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// A watch request's parameters.
pub struct WatchParams {
    /// `None`: start with ADDED events for every current object.
    pub from: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub selectors: Selectors,
}

impl WatchParams {
    pub fn parse(info: &RequestInfo, query: &Query) -> Result<Self, ApiError> {
        let mut selectors = selectors(info, query)?;
        if let Some(name) = &info.name {
            // Watching `/{plural}/{name}` is a watch with a name selector.
            let by_name = FieldSelector::parse(info.kind, &format!("metadata.name={name}"))?;
            selectors.fields = selectors.fields.and(by_name);
        }
        let send_initial_events =
            query.get("sendInitialEvents").map(String::as_str) == Some("true");
        let from =
            match query.get("resourceVersion").map(String::as_str) {
                _ if send_initial_events => None,
                None | Some("") | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!("invalid resource version: {rv:?}"))
                })?),
            };
        let timeout = match query.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(
                t.parse::<u64>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {t:?}")))?,
            ),
            None => DEFAULT_TIMEOUT,
        };
        Ok(WatchParams {
            from,
            send_initial_events,
            bookmarks: query.get("allowWatchBookmarks").map(String::as_str) == Some("true"),
            timeout,
            selectors,
        })
    }
}

/// The label and field selectors of a list or watch request.
pub fn selectors(info: &RequestInfo, query: &Query) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(
            info.kind,
            query.get("fieldSelector").map_or("", String::as_str),
        )?,
    })
}

/// Decides what one watch sends.
struct Filter {
    kind: Kind,
    namespace: Option<String>,
    selectors: Selectors,
    repr: Repr,
    /// Changes at or below this version were already covered.
    after_rv: u64,
}

impl Filter {
    fn wants(&self, stored: &Value) -> Option<Value> {
        if let Some(ns) = &self.namespace {
            if meta::namespace(stored) != Some(ns.as_str()) {
                return None;
            }
        }
        // Hot path: every change is offered to every watch of its kind (1000 agents each
        // watching their own Node). Match on the stored object first and clone only what
        // is sent; only events.k8s.io needs the converted view to match.
        if self.kind != Kind::EventV1 {
            return self.selectors.matches(stored).then(|| stored.clone());
        }
        let v = view(self.kind, stored.clone());
        self.selectors.matches(&v).then_some(v)
    }

    /// The event (if any) a change produces for this watch. An object
    /// entering or leaving the selection shows up as ADDED or DELETED.
    fn event(&self, c: &Change) -> Option<Bytes> {
        if c.kind != self.kind.storage() || c.rv <= self.after_rv {
            return None;
        }
        let now = self.wants(&c.object);
        let (ty, obj) = match c.event {
            EventType::Added => (EventType::Added, now?),
            EventType::Deleted => (EventType::Deleted, now?),
            EventType::Modified => {
                let before = c.prev.as_ref().and_then(|p| self.wants(p)).is_some();
                match (before, now) {
                    (true, Some(o)) => (EventType::Modified, o),
                    (false, Some(o)) => (EventType::Added, o),
                    (true, None) => (EventType::Deleted, view(self.kind, c.object.clone())),
                    (false, None) => return None,
                }
            }
        };
        Some(line(
            ty.as_str(),
            super::table::one(self.repr, self.kind, obj),
        ))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let def = self.kind.def();
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": def.kind_name, "apiVersion": def.api_version(), "metadata": metadata}),
        )
    }
}

fn line(ty: &str, object: Value) -> Bytes {
    let mut buf = serde_json::to_vec(&json!({"type": ty, "object": object})).unwrap_or_default();
    buf.push(b'\n');
    Bytes::from(buf)
}

fn streaming(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Starts a watch and returns its streaming response.
pub fn serve(
    store: &Arc<Store>,
    info: &RequestInfo,
    params: WatchParams,
    repr: Repr,
    shutdown: CancellationToken,
    bookmark_every: Duration,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    // A watch of one object hears only about it, when its key is complete (a
    // namespaced kind watched across namespaces could match any namespace's object).
    let one_object = params
        .selectors
        .fields
        .required("metadata.name")
        .filter(|_| info.ns().is_some() || !info.kind.def().namespaced);
    let sub = match store.subscribe(info.kind, info.ns(), one_object, params.from) {
        Ok(sub) => sub,
        Err(e) => {
            // Like the real server: 200, then one ERROR event (410 Expired).
            let _ = tx.try_send(line("ERROR", e.to_status()));
            return streaming(rx);
        }
    };
    let filter = Filter {
        kind: info.kind,
        namespace: info.namespace.clone(),
        selectors: params.selectors,
        repr,
        after_rv: params.from.unwrap_or(0),
    };
    let task = Task {
        store: store.clone(),
        filter,
        send_initial_events: params.send_initial_events,
        bookmarks: params.bookmarks,
        timeout: params.timeout,
        bookmark_every,
        shutdown,
    };
    tokio::spawn(run(task, tx, sub));
    streaming(rx)
}

/// One running watch's settings.
struct Task {
    store: Arc<Store>,
    filter: Filter,
    send_initial_events: bool,
    bookmarks: bool,
    timeout: Duration,
    bookmark_every: Duration,
    shutdown: CancellationToken,
}

async fn run(task: Task, tx: mpsc::Sender<Bytes>, sub: Subscription) {
    let Task {
        store,
        filter,
        send_initial_events,
        bookmarks,
        timeout,
        bookmark_every,
        shutdown,
    } = task;
    let mut rx = sub.rx;
    // Every change up to `seen` has been sent (or filtered out).
    let mut seen = sub.current_rv;
    let initial: Vec<Bytes> = match sub.start {
        WatchStart::Snapshot(objects) => objects
            .iter()
            .filter_map(|o| filter.wants(o))
            .map(|o| line("ADDED", super::table::one(filter.repr, filter.kind, o)))
            .collect(),
        WatchStart::Backlog(changes) => changes.iter().filter_map(|c| filter.event(c)).collect(),
    };
    for l in initial {
        if tx.send(l).await.is_err() {
            return;
        }
    }
    if send_initial_events && tx.send(filter.bookmark(seen, true)).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = shutdown.cancelled() => break,
            _ = tx.closed() => break,
            _ = tick.tick(), if bookmarks => {
                // Take queued changes first so the bookmark's version is honest. A
                // watch hears only of the changes it may want, so its progress is the
                // store's version read before the queue is emptied: every change up
                // to that version was queued before the read.
                seen = seen.max(store.current_rv());
                loop {
                    match rx.try_recv() {
                        Ok(c) => {
                            seen = seen.max(c.rv);
                            if let Some(l) = filter.event(&c) {
                                if tx.send(l).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => return,
                    }
                }
                if tx.send(filter.bookmark(seen, false)).await.is_err() {
                    return;
                }
            }
            r = rx.recv() => match r {
                Ok(c) => {
                    seen = seen.max(c.rv);
                    if let Some(l) = filter.event(&c) {
                        if tx.send(l).await.is_err() {
                            return;
                        }
                    }
                }
                // Too slow to keep up, or the store is gone: end the watch;
                // the client re-watches from its last version.
                Err(_) => break,
            },
        }
    }
}
