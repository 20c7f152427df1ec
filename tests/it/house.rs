//! The house stays as built (docs/architecture.md): the core is pure — its manifest names no
//! async runtime, client, HTTP or filesystem crate and its sources touch no disk, network,
//! process or clock-free-of-the-caller APIs; the simulator and the I/O edges do not depend on
//! each other.

use std::path::Path;

fn manifest(krate: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(krate)
            .join("Cargo.toml"),
    )
    .expect("manifest")
}

/// The dependency names of a manifest's `[dependencies]` table.
fn dependencies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == "[dependencies]";
            continue;
        }
        if inside && let Some((name, _)) = t.split_once('=') {
            out.push(name.trim().to_string());
        }
    }
    out
}

#[test]
fn the_core_depends_on_nothing_that_does_io() {
    let deps = dependencies(&manifest("crates/meshdeck-core"));
    assert!(deps.contains(&"serde_json".to_string()), "{deps:?}");
    const FORBIDDEN: &[&str] = &[
        "tokio",
        "tokio-util",
        "kube",
        "kube-client",
        "kube-runtime",
        "hyper",
        "hyper-util",
        "http-body-util",
        "reqwest",
        "tower",
        "futures",
        "rustls",
        "tokio-rustls",
        "etcetera",
        "tempfile",
        "walkdir",
        "notify",
        "tracing-appender",
        "crossterm",
        "ratatui",
        "meshdeck-kube",
        "meshdeck-sim",
    ];
    let bad: Vec<&String> = deps
        .iter()
        .filter(|d| FORBIDDEN.contains(&d.as_str()))
        .collect();
    assert!(bad.is_empty(), "meshdeck-core must stay pure: {bad:?}");
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_core_sources_touch_no_disk_network_or_process() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/meshdeck-core/src");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() > 10);
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for api in [
                "std::fs",
                "std::net",
                "std::process",
                "std::env::var",
                "tokio::",
                "kube::",
                "std::thread::spawn",
                "File::open",
                "read_to_string(",
            ] {
                if line.contains(api) {
                    bad.push(format!("{}:{}: {api}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "I/O in the pure core:\n{}", bad.join("\n"));
}

#[test]
fn the_simulator_and_the_io_edges_do_not_know_each_other() {
    let sim = dependencies(&manifest("crates/meshdeck-sim"));
    let kube = dependencies(&manifest("crates/meshdeck-kube"));
    assert!(!sim.contains(&"meshdeck-kube".to_string()), "{sim:?}");
    assert!(!kube.contains(&"meshdeck-sim".to_string()), "{kube:?}");
    // the product depends on the simulator only behind the `sim` feature (the demo)
    let root = manifest(".");
    assert!(root.contains("meshdeck-sim = { workspace = true, optional = true }"));
}
