//! Validation of Istio objects against Istio's own CRD schemas (`assets/istio-crd-all.gen.yaml`,
//! Istio 1.30.3, vendored unchanged), doing what the API server does:
//! 1. the structural OpenAPI v3 schema, through the `jsonschema` crate, after turning the
//!    Kubernetes extensions into JSON Schema (unknown fields rejected unless
//!    `x-kubernetes-preserve-unknown-fields`; `x-kubernetes-int-or-string`; `nullable`);
//! 2. `x-kubernetes-list-type: map` keys (duplicates rejected);
//! 3. the CEL rules (`x-kubernetes-validations`), through the `cel` crate.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

const CRDS: &str = include_str!("../../../../assets/istio-crd-all.gen.yaml");

/// One problem with an object, at a field path (`spec.http[0].timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

struct KindSchema {
    validator: jsonschema::Validator,
    /// The schema as read (with the Kubernetes extensions), walked for list keys and CEL.
    k8s: Value,
}

pub struct Schemas {
    /// (group, kind) → schema
    kinds: HashMap<(String, String), KindSchema>,
    cel: Cel,
}

static SCHEMAS: OnceLock<Schemas> = OnceLock::new();

/// The vendored schemas, parsed once.
pub fn schemas() -> &'static Schemas {
    SCHEMAS.get_or_init(|| {
        // The bundle is compiled in and parsed by a test, so failing here is a build defect.
        Schemas::from_bundle(CRDS).expect("the vendored Istio CRD bundle parses")
    })
}

/// Turn a Kubernetes structural schema into JSON Schema.
fn to_json_schema(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), to_json_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(k.clone(), to_json_schema(v));
            }
            "oneOf" | "anyOf" | "allOf" => {
                let list = v
                    .as_array()
                    .map(|a| a.iter().map(to_json_schema).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(list));
            }
            k if k.starts_with("x-kubernetes-") => {}
            "nullable" | "format" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let preserve = m
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if m.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        out.remove("type");
        let either = serde_json::json!([{"type": "integer"}, {"type": "string"}]);
        match out.remove("anyOf") {
            Some(existing) => {
                out.insert(
                    "allOf".into(),
                    serde_json::json!([{"anyOf": either}, {"anyOf": existing}]),
                );
            }
            None => {
                out.insert("anyOf".into(), either);
            }
        }
    }
    if m.get("nullable").and_then(Value::as_bool) == Some(true)
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), serde_json::json!([t, "null"]));
    }
    let is_object = out.get("type").and_then(Value::as_str) == Some("object");
    if is_object && !preserve && !out.contains_key("additionalProperties") {
        // Structural schemas: fields not listed are unknown (strict field validation).
        out.insert("additionalProperties".into(), Value::Bool(false));
        out.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Value::Object(out)
}

impl Schemas {
    fn from_bundle(text: &str) -> Result<Schemas, String> {
        let docs = crate::yaml::from_str_multi(text).map_err(|e| e.to_string())?;
        let mut kinds = HashMap::new();
        let mut rules: Vec<String> = Vec::new();
        for d in docs {
            let group = d
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = d
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let versions = d.pointer("/spec/versions").and_then(Value::as_array);
            // The storage version's schema (every version's is the same in this bundle).
            let Some(v) = versions.and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .or_else(|| vs.first())
            }) else {
                continue;
            };
            let Some(k8s) = v.pointer("/schema/openAPIV3Schema").cloned() else {
                continue;
            };
            collect_rules(&k8s, &mut rules);
            let mut js = to_json_schema(&k8s);
            // apiVersion, kind and metadata are the API server's, not the CRD's.
            if let Some(p) = js.get_mut("properties").and_then(Value::as_object_mut) {
                for f in ["apiVersion", "kind", "metadata"] {
                    p.insert(f.into(), serde_json::json!({}));
                }
            }
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(false)
                .build(&js)
                .map_err(|e| format!("{kind}: {e}"))?;
            kinds.insert((group, kind), KindSchema { validator, k8s });
        }
        let cel = Cel::new(&rules)?;
        Ok(Schemas { kinds, cel })
    }

    /// The kinds known, as `group/Kind`.
    pub fn kinds(&self) -> Vec<String> {
        let mut v: Vec<String> = self.kinds.keys().map(|(g, k)| format!("{g}/{k}")).collect();
        v.sort();
        v
    }

    /// Validate one object (`apiVersion`, `kind`, `metadata`, `spec`). An unknown Istio kind is
    /// itself an error.
    pub fn validate(&self, obj: &Value) -> Vec<SchemaError> {
        let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let Some(ks) = self.kinds.get(&(group.to_string(), kind.to_string())) else {
            return vec![SchemaError {
                path: "kind".into(),
                message: format!("{api} {kind} is not an Istio kind this schema bundle knows"),
            }];
        };
        let mut errors: Vec<SchemaError> = ks
            .validator
            .iter_errors(obj)
            .map(|e| SchemaError {
                path: pointer_to_path(e.instance_path().as_str()),
                message: e.to_string(),
            })
            .collect();
        walk(&ks.k8s, obj, "", &self.cel, &mut errors);
        errors.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
        errors.dedup();
        errors
    }
}

