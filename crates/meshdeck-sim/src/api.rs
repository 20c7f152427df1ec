//! The Kubernetes HTTP API of one simulated cluster: discovery, OpenAPI v3, list (paginated,
//! selectors, Tables), watch (bookmarks, resume, in-stream 410), get, create, replace, patch
//! (server-side apply, merge, strategic-merge approximated as merge, JSON patch), delete,
//! status and log subresources, and the self-subject reviews. Shapes follow
//! `research/test-cluster.md` (measured on a real kube-apiserver).

use super::auth::{self, Attributes, User};
use super::cluster::ClusterState;
use super::fields;
use super::registry::{ResourceType, from_crd};
use super::store::{CRD_KEY, Event, EventType, NAMESPACE_KEY, ObjRef, Write};
use super::table;
use base64::Engine;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// An API error, rendered as a `v1 Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    pub(crate) fn with_details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", m)
    }
    fn invalid(m: impl Into<String>) -> Self {
        Self::new(422, "Invalid", m)
    }
    fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    pub fn status_json(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

fn not_found(rt: &ResourceType, name: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", qualified(rt)),
    )
    .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
}

fn now_str() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    bytes_response(code, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
}

fn bytes_response(code: u16, b: Bytes) -> Response<Body> {
    let mut r = Response::new(full(b));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    r
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status_json())
}

/// A parsed request.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub user: User,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn q_bool(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }
    fn header(&self, h: header::HeaderName) -> &str {
        self.headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn dry_run(&self) -> bool {
        self.query.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
    /// The field manager of a non-apply write: `fieldManager`, else the user agent's product.
    fn update_manager(&self) -> String {
        if let Some(m) = self.q("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_string();
        }
        let ua = self.header(header::USER_AGENT);
        let product = ua.split('/').next().unwrap_or("").trim();
        if product.is_empty() {
            "unknown".into()
        } else {
            product.to_string()
        }
    }
}

pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Read a request body, bounded.
pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    413,
                    "RequestEntityTooLarge",
                    "request body too large",
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "could not read request body: {e}"
                )))
            }
        }
    }
}

/// Route one request.
pub async fn handle(state: &Arc<ClusterState>, req: Req) -> Response<Body> {
    match route(state, &req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn authenticated(user: &User) -> Result<(), ApiError> {
    if user.groups.iter().any(|g| g == "system:unauthenticated") {
        return Err(ApiError::new(
            403,
            "Forbidden",
            "forbidden: User \"system:anonymous\" cannot get path \"/\"",
        ));
    }
    Ok(())
}

async fn route(state: &Arc<ClusterState>, req: &Req) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let is_get = req.method == Method::GET;
    match segs.as_slice() {
        ["version"] if is_get => Ok(json_response(200, &state.version_json())),
        ["healthz" | "readyz" | "livez"] if is_get => {
            let mut r = Response::new(full("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain"),
            );
            Ok(r)
        }
        ["api"] if is_get => {
            authenticated(&req.user)?;
            Ok(json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.address()}]}),
            ))
        }
        ["apis"] if is_get => {
            authenticated(&req.user)?;
            Ok(json_response(200, &group_list(state)))
        }
        ["apis", g] if is_get => {
            authenticated(&req.user)?;
            group_list(state)["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|x| x["name"] == *g))
                .map(|grp| {
                    let mut grp = grp.clone();
                    grp["kind"] = json!("APIGroup");
                    grp["apiVersion"] = json!("v1");
                    json_response(200, &grp)
                })
                .ok_or_else(ApiError::not_found_path)
        }
        ["api", "v1"] if is_get => {
            authenticated(&req.user)?;
            resource_list(state, "", "v1")
        }
        ["apis", g, v] if is_get => {
            authenticated(&req.user)?;
            resource_list(state, g, v)
        }
        ["openapi", "v3"] if is_get => {
            authenticated(&req.user)?;
            Ok(json_response(200, &openapi_root(state)))
        }
        ["openapi", "v3", "api", "v1"] if is_get => {
            authenticated(&req.user)?;
            openapi_gv(state, "", "v1")
        }
        ["openapi", "v3", "apis", g, v] if is_get => {
            authenticated(&req.user)?;
            openapi_gv(state, g, v)
        }
        [
            "api",
            "v1",
            "namespaces",
            ns,
            kind @ ("pods" | "services"),
            name,
            "proxy",
            rest @ ..,
        ] => {
            authenticated(&req.user)?;
            crate::proxy::proxy(state, req, ns, kind, name, rest).await
        }
        ["api", "v1", rest @ ..] if !rest.is_empty() => resource(state, req, "", "v1", rest).await,
        ["apis", g, v, rest @ ..] if !rest.is_empty() => resource(state, req, g, v, rest).await,
        _ => Err(ApiError::not_found_path()),
    }
}

