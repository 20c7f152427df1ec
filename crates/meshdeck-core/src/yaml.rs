//! One place that knows which YAML library meshdeck uses (serde-saphyr, the one kube 5 uses;
//! serde_yaml is archived). Everything else calls these helpers.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A YAML error with its position, when the parser knows it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub message: String,
    /// 1-based line and column.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl YamlError {
    fn from_de(e: serde_saphyr::Error) -> Self {
        let loc = e.location();
        let (line, column) = match loc {
            Some(l) if l.line() > 0 => (Some(l.line() as usize), Some(l.column() as usize)),
            _ => (None, None),
        };
        YamlError {
            message: e.to_string(),
            line,
            column,
        }
    }
}

fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    // YAML 1.2 core booleans only: `n`, `y`, `yes`, `off` stay strings (keymaps bind `n` and
    // `y`; label values like `on` must not turn into booleans).
    o.strict_booleans = true;
    // meshdeck prints its own `file:line:col: message`; no source snippet in the message.
    o.with_snippet = false;
    // The default budget (anchor/alias expansion limits) guards against hostile input such as
    // "billion laughs"; it comfortably admits the 870 KB Istio CRD bundle.
    o
}

/// Parse one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(YamlError::from_de)
}

/// Parse a multi-document YAML stream into JSON values, skipping empty documents.
pub fn from_str_multi(text: &str) -> Result<Vec<Value>, YamlError> {
    serde_saphyr::from_multiple_with_options::<Value>(text, options())
        .map(|v| v.into_iter().filter(|d| !d.is_null()).collect())
        .map_err(YamlError::from_de)
}

/// Serialize a value as a YAML document.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_stream_skips_empty_documents() {
        let docs = from_str_multi("---\na: 1\n---\n---\nb: [x, y]\n").expect("parse");
        assert_eq!(
            docs,
            vec![
                serde_json::json!({"a": 1}),
                serde_json::json!({"b": ["x", "y"]})
            ]
        );
    }

    #[test]
    fn error_carries_line_and_column() {
        let err = from_str::<Value>("a: 1\nb: [1, 2\n").expect_err("must fail");
        assert!(err.line.is_some(), "{err:?}");
    }

    #[test]
    fn integer_map_keys_become_strings() {
        // Istio's PeerAuthentication sample uses `portLevelMtls: {8080: ...}`.
        let v: Value = from_str("portLevelMtls:\n  8080:\n    mode: STRICT\n").expect("parse");
        assert_eq!(v["portLevelMtls"]["8080"]["mode"], "STRICT");
    }

    #[test]
    fn yes_and_no_stay_strings() {
        let v: Value = from_str("a: n\nb: y\nc: yes\n").expect("parse");
        assert_eq!(v["a"], "n");
        assert_eq!(v["b"], "y");
    }
}

#[cfg(test)]
mod escapes {
    /// A server's strings (annotation values may hold anything) leave as YAML escapes (`\e`,
    /// `\a`, `\x9B`): the YAML of a live object (`diff`, `-o yaml`) carries no byte a
    /// terminal would act on.
    #[test]
    fn control_characters_leave_escaped() {
        let v = serde_json::json!({"a": "x\u{1b}]52;c;aGk=\u{7}y", "b": "\u{9b}2J"});
        let s = super::to_string(&v).expect("yaml");
        assert!(!s.contains(['\u{1b}', '\u{7}', '\u{9b}']), "{s:?}");
        assert!(s.contains("\\e]52"), "{s:?}");
    }
}
