//! `schema.ValidationAnalyzer.VirtualService`, its route half: a rule no request can reach
//! (IST0130: a second rule without matches, a rule after one without matches, a rule whose
//! every match an earlier rule already has) and a match that never applies (IST0131: a
//! duplicate of an earlier match, or a prefix match an earlier, shorter prefix with the same
//! other conditions already covers). As Istio's validation does it, down to its messages.

use super::{Finding, Level, object_name};
use crate::model::ClusterView;
use crate::model::raw::RawObject;
use serde_json::Value;
use std::collections::BTreeMap;

const EXACT: &str = "exact:";
const PREFIX: &str = "prefix:";

/// Istio's `routeName`: an HTTP route's name, quoted, or `#n`.
fn route_name(proto: &str, r: &Value, n: usize) -> String {
    match r
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(name) if proto == "http" => format!("{name:?}"),
        _ => format!("#{n}"),
    }
}

/// Istio's `requestName`: an HTTP match's name, quoted, or `#n`.
fn request_name(proto: &str, m: &Value, n: usize) -> String {
    match m
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(name) if proto == "http" => format!("{name:?}"),
        _ => format!("#{n}"),
    }
}

/// A match as compared for duplicates: without its name.
fn routing_part(m: &Value) -> Value {
    let mut m = m.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("name");
    }
    m
}

fn exact_or_prefix(v: Option<&Value>) -> String {
    let get = |k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (get("exact"), get("prefix")) {
        (Some(e), _) => format!("{EXACT}{e}"),
        (None, Some(p)) => format!("{PREFIX}{p}"),
        _ => String::new(),
    }
}

/// A prefix match, as Istio's overlap check sees it.
struct PrefixMatch {
    rule: usize,
    route: String,
    request: String,
    prefix: String,
    port: u64,
    method: String,
    authority: String,
    headers: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    without: BTreeMap<String, String>,
}

fn prefix_match(route: String, rule: usize, m: &Value, n: usize) -> Option<PrefixMatch> {
    let prefix = m
        .get("uri")?
        .get("prefix")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())?
        .to_string();
    let map = |k: &str| -> BTreeMap<String, String> {
        m.get(k)
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), exact_or_prefix(Some(v))))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut method = exact_or_prefix(m.get("method"));
    if method.is_empty() {
        method = format!("{EXACT}GET"); // no method: GET, as Istio assumes
    }
    Some(PrefixMatch {
        rule,
        route,
        request: request_name("http", m, n),
        prefix,
        port: m.get("port").and_then(Value::as_u64).unwrap_or(0),
        method,
        authority: exact_or_prefix(m.get("authority")),
        headers: map("headers"),
        query: map("queryParams"),
        without: map("withoutHeaders"),
    })
}

/// Istio's `coveredValidation`: `a` (earlier) makes `b` (later) ineffective.
fn covered(a: &PrefixMatch, b: &PrefixMatch) -> bool {
    let same_or_prefix = |x: &str, y: &str| x == y || x.starts_with(y);
    let maps = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.len() == y.len()
            && x.iter()
                .all(|(k, v)| y.get(k).is_some_and(|w| same_or_prefix(v, w)))
    };
    b.prefix.starts_with(&a.prefix)
        && a.port == b.port
        && same_or_prefix(&a.method, &b.method)
        && same_or_prefix(&a.authority, &b.authority)
        && maps(&a.headers, &b.headers)
        && maps(&a.query, &b.query)
        && maps(&a.without, &b.without)
}

fn rules(vs: &RawObject, c: &ClusterView, out: &mut Vec<Finding>) {
    let object = object_name("VirtualService", &vs.namespace, &vs.name);
    let mut report = |code: &'static str, path: String, message: String, hint: &str| {
        let level = if code == "IST0130" {
            Level::Warning
        } else {
            Level::Info
        };
        out.push(Finding {
            code,
            level,
            cluster: c.name.clone(),
            object: object.clone(),
            path,
            message,
            hint: hint.to_string(),
        })
    };
    let unreachable_hint = "put the most specific rules first and one rule without matches last";
    let ineffective_hint =
        "remove the match, or move it before the rule that already takes its requests";
    for proto in ["http", "tcp", "tls"] {
        let routes: Vec<&Value> = super::items(&vs.spec, proto).collect();
        let mut seen: Vec<(Value, usize)> = Vec::new();
        let mut empty: Option<usize> = None;
        let mut prefixes: Vec<PrefixMatch> = Vec::new();
        for (n, r) in routes.iter().enumerate() {
            if r.is_null() {
                continue;
            }
            let name = route_name(proto, r, n);
            let matches: Vec<&Value> = super::items(r, "match").collect();
            if matches.is_empty() {
                if empty.is_some() {
                    report(
                        "IST0130",
                        format!("spec.{proto}[{n}]"),
                        format!(
                            "VirtualService rule {name} not used (only the last rule can have no matches)."
                        ),
                        unreachable_hint,
                    );
                }
                empty = Some(n);
                continue;
            }
            let mut duplicates = 0;
            for (j, m) in matches.iter().enumerate() {
                if empty.is_some() {
                    report(
                        "IST0130",
                        format!("spec.{proto}[{n}]"),
                        format!(
                            "VirtualService rule {name} not used (route without matches defined before)."
                        ),
                        unreachable_hint,
                    );
                    continue;
                }
                let key = routing_part(m);
                if let Some((_, dup)) = seen.iter().find(|(k, _)| *k == key) {
                    let other = route_name(proto, routes[*dup], *dup);
                    report(
                        "IST0131",
                        format!("spec.{proto}[{n}].match[{j}]"),
                        format!(
                            "VirtualService rule {name} match {} is not used (duplicate/overlapping match in rule {other}).",
                            request_name(proto, m, j)
                        ),
                        ineffective_hint,
                    );
                    duplicates += 1;
                    if proto == "http" {
                        continue;
                    }
                } else {
                    seen.push((key, n));
                }
                if proto == "http"
                    && let Some(p) = prefix_match(name.clone(), n, m, j)
                {
                    prefixes.push(p);
                }
            }
            if duplicates == matches.len() {
                report(
                    "IST0130",
                    format!("spec.{proto}[{n}]"),
                    format!(
                        "VirtualService rule {name} not used (all matches used by prior rules)."
                    ),
                    unreachable_hint,
                );
            }
        }
        // a later prefix match that an earlier prefix (same other conditions) covers
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                if b.prefix == a.prefix || !covered(a, b) {
                    continue;
                }
                report(
                    "IST0131",
                    format!("spec.http[{}]", b.rule),
                    format!(
                        "VirtualService rule {} match {} of prefix {} is not used (duplicate/overlapping match in rule {} of prefix {} on {}).",
                        b.route, b.request, b.prefix, a.request, a.prefix, a.route
                    ),
                    ineffective_hint,
                );
            }
        }
    }
}

pub(super) fn unreachable_rules(c: &ClusterView, out: &mut Vec<Finding>) {
    for vs in c.istio.iter().filter(|o| o.kind == "VirtualService") {
        rules(vs, c, out);
    }
}
