//! The simulated fleet through the real kube-rs client stack, over HTTPS on 127.0.0.1.

use crate::common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use meshdeck::sim::FaultSpec;
use serde_json::json;
use std::time::{Duration, Instant};

fn vs_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
    )
}

fn vs(name: &str, subset: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "bookstore"},
        "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}]}
    })
}

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn version_and_discovery_serve_core_apps_istio_and_policy_kinds() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let v = c.apiserver_version().await.expect("version");
    assert_eq!(v.git_version, "v1.33.4");
    let d = kube::discovery::Discovery::new(c)
        .run()
        .await
        .expect("discovery");
    let groups: Vec<String> = d.groups().map(|g| g.name().to_string()).collect();
    for g in [
        "",
        "apps",
        "authorization.k8s.io",
        "apiextensions.k8s.io",
        "networking.istio.io",
        "security.istio.io",
        "networking.mesh.gloo.solo.io",
        "rbac.enterprise.mesh.gloo.solo.io",
    ] {
        assert!(
            groups.iter().any(|x| x == g),
            "group {g:?} missing from {groups:?}"
        );
    }
    let (ar, caps) = d
        .resolve_gvk(&GroupVersionKind::gvk(
            "security.istio.io",
            "v1",
            "AuthorizationPolicy",
        ))
        .expect("AuthorizationPolicy served");
    assert_eq!(ar.plural, "authorizationpolicies");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        d.resolve_gvk(&GroupVersionKind::gvk(
            "networking.istio.io",
            "v1alpha3",
            "VirtualService"
        ))
        .is_some()
    );
}

#[tokio::test]
async fn lists_paginate_with_continue_and_filter_by_labels_and_fields() {
    let f = fleet(1).await;
    let pods: Api<Pod> = Api::all(client(&f, "eu-west").await);
    let all = pods.list(&ListParams::default()).await.expect("list");
    let truth = f.clusters[0].state.store.count("pods");
    assert_eq!(all.items.len(), truth);
    assert!(truth > 20);
    // pages of 7, following continue tokens, give the same items in the same order
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(7);
    let mut pages = 0;
    loop {
        let page = pods.list(&lp).await.expect("page");
        assert!(page.items.len() <= 7);
        pages += 1;
        seen.extend(
            page.items
                .iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default()),
        );
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => {
                assert!(page.metadata.remaining_item_count.unwrap_or(0) > 0);
                lp = ListParams::default().limit(7).continue_token(&c);
            }
            None => break,
        }
    }
    let names: Vec<String> = all
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(seen, names);
    assert_eq!(pages, truth.div_ceil(7));
    // a broken continue token is a 400
    let e = api_error(
        pods.list(&ListParams::default().continue_token("garbage"))
            .await
            .expect_err("bad token"),
    );
    assert_eq!(e.code, 400);

    let reviews = pods
        .list(&ListParams::default().labels("app=reviews,version in (v2,v3)"))
        .await
        .expect("labels");
    assert_eq!(reviews.items.len(), 4);
    assert!(reviews.items.iter().all(|p| {
        let l = p.metadata.labels.clone().unwrap_or_default();
        l.get("app").map(String::as_str) == Some("reviews")
            && l.get("version").map(String::as_str) != Some("v1")
    }));
    let in_ns = pods
        .list(&ListParams::default().fields("metadata.namespace=istio-system"))
        .await
        .expect("fields");
    assert_eq!(in_ns.items.len(), 3, "istiod + 2 gateway pods");
    let e = api_error(
        pods.list(&ListParams::default().labels("app in v1"))
            .await
            .expect_err("bad selector"),
    );
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn watcher_lists_then_streams_changes() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "bookstore");
    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut init_done = false;
    while let Some(ev) = stream.try_next().await.expect("watch") {
        if matches!(ev, watcher::Event::InitDone) {
            init_done = true;
            break;
        }
    }
    assert!(init_done);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "flags"}, "data": {"canary": "on"}
        }))
        .expect("cm"),
    )
    .await
    .expect("create");
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("in time")
        .expect("ok");
    match ev {
        Some(watcher::Event::Apply(cm)) => {
            assert_eq!(cm.metadata.name.as_deref(), Some("flags"));
            assert_eq!(
                cm.data
                    .unwrap_or_default()
                    .get("canary")
                    .map(String::as_str),
                Some("on"),
                "YAML-1.1 `on` stays a string"
            );
        }
        other => panic!("expected Apply(flags), got {other:?}"),
    }
    cms.delete("flags", &DeleteParams::default())
        .await
        .expect("delete");
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("in time")
        .expect("ok");
    assert!(
        matches!(ev, Some(watcher::Event::Delete(ref cm)) if cm.metadata.name.as_deref() == Some("flags")),
        "{ev:?}"
    );
}

