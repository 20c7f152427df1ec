//! Authoring in the console, without a terminal: the app drives the real authoring worker
//! (a thread) on the demo snapshot; the screens are rendered with the same drawing code.
//! insta snapshots of the editor, preview tabs and confirmation at 80x24 and 160x48, and the
//! key flows: template → typo → positioned error → fix → apply dialog; read-only refusals.

use chrono::{DateTime, Utc};
use meshdeck::author::{Answer, Store, Worker};
use meshdeck::model::{ConnState, Snapshot};
use meshdeck::sim::fixture::demo_snapshot;
use meshdeck::ui::app::{App, Mode};
use meshdeck::ui::shots::{AuthorDriver, render, text};
use meshdeck::ui::{keymap, theme};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn snapshot() -> Arc<Snapshot> {
    Arc::new(demo_snapshot(3, None, now(), |_| ConnState::Synced))
}

struct Harness {
    app: App,
    worker: Worker,
    rx: Receiver<Answer>,
    _drafts: tempfile::TempDir,
    /// Apply intents the app asked for.
    applies: Vec<Arc<meshdeck::plan::Plan>>,
}

impl Harness {
    fn new(readonly: bool) -> Harness {
        let drafts = tempfile::tempdir().expect("tempdir");
        let (tx, rx) = channel();
        let worker = Worker::spawn(
            Store {
                dir: drafts.path().join("policies"),
                extra: vec![],
                drafts: drafts.path().to_path_buf(),
                who: meshdeck::rbac::Subject {
                    user: "alice".into(),
                    groups: vec![],
                },
            },
            move |a| {
                let _ = tx.send(a);
            },
        );
        let mut app = App::new(
            snapshot(),
            keymap::load("default", None).expect("keymap"),
            theme::load("default", None).expect("theme"),
            readonly,
        );
        app.now = now();
        app.policy_dir = Some(drafts.path().join("policies"));
        let mut h = Harness {
            app,
            worker,
            rx,
            _drafts: drafts,
            applies: vec![],
        };
        h.board();
        h
    }

    fn board(&mut self) {
        let d = AuthorDriver {
            worker: &self.worker,
            answers: &self.rx,
        };
        d.board(&mut self.app).expect("board");
    }

    /// Press keys, carrying out the app's intents after each as the event loop does.
    fn keys(&mut self, keys: &str) {
        let mut d = AuthorDriver {
            worker: &self.worker,
            answers: &self.rx,
        };
        let applies = &mut self.applies;
        d.press(&mut self.app, keys, |plan| applies.push(plan))
            .expect("the worker answers");
    }

    fn screen(&mut self, w: u16, h: u16) -> String {
        self.app.now = now();
        let s = text(&render(&mut self.app, w, h).expect("render"));
        // the temporary directory prints as /tmp/T (its name is random, its length is not)
        let dir = self._drafts.path().display().to_string();
        masked(&s.replace(&dir, "/tmp/T"))
    }
}

/// Timings change from run to run; the console prints them in fixed-width fields, so the
/// mask keeps the width: `in   14.8 ms against snapshot #31    ` → `in NNNN.N ms … #NNNNNN`.
fn masked(s: &str) -> String {
    let re = regex::Regex::new(r"in [ \d.]{6} ms").expect("regex");
    let s = re.replace_all(s, "in NNNN.N ms").to_string();
    let re = regex::Regex::new(r" [ \d]{3}\d ms ").expect("regex");
    let s = re.replace_all(&s, " NNNN ms ").to_string();
    let re = regex::Regex::new(r"snapshot #[\d ]{6}").expect("regex");
    re.replace_all(&s, "snapshot #NNNNNN").to_string()
}

/// Open the traffic-shift template in the editor.
fn new_traffic_shift(h: &mut Harness) {
    h.keys(":pol<enter>n<enter>");
    assert!(matches!(h.app.mode, Mode::Editor(_)), "the editor is open");
}

