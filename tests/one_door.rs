//! One door for writes: only src/apply.rs may build a mutating Kubernetes request (the
//! simulator, which *serves* them, is the other exception). This test reads the source and fails
//! when any other module names a write API of kube-rs or an HTTP write method; and a read-only
//! session (status, translate, diff, attempted apply) leaves zero mutating requests in the sim's log.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const WRITE_APIS: &[&str] = &[
    "PatchParams",
    "PostParams",
    "DeleteParams",
    "Patch::",
    "Method::POST",
    "Method::PUT",
    "Method::PATCH",
    "Method::DELETE",
    ".replace_status(",
    ".patch_status(",
    ".delete_collection(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_outside_apply_names_a_write_api() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20);
    let mut offenders = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "apply.rs" || rel.starts_with("sim/") {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            // rbac.rs POSTs SelfSubjectAccessReviews (a question, stored nowhere) and nothing else.
            if rel == "rbac.rs"
                && line.contains("PostParams")
                && text.contains("Api<SelfSubjectAccessReview>")
            {
                assert_eq!(
                    text.matches(".create(").count(),
                    2,
                    "rbac.rs may only create the access review and the self-subject review"
                );
                continue;
            }
            for api in WRITE_APIS {
                if line.contains(api) {
                    offenders.push(format!("src/{rel}:{}: {api}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "writes outside src/apply.rs:\n{}",
        offenders.join("\n")
    );
    // the write capability and the clients come from the session alone
    let mut caps = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("sim/") {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (what, home) in [
                ("Access::new(", "session.rs"),
                (".share()", "session.rs"),
                ("Client::try_from", "-"),
                ("ClientBuilder::", "session.rs"),
                ("Client::new(", "-"),
            ] {
                if line.contains(what) && rel != home && !(rel == "apply.rs" && what == "Access::new(") {
                    caps.push(format!("src/{rel}:{}: {what}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        caps.is_empty(),
        "write tokens and clients made outside src/session.rs:\n{}",
        caps.join("\n")
    );
    // and the apply module does use them (the scan would find them)
    let apply = std::fs::read_to_string(src.join("apply.rs")).expect("apply.rs");
    assert!(apply.contains("PatchParams") && apply.contains("DeleteParams"));
}

#[tokio::test]
async fn a_read_only_session_sends_no_mutating_request() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let policy = home.path().join("p.yaml");
    std::fs::write(
        &policy,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: t, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    requestTimeout: 2s\n",
    )
    .expect("write");
    let kc = kc.to_str().expect("kc").to_string();
    let p = policy.to_str().expect("p").to_string();
    let home_path = home.path().to_path_buf();
    let runs = tokio::task::spawn_blocking(move || {
        let ctx = "eu-west,us-east,ap-south";
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_meshdeck"))
                .args(args)
                .env("HOME", &home_path)
                .env("XDG_CONFIG_HOME", home_path.join("config"))
                .env("XDG_STATE_HOME", home_path.join("state"))
                .env_remove("KUBECONFIG")
                .output()
                .expect("runs")
        };
        vec![
            (
                "status",
                run(&[
                    "status",
                    "--readonly",
                    "--kubeconfig",
                    &kc,
                    "--context",
                    ctx,
                ]),
            ),
            (
                "translate",
                run(&[
                    "translate",
                    "--readonly",
                    "-f",
                    &p,
                    "--kubeconfig",
                    &kc,
                    "--context",
                    ctx,
                ]),
            ),
            (
                "diff",
                run(&[
                    "diff",
                    "--readonly",
                    "-f",
                    &p,
                    "--kubeconfig",
                    &kc,
                    "--context",
                    ctx,
                ]),
            ),
            (
                "apply",
                run(&[
                    "apply",
                    "--readonly",
                    "--yes",
                    "-f",
                    &p,
                    "--kubeconfig",
                    &kc,
                    "--context",
                    ctx,
                ]),
            ),
        ]
    })
    .await
    .expect("join");
    let code = |n: &str| {
        runs.iter()
            .find(|(x, _)| *x == n)
            .and_then(|(_, o)| o.status.code())
    };
    assert_eq!(code("status"), Some(0));
    assert_eq!(code("translate"), Some(0));
    assert_eq!(code("diff"), Some(1), "diff shows the change and exits 1");
    let apply = &runs.iter().find(|(x, _)| *x == "apply").expect("apply").1;
    assert_eq!(apply.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&apply.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let diff_out = String::from_utf8_lossy(&runs[2].1.stdout).to_string();
    assert!(
        diff_out.contains("create eu-west VirtualService bookstore/ratings"),
        "{diff_out}"
    );
    let all = f.all_requests();
    assert!(all.len() > 20, "the session did talk to the clusters");
    let writes: Vec<_> = all.iter().filter(|e| e.is_write()).collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(!home.path().join("state/meshdeck/audit.log").exists());
}
