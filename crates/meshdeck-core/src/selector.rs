//! Kubernetes label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and field selectors
//! (`metadata.name=x,metadata.namespace!=y`), parsed from their string form.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?}: {reason}")]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> SelectorError {
    SelectorError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Split on commas that are not inside parentheses.
fn split_top(input: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&input[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(input: &str, rest: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| err(input, "expected a parenthesised value list"))?;
    let vals: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if vals.is_empty() {
        return Err(err(input, "empty value list"));
    }
    if let Some(bad) = vals.iter().find(|v| !valid_value(v)) {
        return Err(err(input, format!("invalid label value {bad:?}")));
    }
    Ok(vals)
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if input.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(input) {
            let p = part.trim();
            if p.is_empty() {
                return Err(err(input, "empty requirement"));
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                let k = k.trim();
                if !valid_key(k) {
                    return Err(err(input, format!("invalid label key {k:?}")));
                }
                Requirement::NotExists(k.to_string())
            } else if let Some(i) = p.find(" notin ") {
                let k = p[..i].trim();
                if !valid_key(k) {
                    return Err(err(input, format!("invalid label key {k:?}")));
                }
                Requirement::NotIn(k.to_string(), parse_set(input, &p[i + 7..])?)
            } else if let Some(i) = p.find(" in ") {
                let k = p[..i].trim();
                if !valid_key(k) {
                    return Err(err(input, format!("invalid label key {k:?}")));
                }
                Requirement::In(k.to_string(), parse_set(input, &p[i + 4..])?)
            } else if let Some(i) = p.find("!=") {
                let (k, v) = (p[..i].trim(), p[i + 2..].trim());
                if !valid_key(k) || !valid_value(v) {
                    return Err(err(input, format!("invalid requirement {p:?}")));
                }
                Requirement::NotEq(k.to_string(), v.to_string())
            } else if let Some(i) = p.find('=') {
                let k = p[..i].trim();
                let v = p[i + 1..].trim_start_matches('=').trim();
                if !valid_key(k) || !valid_value(v) {
                    return Err(err(input, format!("invalid requirement {p:?}")));
                }
                Requirement::Eq(k.to_string(), v.to_string())
            } else {
                if !valid_key(p) {
                    return Err(err(input, format!("invalid label key {p:?}")));
                }
                Requirement::Exists(p.to_string())
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Match against a label lookup function.
    pub(crate) fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Match against an object's `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }
}

/// A parsed field selector: `path=value` / `path!=value` terms over dotted paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector(terms));
        }
        for part in input.split(',') {
            let p = part.trim();
            let (k, eq, v) = if let Some(i) = p.find("!=") {
                (&p[..i], false, &p[i + 2..])
            } else if let Some(i) = p.find('=') {
                (&p[..i], true, p[i + 1..].trim_start_matches('='))
            } else {
                return Err(err(input, format!("{p:?} is not of the form field=value")));
            };
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                return Err(err(input, format!("invalid field {k:?}")));
            }
            terms.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Only `metadata.name` and `metadata.namespace` terms: cheap to evaluate.
    pub(crate) fn is_metadata_only(&self) -> bool {
        self.0
            .iter()
            .all(|(k, _, _)| k == "metadata.name" || k == "metadata.namespace")
    }

    pub fn matches_meta(&self, namespace: &str, name: &str) -> Option<bool> {
        if !self.is_metadata_only() {
            return None;
        }
        Some(self.0.iter().all(|(k, eq, v)| {
            let actual = if k == "metadata.name" {
                name
            } else {
                namespace
            };
            (actual == v) == *eq
        }))
    }

    pub fn matches_object(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let mut cur = Some(obj);
            for seg in k.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let l = labels(&[("app", "reviews"), ("version", "v2"), ("tier", "backend")]);
        let cases = [
            ("app=reviews", true),
            ("app==reviews", true),
            ("app=ratings", false),
            ("app!=ratings", true),
            ("version in (v1,v2)", true),
            ("version in (v1, v3)", false),
            ("version notin (v1,v3)", true),
            ("missing notin (v1)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=reviews,version in (v2),!canary", true),
            ("app=reviews,version=v1", false),
            ("", true),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn malformed_selectors_are_rejected_with_the_input_named() {
        for bad in [
            "app=a b",
            "version in v1",
            "version in ()",
            ",",
            "a=b,,c=d",
            "!",
            "x y",
        ] {
            let e = LabelSelector::parse(bad).expect_err(bad);
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn field_selectors_on_metadata_and_nested_paths() {
        let fs = FieldSelector::parse("metadata.name=web,metadata.namespace!=kube-system")
            .expect("parse");
        assert_eq!(fs.matches_meta("default", "web"), Some(true));
        assert_eq!(fs.matches_meta("kube-system", "web"), Some(false));
        let phase = FieldSelector::parse("status.phase=Running").expect("parse");
        assert_eq!(phase.matches_meta("a", "b"), None);
        assert!(phase.matches_object(&json!({"status": {"phase": "Running"}})));
        assert!(!phase.matches_object(&json!({"status": {"phase": "Pending"}})));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