fn group_list(state: &ClusterState) -> Value {
    let reg = state.store.registry();
    let groups: Vec<Value> = reg
        .group_versions()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(state: &ClusterState, g: &str, v: &str) -> Result<Response<Body>, ApiError> {
    let reg = state.store.registry();
    let mut resources = Vec::new();
    for t in reg.in_group_version(g, v) {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status_subresource {
            resources.push(
                json!({"name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        if g.is_empty() && t.plural == "pods" {
            resources.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"]}),
            );
        }
    }
    if resources.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let gv = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    Ok(json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    ))
}

fn openapi_root(state: &ClusterState) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, vs) in state.store.registry().group_versions() {
        for v in vs {
            let p = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", state.generation_hash())}),
            );
        }
    }
    json!({"paths": paths})
}

/// The minimal OpenAPI v3 document `kubectl apply` needs to learn that the server supports
/// `fieldValidation` (research/test-cluster.md §3).
fn openapi_gv(state: &ClusterState, g: &str, v: &str) -> Result<Response<Body>, ApiError> {
    let reg = state.store.registry();
    let mut paths = serde_json::Map::new();
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "force", "in": "query", "schema": {"type": "boolean"}},
    ]);
    let prefix = if g.is_empty() {
        format!("/api/{v}")
    } else {
        format!("/apis/{g}/{v}")
    };
    let mut any = false;
    for t in reg.in_group_version(g, v) {
        any = true;
        let gvk = json!({"group": g, "version": v, "kind": t.kind});
        let op = json!({"x-kubernetes-group-version-kind": gvk, "parameters": params,
                        "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}}});
        let (coll, item) = if t.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", t.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural),
            )
        } else {
            (
                format!("{prefix}/{}", t.plural),
                format!("{prefix}/{}/{{name}}", t.plural),
            )
        };
        paths.insert(coll, json!({"post": op}));
        paths.insert(item, json!({"patch": op, "put": op}));
    }
    if !any {
        return Err(ApiError::not_found_path());
    }
    Ok(json_response(
        200,
        &json!({"openapi": "3.0.0", "info": {"title": "Kubernetes (meshdeck simulator)", "version": state.git_version()},
               "paths": paths, "components": {"schemas": {}}}),
    ))
}

/// Where a resource request points.
struct Target<'a> {
    rt: Arc<ResourceType>,
    version: &'a str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

fn resolve<'a>(
    state: &ClusterState,
    group: &str,
    version: &'a str,
    rest: &[&'a str],
) -> Result<Target<'a>, ApiError> {
    let reg = state.store.registry();
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && reg
            .lookup(group, version, rest[2])
            .is_some_and(|t| t.namespaced);
    let (namespace, tail) = if namespaced_path {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let rt = reg
        .lookup(group, version, tail[0])
        .cloned()
        .ok_or_else(ApiError::not_found_path)?;
    if tail.len() > 3 || (!rt.namespaced && namespace.is_some()) {
        return Err(ApiError::not_found_path());
    }
    Ok(Target {
        rt,
        version,
        namespace,
        name: tail.get(1).copied(),
        subresource: tail.get(2).copied(),
    })
}

fn verb_of(method: &Method, t: &Target, watch: bool) -> Result<&'static str, ApiError> {
    Ok(match (method.as_str(), t.name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) if watch => "watch",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!(
                    "the server does not allow this method on the requested resource ({})",
                    method
                ),
            ));
        }
    })
}

async fn resource(
    state: &Arc<ClusterState>,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let t = resolve(state, group, version, rest)?;
    let watch = req.q_bool("watch");
    let verb = verb_of(&req.method, &t, watch)?;
    let attrs = Attributes {
        verb: verb.to_string(),
        group: t.rt.group.clone(),
        version: version.to_string(),
        resource: t.rt.plural.clone(),
        subresource: t.subresource.map(str::to_string),
        namespace: t.namespace.map(str::to_string),
        name: t.name.map(str::to_string),
    };
    if !req.user.allowed(&attrs) {
        return Err(
            ApiError::new(403, "Forbidden", attrs.forbidden_message(&req.user.name)).with_details(
                json!({"name": t.name.unwrap_or(""), "group": t.rt.group, "kind": t.rt.plural}),
            ),
        );
    }
    if !t.rt.verbs.contains(&verb) {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                t.rt.plural
            ),
        ));
    }
    // the self-subject reviews are create-only virtual resources
    match (t.rt.group.as_str(), t.rt.plural.as_str()) {
        ("authorization.k8s.io", "selfsubjectaccessreviews") => return ssar(req),
        ("authorization.k8s.io", "selfsubjectrulesreviews") => return ssrr(req),
        ("authentication.k8s.io", "selfsubjectreviews") => {
            return Ok(json_response(
                201,
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {"username": req.user.name, "groups": req.user.groups}}}),
            ));
        }
        _ => {}
    }
    match t.subresource {
        None => {}
        Some("status") if t.rt.status_subresource => {}
        Some("log") if t.rt.group.is_empty() && t.rt.plural == "pods" && verb == "get" => {
            return pod_log(state, req, &t).await;
        }
        Some(_) => return Err(ApiError::not_found_path()),
    }
    if t.rt.namespaced
        && t.namespace.is_none()
        && !matches!(verb, "list" | "watch" | "deletecollection")
    {
        return Err(ApiError::not_found_path());
    }
    match verb {
        "list" => list(state, req, &t),
        "watch" => watch_stream(state, req, &t),
        "get" => get(state, req, &t),
        "create" => create(state, req, &t),
        "update" => replace(state, req, &t),
        "patch" => patch(state, req, &t),
        "delete" => delete(state, req, &t),
        "deletecollection" => delete_collection(state, req, &t),
        _ => Err(ApiError::not_found_path()),
    }
}

