//! The Kubernetes API simulator against the real kube-rs client (over HTTP on
//! loopback): CRUD semantics, error codes, watches and injected faults.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Config};
use pinip_sim::kube::{Faults, Kind, KubeSim};
use serde_json::json;

type TestResult = anyhow::Result<()>;

/// A kube client configured the way pinip's would be: from the kubeconfig
/// the simulator writes.
async fn client(sim: &KubeSim) -> anyhow::Result<Client> {
    Ok(Client::try_from(config(sim).await?)?)
}

async fn config(sim: &KubeSim) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path)?;
    let kubeconfig = Kubeconfig::read_from(&path)?;
    Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

/// A client that does not retry 503s itself, to observe every injected fault.
async fn client_without_retries(sim: &KubeSim) -> anyhow::Result<Client> {
    let mut config = config(sim).await?;
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}

fn lease(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    }
}

/// The API error's (code, reason), or a description of what came instead.
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => (0, format!("not an API error: {other:?}")),
    }
}

#[tokio::test]
async fn lease_crud_and_conflicts() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.upsert_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pinip"}}),
    )?;
    let leases: Api<Lease> = Api::namespaced(client(&sim).await?, "pinip");

    let created = leases
        .create(&PostParams::default(), &lease("l1", "a"))
        .await?;
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    let rv1 = meta.resource_version.clone().unwrap_or_default();
    assert!(rv1.parse::<u64>()? > 0);

    let got = leases.get("l1").await?;
    assert_eq!(got.metadata.uid, created.metadata.uid);

    // Replace with the current version succeeds and bumps it.
    let mut next = got.clone();
    next.spec.get_or_insert_default().holder_identity = Some("b".into());
    let replaced = leases.replace("l1", &PostParams::default(), &next).await?;
    let rv2 = replaced
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    assert!(rv2.parse::<u64>()? > rv1.parse::<u64>()?);

    // Replace with the stale version is a 409 Conflict with the real message.
    let stale = leases.replace("l1", &PostParams::default(), &got).await;
    match &stale {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(s.message.contains("Operation cannot be fulfilled on leases.coordination.k8s.io \"l1\": the object has been modified; please apply your changes to the latest version and try again"), "{}", s.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Without a resourceVersion, replace is unconditional.
    let mut blind = lease("l1", "c");
    blind.metadata.resource_version = None;
    leases.replace("l1", &PostParams::default(), &blind).await?;

    // Create twice: AlreadyExists.
    let again = leases
        .create(&PostParams::default(), &lease("l1", "x"))
        .await;
    assert_eq!(api_error(again), (409, "AlreadyExists".into()));

    // generateName picks a fresh name.
    let mut generated = lease("", "g");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = leases.create(&PostParams::default(), &generated).await?;
    assert!(g
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("gen-") && n.len() > 4));

    // Delete with stale preconditions: 409; with matching ones: gone.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: Some(rv1.clone()),
            uid: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        api_error(leases.delete("l1", &dp).await),
        (409, "Conflict".into())
    );
    let dp_uid = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: None,
            uid: Some("not-the-uid".into()),
        }),
        ..Default::default()
    };
    assert_eq!(
        api_error(leases.delete("l1", &dp_uid).await),
        (409, "Conflict".into())
    );
    let current = leases.get("l1").await?;
    let dp_ok = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: current.metadata.resource_version.clone(),
            uid: current.metadata.uid.clone(),
        }),
        ..Default::default()
    };
    leases.delete("l1", &dp_ok).await?;

    // Missing objects: 404 NotFound for get and delete.
    assert_eq!(api_error(leases.get("l1").await), (404, "NotFound".into()));
    assert_eq!(
        api_error(leases.delete("l1", &DeleteParams::default()).await),
        (404, "NotFound".into())
    );

    // Merge patch works on leases too, and a patch pinned to an old version conflicts.
    let patched = leases
        .patch(
            g.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": "p"}})),
        )
        .await?;
    assert_eq!(
        patched.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("p")
    );
    let pinned = leases
        .patch(
            g.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": "1"}, "spec": {"holderIdentity": "q"}}),
            ),
        )
        .await;
    assert_eq!(api_error(pinned), (409, "Conflict".into()));

    // Label-selected list, namespaced and across namespaces.
    let mut labelled = lease("l2", "a");
    labelled.metadata.labels = Some(BTreeMap::from([("app".into(), "pinip".into())]));
    leases.create(&PostParams::default(), &labelled).await?;
    let listed = leases
        .list(&ListParams::default().labels("app=pinip"))
        .await?;
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|l| l.metadata.name.clone())
        .collect();
    assert_eq!(names, ["l2"]);
    assert!(listed.metadata.resource_version.is_some());
    let all: Api<Lease> = Api::all(client(&sim).await?);
    assert_eq!(all.list(&ListParams::default()).await?.items.len(), 2);
    assert_eq!(sim.list(Kind::Lease, Some("pinip")).len(), 2);

    // Counters saw the traffic.
    let counts = sim.request_counts();
    assert!(counts.verb("create") >= 4 && counts.verb("delete") >= 4);
    assert!(counts.resource("leases") >= counts.verb("create"));
    sim.shutdown();
    Ok(())
}

