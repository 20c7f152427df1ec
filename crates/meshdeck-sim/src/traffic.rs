//! Simulated request traffic that follows each cluster's store, exported as Istio's standard
//! metrics in Prometheus text format.
//!
//! A request flow enters at each cluster's ingress gateway and walks the demo application's
//! call graph (frontend → reviews → ratings, frontend → details, …). Every call is routed the
//! way a sidecar would route it from what is in the caller's cluster *now*: the first HTTP route
//! of a VirtualService for the host (its weights, subsets and fault injection), the
//! DestinationRule's subsets, the Service's selector and the pods that are ready; a host that is
//! not local resolves to another cluster's service when a ServiceEntry names it (federation).
//! A call that finds no route, subset or ready endpoint fails with 503 at the caller; an aborted
//! call never reaches the destination. Each pod's sidecar counts what it sent
//! (`reporter="source"`) and served (`reporter="destination"`).
//!
//! Counters advance with time: [`Traffic::advance`] adds `rate × elapsed` to every series, so
//! a changed VirtualService changes the slope from that moment on. The flows are also the
//! ground truth the tests compare meshdeck's numbers with ([`Traffic::truth`]).

use super::cluster::ClusterState;
use super::store::string_map as str_map;
use meshdeck_core::signals::{Rows, Subject, Traffic as Rates};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

/// Requests per second entering each cluster at its ingress gateway.
pub const INGRESS_RPS: f64 = 20.0;

/// Istio's default request-duration buckets, milliseconds.
pub const BUCKETS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// How a destination's latency spreads: (share of requests, multiple of its base latency).
/// (The shares keep the 99th percentile away from a bucket's bound: 99.5 % of requests take at
/// most 1.6 × the base, so p99 never flips between two buckets on rounding.)
const SPREAD: &[(f64, f64)] = &[(0.5, 0.7), (0.3, 1.0), (0.195, 1.6), (0.005, 3.5)];

/// The call graph: a caller app calls (namespace, service) this many times per request.
const CALLS: &[(&str, &str, &str, f64)] = &[
    ("istio-ingressgateway", "bookstore", "frontend", 1.0),
    ("frontend", "bookstore", "reviews", 1.0),
    ("frontend", "bookstore", "details", 1.0),
    ("frontend", "payments", "payments", 0.2),
    ("frontend", "inventory", "inventory", 0.5),
    ("frontend", "shipping", "shipping", 0.1),
    ("reviews-v2", "bookstore", "ratings", 1.0),
    ("reviews-v3", "bookstore", "ratings", 1.0),
    ("payments", "payments", "fraud-check", 1.0),
    ("payments", "auth", "auth", 1.0),
    ("payments", "legacy", "legacy-billing", 0.5),
    ("inventory", "inventory", "warehouse", 1.0),
    ("shipping", "shipping", "tracking", 1.0),
];

/// Base latency of an app's own work, milliseconds.
fn base_latency(app: &str) -> f64 {
    match app {
        "frontend" => 30.0,
        "reviews" => 12.0,
        "ratings" => 4.0,
        "details" => 6.0,
        "payments" => 40.0,
        "fraud-check" => 25.0,
        "auth" => 8.0,
        "legacy-billing" => 60.0,
        "inventory" => 10.0,
        "warehouse" => 15.0,
        "shipping" => 20.0,
        "tracking" => 9.0,
        _ => 10.0,
    }
}

/// Errors an app answers by itself in the cluster of this name: (code, share). `auth`
/// refuses some logins (4xx, within Kiali's tolerance); us-east's `warehouse` is overloaded
/// (12 % 503: a traffic failure for the demo to show).
fn own_errors(app: &str, cluster: &str) -> &'static [(&'static str, f64)] {
    match (app, cluster) {
        ("auth", _) => &[("401", 0.04)],
        ("warehouse", "us-east") => &[("503", 0.12)],
        _ => &[],
    }
}

#[derive(Debug, Clone)]
struct Pod {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    workload: String,
    ready: bool,
    sidecar: bool,
}

#[derive(Debug, Clone)]
struct Svc {
    namespace: String,
    name: String,
    selector: BTreeMap<String, String>,
}

/// What one cluster's store holds that routing needs.
struct World {
    cluster: String,
    pods: Vec<Pod>,
    services: Vec<Svc>,
    vs: Vec<Value>,
    dr: Vec<Value>,
    se: Vec<Value>,
}

