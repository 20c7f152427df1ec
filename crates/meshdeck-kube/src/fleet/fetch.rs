//! On-demand reads for the console: one object as YAML, a pod's log stream. GETs only, through
//! one client per cluster made lazily from the same kubeconfig targets as the watchers.
//! Secrets are refused before any request is made.

use super::{ISTIO_KINDS, POLICY_KINDS, Target, describe_error};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, LogParams};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Lines of history a log view starts with.
pub const LOG_TAIL_LINES: i64 = 500;
/// The sidecar's container name: logs show the application's container first.
const SIDECAR: &str = "istio-proxy";

pub struct Fetcher {
    targets: HashMap<String, Target>,
    clients: Mutex<HashMap<String, kube::Client>>,
}

/// The plural of the kinds a console row can be.
fn plural(kind: &str) -> Option<&'static str> {
    let core = match kind {
        "Service" => Some("services"),
        "Pod" => Some("pods"),
        "Deployment" => Some("deployments"),
        "StatefulSet" => Some("statefulsets"),
        "ReplicaSet" => Some("replicasets"),
        "Namespace" => Some("namespaces"),
        "ConfigMap" => Some("configmaps"),
        _ => None,
    };
    core.or_else(|| {
        ISTIO_KINDS
            .iter()
            .chain(POLICY_KINDS)
            .find(|(_, _, k, _)| *k == kind)
            .map(|(_, _, _, p)| *p)
    })
}

/// Drop what nobody reads in a YAML view: managedFields and the last-applied annotation.
pub(crate) fn trim_for_display(v: &mut serde_json::Value) {
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
        if let Some(a) = m.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if a.is_empty() {
                m.remove("annotations");
            }
        }
    }
}

impl Fetcher {
    pub fn new(targets: &[Target]) -> Fetcher {
        Fetcher {
            targets: targets
                .iter()
                .map(|t| (t.cluster.clone(), t.clone()))
                .collect(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, cluster: &str) -> Result<kube::Client, String> {
        if let Some(c) = self.clients.lock().get(cluster) {
            return Ok(c.clone());
        }
        let t = self
            .targets
            .get(cluster)
            .ok_or_else(|| format!("{cluster}: not a connected cluster"))?;
        let c = crate::session::client(t, crate::session::Purpose::Watch)
            .map_err(|e| format!("{cluster}: cannot build a client: {}", describe_error(&e)))?;
        self.clients.lock().insert(cluster.to_string(), c.clone());
        Ok(c)
    }

    /// GET one object and print it as YAML.
    pub async fn yaml(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<String, String> {
        if kind == "Secret" {
            return Err("meshdeck never shows Secrets".into());
        }
        let plural = plural(kind).ok_or_else(|| format!("meshdeck cannot fetch a {kind}"))?;
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let client = self.client(cluster)?;
        let api: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(client, &ar)
        } else {
            Api::namespaced_with(client, namespace, &ar)
        };
        let obj = tokio::time::timeout(Duration::from_secs(15), api.get(name))
            .await
            .map_err(|_| format!("{cluster}: no answer within 15 s"))?
            .map_err(|e| format!("{cluster}: {}", describe_error(&e)))?;
        let mut v = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
        trim_for_display(&mut v);
        crate::yaml::to_string(&v)
    }

    /// Follow a pod's log: the last `LOG_TAIL_LINES` lines, then new lines as they come, sent
    /// in batches through `send`. Returns why the stream ended.
    pub async fn follow_logs(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        stop: CancellationToken,
        send: impl Fn(Vec<String>) -> bool,
    ) -> Result<String, String> {
        let client = self.client(cluster)?;
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let p = api
            .get(pod)
            .await
            .map_err(|e| format!("{cluster}: {}", describe_error(&e)))?;
        let containers: Vec<String> = p
            .spec
            .map(|s| s.containers.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        let container = containers
            .iter()
            .find(|c| *c != SIDECAR)
            .or(containers.first())
            .cloned();
        let params = LogParams {
            follow: true,
            tail_lines: Some(LOG_TAIL_LINES),
            container: container.clone(),
            ..Default::default()
        };
        let stream = api
            .log_stream(pod, &params)
            .await
            .map_err(|e| format!("{cluster}: {}", describe_error(&e)))?;
        if let Some(c) = &container
            && containers.len() > 1
        {
            send(vec![format!(
                "# container {c} (of {}); meshdeck shows the application's container",
                containers.join(", ")
            )]);
        }
        let mut lines = stream.lines();
        let mut batch: Vec<String> = Vec::new();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return Ok("closed".into()),
                l = lines.next() => l,
                _ = tokio::time::sleep(Duration::from_millis(50)), if !batch.is_empty() => {
                    if !send(std::mem::take(&mut batch)) {
                        return Ok("closed".into());
                    }
                    continue;
                }
            };
            match next {
                Some(Ok(l)) => {
                    batch.push(l);
                    if batch.len() >= 256 && !send(std::mem::take(&mut batch)) {
                        return Ok("closed".into());
                    }
                }
                Some(Err(e)) => {
                    send(std::mem::take(&mut batch));
                    return Err(format!("{cluster}: log stream broke: {e}"));
                }
                None => {
                    send(std::mem::take(&mut batch));
                    return Ok("the server closed the stream".into());
                }
            }
        }
    }
}

/// Every object of the kinds meshdeck generates, in one cluster, as the planner compares them
/// (a LIST per kind; read-only).
pub async fn list_generated_kinds(
    client: &kube::Client,
    cluster: &str,
) -> Result<Vec<crate::plan::Live>, String> {
    let kinds: Vec<_> = ISTIO_KINDS
        .iter()
        .filter(|(_, _, k, _)| {
            matches!(
                *k,
                "VirtualService"
                    | "DestinationRule"
                    | "ServiceEntry"
                    | "Gateway"
                    | "AuthorizationPolicy"
                    | "PeerAuthentication"
            )
        })
        .collect();
    list_kinds(client, cluster, &kinds).await
}

async fn list_kinds(
    client: &kube::Client,
    cluster: &str,
    kinds: &[&(&str, &str, &str, &str)],
) -> Result<Vec<crate::plan::Live>, String> {
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::discovery::ApiResource;
    let mut out = Vec::new();
    for &&(group, version, kind, plural) in kinds {
        let ar = ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: format!("{group}/{version}"),
            kind: kind.to_string(),
            plural: plural.to_string(),
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("{cluster}: listing {plural}: {}", describe_error(&e)))?;
        for o in list.items {
            let mut v = serde_json::to_value(&o).map_err(|e| e.to_string())?;
            v["kind"] = serde_json::json!(kind);
            v["apiVersion"] = serde_json::json!(format!("{group}/{version}"));
            if let Some(raw) = crate::model::raw::RawObject::from_value(&v) {
                out.push(crate::plan::Live::from_raw(cluster, &raw));
            }
        }
    }
    Ok(out)
}