#[tokio::test]
async fn nodes_get_patch_list() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node(
        "n1",
        Some("aws:///eu-west-1a/i-1"),
        BTreeMap::from([("pool".into(), "edge".into())]),
        vec![json!({"key": "dedicated", "value": "edge", "effect": "NoSchedule"})],
    );
    sim.add_node("n2", None, BTreeMap::new(), vec![]);
    let nodes: Api<Node> = Api::all(client(&sim).await?);

    let n1 = nodes.get("n1").await?;
    let spec = n1.spec.clone().unwrap_or_default();
    assert_eq!(spec.provider_id.as_deref(), Some("aws:///eu-west-1a/i-1"));
    assert_eq!(spec.taints.map(|t| t.len()), Some(1));
    assert_eq!(
        n1.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pool"))
            .map(String::as_str),
        Some("edge")
    );

    // Merge patch of labels and annotations (null removes a label).
    let patched = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {
                "labels": {"pool": null, "pinip.io/ip": "203.0.113.7"},
                "annotations": {"pinip.io/assigned": "203.0.113.7"},
            }})),
        )
        .await?;
    let labels = patched.metadata.labels.clone().unwrap_or_default();
    assert!(!labels.contains_key("pool"));
    assert_eq!(
        labels.get("pinip.io/ip").map(String::as_str),
        Some("203.0.113.7")
    );
    assert!(patched
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("pinip.io/assigned"));
    // The main resource cannot change status; the status subresource can.
    let ready_before = patched.status.clone();
    let no_status_change = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": []}})),
        )
        .await?;
    assert_eq!(no_status_change.status, ready_before);
    let status_changed = nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
        )
        .await?;
    let conditions = status_changed
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert_eq!(conditions.first().map(|c| c.status.as_str()), Some("False"));

    // JSON patch: a passing `test` applies, a failing one is 422 Invalid.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/pinip.io~1ip", "value": "203.0.113.7"},
        {"op": "add", "path": "/metadata/labels/checked", "value": "yes"},
    ]))?;
    let after = nodes
        .patch("n1", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await?;
    assert!(after
        .metadata
        .labels
        .unwrap_or_default()
        .contains_key("checked"));
    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/pinip.io~1ip", "value": "198.51.100.1"},
        {"op": "remove", "path": "/metadata/labels/pinip.io~1ip"},
    ]))?;
    let failed = nodes
        .patch("n1", &PatchParams::default(), &Patch::Json::<()>(failing))
        .await;
    assert_eq!(api_error(failed), (422, "Invalid".into()));

    // List with a field selector and with label selectors.
    let by_name = nodes
        .list(&ListParams::default().fields("metadata.name=n2"))
        .await?;
    assert_eq!(by_name.items.len(), 1);
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("n2"));
    let by_label = nodes.list(&ListParams::default().labels("checked")).await?;
    assert_eq!(by_label.items.len(), 1);
    let not_label = nodes
        .list(&ListParams::default().labels("checked!=yes"))
        .await?;
    assert_eq!(not_label.items.len(), 1);
    assert_eq!(not_label.items[0].metadata.name.as_deref(), Some("n2"));
    let unsupported = nodes
        .list(&ListParams::default().fields("spec.providerID=x"))
        .await;
    assert_eq!(api_error(unsupported), (400, "BadRequest".into()));

    // Pagination with limit/continue.
    let page = nodes.list(&ListParams::default().limit(1)).await?;
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().unwrap_or_default();
    let rest = nodes
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await?;
    assert_eq!(rest.items.len(), 1);
    assert_ne!(rest.items[0].metadata.name, page.items[0].metadata.name);
    assert!(rest.metadata.continue_.is_none());
    // The rest is counted for a plain list (a metadata-only one too), never for a list
    // with selectors (ListMeta.remainingItemCount).
    assert_eq!(page.metadata.remaining_item_count, Some(1));
    let metadata_page = nodes.list_metadata(&ListParams::default().limit(1)).await?;
    assert_eq!(metadata_page.metadata.remaining_item_count, Some(1));
    let selected = nodes
        .list(&ListParams::default().limit(1).labels("!absent"))
        .await?;
    assert_eq!(selected.items.len(), 1);
    assert!(selected.metadata.continue_.is_some());
    assert_eq!(selected.metadata.remaining_item_count, None);

    // Handle-side changes are visible over HTTP.
    assert!(sim
        .update_node("n2", |n| n["metadata"]["labels"]["zone"] = json!("z1"))
        .is_some());
    let n2 = nodes.get("n2").await?;
    assert_eq!(
        n2.metadata
            .labels
            .unwrap_or_default()
            .get("zone")
            .map(String::as_str),
        Some("z1")
    );
    assert!(sim.delete_node("n2"));
    assert!(!sim.delete_node("n2"));
    assert_eq!(api_error(nodes.get("n2").await), (404, "NotFound".into()));
    sim.shutdown();
    Ok(())
}