fn ssar(req: &Req) -> Result<Response<Body>, ApiError> {
    let ct = req.header(header::CONTENT_TYPE);
    let body = if ct.contains("protobuf") {
        auth::decode_ssar_protobuf(&req.body).ok_or_else(|| {
            ApiError::bad_request("could not decode the protobuf SelfSubjectAccessReview")
        })?
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid SelfSubjectAccessReview: {e}")))?
    };
    if body.pointer("/spec/resourceAttributes").is_none()
        && body.pointer("/spec/nonResourceAttributes").is_none()
    {
        return Err(ApiError::invalid(
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    Ok(json_response(201, &auth::review(&req.user, body)))
}

fn ssrr(req: &Req) -> Result<Response<Body>, ApiError> {
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid SelfSubjectRulesReview: {e}")))?;
    let ns = body
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let rules: Vec<Value> = req
        .user
        .rules
        .iter()
        .filter(|r| r.namespaces.is_empty() || r.namespaces.iter().any(|n| n == "*" || n == ns))
        .map(|r| json!({"verbs": r.verbs, "apiGroups": r.groups, "resources": r.resources}))
        .collect();
    Ok(json_response(
        201,
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "metadata": {}, "spec": {"namespace": ns},
            "status": {"resourceRules": rules,
                       "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/version", "/openapi/*"]}],
                       "incomplete": false}}),
    ))
}