/// Put a typo into the `trafficShift:` key (line 16): `trafficShfit`.
fn make_typo(h: &mut Harness) {
    for _ in 0..15 {
        h.keys("<down>");
    }
    h.keys("<end><bs><bs><bs><bs><bs>hfit:");
}

#[test]
fn editor_preview_diff_problems_and_confirmation_at_80x24_and_160x48() {
    for (w, hgt) in [(80u16, 24u16), (160, 48)] {
        let mut h = Harness::new(false);
        h.app.set_size(w, hgt);
        new_traffic_shift(&mut h);
        insta::assert_snapshot!(format!("editor-objects-{w}x{hgt}"), h.screen(w, hgt));
        h.keys("<ctrl-t>");
        insta::assert_snapshot!(format!("editor-diff-{w}x{hgt}"), h.screen(w, hgt));
        h.keys("<ctrl-t>");
        make_typo(&mut h);
        insta::assert_snapshot!(format!("editor-problems-typo-{w}x{hgt}"), h.screen(w, hgt));
        h.keys("<bs><bs><bs><bs>ift:"); // undo by hand
        h.keys("<bs><bs><bs><bs><bs><bs>Shift:");
        h.keys("<ctrl-g>");
        assert!(matches!(h.app.mode, Mode::Confirm(_)), "the dialog opens");
        insta::assert_snapshot!(format!("confirm-apply-{w}x{hgt}"), h.screen(w, hgt));
    }
}

#[test]
fn a_typo_is_marked_at_its_line_and_the_fix_makes_it_applicable() {
    let mut h = Harness::new(false);
    h.app.set_size(120, 40);
    new_traffic_shift(&mut h);
    make_typo(&mut h);
    let s = h.screen(120, 40);
    // the marker sits on line 16's gutter; the message names line:col and the fix
    assert!(s.contains("✗16     trafficShfit:"), "{s}");
    assert!(
        s.contains("16:5: spec.policy.trafficShfit: unknown field \"trafficShfit\" (did you mean \"trafficShift\"?)"),
        "{s}"
    );
    // apply is refused with the reason while the error stands
    h.keys("<ctrl-g>");
    assert!(matches!(h.app.mode, Mode::Editor(_)));
    assert!(
        h.screen(120, 40).contains("fix the errors first"),
        "refused"
    );
    // f8 jumps to the error: the cursor is on line 16, column 5
    h.keys("<up><up><up><f8>");
    match &h.app.mode {
        Mode::Editor(ed) => assert_eq!((ed.area.cursor().0, ed.area.cursor().1), (15, 4)),
        _ => panic!("editor"),
    }
    // fix: trafficShfit → trafficShift
    h.keys("<end><bs><bs><bs><bs>ift:");
    h.keys("<end><bs><bs><bs><bs><bs>hift:");
    let s = h.screen(120, 40);
    assert!(!s.contains("✗16"), "{s}");
    assert!(s.contains("valid: 2 changes in ap-south"), "{s}");
    // apply → dialog with the exact clusters → yes → one apply intent with the plan
    h.keys("<ctrl-g>");
    let s = h.screen(120, 40);
    assert!(s.contains("clusters: ap-south"), "{s}");
    assert!(s.contains("VirtualService         create 1"), "{s}");
    h.keys("y");
    assert_eq!(h.applies.len(), 1);
    let plan = &h.applies[0];
    let kinds: Vec<(&str, &str)> = plan
        .changes()
        .map(|i| (i.cluster.as_str(), i.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("ap-south", "DestinationRule"),
            ("ap-south", "VirtualService")
        ]
    );
    assert!(matches!(h.app.mode, Mode::Text(_)), "the progress view");
}