#[tokio::test]
async fn recorder_creates_then_patches_series() -> TestResult {
    let sim = KubeSim::start().await?;
    let node = sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let client = client(&sim).await?;
    let recorder = Recorder::new(client.clone(), Reporter::from("pinip"));
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some("n1".into()),
        uid: node["metadata"]["uid"].as_str().map(String::from),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Normal,
        reason: "IpAssigned".into(),
        note: Some("203.0.113.7 pinned".into()),
        action: "Assign".into(),
        secondary: None,
    };
    recorder.publish(&event, &regarding).await?;
    recorder.publish(&event, &regarding).await?;

    let counts = sim.request_counts();
    assert_eq!((counts.verb("create"), counts.verb("patch")), (1, 1));
    let events: Api<EventV1> = Api::namespaced(client.clone(), "default");
    let listed = events.list(&ListParams::default()).await?;
    assert_eq!(listed.items.len(), 1);
    let e = &listed.items[0];
    assert_eq!(e.reason.as_deref(), Some("IpAssigned"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
    // The same event, seen through core/v1 as kubectl describe would.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::all(client);
    let core_events = core
        .list(&ListParams::default().fields("involvedObject.name=n1"))
        .await?;
    assert_eq!(core_events.items.len(), 1);
    assert_eq!(
        core_events.items[0].message.as_deref(),
        Some("203.0.113.7 pinned")
    );
    assert_eq!(sim.list(Kind::EventV1, None).len(), 1);
    sim.shutdown();
    Ok(())
}

type NodeEvents = futures::stream::BoxStream<'static, Result<watcher::Event<Node>, watcher::Error>>;

async fn next(stream: &mut NodeEvents) -> anyhow::Result<watcher::Event<Node>> {
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
        Ok(Ok(Some(e))) => Ok(e),
        Ok(other) => Err(anyhow::anyhow!("watch ended: {other:?}")),
        Err(_) => Err(anyhow::anyhow!("timed out waiting for a watch event")),
    }
}