/// The bytes a user sees of a stored object in the requested version: apiVersion rewritten
/// for a non-storage version, Secret data removed for users without access to it.
fn present(rt: &ResourceType, version: &str, user: &User, obj: &ObjRef) -> Bytes {
    let hide_secret = rt.group.is_empty() && rt.plural == "secrets" && !user.secret_data;
    if version == rt.storage_version() && !hide_secret {
        return obj.bytes.clone();
    }
    let mut v = obj.value();
    v["apiVersion"] = Value::String(rt.api_version(version));
    if hide_secret && let Some(m) = v.as_object_mut() {
        m.remove("data");
        m.remove("stringData");
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

struct Filter {
    labels: meshdeck_core::selector::LabelSelector,
    fields: meshdeck_core::selector::FieldSelector,
    namespace: Option<String>,
    name: Option<String>,
}

impl Filter {
    fn from(req: &Req, t: &Target) -> Result<Filter, ApiError> {
        let labels =
            meshdeck_core::selector::LabelSelector::parse(req.q("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields =
            meshdeck_core::selector::FieldSelector::parse(req.q("fieldSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Filter {
            labels,
            fields,
            namespace: t.namespace.map(str::to_string),
            name: t.name.map(str::to_string),
        })
    }
    fn matches(&self, o: &ObjRef) -> bool {
        if self.namespace.as_deref().is_some_and(|n| n != o.namespace)
            || self.name.as_deref().is_some_and(|n| n != o.name)
            || !self.labels.matches(&o.labels)
        {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        match self.fields.matches_meta(&o.namespace, &o.name) {
            Some(m) => m,
            None => self.fields.matches_object(&o.value()),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
}

fn list(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from(req, t)?;
    let limit: usize = match req.q("limit") {
        None | Some("") | Some("0") => usize::MAX,
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
    };
    let (store_rv, items) = state.store.list(&t.rt.key, t.namespace);
    let mut list_rv = store_rv;
    let mut start: Option<(String, String)> = None;
    if let Some(c) = req.q("continue").filter(|c| !c.is_empty()) {
        let tok: ContinueToken = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::bad_request("continue key is not valid: malformed token"))?;
        if tok.rv < state.store.compacted_rv() {
            return Err(ApiError::new(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        let key = tok.start.trim_end_matches('\0');
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        start = Some((ns.to_string(), name.to_string()));
        list_rv = tok.rv;
    }
    let matching: Vec<&ObjRef> = items
        .iter()
        .filter(|o| {
            start
                .as_ref()
                .is_none_or(|(ns, n)| (o.namespace.as_str(), o.name.as_str()) > (ns, n))
        })
        .filter(|o| filter.matches(o))
        .collect();
    let page = &matching[..matching.len().min(limit)];
    let remaining = matching.len() - page.len();
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if remaining > 0
        && let Some(last) = page.last()
    {
        let tok = ContinueToken {
            v: "meta.k8s.io/v1".into(),
            rv: list_rv,
            start: format!("{}/{}\0", last.namespace, last.name),
        };
        meta["continue"] = json!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&tok).unwrap_or_default())
        );
        meta["remainingItemCount"] = json!(remaining);
    }
    if table::wants_table(req.header(header::ACCEPT)) {
        let now = Utc::now();
        let rows: Vec<Value> = page
            .iter()
            .map(|o| table::row(&t.rt, &o.value(), now))
            .collect();
        return Ok(json_response(
            200,
            &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                   "columnDefinitions": table::columns(&t.rt), "rows": rows}),
        ));
    }
    let mut out = Vec::with_capacity(256 + page.iter().map(|o| o.bytes.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"apiVersion\":");
    out.extend_from_slice(
        serde_json::to_string(&t.rt.api_version(t.version))
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b",\"kind\":");
    out.extend_from_slice(
        serde_json::to_string(&format!("{}List", t.rt.kind))
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(&serde_json::to_vec(&meta).unwrap_or_default());
    out.extend_from_slice(b",\"items\":[");
    for (i, o) in page.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&present(&t.rt, t.version, &req.user, o));
    }
    out.extend_from_slice(b"]}");
    Ok(bytes_response(200, Bytes::from(out)))
}

fn get(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let name = t.name.unwrap_or("");
    let obj = state
        .store
        .get(&t.rt.key, t.namespace.unwrap_or(""), name)
        .ok_or_else(|| not_found(&t.rt, name))?;
    if table::wants_table(req.header(header::ACCEPT)) {
        let row = table::row(&t.rt, &obj.value(), Utc::now());
        return Ok(json_response(
            200,
            &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": obj.rv.to_string()},
            "columnDefinitions": table::columns(&t.rt), "rows": [row]}),
        ));
    }
    Ok(bytes_response(
        200,
        present(&t.rt, t.version, &req.user, &obj),
    ))
}

/// Parse a request body that should be an object of this kind.
fn body_object(req: &Req, t: &Target, yaml_ok: bool) -> Result<Value, ApiError> {
    if req.header(header::CONTENT_TYPE).contains("protobuf") {
        return super::proto::decode_object(&req.body).ok_or_else(|| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                "the simulator reads protobuf bodies only for Namespace, ConfigMap, Secret and SelfSubjectAccessReview; send JSON or YAML",
            )
        });
    }
    let v: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(json_err) => {
            let text = std::str::from_utf8(&req.body)
                .map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
            if yaml_ok {
                meshdeck_core::yaml::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("error decoding YAML: {}", e.message))
                })?
            } else {
                return Err(ApiError::bad_request(format!(
                    "error decoding request body: {json_err}"
                )));
            }
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() || api_version.is_empty() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in the request body, or 'apiVersion' is empty",
        ));
    }
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if kind != t.rt.kind || group != t.rt.group {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            t.rt.api_version(t.version)
        )));
    }
    if let Some(ns) = v.pointer("/metadata/namespace").and_then(Value::as_str)
        && !ns.is_empty()
        && t.namespace.is_some_and(|n| n != ns)
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let (Some(url_name), Some(body_name)) =
        (t.name, v.pointer("/metadata/name").and_then(Value::as_str))
        && url_name != body_name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
        )));
    }
    Ok(v)
}

fn ensure_namespace(state: &ClusterState, t: &Target) -> Result<(), ApiError> {
    if let Some(ns) = t.namespace
        && state.store.get(NAMESPACE_KEY, "", ns).is_none()
    {
        return Err(
            ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
                .with_details(json!({"name": ns, "kind": "namespaces"})),
        );
    }
    Ok(())
}

/// The part of an object that counts for `generation`: everything but metadata and status.
fn spec_part(v: &Value) -> Value {
    let mut s = v.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    s
}