#[tokio::test]
async fn watch_sends_bookmarks_only_when_asked_and_resumes_from_a_resource_version() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "default");
    let list = cms.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.clone().expect("rv");
    let mut with = cms
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut bookmarks = 0;
    while let Some(ev) = with.try_next().await.expect("event") {
        if let WatchEvent::Bookmark(b) = ev {
            bookmarks += 1;
            assert!(
                b.metadata
                    .resource_version
                    .parse::<u64>()
                    .expect("numeric rv")
                    >= rv.parse::<u64>().expect("rv")
            );
        }
    }
    assert!(
        bookmarks >= 2,
        "a 300 ms bookmark interval over 2 s gives several, got {bookmarks}"
    );
    let without = WatchParams {
        bookmarks: false,
        ..WatchParams::default().timeout(1)
    };
    let mut s = cms.watch(&without, &rv).await.expect("watch").boxed();
    while let Some(ev) = s.try_next().await.expect("event") {
        assert!(!matches!(ev, WatchEvent::Bookmark(_)), "unasked bookmark");
    }
    // resume: changes made after `rv` are replayed to a watch that starts later
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).expect("cm"),
        )
        .await
        .expect("create");
    }
    let mut s = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut added = Vec::new();
    while let Some(ev) = s.try_next().await.expect("event") {
        if let WatchEvent::Added(cm) = ev {
            added.push(cm.metadata.name.unwrap_or_default());
        }
    }
    assert_eq!(added, vec!["c0", "c1", "c2"]);
}

#[tokio::test]
async fn expired_resource_versions_get_an_in_stream_410_and_the_watcher_relists() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm"),
    )
    .await
    .expect("create");
    f.fault("eu-west", &FaultSpec::ExpireWatches)
        .expect("fault");
    let mut s = cms
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .expect("HTTP 200 first")
        .boxed();
    match s.try_next().await.expect("event") {
        Some(WatchEvent::Error(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected an in-stream 410, got {other:?}"),
    }
    // a kube-runtime watcher sees its live stream end with 410 and starts over with a re-list
    let mut w = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut inits = 0;
    let mut expired = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while inits < 2 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
            Ok(Some(Ok(watcher::Event::Init))) => inits += 1,
            Ok(Some(Ok(watcher::Event::InitDone))) if !expired => {
                // the watcher starts its watch when polled again: expire it a moment later
                let state = f.clusters[0].state.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    state.apply_fault(&FaultSpec::ExpireWatches);
                });
                expired = true;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(inits, 2, "the watcher re-listed after the 410");
}