#[test]
fn esc_asks_and_the_draft_survives_until_discarded() {
    let mut h = Harness::new(false);
    new_traffic_shift(&mut h);
    h.keys("x<esc>");
    assert!(
        matches!(&h.app.mode, Mode::Editor(ed) if ed.closing),
        "asks"
    );
    h.keys("k");
    assert!(matches!(h.app.mode, Mode::Normal));
    // the draft is on disk and listed; e brings the text back
    let row = h
        .app
        .board
        .rows
        .iter()
        .find(|r| r.draft)
        .expect("a draft row")
        .clone();
    assert_eq!(
        row.file,
        Some(h._drafts.path().join("policies/traffic-shift-1.yaml"))
    );
    h.keys("e");
    match &h.app.mode {
        Mode::Editor(ed) => assert!(ed.text().starts_with("x# Traffic shift"), "{}", ed.text()),
        _ => panic!("editor"),
    }
    h.keys("<esc>d");
    assert!(matches!(h.app.mode, Mode::Normal));
    h.board();
    assert!(
        h.app.board.rows.iter().all(|r| !r.draft),
        "discarded: {:?}",
        h.app.board.rows
    );
}

#[test]
fn read_only_hides_authoring_and_refuses_every_write_key() {
    let mut h = Harness::new(true);
    h.keys(":pol<enter>");
    let s = h.screen(100, 24);
    assert!(!s.contains("<n>new"), "{s}");
    assert!(!s.contains("<e>edit"), "{s}");
    h.keys("n");
    assert!(matches!(h.app.mode, Mode::Normal), "no picker");
    h.keys("e");
    assert!(matches!(h.app.mode, Mode::Normal), "no editor");
    h.keys("<ctrl-d>");
    assert!(matches!(h.app.mode, Mode::Normal), "no dialog");
    assert!(h.applies.is_empty());
    let s = h.screen(100, 24);
    assert!(s.contains("read-only"), "{s}");
    let help = {
        h.keys("?");
        h.screen(100, 60)
    };
    assert!(
        help.contains("POLICY EDITOR") && help.contains("read-only: hidden"),
        "{help}"
    );
}

#[test]
fn f1_shows_the_editor_keys_and_esc_returns_to_the_same_text() {
    let mut h = Harness::new(false);
    new_traffic_shift(&mut h);
    h.keys("zz");
    h.keys("<f1>");
    assert!(matches!(h.app.mode, Mode::Help(_)));
    let s = h.screen(120, 60);
    assert!(
        s.contains("POLICY EDITOR") && s.contains("apply: plan, role checks, confirmation"),
        "{s}"
    );
    h.keys("<esc>");
    match &h.app.mode {
        Mode::Editor(ed) => assert!(ed.text().starts_with("zz# Traffic"), "{}", ed.text()),
        _ => panic!("back in the editor"),
    }
}

/// The editor, its preview and the confirmation dialog draw at 20×5 and 31×10 without a panic
/// (a dialog under 32 columns used to ask for a width between 30 and less than 30).
#[test]
fn the_editor_and_its_dialogs_draw_at_tiny_sizes() {
    let mut h = Harness::new(false);
    new_traffic_shift(&mut h);
    for (w, hgt) in [(20, 5), (31, 10), (8, 3)] {
        let s = h.screen(w, hgt);
        assert_eq!(s.lines().count(), usize::from(hgt), "{w}x{hgt}");
    }
    h.keys("<ctrl-g>");
    assert!(
        matches!(h.app.mode, Mode::Confirm(_)),
        "the confirmation is open"
    );
    for (w, hgt) in [(20, 5), (31, 10), (8, 3), (1, 1)] {
        let s = h.screen(w, hgt);
        assert_eq!(s.lines().count(), usize::from(hgt), "{w}x{hgt}");
    }
    h.keys("n");
}