/// Normalise a new object's apiVersion to the storage version and set server fields.
fn finish_new(t: &Target, v: &mut Value, name: &str) {
    v["apiVersion"] = Value::String(t.rt.api_version(t.rt.storage_version()));
    v["kind"] = Value::String(t.rt.kind.clone());
    let meta = v
        .as_object_mut()
        .map(|m| m.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        meta.insert("name".into(), json!(name));
        if let Some(ns) = t.namespace {
            meta.insert("namespace".into(), json!(ns));
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_str()));
        meta.insert("generation".into(), json!(1));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
    }
}

/// Carry the server-owned metadata of `old` into `new`, and bump generation on spec change.
fn carry_over(t: &Target, old: &Value, new: &mut Value) {
    new["apiVersion"] = Value::String(t.rt.api_version(t.rt.storage_version()));
    new["kind"] = Value::String(t.rt.kind.clone());
    let gen_old = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let spec_changed = spec_part(old) != spec_part(new);
    if let (Some(om), Some(nm)) = (
        old.get("metadata").and_then(Value::as_object),
        new.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "resourceVersion",
        ] {
            match om.get(k) {
                Some(v) => nm.insert(k.into(), v.clone()),
                None => nm.remove(k),
            };
        }
        nm.insert(
            "generation".into(),
            json!(if spec_changed { gen_old + 1 } else { gen_old }),
        );
    }
}

fn validate_new(t: &Target, v: &Value) -> Result<(), ApiError> {
    if &*t.rt.key == CRD_KEY && from_crd(v).is_none() {
        return Err(ApiError::invalid(
            "CustomResourceDefinition is invalid: spec.group, spec.names and at least one served version are required",
        ));
    }
    Ok(())
}

/// A write's result: the stored (or, for a dry run, computed) object.
fn write_result(
    rt: &ResourceType,
    version: &str,
    user: &User,
    code: u16,
    v: &Value,
) -> Response<Body> {
    let mut v = v.clone();
    v["apiVersion"] = Value::String(rt.api_version(version));
    if rt.group.is_empty()
        && rt.plural == "secrets"
        && !user.secret_data
        && let Some(m) = v.as_object_mut()
    {
        m.remove("data");
        m.remove("stringData");
    }
    json_response(code, &v)
}

fn create(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let mut v = body_object(req, t, true)?;
    ensure_namespace(state, t)?;
    let name = match v.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match v.pointer("/metadata/generateName").and_then(Value::as_str) {
            Some(g) if !g.is_empty() => format!("{g}{}", random_suffix()),
            _ => {
                return Err(ApiError::invalid(format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    t.rt.kind
                )));
            }
        },
    };
    finish_new(t, &mut v, &name);
    if t.rt.status_subresource
        && let Some(m) = v.as_object_mut()
    {
        m.remove("status");
    }
    validate_new(t, &v)?;
    let manager = req.update_manager();
    let now = now_str();
    let storage_api_version = t.rt.api_version(t.version);
    fields::update(
        None,
        &mut v,
        &fields::Op {
            manager: &manager,
            api_version: &storage_api_version,
            now: &now,
            subresource: None,
        },
    );
    let ns = t.namespace.unwrap_or("");
    let dry = req.dry_run();
    let result = state.store.write(&t.rt.key, ns, &name, |existing| {
        if existing.is_some() {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(&t.rt)),
            )
            .with_details(json!({"name": name, "group": t.rt.group, "kind": t.rt.plural})));
        }
        Ok((!dry).then(|| Write::Put(v.clone())))
    })?;
    let stored = match result {
        Some((_, obj)) => obj.value(),
        None => v,
    };
    Ok(write_result(&t.rt, t.version, &req.user, 201, &stored))
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

fn check_rv(
    t: &Target,
    name: &str,
    requested: Option<&str>,
    existing: &ObjRef,
) -> Result<(), ApiError> {
    if let Some(rv) = requested.filter(|r| !r.is_empty())
        && rv != existing.rv.to_string()
    {
        return Err(ApiError::new(409, "Conflict", format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(&t.rt)
        )).with_details(json!({"name": name, "group": t.rt.group, "kind": t.rt.plural})));
    }
    Ok(())
}