fn workload_of(p: &Value) -> String {
    let owner = p
        .pointer("/metadata/ownerReferences/0")
        .cloned()
        .unwrap_or(Value::Null);
    let name = owner["name"].as_str().unwrap_or("");
    match owner["kind"].as_str() {
        // a ReplicaSet is `<deployment>-<hash>`
        Some("ReplicaSet") => name.rsplit_once('-').map_or(name, |(d, _)| d).to_string(),
        Some(_) => name.to_string(),
        None => p
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    }
}

impl World {
    fn read(state: &ClusterState) -> World {
        let namespaces: Vec<&str> = {
            let mut v: Vec<&str> = CALLS.iter().map(|c| c.1).collect();
            v.push("istio-system");
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut pods = Vec::new();
        let mut services = Vec::new();
        for ns in &namespaces {
            for o in state.store.list("pods", Some(ns)).1 {
                let p = o.value();
                let ready = p["status"]["phase"] == "Running"
                    && p.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        });
                let sidecar = p
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"));
                pods.push(Pod {
                    name: o.name.clone(),
                    namespace: o.namespace.clone(),
                    labels: o.labels.clone(),
                    workload: workload_of(&p),
                    ready,
                    sidecar,
                });
            }
            for o in state.store.list("services", Some(ns)).1 {
                let s = o.value();
                services.push(Svc {
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    selector: str_map(s.pointer("/spec/selector")),
                });
            }
        }
        let all = |key: &str| -> Vec<Value> {
            state
                .store
                .list(key, None)
                .1
                .iter()
                .map(|o| o.value())
                .collect()
        };
        World {
            cluster: state.name.clone(),
            pods,
            services,
            vs: all("virtualservices.networking.istio.io"),
            dr: all("destinationrules.networking.istio.io"),
            se: all("serviceentries.networking.istio.io"),
        }
    }

    /// Whether a ServiceEntry of this cluster names `name.ns` (a federated service).
    fn federates(&self, ns: &str, name: &str) -> bool {
        let fqdn = format!("{name}.{ns}.svc.cluster.local");
        self.se.iter().any(|e| {
            e.pointer("/spec/hosts")
                .and_then(Value::as_array)
                .is_some_and(|hs| hs.iter().any(|h| h == fqdn.as_str()))
        })
    }

    fn service(&self, ns: &str, name: &str) -> Option<&Svc> {
        self.services
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    }
}

/// `host` as written in a config object of namespace `ns` → (name, namespace).
fn host_parts(host: &str, ns: &str) -> (String, String) {
    let mut it = host.split('.');
    let name = it.next().unwrap_or("").to_string();
    match it.next() {
        Some(n) if n != "svc" => (name, n.to_string()),
        _ => (name, ns.to_string()),
    }
}

fn names_host(written: &str, written_ns: &str, ns: &str, name: &str) -> bool {
    let (n, s) = host_parts(written, written_ns);
    n == name && s == ns && (written.split('.').count() <= 2 || written.contains(".svc"))
}

/// One way a call ends.
#[derive(Debug, Clone)]
struct Outcome {
    share: f64,
    code: &'static str,
    /// (cluster index, workload, its ready pods) when the call reaches one.
    dest: Option<(usize, String, String, Vec<String>)>,
    /// Added at the caller (fault delay), milliseconds.
    delay_ms: f64,
}

fn pct(v: &Value) -> f64 {
    v.pointer("/percentage/value")
        .and_then(Value::as_f64)
        .or_else(|| v.get("percent").and_then(Value::as_f64))
        .unwrap_or(100.0)
        .clamp(0.0, 100.0)
        / 100.0
}

fn duration_ms(s: &str) -> f64 {
    let s = s.trim();
    if let Some(v) = s.strip_suffix("ms") {
        v.parse().unwrap_or(0.0)
    } else if let Some(v) = s.strip_suffix('s') {
        v.parse::<f64>().unwrap_or(0.0) * 1000.0
    } else {
        0.0
    }
}

fn code_str(n: i64) -> &'static str {
    match n {
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "500",
    }
}

/// A route's destination: host, subset, weight.
type Dest = (String, Option<String>, f64);