/// A context marked readOnly in the settings is never written from the console: ctrl-g on a
/// draft whose plan touches it says so and opens no confirmation.
#[test]
fn a_read_only_context_refuses_the_apply_in_the_editor() {
    // a template never proposes a read-only cluster
    let mut h = Harness::new(false);
    h.app.readonly_clusters = vec!["ap-south".into()];
    new_traffic_shift(&mut h);
    let Mode::Editor(ed) = &h.app.mode else {
        panic!("the editor is open")
    };
    assert!(!ed.text().contains("ap-south"), "{}", ed.text());
    // a draft that touches one anyway (written before the settings said so)
    let mut h = Harness::new(false);
    new_traffic_shift(&mut h);
    let Mode::Editor(ed) = &h.app.mode else {
        panic!("the editor is open")
    };
    assert!(ed.text().contains("ap-south"), "{}", ed.text());
    h.app.readonly_clusters = vec!["ap-south".into()];
    h.keys("<ctrl-g>");
    assert!(matches!(h.app.mode, Mode::Editor(_)), "no confirmation");
    let s = h.screen(160, 48);
    assert!(
        s.contains("read-only: ap-south is readOnly in the settings; nothing is sent"),
        "{s}"
    );
    assert!(h.applies.is_empty());
}

fn line_text(l: &ratatui::text::Line<'_>) -> String {
    l.spans.iter().map(|s| s.content.as_ref()).collect()
}

/// At 80x24 the preview shows 5 lines: `alt-j` moves by exactly those 5 (it moved 9, so lines
/// were never shown) and stops where the last line is on screen; help does the same.
#[test]
fn the_preview_and_help_scroll_by_what_they_show_and_stop_at_the_end() {
    let mut h = Harness::new(false);
    new_traffic_shift(&mut h);
    h.screen(80, 24);
    let shown = meshdeck::ui::editor::preview_lines_visible(80, 24, 2);
    assert_eq!(shown, 5, "the preview pane at 80x24");
    let total = match &h.app.mode {
        Mode::Editor(ed) => ed.preview_lines(&h.app).len(),
        _ => panic!("editor"),
    };
    assert!(
        total > 3 * shown,
        "a preview long enough to scroll: {total}"
    );
    let scroll = |h: &Harness| match &h.app.mode {
        Mode::Editor(ed) => ed.scroll,
        _ => usize::MAX,
    };
    let mut seen = vec![scroll(&h)];
    for _ in 0..(total / shown + 3) {
        h.keys("<alt-j>");
        seen.push(scroll(&h));
    }
    let max = total - shown;
    for w in seen.windows(2) {
        assert!(
            w[1] == w[0] + shown || (w[1] == max && w[0] <= max),
            "moves by what is shown, never past the end: {seen:?}"
        );
    }
    assert_eq!(*seen.last().expect("scrolled"), max, "{seen:?}");
    let last = match &h.app.mode {
        Mode::Editor(ed) => line_text(ed.preview_lines(&h.app).last().expect("a line")),
        _ => String::new(),
    };
    let screen = h.screen(80, 24);
    let probe: String = last.trim().chars().take(20).collect();
    assert!(
        screen.contains(&probe),
        "the last line `{probe}` is on screen:\n{screen}"
    );

    // help: the same rule
    h.keys("<esc>");
    let mut h = Harness::new(false);
    h.screen(80, 24);
    h.keys("?");
    let lines = meshdeck::ui::draw::help_lines(&h.app);
    let visible = meshdeck::ui::draw::text_lines_visible(80, 24, 2);
    for _ in 0..(lines.len() / visible + 5) {
        h.keys("<pgdn>");
    }
    match h.app.mode {
        Mode::Help(s) => assert_eq!(s, lines.len() - visible, "help stops at its end"),
        _ => panic!("help"),
    }
    let screen = h.screen(80, 24);
    let (k, v) = lines.last().expect("help lines");
    assert!(
        screen.contains(k.trim()) && screen.contains(v.trim()),
        "{screen}"
    );
}

