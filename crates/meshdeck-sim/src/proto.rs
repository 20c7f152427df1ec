//! Just enough protobuf to read what kubectl sends as `application/vnd.kubernetes.protobuf`:
//! the `k8s\0` + runtime.Unknown envelope, SelfSubjectAccessReview (`auth can-i`), and the
//! Namespace, ConfigMap and Secret bodies of `kubectl create namespace|configmap|secret`.

use base64::Engine;
use serde_json::{Map, Value, json};

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// A field's value: varint or bytes (fixed-width fields are skipped).
pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Every field of one message, in order.
pub fn all_fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((field, Field::Varint(read_varint(buf, &mut pos)?))),
            1 => pos = pos.checked_add(8)?,
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                out.push((field, Field::Bytes(buf.get(pos..end)?)));
                pos = end;
            }
            5 => pos = pos.checked_add(4)?,
            _ => return None,
        }
    }
    (pos == buf.len()).then_some(out)
}

/// The length-delimited fields of one message, as (field number, bytes).
pub fn fields(buf: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    Some(
        all_fields(buf)?
            .into_iter()
            .filter_map(|(n, f)| match f {
                Field::Bytes(b) => Some((n, b)),
                Field::Varint(_) => None,
            })
            .collect(),
    )
}

fn string(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A `map<string, string>` entry (key 1, value 2).
fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut k = None;
    let mut v = Value::String(String::new());
    for (n, f) in fields(b)? {
        match n {
            1 => k = Some(String::from_utf8_lossy(f).into_owned()),
            2 if bytes_value => {
                v = Value::String(base64::engine::general_purpose::STANDARD.encode(f))
            }
            2 => v = string(f),
            _ => {}
        }
    }
    Some((k?, v))
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for (n, f) in fields(b)? {
        match n {
            1 => {
                m.insert("name".into(), string(f));
            }
            2 => {
                m.insert("generateName".into(), string(f));
            }
            3 => {
                m.insert("namespace".into(), string(f));
            }
            11 => {
                let (k, v) = map_entry(f, false)?;
                labels.insert(k, v);
            }
            12 => {
                let (k, v) = map_entry(f, false)?;
                annotations.insert(k, v);
            }
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    Some(Value::Object(m))
}

/// Split the `k8s\0` envelope into (apiVersion, kind, raw message).
pub fn unwrap_unknown(body: &[u8]) -> Option<(String, String, &[u8])> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, f) in fields(unknown)? {
        match n {
            1 => {
                for (tn, tf) in fields(f)? {
                    match tn {
                        1 => api_version = String::from_utf8_lossy(tf).into_owned(),
                        2 => kind = String::from_utf8_lossy(tf).into_owned(),
                        _ => {}
                    }
                }
            }
            2 => raw = f,
            _ => {}
        }
    }
    Some((api_version, kind, raw))
}

/// Decode a protobuf Namespace, ConfigMap or Secret into its JSON form; None for anything else.
pub fn decode_object(body: &[u8]) -> Option<Value> {
    let (api_version, kind, raw) = unwrap_unknown(body)?;
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    let mut data = Map::new();
    let mut string_data = Map::new();
    for (n, f) in all_fields(raw)? {
        let Field::Bytes(b) = f else { continue };
        match (kind.as_str(), n) {
            (_, 1) => obj["metadata"] = object_meta(b)?,
            ("ConfigMap", 2) => {
                let (k, v) = map_entry(b, false)?;
                data.insert(k, v);
            }
            ("Secret", 2) => {
                let (k, v) = map_entry(b, true)?;
                data.insert(k, v);
            }
            ("Secret", 3) => obj["type"] = string(b),
            ("Secret", 4) => {
                let (k, v) = map_entry(b, false)?;
                string_data.insert(k, v);
            }
            ("Namespace", _) | ("ConfigMap", _) | ("Secret", _) => {}
            _ => return None,
        }
    }
    if !matches!(kind.as_str(), "Namespace" | "ConfigMap" | "Secret") {
        return None;
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        obj["stringData"] = Value::Object(string_data);
    }
    Some(obj)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn varint(mut v: usize, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    pub fn field(n: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(((n << 3) | 2) as usize, out);
        varint(payload.len(), out);
        out.extend_from_slice(payload);
    }

    pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        field(1, api_version.as_bytes(), &mut tm);
        field(2, kind.as_bytes(), &mut tm);
        let mut out = b"k8s\0".to_vec();
        field(1, &tm, &mut out);
        field(2, raw, &mut out);
        out
    }

    #[test]
    fn decodes_a_configmap_with_labels_and_data() {
        let mut label = Vec::new();
        field(1, b"team", &mut label);
        field(2, b"a", &mut label);
        let mut meta = Vec::new();
        field(1, b"flags", &mut meta);
        field(11, &label, &mut meta);
        let mut entry = Vec::new();
        field(1, b"canary", &mut entry);
        field(2, b"on", &mut entry);
        let mut cm = Vec::new();
        field(1, &meta, &mut cm);
        field(2, &entry, &mut cm);
        let v = decode_object(&envelope("v1", "ConfigMap", &cm)).expect("decodes");
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "flags", "labels": {"team": "a"}}, "data": {"canary": "on"}})
        );
        assert!(decode_object(&envelope("v1", "Pod", &cm)).is_none());
        assert!(decode_object(b"k8s\0\x0a\xff").is_none());
    }
}
