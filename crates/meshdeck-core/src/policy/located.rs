//! YAML documents as JSON values plus where every node came from.
//!
//! saphyr's marked loader gives each node its span; this module turns a stream into one
//! [`Located`] per document (JSON value + a map from field path to line:col), so an error found
//! later — by serde or by validation — can name `file:line:col` and the field path. A stream is
//! split at its `---` lines first and every part is parsed on its own, so a syntax error in one
//! document never hides the others.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One parsed document.
#[derive(Debug, Clone, Default)]
pub struct Located {
    pub value: Value,
    /// Where the document starts.
    pub start: Pos,
    /// Field path → position of the value (`spec.policy.retries.attempts`, `spec.x[0]`).
    values: HashMap<String, Pos>,
    /// Field path → position of the key naming it (for unknown-field errors).
    keys: HashMap<String, Pos>,
}

impl Located {
    /// A document with no positions (e.g. a custom resource read from a cluster).
    pub fn unplaced(value: Value) -> Located {
        Located {
            value,
            ..Default::default()
        }
    }

    /// The position of the value at `path`, or of its nearest parent that has one.
    pub fn value_pos(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p) {
                return Some(*pos);
            }
            p = parent(p)?;
        }
    }

    /// Every field at the same place as in `other` (the messages that name places agree).
    pub fn same_places(&self, other: &Located) -> bool {
        self.start == other.start && self.values == other.values && self.keys == other.keys
    }

    /// The position of the key at `path` (falls back to the value's position).
    pub fn key_pos(&self, path: &str) -> Option<Pos> {
        self.keys
            .get(path)
            .copied()
            .or_else(|| self.value_pos(path))
    }
}

/// The parent of a field path (`a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``).
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Append a map key to a path, quoting keys that are not plain identifiers.
pub fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

pub fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A syntax error in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Split a stream into documents at lines that start with `---`; each part keeps the line it
/// starts on.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut start_line = 1;
    for (i, line) in text.lines().enumerate() {
        let is_sep = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_sep {
            if !current.trim().is_empty() {
                parts.push((start_line, std::mem::take(&mut current)));
            }
            current.clear();
            // The separator line may carry a document (`--- {a: 1}`): keep its content with
            // spaces in place of the marker so columns stay right.
            let rest = &line[3..];
            start_line = i + 1;
            current.push_str("   ");
            current.push_str(rest);
            current.push('\n');
        } else {
            if current.is_empty() {
                start_line = i + 1;
            }
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        parts.push((start_line, current));
    }
    parts
}

/// Whether a document part has nothing but comments and blanks.
fn is_empty_doc(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "..."
    })
}

/// Parse a YAML stream into its documents; each is either a value or its syntax error.
pub fn parse_stream(text: &str) -> Vec<Result<Located, SyntaxError>> {
    let mut out = Vec::new();
    for (first_line, part) in split_documents(text) {
        if is_empty_doc(&part) {
            continue;
        }
        let shift = first_line - 1;
        match MarkedYaml::load_from_str(&part) {
            Ok(docs) => {
                for doc in docs {
                    let mut loc = Located {
                        start: pos_of(&doc, shift),
                        ..Default::default()
                    };
                    match convert(&doc, "", shift, &mut loc) {
                        Ok(v) => {
                            loc.value = v;
                            if !loc.value.is_null() {
                                out.push(Ok(loc));
                            }
                        }
                        Err(e) => out.push(Err(e)),
                    }
                }
            }
            Err(e) => {
                let m = e.marker();
                // An error at the end of the part (an unclosed bracket) belongs to its last
                // line with content, not to the next document's `---`.
                let last = part
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(i, _)| i + 1)
                    .last()
                    .unwrap_or(1);
                let (line, col) = if m.line() > last {
                    (
                        last,
                        part.lines()
                            .nth(last - 1)
                            .map_or(1, |l| l.chars().count() + 1),
                    )
                } else {
                    (m.line(), m.col() + 1)
                };
                out.push(Err(SyntaxError {
                    pos: Pos {
                        line: line + shift,
                        col,
                    },
                    message: e.info().to_string(),
                }));
            }
        }
    }
    out
}

fn pos_of(node: &MarkedYaml<'_>, shift: usize) -> Pos {
    Pos {
        line: node.span.start.line() + shift,
        col: node.span.start.col() + 1,
    }
}