/// Keep only what a write to the main resource or to the status subresource may change.
fn scope_to_subresource(t: &Target, old: &Value, new: &mut Value) {
    if t.subresource == Some("status") {
        let status = new.get("status").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    } else if t.rt.status_subresource {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
}

fn replace(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let incoming = body_object(req, t, true)?;
    let name = t.name.unwrap_or("").to_string();
    let ns = t.namespace.unwrap_or("");
    let manager = req.update_manager();
    let now = now_str();
    let api_version = t.rt.api_version(t.version);
    let dry = req.dry_run();
    let mut computed = None;
    let result = state.store.write(&t.rt.key, ns, &name, |existing| {
        let existing = existing.ok_or_else(|| not_found(&t.rt, &name))?;
        check_rv(
            t,
            &name,
            incoming
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
            existing,
        )?;
        let old = existing.value();
        let mut new = incoming.clone();
        scope_to_subresource(t, &old, &mut new);
        carry_over(t, &old, &mut new);
        validate_new(t, &new)?;
        fields::update(
            Some(&old),
            &mut new,
            &fields::Op {
                manager: &manager,
                api_version: &api_version,
                now: &now,
                subresource: t.subresource,
            },
        );
        let changed = new != old;
        computed = Some(if changed { new.clone() } else { old });
        Ok((changed && !dry).then_some(Write::Put(new)))
    })?;
    let stored = match (result, computed) {
        (Some((_, obj)), _) => obj.value(),
        (None, Some(v)) => v,
        (None, None) => return Err(not_found(&t.rt, &name)),
    };
    Ok(write_result(&t.rt, t.version, &req.user, 200, &stored))
}

fn patch(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let ct = req.header(header::CONTENT_TYPE);
    let ct = ct.split(';').next().unwrap_or("").trim();
    match ct {
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => apply(state, req, t),
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => patch_update(state, req, t, ct),
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ),
        )),
    }
}

fn conflict_error(conflicts: &[fields::Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict",
               "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
               "field": c.field_string()})
        })
        .collect();
    let list: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict with \"{}\" using {}: {}",
                c.manager,
                c.api_version,
                c.field_string()
            )
        })
        .collect();
    let message = if conflicts.len() == 1 {
        format!("Apply failed with 1 conflict: {}", list[0])
    } else {
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            list.join("\n")
        )
    };
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

fn apply(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let manager = req.q("fieldManager").unwrap_or("").to_string();
    if manager.is_empty() {
        return Err(ApiError::invalid(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let force = req.q_bool("force");
    let mut applied = body_object(req, t, true)?;
    let name = t.name.unwrap_or("").to_string();
    let ns = t.namespace.unwrap_or("");
    if t.subresource.is_none() {
        ensure_namespace(state, t)?;
    }
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(k);
        }
    }
    let now = now_str();
    let api_version = t.rt.api_version(t.version);
    let op = fields::Op {
        manager: &manager,
        api_version: &api_version,
        now: &now,
        subresource: t.subresource,
    };
    let dry = req.dry_run();
    let mut computed: Option<(u16, Value)> = None;
    let result = state
        .store
        .write(&t.rt.key, ns, &name, |existing| match existing {
            None => {
                if t.subresource.is_some() {
                    return Err(not_found(&t.rt, &name));
                }
                let mut new =
                    fields::apply(None, &applied, &op, force).map_err(|c| conflict_error(&c))?;
                finish_new(t, &mut new, &name);
                validate_new(t, &new)?;
                computed = Some((201, new.clone()));
                Ok((!dry).then_some(Write::Put(new)))
            }
            Some(existing) => {
                let old = existing.value();
                let mut new = fields::apply(Some(&old), &applied, &op, force)
                    .map_err(|c| conflict_error(&c))?;
                carry_over(t, &old, &mut new);
                validate_new(t, &new)?;
                let changed = new != old;
                computed = Some((200, if changed { new.clone() } else { old }));
                Ok((changed && !dry).then_some(Write::Put(new)))
            }
        })?;
    let (code, v) = computed.ok_or_else(|| not_found(&t.rt, &name))?;
    let stored = match result {
        Some((_, obj)) => obj.value(),
        None => v,
    };
    Ok(write_result(&t.rt, t.version, &req.user, code, &stored))
}

fn patch_update(
    state: &ClusterState,
    req: &Req,
    t: &Target,
    ct: &str,
) -> Result<Response<Body>, ApiError> {
    let patch_doc: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let name = t.name.unwrap_or("").to_string();
    let ns = t.namespace.unwrap_or("");
    let manager = req.update_manager();
    let now = now_str();
    let api_version = t.rt.api_version(t.version);
    let dry = req.dry_run();
    let mut computed = None;
    let result = state.store.write(&t.rt.key, ns, &name, |existing| {
        let existing = existing.ok_or_else(|| not_found(&t.rt, &name))?;
        let old = existing.value();
        let mut new = old.clone();
        if ct == "application/json-patch+json" {
            let p: json_patch::Patch = serde_json::from_value(patch_doc.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut new, &p).map_err(|e| {
                ApiError::invalid(format!("the JSON patch could not be applied: {e}"))
            })?;
        } else {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            check_rv(
                t,
                &name,
                patch_doc
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str),
                existing,
            )?;
            json_patch::merge(&mut new, &patch_doc);
        }
        if !new.is_object() {
            return Err(ApiError::invalid("the patched object is not an object"));
        }
        scope_to_subresource(t, &old, &mut new);
        carry_over(t, &old, &mut new);
        validate_new(t, &new)?;
        fields::update(
            Some(&old),
            &mut new,
            &fields::Op {
                manager: &manager,
                api_version: &api_version,
                now: &now,
                subresource: t.subresource,
            },
        );
        let changed = new != old;
        computed = Some(if changed { new.clone() } else { old });
        Ok((changed && !dry).then_some(Write::Put(new)))
    })?;
    let stored = match (result, computed) {
        (Some((_, obj)), _) => obj.value(),
        (None, Some(v)) => v,
        (None, None) => return Err(not_found(&t.rt, &name)),
    };
    Ok(write_result(&t.rt, t.version, &req.user, 200, &stored))
}

