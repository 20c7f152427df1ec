//! One door for writes: only src/apply.rs may build a mutating Kubernetes request (the
//! simulator, which *serves* them, is the other exception). This test reads the source and fails
//! when any other module names a write API of kube-rs or an HTTP write method; and a read-only
//! session (status, translate, diff, attempted apply) leaves zero mutating requests in the sim's log.

use crate::common::*;
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

/// The product's sources (the root crate, the core and the I/O edges; not the simulator, which
/// serves writes), as (path relative to the repository, text).
fn product_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src",
        "crates/meshdeck-core/src",
        "crates/meshdeck-kube/src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    files
        .iter()
        .map(|f| {
            let rel = f
                .strip_prefix(root)
                .expect("under the repository")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(f).expect("read"))
        })
        .collect()
}

const APPLY: &str = "crates/meshdeck-kube/src/apply.rs";
const RBAC: &str = "crates/meshdeck-kube/src/rbac.rs";
const SESSION: &str = "crates/meshdeck-kube/src/session.rs";

#[test]
fn no_module_outside_apply_names_a_write_api() {
    let files = product_sources();
    assert!(files.len() > 20);
    let mut offenders = Vec::new();
    for (rel, text) in &files {
        if rel == APPLY {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            // rbac.rs POSTs SelfSubjectAccessReviews (a question, stored nowhere) and nothing else.
            if rel == RBAC
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
                    offenders.push(format!("{rel}:{}: {api}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "writes outside {APPLY}:\n{}",
        offenders.join("\n")
    );
    // the write capability and the clients come from the session alone
    let mut caps = Vec::new();
    for (rel, text) in &files {
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for what in [
                "Access::new(",
                ".share()",
                "Client::try_from",
                "ClientBuilder::",
                "Client::new(",
            ] {
                if line.contains(what) && rel != SESSION {
                    caps.push(format!("{rel}:{}: {what}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        caps.is_empty(),
        "write tokens and clients made outside {SESSION}:\n{}",
        caps.join("\n")
    );
    // and the apply module does use them (the scan would find them)
    let apply = &files.iter().find(|(r, _)| r == APPLY).expect("apply.rs").1;
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
            crate::common::meshdeck_in(&home_path)
                .args(args)
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
    assert_eq!(apply.status.code(), Some(4), "refused");
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

fn run_in(home: &Path, args: &[String]) -> std::process::Output {
    crate::common::meshdeck_in(home)
        .args(args)
        .output()
        .expect("runs")
}

/// Every safety-relevant flag, before and after the subcommand: a read-only session sends
/// nothing but GETs, whatever the order; the fleet flags are honoured in either place.
#[tokio::test]
async fn session_flags_mean_the_same_before_and_after_the_subcommand() {
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
    let ctx = "eu-west,us-east,ap-south".to_string();
    let h = home.path().to_path_buf();
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|x| x.to_string()).collect() };
    let fleet_flags = s(&["--kubeconfig", &kc, "--context", &ctx]);
    // (subcommand and its own arguments, the exit code a read-only session gives)
    let commands: Vec<(Vec<String>, i32)> = vec![
        (s(&["status"]), 0),
        (s(&["translate", "-f", &p]), 0),
        (s(&["check", "-f", &p]), 0),
        (s(&["diff", "-f", &p]), 1),
        (s(&["diff", "--prune", "-f", &p, "--as", "admin"]), 1),
        (s(&["apply", "--yes", "-f", &p]), 4),
        (
            s(&[
                "apply",
                "--yes",
                "--prune",
                "-f",
                &p,
                "--as",
                "admin",
                "--as-group",
                "system:masters",
            ]),
            4,
        ),
    ];
    let mut runs = Vec::new();
    for (cmd, want) in &commands {
        for position in ["before", "after", "split"] {
            let mut args = Vec::new();
            match position {
                "before" => {
                    args.push("--readonly".to_string());
                    args.extend(fleet_flags.clone());
                    args.extend(cmd.clone());
                }
                "after" => {
                    args.extend(cmd.clone());
                    args.push("--readonly".to_string());
                    args.extend(fleet_flags.clone());
                }
                _ => {
                    // the kubeconfig before, the rest after
                    args.extend(s(&["--kubeconfig", &kc]));
                    args.extend(cmd.clone());
                    args.extend(s(&["--readonly", "--context", &ctx]));
                }
            }
            runs.push((args, *want));
        }
    }
    // a settings file that makes every context read-only: no flag needed
    let settings_home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(settings_home.path().join("config/meshdeck")).expect("dir");
    std::fs::write(
        settings_home.path().join("config/meshdeck/config.yaml"),
        "readOnly: true\n",
    )
    .expect("settings");
    let sh = settings_home.path().to_path_buf();
    let mut apply_args = s(&["apply", "--yes", "-f", &p]);
    apply_args.extend(fleet_flags.clone());
    let results = tokio::task::spawn_blocking(move || {
        let mut out: Vec<(Vec<String>, i32, std::process::Output)> = runs
            .into_iter()
            .map(|(a, want)| {
                let o = run_in(&h, &a);
                (a, want, o)
            })
            .collect();
        let o = run_in(&sh, &apply_args);
        out.push((apply_args, 4, o));
        out
    })
    .await
    .expect("join");
    for (args, want, o) in &results {
        let text = output_text(o);
        assert_eq!(
            o.status.code(),
            Some(*want),
            "meshdeck {}: {text}",
            args.join(" ")
        );
        if *want == 4 {
            assert!(text.contains("read-only"), "{}: {text}", args.join(" "));
        }
        // the contexts of the flags were used, wherever they stood
        if args.contains(&"status".to_string()) {
            for c in ["eu-west", "us-east", "ap-south"] {
                assert!(text.contains(c), "{}: {text}", args.join(" "));
            }
        }
    }
    let all = f.all_requests();
    assert!(all.len() > 100, "the runs did talk to the clusters");
    let not_get: Vec<_> = all.iter().filter(|e| e.method != "GET").collect();
    assert!(not_get.is_empty(), "read-only sessions sent: {not_get:#?}");
    // impersonation was honoured on the reads too
    assert!(all.iter().any(|e| e.impersonated_by == "admin"));
}

/// Flags that mean nothing for a subcommand, or are given twice with two values, are errors.
#[test]
fn misplaced_and_contradicting_flags_are_errors() {
    let home = tempfile::tempdir().expect("tempdir");
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|x| x.to_string()).collect() };
    for (args, says) in [
        (
            s(&["--readonly", "sim", "serve", "--kubeconfig", "/tmp/x"]),
            "mean nothing for `meshdeck sim serve`",
        ),
        (s(&["--theme", "mono", "status"]), "console flags"),
        (s(&["-n", "bookstore", "status"]), "console flags"),
        (
            s(&["--headless", "analyze", "--inventory", "x"]),
            "mean nothing for `meshdeck analyze`",
        ),
        (
            s(&["--context", "a", "status", "--context", "b"]),
            "--context is given twice",
        ),
        (
            s(&["--kubeconfig", "/tmp/kc", "demo"]),
            "makes its own kubeconfig",
        ),
        (
            s(&["--all-contexts", "diff", "--context", "a", "-f", "x"]),
            "exclude each other",
        ),
    ] {
        let o = run_in(home.path(), &args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The wall under the type-level one: a read-only session's clients refuse every request
/// that is not a read before it leaves the process.
#[tokio::test]
async fn a_read_only_client_refuses_writes_before_they_are_sent() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    let f = fleet(1).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let targets = meshdeck::fleet::kubeconfig::targets(
        &[kc],
        &meshdeck::fleet::Selection::Named(vec!["eu-west".into()]),
    )
    .await
    .expect("targets");
    let session = meshdeck::session::Session::from_targets(
        targets,
        true,
        |_| false,
        Default::default(),
        std::time::Duration::from_secs(5),
    );
    assert!(session.readonly);
    assert!(
        session
            .writer(false, &home.path().join("a.log"))
            .expect("ok")
            .is_none()
    );
    let client =
        meshdeck::session::client(&session.targets[0], meshdeck::session::Purpose::Request)
            .expect("client");
    f.clear_requests_all();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}
    }))
    .expect("cm");
    let refused = |e: kube::Error, method: &str| {
        let mut msg = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        assert!(
            msg.contains(&format!(
                "read-only session: refused {method} /api/v1/namespaces/default/configmaps"
            )),
            "{msg}"
        );
    };
    refused(
        api.create(&PostParams::default(), &cm)
            .await
            .expect_err("POST"),
        "POST",
    );
    refused(
        api.patch("x", &PatchParams::apply("t"), &Patch::Apply(&cm))
            .await
            .expect_err("PATCH"),
        "PATCH",
    );
    refused(
        api.delete("x", &DeleteParams::default())
            .await
            .expect_err("DELETE"),
        "DELETE",
    );
    refused(
        api.replace("x", &PostParams::default(), &cm)
            .await
            .expect_err("PUT"),
        "PUT",
    );
    // reads pass
    api.list(&Default::default()).await.expect("GET passes");
    let log = f.requests("eu-west").expect("log");
    assert!(log.iter().all(|e| e.method == "GET"), "{log:#?}");
    assert!(!log.is_empty());
}