#[tokio::test]
async fn server_side_apply_creates_updates_conflicts_forces_and_dry_runs() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let api: Api<DynamicObject> = Api::namespaced_with(c, "bookstore", &vs_resource());
    let pp = PatchParams::apply("meshdeck");
    // dry run of a create: nothing stored
    let dry = api
        .patch(
            "ratings",
            &PatchParams::apply("meshdeck").dry_run(),
            &Patch::Apply(vs("ratings", "v1")),
        )
        .await
        .expect("dry");
    assert_eq!(dry.metadata.name.as_deref(), Some("ratings"));
    assert!(api.get_opt("ratings").await.expect("get").is_none());
    let created = api
        .patch("ratings", &pp, &Patch::Apply(vs("ratings", "v1")))
        .await
        .expect("create");
    let rv1 = created.metadata.resource_version.clone().expect("rv");
    assert_eq!(created.metadata.generation, Some(1));
    let mf = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("meshdeck"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    // the same apply again changes nothing, not even the resourceVersion
    let again = api
        .patch("ratings", &pp, &Patch::Apply(vs("ratings", "v1")))
        .await
        .expect("again");
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    // an update bumps generation
    let updated = api
        .patch("ratings", &pp, &Patch::Apply(vs("ratings", "v2")))
        .await
        .expect("update");
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(
        updated.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v2"
    );
    // `reviews` was written by kubectl-client-side-apply: a different value conflicts
    let e = api_error(
        api.patch("reviews", &pp, &Patch::Apply(vs("reviews", "v3")))
            .await
            .expect_err("conflict"),
    );
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    let causes = e.details.clone().expect("details").causes;
    assert!(
        causes
            .iter()
            .any(|c| c.reason == "FieldManagerConflict" && c.field == ".spec.http"),
        "{causes:?}"
    );
    assert!(
        e.message.contains("kubectl-client-side-apply"),
        "{}",
        e.message
    );
    // a dry-run of the forced apply shows the result and stores nothing
    let before = api.get("reviews").await.expect("get");
    let forced_dry = api
        .patch(
            "reviews",
            &PatchParams::apply("meshdeck").force().dry_run(),
            &Patch::Apply(vs("reviews", "v3")),
        )
        .await
        .expect("forced dry");
    assert_eq!(
        forced_dry.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v3"
    );
    let after = api.get("reviews").await.expect("get");
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    let forced = api
        .patch(
            "reviews",
            &PatchParams::apply("meshdeck").force(),
            &Patch::Apply(vs("reviews", "v3")),
        )
        .await
        .expect("forced");
    assert_eq!(
        forced.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v3"
    );
    // an apply without a field manager is invalid
    let raw = http::Request::patch(
        "/apis/networking.istio.io/v1/namespaces/bookstore/virtualservices/ratings",
    )
    .header("content-type", "application/apply-patch+yaml")
    .body(serde_json::to_vec(&vs("ratings", "v1")).expect("json"))
    .expect("request");
    let e = api_error(
        client(&f, "eu-west")
            .await
            .request::<DynamicObject>(raw)
            .await
            .expect_err("no manager"),
    );
    assert_eq!(e.code, 422);
}

#[tokio::test]
async fn merge_and_json_patches_and_optimistic_concurrency() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "m"}, "data": {"a": "1", "b": "2"}}),
            )
            .expect("cm"),
        )
        .await
        .expect("create");
    let merged = cms
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "10", "b": null}})),
        )
        .await
        .expect("merge");
    assert_eq!(
        merged
            .data
            .clone()
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("10")
    );
    assert!(!merged.data.clone().unwrap_or_default().contains_key("b"));
    let p: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/c", "value": "3"}]))
            .expect("patch");
    let jp = cms
        .patch("m", &PatchParams::default(), &Patch::<()>::Json(p))
        .await
        .expect("json patch");
    assert_eq!(
        jp.data.unwrap_or_default().get("c").map(String::as_str),
        Some("3")
    );
    // a stale resourceVersion in a merge patch is a 409
    let stale =
        json!({"metadata": {"resourceVersion": cm.metadata.resource_version}, "data": {"a": "x"}});
    let e = api_error(
        cms.patch("m", &PatchParams::default(), &Patch::Merge(stale))
            .await
            .expect_err("stale"),
    );
    assert_eq!(e.code, 409);
    let e = api_error(
        cms.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .expect_err("missing"),
    );
    assert_eq!(e.code, 404);
    assert_eq!(e.message, "configmaps \"nope\" not found");
    let e = api_error(
        cms.create(&PostParams::default(), &cm)
            .await
            .expect_err("exists"),
    );
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "AlreadyExists");
}

#[tokio::test]
async fn delete_with_dry_run_keeps_the_object_and_namespaces_cascade() {
    let f = fleet(1).await;
    let c = client(&f, "eu-west").await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), "bookstore", &vs_resource());
    api.delete("reviews", &DeleteParams::default().dry_run())
        .await
        .expect("dry delete");
    assert!(api.get_opt("reviews").await.expect("get").is_some());
    api.delete("reviews", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt("reviews").await.expect("get").is_none());
    let e = api_error(
        api.delete("reviews", &DeleteParams::default())
            .await
            .expect_err("gone"),
    );
    assert_eq!(e.code, 404);
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.delete("legacy", &DeleteParams::default())
        .await
        .expect("delete ns");
    let pods: Api<Pod> = Api::namespaced(c, "legacy");
    assert!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

async fn can(c: kube::Client, verb: &str, ns: &str) -> bool {
    let api: Api<SelfSubjectAccessReview> = Api::all(c);
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some("networking.istio.io".into()),
                resource: Some("virtualservices".into()),
                namespace: Some(ns.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &review)
        .await
        .expect("ssar")
        .status
        .expect("status")
        .allowed
}

