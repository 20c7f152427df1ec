//! The policy loader on arbitrary bytes: it must never panic, and every diagnostic it gives
//! must carry a position inside the input (or none).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = meshdeck::policy::load_str(text, "fuzz.yaml");
    // YAML's line breaks: \n, \r\n, and a lone \r (a CR alone is a line break in YAML 1.2,
    // so positions count it; `str::lines` would not)
    let lines = text.replace("\r\n", "\n").replace('\r', "\n").lines().count().max(1);
    for d in &loaded.diagnostics {
        if let Some(p) = d.pos {
            assert!(p.line >= 1 && p.line <= lines + 1, "{d} (input has {lines} lines)");
        }
        let _ = d.to_string();
    }
    // What loaded translates without panicking on an empty fleet.
    let snap = meshdeck::model::Snapshot { clusters: vec![], seq: 0 };
    let _ = meshdeck::translate::translate(&loaded.policies, &snap);
});