/// Validate every generated object; returns `cluster kind ns/name` with each error.
pub fn validate_all(objects: &[crate::translate::Generated]) -> Vec<(String, SchemaError)> {
    let s = schemas();
    let mut out = Vec::new();
    for o in objects {
        for e in s.validate(&o.to_object()) {
            out.push((crate::object::Identified::object_ref(o).to_string(), e));
        }
    }
    out
}

/// `/spec/http/0/timeout` → `spec.http[0].timeout`
fn pointer_to_path(p: &str) -> String {
    let mut out = String::new();
    for seg in p.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            out = crate::policy::located::join_key(&out, &seg);
        }
    }
    out
}

fn collect_rules(s: &Value, out: &mut Vec<String>) {
    match s {
        Value::Object(m) => {
            if let Some(Value::Array(rs)) = m.get("x-kubernetes-validations") {
                for r in rs {
                    if let Some(rule) = r.get("rule").and_then(Value::as_str)
                        && !out.iter().any(|x| x == rule)
                    {
                        out.push(rule.to_string());
                    }
                }
            }
            for v in m.values() {
                collect_rules(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_rules(v, out)),
        _ => {}
    }
}

/// Walk schema and instance together: list-map keys and CEL rules at every node.
fn walk(schema: &Value, v: &Value, path: &str, cel: &Cel, errors: &mut Vec<SchemaError>) {
    let Some(s) = schema.as_object() else { return };
    if let Some(Value::Array(rules)) = s.get("x-kubernetes-validations") {
        for r in rules {
            let Some(rule) = r.get("rule").and_then(Value::as_str) else {
                continue;
            };
            let msg = r
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("failed rule: {rule}"));
            match cel.eval(rule, v) {
                Ok(true) => {}
                Ok(false) => errors.push(SchemaError {
                    path: path.to_string(),
                    message: msg,
                }),
                Err(e) => errors.push(SchemaError {
                    path: path.to_string(),
                    message: format!("{msg} ({e})"),
                }),
            }
        }
    }
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties");
            for (k, child) in m {
                let cs = props
                    .and_then(|p| p.get(k))
                    .or(extra.filter(|e| e.is_object()));
                if let Some(cs) = cs {
                    walk(
                        cs,
                        child,
                        &crate::policy::located::join_key(path, k),
                        cel,
                        errors,
                    );
                }
            }
        }
        Value::Array(items) => {
            if s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map")
                && let Some(Value::Array(keys)) = s.get("x-kubernetes-list-map-keys")
            {
                let mut seen: Vec<Vec<&Value>> = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let key: Vec<&Value> = keys
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|k| it.get(k).unwrap_or(&Value::Null))
                        .collect();
                    if seen.contains(&key) {
                        let shown: Vec<String> = key.iter().map(|v| v.to_string()).collect();
                        errors.push(SchemaError {
                            path: format!("{path}[{i}]"),
                            message: format!("Duplicate value: {}", shown.join(", ")),
                        });
                    } else {
                        seen.push(key);
                    }
                }
            }
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    walk(is, it, &format!("{path}[{i}]"), cel, errors);
                }
            }
        }
        _ => {}
    }
}