/// Route a call from a pod of cluster `from` to service `ns/name`.
fn route(worlds: &[World], from: usize, ns: &str, name: &str) -> Vec<Outcome> {
    let w = &worlds[from];
    let vs = w.vs.iter().find(|v| {
        let vns = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mesh = v
            .pointer("/spec/gateways")
            .and_then(Value::as_array)
            .is_none_or(|g| g.is_empty() || g.iter().any(|x| x == "mesh"));
        mesh && v
            .pointer("/spec/hosts")
            .and_then(Value::as_array)
            .is_some_and(|hs| {
                hs.iter()
                    .filter_map(Value::as_str)
                    .any(|h| names_host(h, vns, ns, name))
            })
    });
    let (dests, fault, vns): (Vec<Dest>, Value, String) = match vs {
        None => (
            vec![(name.to_string(), None, 1.0)],
            Value::Null,
            ns.to_string(),
        ),
        Some(v) => {
            let vns = v
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(ns)
                .to_string();
            let routes = v.pointer("/spec/http").and_then(Value::as_array);
            let r = routes.and_then(|rs| {
                rs.iter()
                    .find(|r| {
                        r.get("match")
                            .is_none_or(|m| m.as_array().is_none_or(|a| a.is_empty()))
                    })
                    .or_else(|| rs.first())
            });
            let Some(r) = r else {
                return vec![Outcome {
                    share: 1.0,
                    code: "404",
                    dest: None,
                    delay_ms: 0.0,
                }];
            };
            let ds: Vec<&Value> = r
                .get("route")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let weighted = ds.iter().any(|d| d.get("weight").is_some());
            let mut dests: Vec<Dest> = ds
                .iter()
                .map(|d| {
                    let weight = if weighted {
                        d.get("weight").and_then(Value::as_f64).unwrap_or(0.0)
                    } else {
                        1.0
                    };
                    (
                        d.pointer("/destination/host")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        d.pointer("/destination/subset")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        weight,
                    )
                })
                .collect();
            let total: f64 = dests.iter().map(|d| d.2).sum();
            if total <= 0.0 {
                return vec![Outcome {
                    share: 1.0,
                    code: "503",
                    dest: None,
                    delay_ms: 0.0,
                }];
            }
            for d in &mut dests {
                d.2 /= total;
            }
            (dests, r.get("fault").cloned().unwrap_or(Value::Null), vns)
        }
    };
    let mut out = Vec::new();
    let abort = fault.get("abort");
    let aborted = abort.map_or(0.0, pct);
    if let Some(a) = abort
        && aborted > 0.0
    {
        let code = code_str(a.get("httpStatus").and_then(Value::as_i64).unwrap_or(500));
        out.push(Outcome {
            share: aborted,
            code,
            dest: None,
            delay_ms: 0.0,
        });
    }
    let (delay_share, delay_ms) = match fault.get("delay") {
        Some(d) => (
            pct(d),
            duration_ms(d.get("fixedDelay").and_then(Value::as_str).unwrap_or("0s")),
        ),
        None => (0.0, 0.0),
    };
    let rest = 1.0 - aborted;
    if rest <= 0.0 {
        return out;
    }
    for (host, subset, weight) in dests {
        let (dname, dns) = host_parts(&host, &vns);
        let share = rest * weight;
        // the subset's labels, from the caller's DestinationRules
        let subset_labels = match &subset {
            None => Some(BTreeMap::new()),
            Some(s) => {
                w.dr.iter()
                    .find(|d| {
                        let dr_ns = d
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        d.pointer("/spec/host")
                            .and_then(Value::as_str)
                            .is_some_and(|h| names_host(h, dr_ns, &dns, &dname))
                    })
                    .and_then(|d| d.pointer("/spec/subsets").and_then(Value::as_array))
                    .and_then(|ss| ss.iter().find(|x| x["name"] == s.as_str()))
                    .map(|x| str_map(x.get("labels")))
            }
        };
        let Some(subset_labels) = subset_labels else {
            out.push(Outcome {
                share,
                code: "503",
                dest: None,
                delay_ms: 0.0,
            });
            continue;
        };
        // local service, else a federated one another cluster serves
        let target = if w.service(&dns, &dname).is_some() {
            Some(from)
        } else {
            let fqdn = format!("{dname}.{dns}.svc.cluster.local");
            let federated = w.se.iter().any(|e| {
                e.pointer("/spec/hosts")
                    .and_then(Value::as_array)
                    .is_some_and(|hs| hs.iter().any(|h| h == host.as_str() || h == fqdn.as_str()))
            });
            federated
                .then(|| {
                    (0..worlds.len())
                        .find(|&i| i != from && worlds[i].service(&dns, &dname).is_some())
                })
                .flatten()
        };
        let Some(ti) = target else {
            out.push(Outcome {
                share,
                code: "503",
                dest: None,
                delay_ms: 0.0,
            });
            continue;
        };
        let tw = &worlds[ti];
        let Some(svc) = tw.service(&dns, &dname) else {
            continue;
        };
        // endpoints grouped by workload
        let mut by_wl: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &tw.pods {
            let selected = !svc.selector.is_empty()
                && p.namespace == dns
                && p.ready
                && svc
                    .selector
                    .iter()
                    .chain(subset_labels.iter())
                    .all(|(k, v)| p.labels.get(k) == Some(v));
            if selected {
                by_wl
                    .entry(p.workload.clone())
                    .or_default()
                    .push(p.name.clone());
            }
        }
        let n: usize = by_wl.values().map(Vec::len).sum();
        if n == 0 {
            out.push(Outcome {
                share,
                code: "503",
                dest: None,
                delay_ms: 0.0,
            });
            continue;
        }
        for (wl, pods) in by_wl {
            let s = share * pods.len() as f64 / n as f64;
            for (ds, dm) in [(1.0 - delay_share, 0.0), (delay_share, delay_ms)] {
                if ds > 0.0 {
                    out.push(Outcome {
                        share: s * ds,
                        code: "200",
                        dest: Some((ti, dns.clone(), wl.clone(), pods.clone())),
                        delay_ms: dm,
                    });
                }
            }
        }
    }
    out
}