fn scalar_to_json(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            // .inf / .nan have no JSON form: keep the text so a type error can show it.
            .unwrap_or_else(|| Value::String(f.to_string())),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

/// A mapping key as a string (YAML allows any scalar; Kubernetes turns them into strings).
fn key_string(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(s) => Some(match s {
            Scalar::String(s) => s.to_string(),
            Scalar::Null => "null".into(),
            other => match scalar_to_json(other) {
                Value::String(s) => s,
                v => v.to_string(),
            },
        }),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        YamlData::Tagged(_, inner) => key_string(inner),
        _ => None,
    }
}

fn convert(
    node: &MarkedYaml<'_>,
    path: &str,
    shift: usize,
    loc: &mut Located,
) -> Result<Value, SyntaxError> {
    loc.values.insert(path.to_string(), pos_of(node, shift));
    Ok(match &node.data {
        YamlData::Value(s) => scalar_to_json(s),
        YamlData::Representation(s, style, tag) => {
            let cow: Cow<'_, str> = Cow::Borrowed(s.as_ref());
            match Scalar::parse_from_cow_and_metadata(cow, *style, tag.as_ref()) {
                Some(s) => scalar_to_json(&s),
                None => Value::String(s.to_string()),
            }
        }
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, &join_index(path, i), shift, loc)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter() {
                let Some(key) = key_string(k) else {
                    return Err(SyntaxError {
                        pos: pos_of(k, shift),
                        message: "a mapping key must be a scalar".into(),
                    });
                };
                let child = join_key(path, &key);
                loc.keys.insert(child.clone(), pos_of(k, shift));
                let value = convert(v, &child, shift, loc)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        YamlData::Tagged(_, inner) => convert(inner, path, shift, loc)?,
        YamlData::Alias(_) => {
            return Err(SyntaxError {
                pos: pos_of(node, shift),
                message: "YAML aliases are not supported in policies".into(),
            });
        }
        YamlData::BadValue => {
            return Err(SyntaxError {
                pos: pos_of(node, shift),
                message: "unreadable value".into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_fields_and_documents() {
        let text = "a: 1\n---\n# c\nspec:\n  policy:\n    retries:\n      attempts: three\n  list:\n  - x\n  - y: 2\n";
        let docs = parse_stream(text);
        assert_eq!(docs.len(), 2);
        let d = docs[1].as_ref().expect("doc 2");
        assert_eq!(d.value["spec"]["policy"]["retries"]["attempts"], "three");
        assert_eq!(
            d.value_pos("spec.policy.retries.attempts"),
            Some(Pos { line: 7, col: 17 })
        );
        assert_eq!(
            d.key_pos("spec.policy.retries.attempts"),
            Some(Pos { line: 7, col: 7 })
        );
        assert_eq!(
            d.value_pos("spec.list[1].y"),
            Some(Pos { line: 10, col: 8 })
        );
        // A path below a known node falls back to the nearest known parent.
        assert_eq!(
            d.value_pos("spec.policy.retries.attempts.deeper"),
            Some(Pos { line: 7, col: 17 })
        );
    }

    #[test]
    fn a_syntax_error_keeps_the_other_documents() {
        let text = "kind: A\n---\nkind: [B\n---\nkind: C\n";
        let docs = parse_stream(text);
        assert_eq!(docs.len(), 3);
        assert!(docs[0].is_ok());
        let e = docs[1].as_ref().expect_err("doc 2 is broken");
        assert!(e.pos.line >= 3, "{e:?}");
        assert_eq!(docs[2].as_ref().expect("doc 3").value["kind"], "C");
    }

    #[test]
    fn scalars_follow_yaml_1_2_and_keys_become_strings() {
        let docs = parse_stream("a: yes\nb: 'true'\nc: true\nd: 8080\n8080: x\ne: ~\nf: 1.5\n");
        let v = &docs[0].as_ref().expect("doc").value;
        assert_eq!(v["a"], "yes");
        assert_eq!(v["b"], "true");
        assert_eq!(v["c"], true);
        assert_eq!(v["d"], 8080);
        assert_eq!(v["8080"], "x");
        assert!(v["e"].is_null());
        assert_eq!(v["f"], 1.5);
    }

    #[test]
    fn duplicate_keys_are_errors_with_position() {
        let docs = parse_stream("a: 1\nb: 2\na: 3\n");
        let e = docs[0].as_ref().expect_err("duplicate");
        assert_eq!(e.pos.line, 3);
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn quoted_keys_in_paths() {
        assert_eq!(
            join_key("metadata.labels", "app.kubernetes.io/name"),
            "metadata.labels[\"app.kubernetes.io/name\"]"
        );
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a"), Some(""));
    }
}