/// Collapse a screen to its words (borders and line breaks out), to find wrapped text.
fn words(screen: &str) -> String {
    screen
        .replace(['│', '┌', '┐', '└', '┘', '─', '├', '┤'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// At 80x24 what the user must read to act is on screen, whole: a problem's message and its
/// did-you-mean (after the editor's own long path), the apply refusal, the policies view's
/// reason, and a confirmation's keys under a long title.
#[test]
fn must_read_text_is_whole_at_80x24() {
    let mut h = Harness::new(false);
    // a policy directory as deep as real ones are
    h.app.policy_dir = Some(
        h._drafts
            .path()
            .join("home/alice/.local/state/meshdeck/policies/team-bookstore/production"),
    );
    new_traffic_shift(&mut h);
    make_typo(&mut h);
    h.keys("<ctrl-t><ctrl-t>");
    let s = h.screen(80, 24);
    assert!(
        s.lines()
            .any(|l| l.starts_with("│16:5: spec.policy.trafficShfit: unknown field")),
        "the preview's problem starts at its position, not the long path:\n{s}"
    );
    let flat = words(&s);
    assert!(
        flat.contains("unknown field \"trafficShfit\" (did you mean \"trafficShift\"?)"),
        "the problem is whole:\n{s}"
    );
    // the apply refusal with its did-you-mean
    h.keys("<ctrl-g>");
    let s = h.screen(80, 24);
    assert!(
        words(&s).contains("did you mean \"trafficShift\"?"),
        "the refusal keeps its did-you-mean:\n{s}"
    );

    // a confirmation under a long title keeps its keys
    let mut h = Harness::new(false);
    h.app.policy_dir = Some(
        h._drafts
            .path()
            .join("home/alice/.local/state/meshdeck/policies/team-bookstore/production"),
    );
    new_traffic_shift(&mut h);
    h.keys("<ctrl-g>");
    assert!(
        matches!(h.app.mode, Mode::Confirm(_)),
        "the confirmation is open"
    );
    let s = h.screen(80, 24);
    let confirm = h.app.keymap.first(meshdeck::ui::keymap::Action::Confirm);
    let cancel = h.app.keymap.first(meshdeck::ui::keymap::Action::Cancel);
    let flat = words(&s);
    assert!(
        flat.contains(&format!("{confirm} apply {cancel} cancel")),
        "the dialog's keys are on screen:\n{s}"
    );

    // the policies view: the selected row's reason whole, though its column is cut
    h.keys(&cancel);
    h.keys("<esc>d");
    let mut h = Harness::new(false);
    let dir = h._drafts.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("typo.yaml"),
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: typo, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceMatcher: {namespaces: [bookstor]}\n  policy:\n    requestTimeout: 1s\n",
    )
    .expect("policy");
    h.board();
    h.keys(":pol<enter>");
    let s = h.screen(80, 24);
    let reason = h
        .app
        .board
        .rows
        .first()
        .map(|r| r.reason.clone())
        .unwrap_or_default();
    assert!(reason.len() > 40, "a long reason: {reason:?}\n{s}");
    assert!(
        reason.starts_with("6:39: spec.destinationSelector"),
        "{reason}"
    );
    let shown = reason.clone();
    assert!(
        words(&s).contains(&shown),
        "the reason `{shown}` is whole:\n{s}"
    );
}

/// Enter keeps the line's indentation (line 16, `    trafficShift:`, is indented by four):
/// the new line starts where the last began, as YAML needs.
#[test]
fn enter_keeps_the_indentation() {
    let mut h = Harness::new(false);
    new_traffic_shift(&mut h);
    for _ in 0..15 {
        h.keys("<down>");
    }
    h.keys("<end><enter>x");
    let Mode::Editor(ed) = &h.app.mode else {
        panic!("the editor is open")
    };
    let lines = ed.area.lines();
    let indent = |l: &str| l.chars().take_while(|c| *c == ' ').count();
    assert!(
        lines[15].trim_start().starts_with("trafficShift"),
        "{lines:?}"
    );
    assert!(indent(&lines[15]) > 0, "{lines:?}");
    assert_eq!(indent(&lines[16]), indent(&lines[15]), "{lines:?}");
    assert_eq!(lines[16].trim(), "x", "{lines:?}");
}

/// One plan: the confirmation of a draft's apply also names what the fleet's other policies
/// want and this apply will not make (a saved, unapplied policy), so nobody takes the console's
/// apply for `meshdeck apply` of the whole directory.
#[test]
fn the_confirmation_names_other_policies_changes_it_will_not_make() {
    let mut h = Harness::new(false);
    let dir = h.app.policy_dir.clone().expect("dir");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("ratings-timeout.yaml"),
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: ratings-timeout, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    requestTimeout: 3s\n",
    )
    .expect("policy");
    h.board();
    new_traffic_shift(&mut h);
    h.keys("<ctrl-g>");
    assert!(matches!(h.app.mode, Mode::Confirm(_)), "the confirmation");
    let s = h.screen(160, 48);
    assert!(
        s.contains("not in this apply (1 of the fleet's other policies"),
        "{s}"
    );
    assert!(
        s.contains("TrafficPolicy bookstore/ratings-timeout: saved, not applied: 1 change pending"),
        "{s}"
    );
    h.keys("n");
}

/// A flat network's federation endpoints are pod IPs: after a rollout the board says which
/// objects are out of date and why, instead of a bare "not applied".
#[test]
fn the_board_says_a_flat_networks_endpoints_are_out_of_date_after_a_rollout() {
    let vm = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata: {name: flat, namespace: gloo-mesh}\nspec:\n  meshes:\n  - {name: istiod-istio-system-eu-west, namespace: istio-system}\n  - {name: istiod-istio-system-us-east, namespace: istio-system}\n  federation:\n    flatNetwork: true\n    selectors:\n    - destinationSelectors:\n      - kubeServiceMatcher: {namespaces: [bookstore]}\n";
    let mut h = Harness::new(false);
    let dir = h.app.policy_dir.clone().expect("dir");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("flat.yaml"), vm).expect("vm");
    // what an apply on the fleet as it was wrote, live in each cluster
    let before = h.app.snap.clone();
    let loaded = meshdeck::policy::load_str(vm, "flat.yaml");
    let out = meshdeck::translate::translate(&loaded.policies, &before);
    assert!(
        out.objects
            .iter()
            .any(|o| o.kind == "ServiceEntry" && o.spec["resolution"] == "STATIC"),
        "flat endpoints"
    );
    let mut after = (*before).clone();
    for (ci, c) in before.clusters.iter().enumerate() {
        let mut cv = (**c).clone();
        for o in out.objects.iter().filter(|o| o.cluster == c.name) {
            let raw = meshdeck::model::raw::RawObject::from_value(&o.to_object()).expect("raw");
            cv.istio.push(Arc::new(raw));
        }
        // a rollout: every pod has a new IP
        for (k, p) in cv.pods.iter_mut().enumerate() {
            let mut row = (**p).clone();
            let mut raw = (*row.raw).clone();
            if !raw.ip.is_empty() {
                raw.ip = format!("10.{}.{}.{}", 100 + ci, k / 250, k % 250 + 1).into();
            }
            row.raw = Arc::new(raw);
            *p = Arc::new(row);
        }
        after.clusters[ci] = Arc::new(cv);
    }
    after.seq += 1;
    h.app.on_snapshot(Arc::new(after));
    h.board();
    let row = h
        .app
        .board
        .rows
        .iter()
        .find(|r| r.name == "flat")
        .expect("the VirtualMesh's row");
    assert_ne!(row.state, meshdeck::translate::State::Accepted, "{row:?}");
    assert!(
        row.reason.starts_with("out of date: ")
            && row.reason.contains("follow pod IPs (flatNetwork)"),
        "{row:?}"
    );
}
