//! `destinationrule.CaCertificateAnalyzer`: a DestinationRule originating TLS (SIMPLE or
//! MUTUAL) with nothing to verify the server's certificate by — no `caCertificates`, no
//! `credentialName`, and not `insecureSkipVerify` — talks to whoever answers (IST0128 for the
//! rule, IST0129 for a port).

use super::{Finding, Level, object_name};
use crate::model::ClusterView;
use serde_json::Value;

/// The TLS mode of `tls` when it needs a CA and names none.
fn unverified(tls: Option<&Value>) -> Option<&str> {
    let tls = tls?;
    let mode = tls.get("mode").and_then(Value::as_str)?;
    let set = |k: &str| {
        tls.get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    let skip = tls.get("insecureSkipVerify").and_then(Value::as_bool) == Some(true);
    (matches!(mode, "SIMPLE" | "MUTUAL")
        && !set("caCertificates")
        && !set("credentialName")
        && !skip)
        .then_some(mode)
}

pub(super) fn ca_certificates(c: &ClusterView, out: &mut Vec<Finding>) {
    for dr in c.istio.iter().filter(|o| o.kind == "DestinationRule") {
        let host = dr
            .spec
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let full = format!("{}/{}", dr.namespace, dr.name);
        let policy = dr.spec.get("trafficPolicy");
        let hint = "set caCertificates or credentialName to verify the server (or insecureSkipVerify: true to accept any)".to_string();
        if let Some(mode) = unverified(policy.and_then(|p| p.get("tls"))) {
            out.push(Finding {
                code: "IST0128",
                level: Level::Error,
                cluster: c.name.clone(),
                object: object_name("DestinationRule", &dr.namespace, &dr.name),
                path: "spec.trafficPolicy.tls.mode".into(),
                message: format!(
                    "DestinationRule {full} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host}",
                    dr.namespace
                ),
                hint: hint.clone(),
            });
        }
        for (i, p) in policy
            .into_iter()
            .flat_map(|p| super::items(p, "portLevelSettings"))
            .enumerate()
        {
            let Some(mode) = unverified(p.get("tls")) else {
                continue;
            };
            let port = p
                .get("port")
                .and_then(|x| x.get("number"))
                .and_then(Value::as_u64)
                .unwrap_or_default();
            out.push(Finding {
                code: "IST0129",
                level: Level::Error,
                cluster: c.name.clone(),
                object: object_name("DestinationRule", &dr.namespace, &dr.name),
                path: format!("spec.trafficPolicy.portLevelSettings[{i}].tls.mode"),
                message: format!(
                    "DestinationRule {full} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host} at port number:{port}",
                    dr.namespace
                ),
                hint: hint.clone(),
            });
        }
    }
}