#[tokio::test]
async fn access_reviews_and_the_viewer_cannot_write() {
    let f = fleet(1).await;
    let admin = client(&f, "eu-west").await;
    let viewer = client(&f, "eu-west-viewer").await;
    assert!(can(admin, "patch", "bookstore").await);
    assert!(!can(viewer.clone(), "patch", "bookstore").await);
    assert!(can(viewer.clone(), "list", "bookstore").await);
    let api: Api<DynamicObject> = Api::namespaced_with(viewer.clone(), "bookstore", &vs_resource());
    assert!(
        !api.list(&ListParams::default())
            .await
            .expect("viewer lists")
            .items
            .is_empty()
    );
    let e = api_error(
        api.patch(
            "ratings",
            &PatchParams::apply("meshdeck"),
            &Patch::Apply(vs("ratings", "v1")),
        )
        .await
        .expect_err("403"),
    );
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
    assert!(
        e.message
            .contains("User \"viewer\" cannot patch resource \"virtualservices\""),
        "{}",
        e.message
    );
    // a viewer sees Secrets exist, never their data
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(viewer, "istio-system");
    let s = secrets.get("cacerts").await.expect("get");
    assert!(s.data.is_none() && s.string_data.is_none());
    let admin_secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client(&f, "eu-west").await, "istio-system");
    assert!(
        admin_secrets
            .get("cacerts")
            .await
            .expect("get")
            .data
            .is_some()
    );
    // the log recorded the viewer's denied write
    let log = f.requests("eu-west").expect("log");
    assert!(
        log.iter()
            .any(|e| e.user == "viewer" && e.method == "PATCH" && e.status == 403)
    );
}

#[tokio::test]
async fn an_unknown_token_is_401() {
    let f = fleet(1).await;
    let mut cfg = config(&f, "eu-west").await;
    cfg.auth_info.token = Some("not-a-token".to_string().into());
    let c = kube::Client::try_from(cfg).expect("client");
    let e = api_error(
        Api::<Pod>::all(c)
            .list(&ListParams::default())
            .await
            .expect_err("401"),
    );
    assert_eq!(e.code, 401);
}

#[tokio::test]
async fn a_crd_created_over_the_api_is_served() {
    let f = fleet_with(empty_spec(1)).await;
    let c = client(&f, "eu-west").await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(c.clone());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("test"),
        &Patch::Apply(crd),
    )
    .await
    .expect("crd");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(c, "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}})).expect("w");
    widgets
        .create(&PostParams::default(), &w)
        .await
        .expect("create widget");
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    let e = api_error(
        widgets
            .list(&ListParams::default())
            .await
            .expect_err("gone"),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn faults_down_error_and_latency() {
    let f = fleet(2).await;
    let c = client(&f, "eu-west").await;
    let pods: Api<Pod> = Api::all(c.clone());
    // down: connection refused, while the other cluster answers
    f.fault("eu-west", &FaultSpec::Down).expect("down");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = pods
        .list(&ListParams::default())
        .await
        .expect_err("refused");
    let msg = format!("{e:?}").to_lowercase();
    assert!(msg.contains("refused") || msg.contains("connect"), "{msg}");
    let other: Api<Pod> = Api::all(client(&f, "us-east").await);
    assert!(other.list(&ListParams::default()).await.is_ok());
    f.fault("eu-west", &FaultSpec::Up).expect("up");
    let mut ok = false;
    for _ in 0..50 {
        if pods.list(&ListParams::default()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the cluster answers again after `up`");
    // 500 surfaces at once
    f.fault("eu-west", &FaultSpec::Error(500)).expect("500");
    let e = api_error(pods.list(&ListParams::default()).await.expect_err("500"));
    assert_eq!(e.code, 500);
    // 503 is retried by kube-rs: clear the fault shortly and the same call succeeds
    f.fault("eu-west", &FaultSpec::Error(503)).expect("503");
    let state = f.clusters[0].state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        state.apply_fault(&FaultSpec::Clear);
    });
    pods.list(&ListParams::default())
        .await
        .expect("retried past the 503s");
    let log = f.requests("eu-west").expect("log");
    assert!(
        log.iter().filter(|e| e.status == 503).count() >= 2,
        "kube-rs retried"
    );
    // latency delays every answer
    f.fault("eu-west", &FaultSpec::Latency(300))
        .expect("latency");
    let t = Instant::now();
    pods.list(&ListParams::default().limit(1))
        .await
        .expect("slow list");
    assert!(t.elapsed() >= Duration::from_millis(300));
    f.fault("eu-west", &FaultSpec::Clear).expect("clear");
}