/// One series of one pod's sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Series {
    reporter: &'static str,
    source_workload: String,
    source_namespace: String,
    source_cluster: String,
    dest_workload: String,
    dest_namespace: String,
    dest_service: String,
    dest_service_namespace: String,
    dest_cluster: String,
    code: &'static str,
}

/// A flow: requests per second of one series at one pod, with its latency.
#[derive(Debug, Clone)]
struct Flow {
    cluster: usize,
    namespace: String,
    pod: String,
    series: Series,
    rps: f64,
    latency_ms: f64,
}

#[derive(Debug, Clone, Default)]
struct Counters {
    count: f64,
    sum: f64,
    buckets: Vec<f64>,
}

/// The traffic of a whole fleet.
pub struct Traffic {
    clusters: Vec<Arc<ClusterState>>,
    inner: Mutex<Inner>,
}

struct Inner {
    last: Instant,
    /// (cluster, namespace, pod) → series → counters
    pods: HashMap<(usize, String, String), BTreeMap<Series, Counters>>,
}

fn flows(worlds: &[World]) -> Vec<Flow> {
    let mut out = Vec::new();
    for (ci, w) in worlds.iter().enumerate() {
        // (cluster, namespace, workload) → inbound requests per second; the gateways start it
        let mut inbound: BTreeMap<(usize, String, String), f64> = BTreeMap::new();
        let gateways: Vec<&Pod> = w
            .pods
            .iter()
            .filter(|p| {
                p.labels.get("istio").map(String::as_str) == Some("ingressgateway") && p.ready
            })
            .collect();
        if let Some(g) = gateways.first() {
            inbound.insert((ci, g.namespace.clone(), g.workload.clone()), INGRESS_RPS);
        }
        // walk the graph breadth first; it has no cycles, the depth bound is a guard
        let mut frontier: Vec<((usize, String, String), f64)> =
            inbound.clone().into_iter().collect();
        for _depth in 0..8 {
            let mut next: BTreeMap<(usize, String, String), f64> = BTreeMap::new();
            for ((wc, wns, wl), rate) in &frontier {
                let ww = &worlds[*wc];
                let callers: Vec<&Pod> = ww
                    .pods
                    .iter()
                    .filter(|p| p.namespace == *wns && p.workload == *wl && p.ready)
                    .collect();
                let Some(first) = callers.first() else {
                    continue;
                };
                let app = first.labels.get("app").cloned().unwrap_or_default();
                let ok_share = 1.0
                    - own_errors(&app, &ww.cluster)
                        .iter()
                        .map(|e| e.1)
                        .sum::<f64>();
                for (caller, dns, dsvc, per) in CALLS {
                    if *caller != app.as_str() && *caller != wl.as_str() {
                        continue;
                    }
                    // an app calls only what its cluster runs (or federates)
                    if ww.service(dns, dsvc).is_none() && !ww.federates(dns, dsvc) {
                        continue;
                    }
                    let call_rps = rate * ok_share * per;
                    for o in route(worlds, *wc, dns, dsvc) {
                        let r = call_rps * o.share;
                        if r <= 0.0 {
                            continue;
                        }
                        // the destination's pods (with whether each has a sidecar), its app's
                        // latency and the errors it answers by itself
                        let (dest_cluster, dest_ns, dest_wl, dest_pods, lat, dest_errors) = match &o
                            .dest
                        {
                            Some((ti, dn, dw, pods)) => {
                                let tw = &worlds[*ti];
                                let mine: Vec<&Pod> = pods
                                    .iter()
                                    .filter_map(|n| {
                                        tw.pods.iter().find(|p| p.name == *n && p.namespace == *dn)
                                    })
                                    .collect();
                                let app = mine
                                    .first()
                                    .and_then(|p| p.labels.get("app"))
                                    .map(String::as_str)
                                    .unwrap_or("");
                                (
                                    tw.cluster.clone(),
                                    dn.clone(),
                                    dw.clone(),
                                    mine.iter().map(|p| (p.name.clone(), p.sidecar)).collect(),
                                    base_latency(app),
                                    own_errors(app, &tw.cluster),
                                )
                            }
                            None => (
                                "unknown".into(),
                                "unknown".into(),
                                "unknown".into(),
                                vec![],
                                0.0,
                                &[][..],
                            ),
                        };
                        let series = |reporter: &'static str, code: &'static str| Series {
                            reporter,
                            source_workload: wl.clone(),
                            source_namespace: wns.clone(),
                            source_cluster: ww.cluster.clone(),
                            dest_workload: dest_wl.clone(),
                            dest_namespace: dest_ns.clone(),
                            dest_service: dsvc.to_string(),
                            dest_service_namespace: dns.to_string(),
                            dest_cluster: dest_cluster.clone(),
                            code,
                        };
                        // what the destination answers: its own errors, else 200
                        let mut answers: Vec<(&'static str, f64)> = vec![];
                        if o.dest.is_some() {
                            let err: f64 = dest_errors.iter().map(|e| e.1).sum();
                            answers.push(("200", 1.0 - err));
                            answers.extend(dest_errors.iter().copied());
                        } else {
                            answers.push((o.code, 1.0));
                        }
                        for (code, share) in answers {
                            let rr = r * share;
                            for p in &callers {
                                if p.sidecar {
                                    out.push(Flow {
                                        cluster: *wc,
                                        namespace: p.namespace.clone(),
                                        pod: p.name.clone(),
                                        series: series("source", code),
                                        rps: rr / callers.len() as f64,
                                        latency_ms: if o.dest.is_some() {
                                            lat + 1.0 + o.delay_ms
                                        } else {
                                            0.2
                                        },
                                    });
                                }
                            }
                            if let Some((ti, dn, _, _)) = &o.dest {
                                for (dp, has_sidecar) in &dest_pods {
                                    if *has_sidecar {
                                        out.push(Flow {
                                            cluster: *ti,
                                            namespace: dn.clone(),
                                            pod: dp.clone(),
                                            series: series("destination", code),
                                            rps: rr / dest_pods.len() as f64,
                                            latency_ms: lat,
                                        });
                                    }
                                }
                            }
                        }
                        if let Some((ti, dn, dw, _)) = &o.dest {
                            *next.entry((*ti, dn.clone(), dw.clone())).or_default() += r;
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next.into_iter().collect();
        }
    }
    out
}

fn label_escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels_text(s: &Series, extra: &str) -> String {
    let e = label_escape;
    format!(
        "reporter=\"{}\",source_workload=\"{}\",source_workload_namespace=\"{}\",source_cluster=\"{}\",destination_workload=\"{}\",destination_workload_namespace=\"{}\",destination_service=\"{}\",destination_service_name=\"{}\",destination_service_namespace=\"{}\",destination_cluster=\"{}\",request_protocol=\"http\",response_code=\"{}\",grpc_response_status=\"\",response_flags=\"-\",connection_security_policy=\"{}\"{extra}",
        s.reporter,
        e(&s.source_workload),
        e(&s.source_namespace),
        e(&s.source_cluster),
        e(&s.dest_workload),
        e(&s.dest_namespace),
        e(&format!(
            "{}.{}.svc.cluster.local",
            s.dest_service, s.dest_service_namespace
        )),
        e(&s.dest_service),
        e(&s.dest_service_namespace),
        e(&s.dest_cluster),
        s.code,
        if s.reporter == "destination" {
            "mutual_tls"
        } else {
            "unknown"
        },
    )
}

impl Traffic {
    pub fn new(clusters: Vec<Arc<ClusterState>>) -> Traffic {
        Traffic {
            clusters,
            inner: Mutex::new(Inner {
                last: Instant::now(),
                pods: HashMap::new(),
            }),
        }
    }

    fn worlds(&self) -> Vec<World> {
        self.clusters.iter().map(|c| World::read(c)).collect()
    }

    /// Add the traffic since the last call at the current rates.
    pub fn advance(&self) {
        let worlds = self.worlds();
        let fl = flows(&worlds);
        let mut inner = self.inner.lock();
        let now = Instant::now();
        let dt = now.duration_since(inner.last).as_secs_f64();
        inner.last = now;
        // pods that are gone take their counters with them
        let live: std::collections::HashSet<(usize, &str, &str)> = worlds
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                w.pods
                    .iter()
                    .map(move |p| (i, p.namespace.as_str(), p.name.as_str()))
            })
            .collect();
        inner
            .pods
            .retain(|(c, ns, p), _| live.contains(&(*c, ns.as_str(), p.as_str())));
        for f in fl {
            let c = inner
                .pods
                .entry((f.cluster, f.namespace, f.pod))
                .or_default()
                .entry(f.series)
                .or_insert_with(|| Counters {
                    buckets: vec![0.0; BUCKETS.len()],
                    ..Counters::default()
                });
            let n = f.rps * dt;
            c.count += n;
            for (share, mult) in SPREAD {
                let ms = f.latency_ms * mult;
                c.sum += n * share * ms;
                for (i, le) in BUCKETS.iter().enumerate() {
                    if ms <= *le {
                        c.buckets[i] += n * share;
                    }
                }
            }
        }
    }

    fn cluster_index(&self, name: &str) -> Option<usize> {
        self.clusters.iter().position(|c| c.name == name)
    }

    fn write_series(out: &mut String, s: &Series, c: &Counters, extra: &str) {
        let l = labels_text(s, extra);
        let _ = writeln!(out, "istio_requests_total{{{l}}} {:.3}", c.count);
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "istio_request_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {:.3}",
                c.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "istio_request_duration_milliseconds_bucket{{{l},le=\"+Inf\"}} {:.3}",
            c.count
        );
        let _ = writeln!(
            out,
            "istio_request_duration_milliseconds_sum{{{l}}} {:.3}",
            c.sum
        );
        let _ = writeln!(
            out,
            "istio_request_duration_milliseconds_count{{{l}}} {:.3}",
            c.count
        );
    }

    const HEAD_REQ: &str =
        "# HELP istio_requests_total Total requests.\n# TYPE istio_requests_total counter\n";
    const HEAD_DUR: &str = "# HELP istio_request_duration_milliseconds Request duration.\n# TYPE istio_request_duration_milliseconds histogram\n";

    /// One pod's sidecar metrics (`:15020/stats/prometheus`); None for an unknown pod.
    pub fn pod_text(&self, cluster: &str, namespace: &str, pod: &str) -> Option<String> {
        let ci = self.cluster_index(cluster)?;
        self.advance();
        let inner = self.inner.lock();
        let mut out = String::from(Self::HEAD_REQ);
        out.push_str(Self::HEAD_DUR);
        if let Some(series) = inner
            .pods
            .get(&(ci, namespace.to_string(), pod.to_string()))
        {
            for (s, c) in series {
                Self::write_series(&mut out, s, c, "");
            }
        }
        Some(out)
    }

    /// Every pod's series of one cluster, labelled with `namespace` and `pod` (what a
    /// Prometheus scraping the cluster's pods stores).
    pub fn cluster_text(&self, cluster: &str) -> Option<String> {
        let ci = self.cluster_index(cluster)?;
        self.advance();
        let inner = self.inner.lock();
        let mut out = String::from(Self::HEAD_REQ);
        out.push_str(Self::HEAD_DUR);
        let mut keys: Vec<&(usize, String, String)> =
            inner.pods.keys().filter(|k| k.0 == ci).collect();
        keys.sort();
        for k in keys {
            let extra = format!(
                ",namespace=\"{}\",pod=\"{}\"",
                label_escape(&k.1),
                label_escape(&k.2)
            );
            for (s, c) in &inner.pods[k] {
                Self::write_series(&mut out, s, c, &extra);
            }
        }
        Some(out)
    }

    /// The current rates as meshdeck's rows should show them: services as their callers in
    /// each cluster see them, workloads as their pods serve, edges (p99 not set).
    pub fn truth(&self) -> Rows {
        let worlds = self.worlds();
        let mut rows = Rows::default();
        // per row: the rate of requests at or under each bucket's bound, for its p99
        let mut hist: HashMap<(meshdeck_core::signals::View, Vec<String>), Vec<f64>> =
            HashMap::new();
        for f in flows(&worlds) {
            let s = &f.series;
            let cluster = match s.reporter {
                "destination" => &s.dest_cluster,
                _ => &s.source_cluster,
            };
            let get = |k: &str| -> Option<String> {
                Some(match k {
                    "destination_service_namespace" => s.dest_service_namespace.clone(),
                    "destination_service_name" => s.dest_service.clone(),
                    "destination_workload_namespace" => s.dest_namespace.clone(),
                    "destination_workload" => s.dest_workload.clone(),
                    "source_workload_namespace" => s.source_namespace.clone(),
                    "source_workload" => s.source_workload.clone(),
                    _ => return None,
                })
            };
            for view in meshdeck_core::signals::View::ALL {
                if view.reporter() == s.reporter
                    && let Some(t) = rows.entry(view, cluster, get)
                {
                    t.add("http", s.code, "", f.rps);
                    let mut id = vec![cluster.clone()];
                    id.extend(view.group_labels().iter().filter_map(|l| get(l)));
                    let b = hist
                        .entry((view, id))
                        .or_insert_with(|| vec![0.0; BUCKETS.len() + 1]);
                    for (share, mult) in SPREAD {
                        let ms = f.latency_ms * mult;
                        for (i, le) in BUCKETS.iter().enumerate() {
                            if ms <= *le {
                                b[i] += f.rps * share;
                            }
                        }
                        b[BUCKETS.len()] += f.rps * share;
                    }
                }
            }
        }
        for ((view, id), b) in hist {
            let buckets: Vec<(f64, f64)> = BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(b)
                .collect();
            let Some(q) = meshdeck_core::signals::histogram_quantile(0.99, &buckets) else {
                continue;
            };
            let get = |l: &str| {
                view.group_labels()
                    .iter()
                    .position(|x| *x == l)
                    .and_then(|i| id.get(i + 1).cloned())
            };
            if let Some(t) = rows.entry(view, &id[0], get) {
                t.p99_ms = Some(q);
            }
        }
        rows
    }

    /// One service's truth in one cluster (what its callers there see).
    pub fn service_truth(&self, cluster: &str, namespace: &str, name: &str) -> Rates {
        self.truth()
            .services
            .remove(&Subject::new(cluster, namespace, name))
            .unwrap_or_default()
    }
}

/// Advance the counters every second until `stop` (a scrape advances them too).
pub async fn tick(traffic: Arc<Traffic>, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {
                let t = traffic.clone();
                // reading the stores parses JSON: off the runtime's threads
                let _ = tokio::task::spawn_blocking(move || t.advance()).await;
            }
            _ = stop.cancelled() => return,
        }
    }
}