fn delete_options(req: &Req) -> Result<Value, ApiError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))
}

fn deleted_response(t: &Target, user: &User, obj: &Value) -> Response<Body> {
    if t.rt.is_custom() || &*t.rt.key == CRD_KEY {
        json_response(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": obj.pointer("/metadata/name"), "group": t.rt.group,
                            "kind": t.rt.plural, "uid": obj.pointer("/metadata/uid")}}),
        )
    } else {
        write_result(&t.rt, t.version, user, 200, obj)
    }
}

fn delete(state: &ClusterState, req: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(req)?;
    let dry = req.dry_run()
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
    let name = t.name.unwrap_or("").to_string();
    let ns = t.namespace.unwrap_or("");
    let mut last = None;
    let result = state.store.write(&t.rt.key, ns, &name, |existing| {
        let existing = existing.ok_or_else(|| not_found(&t.rt, &name))?;
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
            let v = existing.value();
            if v.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        v.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    ),
                ));
            }
        }
        check_rv(
            t,
            &name,
            opts.pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str),
            existing,
        )?;
        last = Some(existing.value());
        Ok((!dry).then_some(Write::Delete))
    })?;
    let obj = match (result, last) {
        (Some((_, o)), _) => o.value(),
        (None, Some(v)) => v,
        (None, None) => return Err(not_found(&t.rt, &name)),
    };
    Ok(deleted_response(t, &req.user, &obj))
}

fn delete_collection(
    state: &ClusterState,
    req: &Req,
    t: &Target,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from(req, t)?;
    let dry = req.dry_run();
    let (_, items) = state.store.list(&t.rt.key, t.namespace);
    let mut deleted = Vec::new();
    for o in items.iter().filter(|o| filter.matches(o)) {
        if !dry {
            state.store.remove(&t.rt.key, &o.namespace, &o.name);
        }
        deleted.push(Value::from(o.name.clone()));
    }
    Ok(json_response(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"kind": t.rt.plural, "group": t.rt.group, "causes": deleted.iter().map(|n| json!({"field": n})).collect::<Vec<_>>()}}),
    ))
}