#[tokio::test]
async fn runtime_watcher_sees_add_modify_delete() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node("other", None, BTreeMap::new(), vec![]);
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let nodes: Api<Node> = Api::all(client(&sim).await?);
    let config = watcher::Config::default().fields("metadata.name=n1");
    let mut stream = watcher(nodes, config).boxed();

    let name = |n: &Node| n.metadata.name.clone().unwrap_or_default();

    assert!(matches!(next(&mut stream).await?, watcher::Event::Init));
    match next(&mut stream).await? {
        watcher::Event::InitApply(n) => assert_eq!(name(&n), "n1"),
        other => panic!("expected InitApply(n1), got {other:?}"),
    }
    assert!(matches!(next(&mut stream).await?, watcher::Event::InitDone));

    // Changes to a node outside the selector are not seen.
    sim.update_node("other", |n| n["metadata"]["labels"]["x"] = json!("1"));
    sim.update_node("n1", |n| n["metadata"]["labels"]["x"] = json!("2"));
    match next(&mut stream).await? {
        watcher::Event::Apply(n) => {
            assert_eq!(name(&n), "n1");
            assert_eq!(
                n.metadata
                    .labels
                    .unwrap_or_default()
                    .get("x")
                    .map(String::as_str),
                Some("2")
            );
        }
        other => panic!("expected Apply(n1), got {other:?}"),
    }
    assert!(sim.delete_node("n1"));
    match next(&mut stream).await? {
        watcher::Event::Delete(n) => assert_eq!(name(&n), "n1"),
        other => panic!("expected Delete(n1), got {other:?}"),
    }
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    match next(&mut stream).await? {
        watcher::Event::Apply(n) => assert_eq!(name(&n), "n1"),
        other => panic!("expected Apply(n1) after re-add, got {other:?}"),
    }
    sim.shutdown();
    Ok(())
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    sim.add_node("n2", None, BTreeMap::new(), vec![]);
    let nodes: Api<Node> = Api::all(client(&sim).await?);
    let config = watcher::Config::default().streaming_lists();
    let mut stream: NodeEvents = watcher(nodes, config).boxed();
    assert!(matches!(next(&mut stream).await?, watcher::Event::Init));
    let mut initial = Vec::new();
    loop {
        match next(&mut stream).await? {
            watcher::Event::InitApply(n) => initial.push(n.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["n1", "n2"]);
    sim.delete_node("n2");
    assert!(matches!(
        next(&mut stream).await?,
        watcher::Event::Delete(_)
    ));
    sim.shutdown();
    Ok(())
}

#[tokio::test]
async fn raw_watch_event_types_bookmarks_and_expiry() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.set_bookmark_interval(Duration::from_millis(100));
    sim.add_node(
        "n1",
        None,
        BTreeMap::from([("role".into(), "edge".into())]),
        vec![],
    );
    let nodes: Api<Node> = Api::all(client(&sim).await?);
    let rv = nodes
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();

    let wp = WatchParams::default().labels("role=edge").timeout(10);
    let mut events = nodes.watch(&wp, &rv).await?.boxed();
    sim.add_node(
        "n2",
        None,
        BTreeMap::from([("role".into(), "edge".into())]),
        vec![],
    );
    sim.update_node("n2", |n| n["metadata"]["annotations"] = json!({"a": "b"}));
    // Leaving the selector reads as DELETED for this watch.
    sim.update_node("n1", |n| n["metadata"]["labels"]["role"] = json!("core"));
    sim.delete_node("n2");

    let mut seen = Vec::new();
    let mut bookmark_rv = None;
    while seen.len() < 4 || bookmark_rv.is_none() {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .map_err(|_| anyhow::anyhow!("timed out; saw {seen:?}"))??
            .ok_or_else(|| anyhow::anyhow!("watch ended; saw {seen:?}"))?;
        let name = |n: &Node| n.metadata.name.clone().unwrap_or_default();
        match ev {
            WatchEvent::Added(n) => seen.push(format!("ADDED {}", name(&n))),
            WatchEvent::Modified(n) => seen.push(format!("MODIFIED {}", name(&n))),
            WatchEvent::Deleted(n) => seen.push(format!("DELETED {}", name(&n))),
            WatchEvent::Bookmark(b) => bookmark_rv = Some(b.metadata.resource_version),
            WatchEvent::Error(e) => anyhow::bail!("watch error {e:?}"),
        }
    }
    assert_eq!(
        seen,
        ["ADDED n2", "MODIFIED n2", "DELETED n1", "DELETED n2"]
    );
    assert_eq!(bookmark_rv, Some(sim.resource_version().to_string()));

    // From version 0: the current objects as ADDED first.
    let mut from_zero = nodes
        .watch(&WatchParams::default().timeout(1), "0")
        .await?
        .boxed();
    match from_zero.try_next().await? {
        Some(WatchEvent::Added(n)) => assert_eq!(n.metadata.name.as_deref(), Some("n1")),
        other => panic!("expected ADDED n1, got {other:?}"),
    }
    // The stream ends by itself after timeoutSeconds.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while from_zero.try_next().await?.is_some() {}
        Ok::<_, kube::Error>(())
    })
    .await;
    assert!(
        matches!(ended, Ok(Ok(()))),
        "watch did not end after its timeout"
    );

    // Push the first changes out of the kept history, then resume from them.
    for i in 0..10_001 {
        sim.update_node("n1", |n| {
            n["metadata"]["annotations"] = json!({"i": i.to_string()})
        });
    }
    let mut expired = nodes.watch(&WatchParams::default(), &rv).await?.boxed();
    match expired.try_next().await? {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    sim.shutdown();
    Ok(())
}

