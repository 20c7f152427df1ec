//! What `meshdeck translate` and `check` print: objects as a YAML stream or a JSON List, and
//! a human report of load errors, policy statuses and schema problems.

use super::{Generated, Output, State};
use crate::istio::SchemaError;
use crate::policy::Loaded;
use std::fmt::Write;

/// Objects as a YAML stream, `---` between documents.
pub fn yaml_stream(objects: &[Generated]) -> Result<String, String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&crate::yaml::to_string(&o.to_object())?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Objects as a JSON `List` (what `kubectl get -o json` writes for many objects).
pub fn json_list(objects: &[Generated]) -> Result<String, serde_json::Error> {
    let items: Vec<serde_json::Value> = objects.iter().map(Generated::to_object).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    Ok(serde_json::to_string_pretty(&list)? + "\n")
}

/// Load diagnostics, then one line per policy with its reasons, then schema problems.
pub fn render(loaded: &Loaded, out: &Output, schema: &[(String, SchemaError)]) -> String {
    let mut s = String::new();
    for d in &loaded.diagnostics {
        let _ = writeln!(s, "{d}");
    }
    // documents that did not load, and policies the translator found invalid
    let invalid = loaded.invalid_documents
        + out
            .statuses
            .iter()
            .filter(|s| s.state == State::Invalid)
            .count();
    for st in &out.statuses {
        let clusters: Vec<&str> = st.clusters.iter().map(String::as_str).collect();
        let _ = write!(s, "{}: {}", st.policy, st.state.word());
        let n = st.destinations.len();
        if n > 0 {
            let _ = write!(s, ", {n} destination{}", if n == 1 { "" } else { "s" });
        }
        if !clusters.is_empty() {
            let _ = write!(s, ", clusters {}", clusters.join(","));
        }
        s.push('\n');
        for e in &st.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        for w in &st.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        for n in &st.notes {
            let _ = writeln!(s, "  note: {n}");
        }
    }
    for (what, e) in schema {
        let _ = writeln!(s, "schema: {what}: {e}");
    }
    let count = |state: State| out.statuses.iter().filter(|x| x.state == state).count();
    let _ = writeln!(
        s,
        "{} objects in {} clusters; policies: {} accepted, {} warning, {} conflicting, {} invalid",
        out.objects.len(),
        out.objects
            .iter()
            .map(|o| o.cluster.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        count(State::Accepted),
        count(State::Warning),
        count(State::Conflicting),
        invalid,
    );
    s
}