/// Serve `/clusters/NAME/metrics` (plain HTTP) until `stop`.
pub async fn serve_metrics(
    traffic: Arc<Traffic>,
    listener: tokio::net::TcpListener,
    stop: tokio_util::sync::CancellationToken,
) {
    use http_body_util::Full;
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((tcp, _)) = r else { continue };
                let traffic = traffic.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let traffic = traffic.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
                            let text = match segs.as_slice() {
                                [c, name, m] if c == "clusters" && m == "metrics" => {
                                    let name = name.clone();
                                    tokio::task::spawn_blocking(move || traffic.cluster_text(&name)).await.ok().flatten()
                                }
                                _ => None,
                            };
                            let mut r = match text {
                                Some(t) => http::Response::new(Full::new(bytes::Bytes::from(t))),
                                None => {
                                    let mut r = http::Response::new(Full::new(bytes::Bytes::from_static(b"unknown cluster\n")));
                                    *r.status_mut() = http::StatusCode::NOT_FOUND;
                                    r
                                }
                            };
                            r.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                            );
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_durations() {
        assert_eq!(
            host_parts("reviews", "bookstore"),
            ("reviews".into(), "bookstore".into())
        );
        assert_eq!(
            host_parts("reviews.bookstore.svc.cluster.local", "x"),
            ("reviews".into(), "bookstore".into())
        );
        assert!(names_host(
            "reviews.bookstore.svc.cluster.local",
            "x",
            "bookstore",
            "reviews"
        ));
        assert!(!names_host(
            "reviews.example.com",
            "bookstore",
            "bookstore",
            "reviews"
        ));
        assert_eq!(duration_ms("5s"), 5000.0);
        assert_eq!(duration_ms("250ms"), 250.0);
        assert_eq!(
            pct(&serde_json::json!({"percentage": {"value": 50.0}})),
            0.5
        );
        assert_eq!(pct(&serde_json::json!({})), 1.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn traffic_follows_the_routes() {
        let fleet = crate::Fleet::start(crate::FleetSpec {
            clusters: 4,
            ..crate::FleetSpec::default()
        })
        .await
        .expect("fleet");
        let t = &fleet.traffic;
        let rows = t.truth();
        let frontend = t.service_truth("eu-west", "bookstore", "frontend");
        assert!((frontend.rps - INGRESS_RPS).abs() < 1e-9, "{frontend:?}");
        // the demo's VirtualService sends every reviews call to v1
        let v1 = &rows.workloads[&Subject::new("eu-west", "bookstore", "reviews-v1")];
        assert!((v1.rps - INGRESS_RPS).abs() < 1e-9, "{v1:?}");
        assert!(
            !rows
                .workloads
                .contains_key(&Subject::new("eu-west", "bookstore", "reviews-v2"))
        );
        // eu-west runs no auth, so nothing calls it there; eu-central's auth refuses 4 %
        assert_eq!(t.service_truth("eu-west", "auth", "auth").rps, 0.0);
        let auth = t.service_truth("eu-central", "auth", "auth");
        assert!(
            (auth.err_pct().unwrap_or_default() - 4.0).abs() < 1e-6,
            "{auth:?}"
        );
        // a pod's sidecar text parses back to its series
        let pod = fleet.clusters[0]
            .state
            .store
            .list("pods", Some("bookstore"))
            .1
            .into_iter()
            .find(|p| p.name.starts_with("frontend-"))
            .expect("a frontend pod");
        t.advance();
        let text = t.pod_text("eu-west", "bookstore", &pod.name).expect("text");
        let sample = meshdeck_core::signals::scrape::parse(&text, 0.0).expect("parse");
        assert!(sample.requests.len() >= 3, "{text}");
        let all = t.cluster_text("eu-west").expect("cluster");
        assert!(all.contains(&format!("pod=\"{}\"", pod.name)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delays_missing_subsets_dead_endpoints_and_federation() {
        use serde_json::json;
        let fleet = crate::Fleet::start(crate::FleetSpec::default())
            .await
            .expect("fleet");
        let t = &fleet.traffic;
        let store = &fleet.clusters[0].state.store;
        let vs = |name: &str, spec: serde_json::Value| {
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": name, "namespace": "bookstore"}, "spec": spec})
        };
        let vs_key = "virtualservices.networking.istio.io";
        // a 2 s delay on every details call: the callers' latency, not the pods'
        store.upsert(
            vs_key,
            vs(
                "details",
                json!({"hosts": ["details"], "http": [{
            "fault": {"delay": {"fixedDelay": "2s", "percentage": {"value": 100.0}}},
            "route": [{"destination": {"host": "details"}}]}]}),
            ),
        );
        let rows = t.truth();
        let d = &rows.services[&Subject::new("eu-west", "bookstore", "details")];
        assert!(d.p99_ms.is_some_and(|p| p > 2000.0), "{d:?}");
        let w = &rows.workloads[&Subject::new("eu-west", "bookstore", "details")];
        assert!(w.p99_ms.is_some_and(|p| p < 100.0), "{w:?}");
        // a route to a subset no DestinationRule defines: every call fails at the caller
        store.upsert(
            vs_key,
            vs(
                "reviews",
                json!({"hosts": ["reviews"], "http": [{
            "route": [{"destination": {"host": "reviews", "subset": "v9"}}]}]}),
            ),
        );
        let r = t.service_truth("eu-west", "bookstore", "reviews");
        assert_eq!(r.err_pct(), Some(100.0), "{r:?}");
        assert!(!t.truth().workloads.contains_key(&Subject::new(
            "eu-west",
            "bookstore",
            "reviews-v1"
        )));
        // no ready endpoint (every details pod gone): 503 at the callers
        store.remove(vs_key, "bookstore", "details");
        for p in store.list("pods", Some("bookstore")).1 {
            if p.name.starts_with("details-") {
                store.remove("pods", "bookstore", &p.name);
            }
        }
        let d = t.service_truth("eu-west", "bookstore", "details");
        assert_eq!(d.http.get("503"), Some(&d.rps), "{d:?}");
        // federation: without a local details Service, a ServiceEntry naming its host sends
        // the calls to the cluster that has it
        store.remove("services", "bookstore", "details");
        store.upsert("serviceentries.networking.istio.io", json!({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "details-federated", "namespace": "bookstore"},
            "spec": {"hosts": ["details.bookstore.svc.cluster.local"], "location": "MESH_INTERNAL",
                "resolution": "DNS", "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}]}}));
        let rows = t.truth();
        let d = &rows.services[&Subject::new("eu-west", "bookstore", "details")];
        assert_eq!(d.err_pct(), Some(0.0), "{d:?}");
        // us-east's details pods serve eu-west's calls on top of their own
        let remote = &rows.workloads[&Subject::new("us-east", "bookstore", "details")];
        assert!((remote.rps - 2.0 * INGRESS_RPS).abs() < 1e-6, "{remote:?}");
    }
}