#[tokio::test]
async fn shutdown_ends_open_watches() -> TestResult {
    let sim = KubeSim::start().await?;
    let nodes: Api<Node> = Api::all(client(&sim).await?);
    let mut events = nodes.watch(&WatchParams::default(), "0").await?.boxed();
    sim.shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = events.try_next().await {}
    })
    .await;
    assert!(ended.is_ok(), "watch still open after shutdown");
    Ok(())
}

#[tokio::test]
async fn faults_every_request_fails_with_error_rate_one() -> TestResult {
    let sim = KubeSim::start().await?;
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let nodes: Api<Node> = Api::all(client_without_retries(&sim).await?);
    sim.set_faults(Faults {
        error_rate: 1.0,
        seed: 42,
        ..Faults::default()
    });
    let mut codes = Vec::new();
    for _ in 0..20 {
        let (code, reason) = api_error(nodes.get("n1").await);
        assert!(
            (code, reason.as_str()) == (500, "InternalError")
                || (code, reason.as_str()) == (503, "ServiceUnavailable"),
            "{code} {reason}"
        );
        codes.push(code);
    }
    assert!(codes.contains(&500) && codes.contains(&503), "{codes:?}");

    // kube's default client retries 503s (honouring Retry-After) but not 500s.
    let retrying: Api<Node> = Api::all(client(&sim).await?);
    assert_eq!(
        api_error(retrying.get("n1").await),
        (500, "InternalError".into())
    );

    // No faults again: requests are served.
    sim.set_faults(Faults::default());
    nodes.get("n1").await?;
    sim.shutdown();
    Ok(())
}

/// Outcomes of a fixed request sequence under seeded faults.
async fn fault_run(seed: u64) -> anyhow::Result<Vec<(u16, String)>> {
    let sim = KubeSim::start().await?;
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let nodes: Api<Node> = Api::all(client_without_retries(&sim).await?);
    sim.set_faults(Faults {
        error_rate: 0.3,
        conflict_rate: 0.4,
        seed,
        latency: Duration::from_millis(1),
        ..Faults::default()
    });
    let mut outcomes = Vec::new();
    for i in 0..40 {
        let result = if i % 2 == 0 {
            nodes.get("n1").await.map(|_| ())
        } else {
            let patch = Patch::Merge(json!({"metadata": {"labels": {"i": i.to_string()}}}));
            nodes
                .patch("n1", &PatchParams::default(), &patch)
                .await
                .map(|_| ())
        };
        outcomes.push(match result {
            Ok(()) => (200, String::new()),
            Err(e) => api_error(Err::<(), _>(e)),
        });
    }
    sim.shutdown();
    Ok(outcomes)
}

