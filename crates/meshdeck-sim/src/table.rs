//! `meta.k8s.io/v1` Table output, which `kubectl get` asks for. Columns follow the real API
//! server for the built-in kinds and `additionalPrinterColumns` for custom resources.

use super::registry::ResourceType;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

fn col(name: &str, type_: &str, format: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": name, "priority": priority})
}

pub fn columns(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![col("Name", "string", "name", 0)];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => {
            cols.push(col("Ready", "string", "", 0));
            cols.push(col("Status", "string", "", 0));
            cols.push(col("Restarts", "string", "", 0));
            cols.push(col("Age", "string", "", 0));
            cols.push(col("IP", "string", "", 1));
            cols.push(col("Node", "string", "", 1));
        }
        ("apps", "deployments") => {
            cols.push(col("Ready", "string", "", 0));
            cols.push(col("Up-to-date", "integer", "", 0));
            cols.push(col("Available", "integer", "", 0));
            cols.push(col("Age", "string", "", 0));
        }
        ("apps", "replicasets") => {
            cols.push(col("Desired", "integer", "", 0));
            cols.push(col("Current", "integer", "", 0));
            cols.push(col("Ready", "integer", "", 0));
            cols.push(col("Age", "string", "", 0));
        }
        ("", "services") => {
            cols.push(col("Type", "string", "", 0));
            cols.push(col("Cluster-IP", "string", "", 0));
            cols.push(col("External-IP", "string", "", 0));
            cols.push(col("Port(s)", "string", "", 0));
            cols.push(col("Age", "string", "", 0));
        }
        ("", "namespaces") => {
            cols.push(col("Status", "string", "", 0));
            cols.push(col("Age", "string", "", 0));
        }
        _ => {
            for c in &rt.printer_columns {
                if c.json_path == ".metadata.creationTimestamp" {
                    continue;
                }
                cols.push(col(&c.name, &c.type_, "", c.priority));
            }
            cols.push(col("Age", "string", "", 0));
        }
    }
    cols
}

/// `5m`, `3h`, `2d` — kubectl's short age.
pub fn short_age(created: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn at<'a>(v: &'a Value, json_path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in json_path.trim_start_matches('.').split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn scalar(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(Value::Array(a)) => Value::String(
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
        ),
        Some(other) => other.clone(),
    }
}

pub fn cells(rt: &ResourceType, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let age = Value::String(short_age(
        obj.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or(""),
        now,
    ));
    let i = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut out = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            let waiting = statuses.iter().find_map(|c| {
                c.pointer("/state/waiting/reason")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            out.push(json!(format!("{ready}/{total}")));
            out.push(json!(waiting.unwrap_or_else(|| s("/status/phase"))));
            out.push(json!(restarts.to_string()));
            out.push(age);
            out.push(json!(s("/status/podIP")));
            out.push(json!(s("/spec/nodeName")));
        }
        ("apps", "deployments") => {
            out.push(json!(format!(
                "{}/{}",
                i("/status/readyReplicas"),
                i("/spec/replicas")
            )));
            out.push(json!(i("/status/updatedReplicas")));
            out.push(json!(i("/status/availableReplicas")));
            out.push(age);
        }
        ("apps", "replicasets") => {
            out.push(json!(i("/spec/replicas")));
            out.push(json!(i("/status/replicas")));
            out.push(json!(i("/status/readyReplicas")));
            out.push(age);
        }
        ("", "services") => {
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let external = obj
                .pointer("/status/loadBalancer/ingress/0/ip")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            out.push(json!(s("/spec/type")));
            out.push(json!(s("/spec/clusterIP")));
            out.push(json!(external));
            out.push(json!(ports));
            out.push(age);
        }
        ("", "namespaces") => {
            out.push(json!(
                Some(s("/status/phase"))
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "Active".into())
            ));
            out.push(age);
        }
        _ => {
            for c in &rt.printer_columns {
                if c.json_path == ".metadata.creationTimestamp" {
                    continue;
                }
                out.push(scalar(at(obj, &c.json_path)));
            }
            out.push(age);
        }
    }
    out
}

/// A Table row with the object's metadata (kubectl prints NAMESPACE from it with `-A`).
pub fn row(rt: &ResourceType, obj: &Value, now: DateTime<Utc>) -> Value {
    json!({
        "cells": cells(rt, obj, now),
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }
    })
}

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtins;

    #[test]
    fn pod_row_shows_ready_status_and_restarts() {
        let pods = builtins()
            .into_iter()
            .find(|t| t.plural == "pods")
            .expect("pods");
        let pod = json!({"metadata": {"name": "web-1", "creationTimestamp": "2026-11-24T00:00:00Z"},
            "spec": {"containers": [{}, {}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [
                {"ready": true, "restartCount": 2},
                {"ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let now = DateTime::parse_from_rfc3339("2026-11-24T00:05:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let c = cells(&pods, &pod, now);
        assert_eq!(
            c,
            vec![
                json!("web-1"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("3"),
                json!("5m"),
                json!("10.0.0.1"),
                json!("node-1")
            ]
        );
        assert_eq!(columns(&pods).len(), c.len());
    }
}