/// The CEL rules of the bundle, compiled once.
struct Cel {
    env: Arc<cel::Env>,
    programs: HashMap<String, Result<cel::Program, String>>,
}

/// Kubernetes' CEL library has `url(s).getScheme()`; cel-rust does not. The bundle uses only
/// that one method of it, so it is rewritten to a function meshdeck provides.
fn rewrite(rule: &str) -> String {
    rule.replace("url(self).getScheme()", "k8sUrlScheme(self)")
}

fn url_scheme(s: Arc<String>) -> String {
    match s.split_once("://") {
        Some((scheme, _)) => scheme.to_ascii_lowercase(),
        None => String::new(),
    }
}

impl Cel {
    fn new(rules: &[String]) -> Result<Cel, String> {
        let mut env = cel::Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .map_err(|e| format!("{e:?}"))?;
        let env = Arc::new(env);
        let programs = rules
            .iter()
            .map(|r| {
                let p = env.compile(&rewrite(r)).map_err(|e| e.to_string());
                (r.clone(), p)
            })
            .collect();
        Ok(Cel { env, programs })
    }

    fn eval(&self, rule: &str, v: &Value) -> Result<bool, String> {
        let program = match self.programs.get(rule) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(format!("rule does not compile: {e}")),
            None => return Err("rule not in the bundle".into()),
        };
        let mut ctx = cel::Context::with_env(self.env.clone());
        ctx.add_function("k8sUrlScheme", url_scheme)
            .map_err(|e| format!("{e:?}"))?;
        let value = cel::to_value(v).map_err(|e| e.to_string())?;
        ctx.add_variable_from_value("self", value);
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("rule gave {other:?}, not a boolean")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundle_parses_with_every_kind_and_every_rule_compiles() {
        let s = schemas();
        assert_eq!(s.kinds.len(), 15, "{:?}", s.kinds());
        let broken: Vec<(&String, &String)> = s
            .cel
            .programs
            .iter()
            .filter_map(|(r, p)| p.as_ref().err().map(|e| (r, e)))
            .collect();
        assert!(
            broken.is_empty(),
            "CEL rules that do not compile: {broken:#?}"
        );
    }

    #[test]
    fn structural_list_key_and_cel_errors_are_found() {
        let s = schemas();
        let ok = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "r"}, "spec": {"hosts": ["r"], "http": [{"timeout": "2s", "route": [{"destination": {"host": "r"}}]}]}});
        assert_eq!(s.validate(&ok), vec![]);
        let unknown = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "r"}, "spec": {"hosts": ["r"], "htpp": []}});
        let e = s.validate(&unknown);
        assert!(
            e.iter()
                .any(|e| e.path == "spec" && e.message.contains("htpp")),
            "{e:?}"
        );
        let short = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "r"}, "spec": {"hosts": ["r"], "http": [{"timeout": "0.1ms", "route": [{"destination": {"host": "r"}}]}]}});
        let e = s.validate(&short);
        assert!(e.iter().any(|e| e.path == "spec.http[0].timeout"), "{e:?}");
        let dup = json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "se"}, "spec": {"hosts": ["a.example"], "ports": [
                {"number": 80, "name": "http", "protocol": "HTTP"}, {"number": 81, "name": "http", "protocol": "HTTP"}]}});
        let e = s.validate(&dup);
        assert!(
            e.iter().any(|e| e.message.starts_with("Duplicate value")),
            "{e:?}"
        );
    }

    #[test]
    fn pointers_become_paths() {
        assert_eq!(
            pointer_to_path("/spec/http/0/timeout"),
            "spec.http[0].timeout"
        );
        assert_eq!(pointer_to_path(""), "");
    }
}