#[tokio::test]
async fn faults_are_reproducible_by_seed() -> TestResult {
    let a = fault_run(7).await?;
    let b = fault_run(7).await?;
    assert_eq!(a, b);
    let kinds: std::collections::BTreeSet<u16> = a.iter().map(|(c, _)| *c).collect();
    assert!(kinds.contains(&200) && kinds.contains(&409), "{a:?}");
    assert!(kinds.contains(&500) || kinds.contains(&503), "{a:?}");
    // Conflicts only hit writes (odd requests are patches).
    for (i, (code, reason)) in a.iter().enumerate() {
        if *code == 409 {
            assert_eq!((i % 2, reason.as_str()), (1, "Conflict"));
        }
    }
    assert_ne!(a, fault_run(8).await?);
    Ok(())
}

#[tokio::test]
async fn malformed_requests_get_status_errors() -> TestResult {
    let sim = KubeSim::start().await?;
    let client = client(&sim).await?;
    let send = |method: &str, path: &str, ct: &str, body: &'static str| {
        let req = http_request(method, path, ct, body);
        let client = client.clone();
        async move {
            match req {
                Ok(req) => api_error(client.request::<serde_json::Value>(req).await),
                Err(e) => (0, e.to_string()),
            }
        }
    };
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    assert_eq!(
        send("POST", leases, "application/json", "{not json").await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send("POST", leases, "application/json", "[1,2]").await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send(
            "POST",
            leases,
            "application/json",
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"x"}}"#
        )
        .await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send("POST", leases, "application/json", r#"{"metadata":{}}"#).await,
        (422, "Invalid".into())
    );
    assert_eq!(
        send("GET", "/api/v1/secrets/x", "", "").await,
        (404, "NotFound".into())
    );
    assert_eq!(send("GET", "/nope", "", "").await, (404, "NotFound".into()));
    assert_eq!(
        send("POST", "/api/v1/nodes/x", "application/json", "{}").await,
        (405, "MethodNotAllowed".into())
    );
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    assert_eq!(
        send(
            "PATCH",
            "/api/v1/nodes/n1",
            "application/json-patch+json",
            "{}"
        )
        .await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send(
            "PATCH",
            "/api/v1/nodes/n1",
            "application/apply-patch+yaml",
            "{}"
        )
        .await,
        (422, "Invalid".into()),
        "an apply without fieldManager is refused (PatchOptions validation)"
    );
    assert_eq!(
        send("GET", "/api/v1/nodes?labelSelector=a%20in%20b", "", "").await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send("GET", "/api/v1/nodes?watch=1&resourceVersion=abc", "", "").await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send("DELETE", "/api/v1/nodes/n1", "application/json", "{bad").await,
        (400, "BadRequest".into())
    );
    // Still serving after all that.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.get("n1").await?;
    let v = client.apiserver_version().await?;
    assert_eq!(v.major, "1");
    sim.shutdown();
    Ok(())
}

fn http_request(
    method: &str,
    path: &str,
    content_type: &str,
    body: &'static str,
) -> anyhow::Result<axum::http::Request<Vec<u8>>> {
    let mut b = axum::http::Request::builder().method(method).uri(path);
    if !content_type.is_empty() {
        b = b.header("content-type", content_type);
    }
    Ok(b.body(body.as_bytes().to_vec())?)
}

/// A timeout after the write: the client sees 504, the object changed anyway.
#[tokio::test]
async fn a_write_can_land_and_still_answer_504() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    sim.add_node("n1", None, BTreeMap::new(), vec![]);
    let nodes: Api<Node> = Api::all(client_without_retries(&sim).await?);
    sim.set_faults(Faults {
        timeout_after_write_rate: 1.0,
        ..Faults::default()
    });
    let patch = Patch::Merge(json!({"metadata": {"labels": {"landed": "yes"}}}));
    let answer = nodes.patch("n1", &PatchParams::default(), &patch).await;
    match answer {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (504, "Timeout"))
        }
        other => panic!("expected a 504, got {other:?}"),
    }
    // Reads are not affected, and show the write.
    let node = nodes.get("n1").await?;
    assert_eq!(
        node.metadata
            .labels
            .unwrap_or_default()
            .get("landed")
            .map(String::as_str),
        Some("yes")
    );
    Ok(())
}
