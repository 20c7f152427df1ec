//! Preview latency: one keystroke in the policy editor → the preview answering that text is in
//! the app, through the real authoring worker thread (load the draft, translate with every other
//! policy, plan against the live objects, schema-check). Targets: ≤ 50 ms on the demo fleet,
//! ≤ 200 ms at 20 clusters × 500 services.
use criterion::{Criterion, criterion_group, criterion_main};
use meshdeck::author::{Answer, Store, Worker};
use meshdeck::model::{ConnState, Snapshot};
use meshdeck::ui::app::{App, Mode};
use meshdeck::ui::shots::AuthorDriver;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

struct Rig {
    app: App,
    worker: Worker,
    rx: Receiver<Answer>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(snap: Snapshot, base_policies: Option<String>) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let pol = dir.path().join("policies");
        std::fs::create_dir_all(&pol).expect("dir");
        if let Some(text) = base_policies {
            std::fs::write(pol.join("base.yaml"), text).expect("write");
        }
        let (tx, rx) = channel();
        let worker = Worker::spawn(
            Store {
                dir: pol.clone(),
                extra: vec![],
                drafts: dir.path().join("drafts"),
                who: meshdeck::rbac::Subject::default(),
            },
            move |a| {
                let _ = tx.send(a);
            },
        );
        let mut app = App::new(
            Arc::new(snap),
            meshdeck::ui::keymap::load("default", None).expect("keymap"),
            meshdeck::ui::theme::load("default", None).expect("theme"),
            false,
        );
        app.policy_dir = Some(pol);
        let mut r = Rig {
            app,
            worker,
            rx,
            _dir: dir,
        };
        AuthorDriver {
            worker: &r.worker,
            answers: &r.rx,
        }
        .board(&mut r.app)
        .expect("board");
        r.keys(":pol<enter>n<enter>");
        assert!(matches!(r.app.mode, Mode::Editor(_)), "editor open");
        // the cursor to the end of the first line (a comment: typing there keeps it valid)
        r.keys("<end>");
        r
    }

    /// Keys, their intents carried out, and the answers waited for.
    fn keys(&mut self, keys: &str) {
        let mut d = AuthorDriver {
            worker: &self.worker,
            answers: &self.rx,
        };
        d.press(&mut self.app, keys, |_| {})
            .expect("the worker answers");
    }

    fn fresh(&self) -> bool {
        matches!(&self.app.mode, Mode::Editor(ed) if ed.fresh())
    }
}

fn bench(c: &mut Criterion) {
    let demo =
        meshdeck::sim::fixture::demo_snapshot(3, None, chrono::Utc::now(), |_| ConnState::Synced);
    let big = meshdeck::sim::fixture::synthetic_snapshot(20, 500);
    let base = meshdeck::sim::fixture::synthetic_policies(200, 20, 500);
    let mut g = c.benchmark_group("preview");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    for (name, snap, base) in [
        ("keystroke → preview, demo fleet (3 clusters)", demo, None),
        (
            "keystroke → preview, 20 clusters × 500 services, 200 other policies",
            big,
            Some(base),
        ),
    ] {
        let mut rig = Rig::new(snap, base);
        match &rig.app.mode {
            Mode::Editor(ed) => {
                let p = ed.preview.as_ref().expect("preview");
                assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
                assert!(!p.objects.is_empty(), "the draft generates objects");
            }
            _ => panic!("editor"),
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                rig.keys("x");
                assert!(rig.fresh());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