fn event_line(type_: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(type_.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn expired_line(requested: u64, current: u64) -> Bytes {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {requested} ({current})"), "reason": "Expired", "code": 410});
    event_line("ERROR", &serde_json::to_vec(&status).unwrap_or_default())
}

struct WatchCtx {
    rt: Arc<ResourceType>,
    version: String,
    user: User,
    filter: Filter,
    table: bool,
    first_table: bool,
}

impl WatchCtx {
    fn line(&mut self, type_: EventType, obj: &ObjRef) -> Bytes {
        if self.table {
            let row = table::row(&self.rt, &obj.value(), Utc::now());
            let cols = if self.first_table {
                self.first_table = false;
                json!(table::columns(&self.rt))
            } else {
                Value::Null
            };
            let tbl = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": obj.rv.to_string()},
                "columnDefinitions": cols, "rows": [row]});
            event_line(
                type_.as_str(),
                &serde_json::to_vec(&tbl).unwrap_or_default(),
            )
        } else {
            event_line(
                type_.as_str(),
                &present(&self.rt, &self.version, &self.user, obj),
            )
        }
    }
    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": meta});
        event_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    }
    fn wants(&self, ev: &Event) -> bool {
        *ev.key == *self.rt.key && self.filter.matches(&ev.obj)
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn watch_stream(
    state: &Arc<ClusterState>,
    req: &Req,
    t: &Target,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from(req, t)?;
    let from: Option<u64> = match req.q("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let send_initial = req.q_bool("sendInitialEvents");
    let bookmarks = req.q_bool("allowWatchBookmarks");
    let timeout = req
        .q("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(1800);
    let mut ctx = WatchCtx {
        rt: t.rt.clone(),
        version: t.version.to_string(),
        user: req.user.clone(),
        filter,
        table: table::wants_table(req.header(header::ACCEPT)),
        first_table: true,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let store_state = state.clone();
    let bookmark_every = state.bookmark_interval;
    // Initial state as ADDED: for a watch without resourceVersion, or a streaming list.
    let (initial, sub) = if from.is_none() || send_initial {
        let (items, sub) = store_state
            .store
            .subscribe_with_snapshot(&ctx.rt.key, t.namespace);
        (Some(items), Ok(sub))
    } else {
        (None, store_state.store.subscribe(from))
    };
    tokio::spawn(async move {
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(expired_line(e.requested, e.oldest)).await;
                return;
            }
        };
        let mut last_rv = sub.rv;
        if let Some(items) = initial {
            for o in &items {
                if !ctx.filter.matches(o) {
                    continue;
                }
                if tx.send(ctx.line(EventType::Added, o)).await.is_err() {
                    return;
                }
            }
            if send_initial && tx.send(ctx.bookmark(sub.rv, true)).await.is_err() {
                return;
            }
        }
        for ev in std::mem::take(&mut sub.replay) {
            if ctx.wants(&ev) && tx.send(ctx.line(ev.type_, &ev.obj)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(bookmark_every);
        tick.tick().await;
        loop {
            tokio::select! {
                r = sub.rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= last_rv { continue; }
                        last_rv = ev.rv;
                        if ctx.wants(&ev) && tx.send(ctx.line(ev.type_, &ev.obj)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // This watcher fell behind the feed: make the client re-list.
                        let _ = tx.send(expired_line(last_rv, store_state.store.resource_version())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    if tx.send(ctx.bookmark(last_rv, false)).await.is_err() { return; }
                }
                r = sub.expire_rx.changed() => {
                    if r.is_ok() {
                        let _ = tx.send(expired_line(last_rv, store_state.store.resource_version())).await;
                    }
                    return;
                }
                _ = &mut deadline => {
                    if bookmarks { let _ = tx.send(ctx.bookmark(last_rv, false)).await; }
                    return;
                }
                _ = tx.closed() => return,
            }
        }
    });
    Ok(stream_response(rx))
}

/// Synthetic container logs: deterministic lines derived from the pod's name, as an
/// application or its Envoy sidecar would write them. `follow=true` streams a line a second.
async fn pod_log(
    state: &Arc<ClusterState>,
    req: &Req,
    t: &Target<'_>,
) -> Result<Response<Body>, ApiError> {
    let name = t.name.unwrap_or("");
    let obj = state
        .store
        .get(&t.rt.key, t.namespace.unwrap_or(""), name)
        .ok_or_else(|| not_found(&t.rt, name))?;
    let pod = obj.value();
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match req.q("container") {
        Some(c) if containers.iter().any(|x| x == c) => c.to_string(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let total = 200u64;
    let tail = req
        .q("tailLines")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(total)
        .min(total);
    let limit = req
        .q("limitBytes")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let seed = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let now = Utc::now();
    let mut text = String::new();
    for i in (total - tail)..total {
        let ts = now - chrono::Duration::seconds((total - i) as i64);
        text.push_str(&log_line(&container, seed, i, ts));
        if text.len() >= limit {
            text.truncate(limit);
            break;
        }
    }
    if !req.q_bool("follow") {
        let mut r = Response::new(full(text));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain"),
        );
        return Ok(r);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        let mut i = total;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if tx
                .send(Bytes::from(log_line(&container, seed, i, Utc::now())))
                .await
                .is_err()
            {
                return;
            }
            i += 1;
        }
    });
    let mut r = stream_response(rx);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}

fn log_line(container: &str, seed: u64, i: u64, ts: chrono::DateTime<Utc>) -> String {
    let h = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 7;
    let paths = [
        "/",
        "/api/books",
        "/api/reviews/42",
        "/healthz",
        "/api/cart",
        "/api/ratings",
    ];
    let path = paths[(h % paths.len() as u64) as usize];
    let code = match h % 50 {
        0 => 503,
        1 | 2 => 404,
        _ => 200,
    };
    let ms = 2 + h % 180;
    let t = ts.to_rfc3339_opts(SecondsFormat::Millis, true);
    if container == "istio-proxy" {
        format!(
            "[{t}] \"GET {path} HTTP/1.1\" {code} - via_upstream - \"-\" 0 {} {ms} {} \"-\" \"curl/8.5.0\" \"{:08x}\" \"{}\" \"10.0.0.{}:9080\" inbound|9080||\n",
            120 + h % 900,
            ms.saturating_sub(1),
            h & 0xffff_ffff,
            "svc",
            h % 250
        )
    } else {
        let level = if code >= 500 { "ERROR" } else { "INFO" };
        format!("{t} {level} request method=GET path={path} status={code} duration={ms}ms\n")
    }
}
