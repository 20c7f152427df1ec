//! The console on fixed snapshots: every view at 80x24 and 160x48 (insta), key handling,
//! and the mono and 16-colour themes asserted on cell styles.

use chrono::{DateTime, Utc};
use meshdeck::model::{ConnState, Snapshot};
use meshdeck::sim::fixture::demo_snapshot;
use meshdeck::ui::app::{App, Mode};
use meshdeck::ui::shots::{press, render, text};
use meshdeck::ui::{keymap, theme};
use ratatui::style::{Color, Modifier};
use std::sync::{Arc, OnceLock};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// The demo fleet, three clusters; the third one stale.
fn snapshot() -> Arc<Snapshot> {
    static S: OnceLock<Arc<Snapshot>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(demo_snapshot(3, None, now(), |i| {
            if i == 2 {
                ConnState::Stale {
                    since: "2026-01-10T11:59:20Z".into(),
                    error: "no answer within 2s".into(),
                }
            } else {
                ConnState::Synced
            }
        }))
    })
    .clone()
}

fn app_with(theme_name: &str, keymap_name: &str) -> App {
    let mut a = App::new(
        snapshot(),
        keymap::load(keymap_name, None).expect("keymap"),
        theme::load(theme_name, None).expect("theme"),
        false,
    );
    a.now = now();
    a
}

fn app() -> App {
    app_with("default", "default")
}

fn screen(keys: &str, w: u16, h: u16) -> String {
    let mut a = app();
    a.set_size(w, h);
    press(&mut a, keys);
    a.now = now();
    text(&render(&mut a, w, h).expect("render"))
}

const VIEWS: &[(&str, &str)] = &[
    ("clusters", ""),
    ("meshes", ":mesh<enter>"),
    ("services", ":svc<enter>"),
    ("workloads", ":wl<enter>"),
    ("pods", ":po<enter>"),
    ("istio", ":istio<enter>"),
    ("virtualservices", ":vs<enter>"),
    ("destinationrules", ":dr<enter>"),
    ("authorizationpolicies", ":authz<enter>"),
    ("peerauthentications", ":pa<enter>"),
    ("serviceentries", ":se<enter>"),
    ("policies", ":pol<enter>"),
    ("help", "?"),
    ("describe-workload", ":wl<enter>S<ctrl-z>d"),
];

#[test]
fn every_view_at_80x24_and_160x48() {
    for (name, keys) in VIEWS {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let s = screen(keys, w, h);
            insta::assert_snapshot!(format!("{name}-{w}x{h}"), s);
        }
    }
}

#[test]
fn small_terminal_keeps_hints_and_header() {
    let s = screen(":svc<enter>", 80, 24);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 24);
    assert!(lines[0].contains("clusters 2/3 synced"), "{s}");
    assert!(
        lines[1].contains("stale"),
        "the stale cluster is named: {s}"
    );
    let bar = lines[23];
    for hint in [
        "<:>view",
        "</>filter",
        "<enter>open",
        "<d>describe",
        "<?>help",
    ] {
        assert!(bar.contains(hint), "{hint} missing from {bar:?}");
    }
    // columns that do not fit are dropped, the essential ones stay
    assert!(
        lines[3].contains("CLUSTER") && lines[3].contains("NAME") && lines[3].contains("HEALTH")
    );
}

#[test]
fn read_only_badge_is_never_cut_off() {
    for (w, h) in [(60u16, 20u16), (80, 24), (160, 48)] {
        let mut a = App::new(
            snapshot(),
            keymap::load("default", None).expect("keymap"),
            theme::load("mono", None).expect("theme"),
            true,
        );
        a.now = now();
        let b = render(&mut a, w, h).expect("render");
        let first = text(&b).lines().next().unwrap_or("").to_string();
        assert!(first.contains("READ-ONLY"), "{w}x{h}: {first:?}");
        // shown in reverse video even without colour
        let x = first.find("READ-ONLY").expect("badge");
        let col = first[..x].chars().count() as u16;
        assert!(b[(col, 0)].modifier.contains(Modifier::REVERSED));
    }
}

#[test]
fn filter_fuzzy_inverted_and_by_label() {
    let mut a = app();
    press(&mut a, ":svc<enter>");
    let all = a.rows.len();
    assert!(all > 10);
    press(&mut a, "/rvws<enter>");
    let names: Vec<String> = names(&a);
    assert!(
        !names.is_empty() && names.iter().all(|n| n == "reviews"),
        "{names:?}"
    );
    press(&mut a, "<esc>");
    assert_eq!(a.rows.len(), all, "esc clears the filter");
    press(&mut a, "/!review<enter>");
    assert_eq!(a.rows.len(), all - 3);
    press(&mut a, "<esc>/-l app=ratings<enter>");
    let names = names_of(&a);
    assert!(
        !names.is_empty() && names.iter().all(|n| n == "ratings"),
        "{names:?}"
    );
    press(&mut a, "<esc>/-l app in (<enter>");
    assert!(a.filter_error.is_some(), "a bad selector is reported");
    assert_eq!(a.rows.len(), all, "a bad selector filters nothing away");
}

/// A filter's exact hits come first: `/ware` lists `warehouse` before the rows it only
/// matches letter by letter (`eu-west/…/…a…r…e`), and `/re` lists `reviews` before `frontend`.
#[test]
fn exact_filter_hits_rank_above_fuzzy_ones() {
    let mut a = app();
    press(&mut a, ":svc<enter>/ware<enter>");
    let names = names(&a);
    assert!(names.iter().any(|n| n == "warehouse"), "{names:?}");
    let first_fuzzy = names.iter().position(|n| n != "warehouse");
    let last_exact = names.iter().rposition(|n| n == "warehouse");
    if let (Some(f), Some(l)) = (first_fuzzy, last_exact) {
        assert!(l < f, "every warehouse before any fuzzy hit: {names:?}");
    }
    press(&mut a, "<esc>/view<enter>");
    let names = super::ui::names(&a);
    let exact: Vec<bool> = names.iter().map(|n| n.contains("view")).collect();
    assert!(exact.first() == Some(&true), "{names:?}");
    assert!(
        exact.windows(2).all(|w| w[0] || !w[1]),
        "no exact hit after a fuzzy one: {names:?}"
    );
}

fn names(a: &App) -> Vec<String> {
    names_of(a)
}

fn names_of(a: &App) -> Vec<String> {
    a.rows
        .iter()
        .map(|&(c, i)| {
            let cl = &a.snap.clusters[c as usize];
            a.page()
                .kind
                .item(cl, i as usize)
                .map(|it| it.name().to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn command_scoping_drill_down_and_history() {
    let mut a = app();
    press(&mut a, ":svc @us-east<enter>");
    assert!(
        a.rows
            .iter()
            .all(|&(c, _)| a.snap.clusters[c as usize].name == "us-east")
    );
    let n_us = a.rows.len();
    assert!(n_us > 0);
    press(&mut a, ":svc bookstore<enter>");
    let ns: Vec<&str> = a
        .rows
        .iter()
        .map(|&(c, i)| {
            a.page()
                .kind
                .item(&a.snap.clusters[c as usize], i as usize)
                .map(|it| it.namespace())
                .unwrap_or("")
        })
        .collect();
    assert!(!ns.is_empty() && ns.iter().all(|n| *n == "bookstore"));
    // drill: service → its workloads → their pods
    press(&mut a, "/reviews<enter>");
    press(&mut a, "<enter>");
    assert_eq!(a.page().kind.title(), "workloads");
    let wl = names_of(&a);
    assert!(wl.iter().all(|n| n.starts_with("reviews-v")), "{wl:?}");
    press(&mut a, "<enter>");
    assert_eq!(a.page().kind.title(), "pods");
    assert!(names_of(&a).iter().all(|n| n.starts_with(&wl[0])));
    // Esc goes back, [ and ] walk the history
    press(&mut a, "<esc>");
    assert_eq!(a.page().kind.title(), "workloads");
    press(&mut a, "]");
    assert_eq!(a.page().kind.title(), "pods");
    press(&mut a, "[[");
    assert_eq!(a.page().kind.title(), "services");
    // unknown view: a flash names it, nothing else changes
    press(&mut a, ":nope<enter>");
    assert!(
        a.current_flash()
            .is_some_and(|f| f.error && f.text.contains("nope"))
    );
    assert_eq!(a.page().kind.title(), "services");
    press(&mut a, ":svc @mars<enter>");
    assert!(
        a.current_flash()
            .is_some_and(|f| f.text.contains("no cluster `mars`"))
    );
}

#[test]
fn sorting_and_faults_only() {
    let mut a = app();
    press(&mut a, ":wl<enter>S");
    let levels: Vec<_> = a
        .rows
        .iter()
        .map(|&(c, i)| {
            a.page()
                .kind
                .item(&a.snap.clusters[c as usize], i as usize)
                .map(|it| it.level())
        })
        .collect();
    let mut sorted = levels.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(levels, sorted, "worst first");
    press(&mut a, "N");
    let n = names_of(&a);
    let mut s = n.clone();
    s.sort();
    assert_eq!(n, s);
    press(&mut a, "N");
    s.reverse();
    assert_eq!(names_of(&a), s, "again: reversed");
    let total = a.rows.len();
    press(&mut a, "<ctrl-z>");
    assert!(a.rows.len() < total && !a.rows.is_empty());
    // the stale cluster's rows stay (they need attention), the rest are not ok
    for &(c, i) in &a.rows {
        let cl = &a.snap.clusters[c as usize];
        let it = a.page().kind.item(cl, i as usize).expect("row");
        assert!(cl.state.is_stale() || it.level() != meshdeck::model::health::Level::Ok);
    }
    // column sort: select RESTARTS (index 5) and sort on it
    press(&mut a, "<ctrl-z>");
    a.page();
    press(
        &mut a,
        "<shift-right><shift-right><shift-right><shift-right><shift-right>O",
    );
    assert_eq!(a.page().column, 5);
}

#[test]
fn selection_follows_the_row_across_snapshots() {
    let mut a = app();
    press(&mut a, ":svc<enter>/reviews<enter>jj");
    let before = names_of(&a)[a.page().cursor].clone();
    let cl_before = a.rows[a.page().cursor].0;
    // the same fleet again, in another order: the cursor stays on the same row
    let mut s = (*snapshot()).clone();
    s.clusters.reverse();
    a.on_snapshot(Arc::new(s));
    let after = names_of(&a)[a.page().cursor].clone();
    assert_eq!(before, after);
    assert_eq!(
        a.snap.clusters[a.rows[a.page().cursor].0 as usize].name,
        snapshot().clusters[cl_before as usize].name
    );
}

#[test]
fn logs_yaml_and_describe_ask_for_the_right_things() {
    use meshdeck::ui::app::Intent;
    let mut a = app();
    press(&mut a, ":po @eu-west<enter>");
    let intents = a.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('l'),
        crossterm::event::KeyModifiers::NONE,
    ));
    assert!(
        matches!(&intents[..], [Intent::FollowLogs { cluster, .. }] if cluster == "eu-west"),
        "{intents:?}"
    );
    assert!(matches!(a.mode, Mode::Text(_)));
    let intents = a.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Esc,
        crossterm::event::KeyModifiers::NONE,
    ));
    assert!(
        matches!(&intents[..], [Intent::Cancel(_)]),
        "closing the logs stops the stream"
    );
    // logs on a service: a hint, no request
    press(&mut a, ":svc<enter>");
    let intents = a.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('l'),
        crossterm::event::KeyModifiers::NONE,
    ));
    assert!(intents.is_empty());
    assert!(a.current_flash().is_some_and(|f| f.text.contains("pods")));
    let intents = a.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('y'),
        crossterm::event::KeyModifiers::NONE,
    ));
    assert!(
        matches!(&intents[..], [Intent::FetchYaml { kind, api_version, .. }] if kind == "Service" && api_version == "v1"),
        "{intents:?}"
    );
    // a job's answer for a closed view is dropped; for the open one it shows
    if let Mode::Text(tv) = &a.mode {
        let job = tv.job;
        a.on_job(meshdeck::ui::app::JobEvent::Text(job + 100, "other".into()));
        a.on_job(meshdeck::ui::app::JobEvent::Text(
            job,
            "kind: Service\n".into(),
        ));
    }
    match &a.mode {
        Mode::Text(tv) => assert_eq!(tv.lines.iter().collect::<Vec<_>>(), vec!["kind: Service"]),
        m => panic!("{m:?}"),
    }
}

#[test]
fn log_buffer_is_capped_by_bytes() {
    use meshdeck::ui::app::{JobEvent, LOG_CAP_BYTES};
    let mut a = app();
    press(&mut a, ":po<enter>l");
    let job = match &a.mode {
        Mode::Text(tv) => tv.job,
        m => panic!("{m:?}"),
    };
    let line = "x".repeat(999);
    for _ in 0..5 {
        a.on_job(JobEvent::Lines(job, vec![line.clone(); 1000]));
    }
    match &a.mode {
        Mode::Text(tv) => {
            assert!(tv.bytes <= LOG_CAP_BYTES, "{}", tv.bytes);
            assert!(tv.dropped > 0);
            assert_eq!(tv.lines.len() + tv.dropped, 5000);
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn mono_theme_has_no_colour_and_marks_selection_by_reverse() {
    let mut a = app_with("mono", "default");
    press(&mut a, ":wl<enter>S");
    let b = render(&mut a, 80, 24).expect("render");
    let mut reversed_rows = 0;
    for y in 0..b.area.height {
        let mut row_rev = false;
        for x in 0..b.area.width {
            let c = &b[(x, y)];
            assert_eq!(c.fg, Color::Reset, "fg at {x},{y}");
            assert_eq!(c.bg, Color::Reset, "bg at {x},{y}");
            if c.modifier.contains(Modifier::REVERSED) {
                row_rev = true;
            }
        }
        if row_rev {
            reversed_rows += 1;
        }
    }
    assert_eq!(reversed_rows, 1, "exactly the selected row is reversed");
    // health is readable without colour: glyph and word
    let t = text(&b);
    assert!(t.contains("✗ failure") || t.contains("▲ degraded"), "{t}");
}

#[test]
fn sixteen_colour_theme_only_uses_ansi_colours() {
    let mut a = app_with("16color", "default");
    for keys in ["", ":svc<enter>", ":wl<enter>S", "?"] {
        press(&mut a, keys);
        let b = render(&mut a, 80, 24).expect("render");
        for c in b.content() {
            for col in [c.fg, c.bg] {
                assert!(
                    !matches!(col, Color::Indexed(_) | Color::Rgb(..)),
                    "{col:?} in the 16-colour theme"
                );
            }
        }
    }
}

#[test]
fn health_cells_carry_their_level_style() {
    let mut a = app();
    press(&mut a, ":wl<enter>Sj");
    let th = theme::load("default", None).expect("theme");
    let b = render(&mut a, 160, 48).expect("render");
    let mut checked = 0;
    for y in 0..b.area.height {
        for x in 0..b.area.width.saturating_sub(2) {
            if b[(x, y)].symbol() == "✗" && b[(x + 2, y)].symbol() == "f" {
                let c = &b[(x, y)];
                if c.bg == th.selection.bg.unwrap_or(Color::Reset) {
                    continue; // the selected row wears the selection style
                }
                assert_eq!(c.fg, th.fail.fg.unwrap_or(Color::Reset), "at {x},{y}");
                assert!(c.modifier.contains(Modifier::BOLD));
                checked += 1;
            }
        }
    }
    assert!(
        checked > 0,
        "no failing workload row besides the selected one"
    );
}

#[test]
fn vim_keymap_quits_on_q_and_pages_with_ctrl_d() {
    let mut a = app_with("default", "vim");
    press(&mut a, ":po<enter>");
    a.set_size(80, 24);
    press(&mut a, "<ctrl-d>");
    assert_eq!(a.page().cursor, a.viewport);
    press(&mut a, "q");
    assert!(a.quit);
}

/// No view, help or describe panics at any terminal size down to 1×1, and what fits is drawn.
#[test]
fn every_view_draws_what_fits_at_tiny_sizes() {
    for (name, keys) in VIEWS {
        for (w, h) in [(20, 5), (31, 8), (10, 3), (1, 1), (80, 2)] {
            let mut a = app();
            a.set_size(w, h);
            press(&mut a, keys);
            a.now = now();
            let b = render(&mut a, w, h).unwrap_or_else(|e| panic!("{name} at {w}x{h}: {e}"));
            let t = text(&b);
            assert_eq!(t.lines().count(), usize::from(h), "{name} at {w}x{h}");
            if w >= 20 && h >= 5 {
                assert!(
                    t.contains("meshdeck") || t.trim().len() > 10,
                    "{name} at {w}x{h}:\n{t}"
                );
            }
        }
    }
}

/// A cluster that never answered is `? unknown` in its row and the header counts it: the
/// header never says healthy over clusters it knows nothing about.
#[test]
fn clusters_without_data_are_unknown_in_rows_and_header() {
    // as the fleet publishes them before any list answered
    let never = |name: &str, state: ConnState| {
        Arc::new(meshdeck::model::derive_cluster(
            &meshdeck::model::ClusterInput {
                name: name.into(),
                context: name.into(),
                ..Default::default()
            },
            state,
        ))
    };
    let snap = Arc::new(Snapshot {
        clusters: vec![
            never("eu-west", ConnState::Connecting),
            never(
                "us-east",
                ConnState::Unreachable {
                    since: "2026-01-10T11:59:20Z".into(),
                    error: "connection refused".into(),
                },
            ),
        ],
        seq: 1,
    });
    let mut a = App::new(
        snap,
        keymap::load("default", None).expect("keymap"),
        theme::load("default", None).expect("theme"),
        false,
    );
    a.now = now();
    a.set_size(160, 20);
    let t = text(&render(&mut a, 160, 20).expect("render"));
    let header = t.lines().next().unwrap_or("");
    assert!(header.contains("? 2 unknown"), "{header}");
    assert!(!header.contains("healthy"), "{header}");
    let rows: Vec<&str> = t.lines().filter(|l| l.contains("? unknown")).collect();
    assert_eq!(rows.len(), 2, "{t}");
    assert!(
        t.contains("no data yet: connecting") && t.contains("connection refused"),
        "{t}"
    );
    assert!(!t.lines().any(|l| l.contains("✓ ok")), "{t}");
}

/// A partial cluster (synced for what the session may see) is never counted as synced: the
/// header says how many are partial, its chip and row say `partial`, describe says what is
/// shown and what is forbidden.
#[test]
fn a_partial_cluster_is_not_counted_as_synced() {
    let forbidden = "shown for namespace bookstore only: may not list Pod in all namespaces";
    let input = meshdeck::sim::fixture::demo_input(0, "eu-west", None, 7, now());
    let partial = Arc::new(meshdeck::model::derive_cluster(
        &input,
        ConnState::Partial {
            forbidden: forbidden.into(),
        },
    ));
    let other = meshdeck::sim::fixture::demo_input(1, "us-east", None, 7, now());
    let snap = Arc::new(Snapshot {
        clusters: vec![
            partial,
            Arc::new(meshdeck::model::derive_cluster(&other, ConnState::Synced)),
        ],
        seq: 1,
    });
    let mut a = App::new(
        snap,
        keymap::load("default", None).expect("keymap"),
        theme::load("default", None).expect("theme"),
        false,
    );
    a.now = now();
    a.set_size(160, 20);
    let t = text(&render(&mut a, 160, 20).expect("render"));
    let mut lines = t.lines();
    let header = lines.next().unwrap_or("");
    assert!(
        header.contains("clusters 1/2 synced, 1 partial"),
        "{header}"
    );
    let chips = lines.next().unwrap_or("");
    assert!(chips.contains("◐eu-west partial"), "{chips}");
    assert!(
        t.lines()
            .any(|l| l.contains("eu-west") && l.contains(" partial ")),
        "{t}"
    );
    press(&mut a, "d");
    let t = text(&render(&mut a, 160, 20).expect("render"));
    assert!(t.contains(&format!("Visible:          {forbidden}")), "{t}");
}

/// A kubeconfig context that could not be used keeps a chip (`✗lost config`), counts in the
/// header (`clusters 1/2 synced`, never `1/1`), and says why in its row and describe.
#[test]
fn a_broken_context_keeps_a_chip_and_counts() {
    let why = "context \"lost\" in kubeconfig kc: cluster \"gone\" is not in the kubeconfig";
    let ok = meshdeck::sim::fixture::demo_input(0, "eu-west", None, 7, now());
    let lost = meshdeck::model::ClusterInput {
        name: "lost".into(),
        context: "lost".into(),
        ..Default::default()
    };
    let snap = Arc::new(Snapshot {
        clusters: vec![
            Arc::new(meshdeck::model::derive_cluster(&ok, ConnState::Synced)),
            Arc::new(meshdeck::model::derive_cluster(
                &lost,
                ConnState::ConfigError { error: why.into() },
            )),
        ],
        seq: 1,
    });
    let mut a = App::new(
        snap,
        keymap::load("default", None).expect("keymap"),
        theme::load("default", None).expect("theme"),
        false,
    );
    a.now = now();
    a.set_size(160, 20);
    let t = text(&render(&mut a, 160, 20).expect("render"));
    let mut lines = t.lines();
    let header = lines.next().unwrap_or("");
    assert!(header.contains("clusters 1/2 synced"), "{header}");
    assert!(!header.contains("healthy"), "{header}");
    let chips = lines.next().unwrap_or("");
    assert!(chips.contains("✗lost config"), "{chips}");
    press(&mut a, ":ctx<enter>");
    let t = text(&render(&mut a, 200, 20).expect("render"));
    let row = t
        .lines()
        .find(|l| l.contains("lost") && !l.contains("✗lost"))
        .unwrap_or("");
    assert!(
        row.contains("is not in the kubeconfig") && !row.contains("✓"),
        "{t}"
    );
}

/// Every row of every view has exactly one cell per column (each column is defined with its
/// cell, so this holds by construction; the test keeps it so).
#[test]
fn every_row_has_one_cell_per_column() {
    use meshdeck::ui::view::{ISTIO_VIEWS, ViewKind};
    let snap = snapshot();
    let mut kinds = vec![
        ViewKind::Clusters,
        ViewKind::Meshes,
        ViewKind::Services,
        ViewKind::Workloads,
        ViewKind::Pods,
        ViewKind::Istio(None),
    ];
    kinds.extend(
        ISTIO_VIEWS
            .iter()
            .map(|(k, _, _)| ViewKind::Istio(Some(*k))),
    );
    for kind in kinds {
        let mut rows = 0;
        for c in &snap.clusters {
            // an Istio kind's view skips the other kinds' objects
            for i in 0..kind.len(c) {
                let Some(item) = kind.item(c, i) else {
                    continue;
                };
                let cells = item.cells(kind, c, now(), None, None);
                assert_eq!(
                    cells.len(),
                    kind.columns().len(),
                    "{kind:?} row {i} in {}",
                    c.name
                );
                rows += 1;
            }
        }
        if kind == ViewKind::Istio(None)
            || matches!(
                kind,
                ViewKind::Istio(Some("VirtualService" | "DestinationRule"))
            )
        {
            assert!(rows > 0, "{kind:?} has rows in the demo");
        }
    }
}

/// k9s habits: `:ns NAME` scopes this view and every view opened after it, a typo gets a
/// did-you-mean, `:ns all` clears; `-` goes back to the last view.
#[test]
fn ns_switches_the_namespace_and_dash_goes_back() {
    let mut a = app();
    let namespaces = |a: &App| -> Vec<String> {
        a.rows
            .iter()
            .filter_map(|&(c, i)| {
                a.page()
                    .kind
                    .item(&a.snap.clusters[c as usize], i as usize)
                    .map(|it| it.namespace().to_string())
            })
            .collect()
    };
    press(&mut a, ":svc<enter>");
    assert!(namespaces(&a).iter().any(|n| n != "bookstore"));
    press(&mut a, ":ns bookstre<enter>");
    let flash = a.flash.as_ref().map(|f| f.text.clone()).unwrap_or_default();
    assert_eq!(
        flash,
        "no namespace `bookstre` in the fleet (did you mean \"bookstore\"?)"
    );
    press(&mut a, ":ns bookstore<enter>");
    let ns = namespaces(&a);
    assert!(
        !ns.is_empty() && ns.iter().all(|n| n == "bookstore"),
        "{ns:?}"
    );
    press(&mut a, ":wl<enter>");
    let ns = namespaces(&a);
    assert!(
        !ns.is_empty() && ns.iter().all(|n| n == "bookstore"),
        "new views too: {ns:?}"
    );
    press(&mut a, "-");
    assert_eq!(a.page().kind.title(), "services", "- is the last view");
    press(&mut a, ":ns all<enter>");
    assert!(namespaces(&a).iter().any(|n| n != "bookstore"));
}

/// The header names the identity the session acts as: one user when every cluster agrees,
/// else how many (it used to show the alphabetically first context's user, `+2`).
#[test]
fn the_header_names_one_identity_or_counts_them() {
    let mk = |i: usize, name: &str, user: &str| {
        let mut input = meshdeck::sim::fixture::demo_input(i, name, None, 7, now());
        input.user = user.into();
        Arc::new(meshdeck::model::derive_cluster(&input, ConnState::Synced))
    };
    let header = |clusters: Vec<Arc<meshdeck::model::ClusterView>>| {
        let mut a = App::new(
            Arc::new(Snapshot { clusters, seq: 1 }),
            keymap::load("default", None).expect("keymap"),
            theme::load("default", None).expect("theme"),
            false,
        );
        a.now = now();
        let t = text(&render(&mut a, 160, 20).expect("render"));
        t.lines().next().unwrap_or("").to_string()
    };
    let h = header(vec![mk(0, "eu-west", "alice"), mk(1, "us-east", "alice")]);
    assert!(h.contains("user alice"), "{h}");
    let h = header(vec![
        mk(0, "eu-west", "alice"),
        mk(1, "us-east", "eu-west-admin"),
        mk(2, "ap-south", "viewer"),
    ]);
    assert!(h.contains("3 identities") && !h.contains("user "), "{h}");
}

/// `--headless` gives the header's rows to the table; the read-only badge moves to the
/// table's title so it is never out of sight.
#[test]
fn headless_drops_the_header_but_never_the_read_only_badge() {
    let mut a = App::new(
        snapshot(),
        keymap::load("default", None).expect("keymap"),
        theme::load("default", None).expect("theme"),
        true,
    );
    a.now = now();
    a.headless = true;
    a.set_size(80, 10);
    let t = text(&render(&mut a, 80, 10).expect("render"));
    let first = t.lines().next().unwrap_or("");
    assert!(first.starts_with("┌ READ-ONLY  clusters"), "{t}");
    assert!(!t.contains("meshdeck │"), "no header: {t}");
    assert_eq!(a.viewport, 10 - 4, "the table gets the header's rows");
}

/// `:an` lists the fleet's findings (level, code, cluster, object, message), `d` describes one
/// with its field and fix, `enter` jumps to the object it names.
#[test]
fn the_analysis_view_lists_findings_and_jumps_to_the_object() {
    let mut a = app();
    let f = meshdeck::analyze::Finding {
        code: "IST0101",
        level: meshdeck::analyze::Level::Error,
        cluster: "us-east".into(),
        object: "VirtualService bookstore/reviews".into(),
        path: "spec.http[0].route[0].destination.subset".into(),
        message: "Referenced host+subset in destinationrule not found: \"reviews+v9\"".into(),
        hint: "define subset v9 in a DestinationRule for reviews.bookstore.svc.cluster.local"
            .into(),
    };
    let mut board = (*a.board).clone();
    board.findings = vec![f];
    a.board = Arc::new(board);
    press(&mut a, ":an<enter>");
    assert_eq!(a.page().kind.title(), "analysis");
    let t = text(&render(&mut a, 160, 20).expect("render"));
    assert!(
        t.contains(
            "✗ error IST0101 us-east VirtualService bookstore/reviews Referenced host+subset"
        ),
        "{t}"
    );
    press(&mut a, "d");
    let t = text(&render(&mut a, 160, 20).expect("render"));
    assert!(t.contains("Fix:        define subset v9"), "{t}");
    press(&mut a, "<esc><enter>");
    assert_eq!(a.page().kind.title(), "virtualservices");
    assert_eq!(a.page().scope.cluster.as_deref(), Some("us-east"));
    assert_eq!(a.page().filter, "reviews");
}

/// Typing a filter one key at a time in the analysis and policies views narrows their own
/// rows (findings, board rows), not a cluster's objects at the same index.
#[test]
fn filters_typed_key_by_key_narrow_findings_and_policies() {
    let mut a = app();
    let finding = |code: &'static str, object: &str| meshdeck::analyze::Finding {
        code,
        level: meshdeck::analyze::Level::Error,
        cluster: "us-east".into(),
        object: object.into(),
        path: "spec".into(),
        message: "m".into(),
        hint: "h".into(),
    };
    let mut board = (*a.board).clone();
    board.findings = vec![
        finding("IST0101", "VirtualService bookstore/reviews"),
        finding("IST0127", "AuthorizationPolicy payments/deny-all"),
    ];
    a.board = Arc::new(board);
    press(&mut a, ":an<enter>/vi");
    assert_eq!(a.rows.len(), 1, "`vi` keeps the reviews finding");
    press(&mut a, "e");
    assert_eq!(a.rows.len(), 1, "`vie` still keeps it");
    let row = |name: &str| meshdeck::author::PolicyRow {
        kind: "TrafficPolicy".into(),
        namespace: "bookstore".into(),
        name: name.into(),
        origin: "policies/p.yaml".into(),
        file: None,
        sources: "*".into(),
        targets: "reviews".into(),
        state: meshdeck::translate::State::Accepted,
        reason: String::new(),
        reasons: Vec::new(),
        clusters: Vec::new(),
        policy: None,
        text: None,
        draft: false,
        not_on_fleet: false,
    };
    let mut board = (*a.board).clone();
    board.rows = vec![row("reviews-timeout"), row("ratings-retries")];
    a.board = Arc::new(board);
    press(&mut a, "<esc><esc>:pol<enter>");
    assert_eq!(a.rows.len(), 2);
    press(&mut a, "/vi");
    assert_eq!(a.rows.len(), 1, "`vi` keeps reviews-timeout");
    press(&mut a, "e");
    assert_eq!(a.rows.len(), 1, "`vie` still keeps it");
    assert_eq!(a.board.rows[a.rows[0].1 as usize].name, "reviews-timeout");
}

/// Findings are counted in the header and attached to the object they name: describe shows
/// them with their fix.
#[test]
fn findings_are_counted_in_the_header_and_shown_in_describe() {
    let mut a = app();
    let (cluster, vs) = a
        .snap
        .clusters
        .iter()
        .find_map(|c| {
            c.istio
                .iter()
                .find(|o| o.kind == "VirtualService")
                .map(|o| (c.name.clone(), o.clone()))
        })
        .expect("the demo has a VirtualService");
    let failing = |t: &str| -> usize {
        t.lines()
            .next()
            .and_then(|h| h.split(" failing").next())
            .and_then(|h| h.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = failing(&text(&render(&mut a, 160, 20).expect("render")));
    let mut board = (*a.board).clone();
    board.findings = vec![meshdeck::analyze::Finding {
        code: "IST0101",
        level: meshdeck::analyze::Level::Error,
        cluster: cluster.clone(),
        object: format!("VirtualService {}/{}", vs.namespace, vs.name),
        path: "spec.http[0].route[0].destination.subset".into(),
        message: "Referenced host+subset in destinationrule not found: \"x+v9\"".into(),
        hint: "define subset v9".into(),
    }];
    board.finding_notes = meshdeck::author::finding_notes(&board.findings, Some(&a.snap));
    a.board = Arc::new(board);
    let t = text(&render(&mut a, 160, 20).expect("render"));
    assert!(
        t.lines().next().unwrap_or("").contains("1 finding (:an)"),
        "{t}"
    );
    // the object an error finding fails is counted as failing
    assert_eq!(failing(&t), before + 1, "{t}");
    // the row's REASON names the finding
    press(
        &mut a,
        &format!(":vs @{cluster} {}<enter>/{}<enter>", vs.namespace, vs.name),
    );
    let t = text(&render(&mut a, 200, 20).expect("render"));
    let row = t
        .lines()
        .find(|l| l.contains(&vs.name) && !l.contains('@'))
        .unwrap_or_default();
    assert!(row.contains("IST0101 Referenced host+subset"), "{t}");
    // an error finding is part of the object's health: never `✓ ok` over it
    assert!(row.contains("✗ failure") && !row.contains("✓"), "{row}");
    // the service it routes is degraded, naming why
    let routed = a
        .snap
        .cluster(&cluster)
        .and_then(|c| {
            let me = format!("VirtualService/{}/{}", vs.namespace, vs.name);
            c.services
                .iter()
                .find(|s| s.istio_refs.contains(&me))
                .cloned()
        })
        .expect("the VirtualService routes a service");
    press(
        &mut a,
        &format!(
            ":svc @{cluster} {}<enter>/{}<enter>",
            routed.namespace, routed.name
        ),
    );
    let t2 = text(&render(&mut a, 220, 20).expect("render"));
    let srow = t2
        .lines()
        .find(|l| l.contains(&routed.name) && l.contains("routes broken"))
        .unwrap_or_default();
    assert!(srow.contains("▲") || srow.contains("✗"), "{t2}");
    assert!(!srow.contains("✓"), "{t2}");
    press(
        &mut a,
        &format!(":vs @{cluster} {}<enter>/{}<enter>", vs.namespace, vs.name),
    );
    press(&mut a, "d");
    let t = text(&render(&mut a, 160, 30).expect("render"));
    assert!(
        t.contains("Finding:          IST0101 error spec.http[0].route[0].destination.subset"),
        "{t}"
    );
    assert!(t.contains("  fix:            define subset v9"), "{t}");
}

/// The demo snapshot with the first cluster's first ratings pod renamed `to` (a new view of
/// that cluster only; the others are the same `Arc`s).
fn ratings_pod_renamed(to: &str) -> Arc<Snapshot> {
    let mut s = (*snapshot()).clone();
    let mut c0 = (*s.clusters[0]).clone();
    let i = c0
        .pods
        .iter()
        .position(|p| p.name().contains("ratings"))
        .expect("a ratings pod");
    let mut row = (*c0.pods[i]).clone();
    let mut raw = (*row.raw).clone();
    raw.name = to.into();
    row.raw = Arc::new(raw);
    c0.pods[i] = Arc::new(row);
    s.clusters[0] = Arc::new(c0);
    s.seq += 1;
    Arc::new(s)
}

/// The filter matches kept per-cluster keys; a snapshot that changed one cluster must match
/// that cluster's new rows (a pod renamed there), and keep the unchanged clusters' answers.
#[test]
fn a_filter_follows_a_snapshot_that_changed_one_cluster() {
    let mut a = app();
    press(&mut a, ":po<enter>/ratings<enter>");
    let before = names_of(&a);
    assert!(
        !before.is_empty() && before.iter().all(|n| n.contains("ratings")),
        "{before:?}"
    );
    // the first cluster's first ratings pod is renamed (a new view of that cluster only)
    let renamed = "moved-away";
    a.on_snapshot(ratings_pod_renamed(renamed));
    let after = names_of(&a);
    assert!(
        !after.contains(&renamed.to_string()),
        "the renamed row no longer matches: {after:?}"
    );
    assert_eq!(
        after.len(),
        before.len() - 1,
        "only the renamed row left: {after:?}"
    );
    // narrowing the filter reads the same keys
    press(&mut a, "/ratingsv<enter>");
    assert!(
        names_of(&a).iter().all(|n| n.contains("ratings-v")),
        "{:?}",
        names_of(&a)
    );
}

/// The console with golden signals: the simulator's traffic as a Prometheus would answer it
/// (the third cluster's source stale).
fn signal_app() -> App {
    let mut a = app();
    a.on_signals(Arc::new(meshdeck::sim::fixture::demo_signals(
        3,
        now(),
        |i| i == 2,
    )));
    a
}

fn signal_screen(keys: &str, w: u16, h: u16) -> String {
    let mut a = signal_app();
    a.set_size(w, h);
    press(&mut a, keys);
    a.now = now();
    text(&render(&mut a, w, h).expect("render"))
}

#[test]
fn signal_views_at_80x24_and_160x48() {
    for (name, keys) in [
        ("signals-services", ":svc<enter>"),
        ("signals-workloads", ":wl<enter>"),
        ("signals-traffic", ":traffic<enter>"),
        ("signals-services-faults", ":svc<enter>S<ctrl-z>"),
        ("signals-describe", ":svc @us-east<enter>/warehouse<enter>d"),
    ] {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let s = signal_screen(keys, w, h);
            insta::assert_snapshot!(format!("{name}-{w}x{h}"), s);
        }
    }
}

#[test]
fn traffic_failures_are_faults_and_t_opens_a_services_edges() {
    // us-east's warehouse answers 12 % 503: its object health is ok, its traffic a failure
    let mut a = signal_app();
    a.set_size(160, 48);
    press(&mut a, ":svc @us-east<enter><ctrl-z>");
    let shown = names(&a);
    assert!(shown.iter().any(|n| n.ends_with("warehouse")), "{shown:?}");
    let s = text(&render(&mut a, 160, 48).expect("render"));
    let line = s
        .lines()
        .find(|l| l.contains("warehouse"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        line.contains("✗ failure") && line.contains("12.0%"),
        "{line}"
    );
    assert!(line.contains("5xx 12.0 % over 1m ≥ 10 %"), "{line}");
    // without signals the same row is ok, and faults-only drops it
    let mut plain = app();
    press(&mut plain, ":svc @us-east<enter><ctrl-z>");
    assert!(!names(&plain).iter().any(|n| n.ends_with("warehouse")));
    // t: the warehouse's edges (inventory calls it)
    press(&mut a, "<ctrl-z>/warehouse<enter>t");
    assert_eq!(a.page().kind, meshdeck::ui::view::ViewKind::Traffic);
    let s = text(&render(&mut a, 160, 48).expect("render"));
    assert!(
        s.lines()
            .any(|l| l.contains("inventory/inventory") && l.contains("inventory/warehouse")),
        "{s}"
    );
    assert!(
        !s.contains("bookstore/reviews"),
        "only the warehouse's edges: {s}"
    );
    // t on a pod says what it wants
    let mut p = signal_app();
    press(&mut p, ":po<enter>t");
    assert!(
        p.current_flash()
            .is_some_and(|f| f.text.contains("service or a workload"))
    );
}

#[test]
fn signals_of_a_stale_source_and_of_no_source_are_not_zero() {
    let a = signal_app();
    let sig = a.sig();
    // a cluster without any signal state shows ?, never 0
    assert_eq!(sig.signals.cells("elsewhere", None), ["?", "?", "?"]);
    // a cluster whose source answered but saw no requests for a row shows -
    assert_eq!(sig.signals.cells("eu-west", None), ["-", "-", "-"]);
    // the stale cluster's edges are marked stale in the traffic view
    let mut a = signal_app();
    a.set_size(160, 48);
    press(&mut a, ":traffic @ap-south<enter>");
    let s = text(&render(&mut a, 160, 48).expect("render"));
    let rows: Vec<&str> = s.lines().filter(|l| l.starts_with("│ap-south")).collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|l| l.contains(" ~")),
        "{s}"
    );
}

/// Opening the filter line builds the match keys off the UI thread; keys built for a cluster
/// view the snapshot replaced meanwhile are not used (its renamed pod must not match by its
/// old name), the others are, and the answer equals a console that never warmed any.
#[test]
fn keys_built_while_the_filter_opens_follow_the_snapshot() {
    let renamed_snapshot = || ratings_pod_renamed("moved-away");
    let mut a = app();
    a.warm_keys_at = 0;
    press(&mut a, ":po<enter>/");
    // (waits for the helper thread: what is asserted is what it built, not how fast)
    let mut spins = 0;
    while a.warming_keys() {
        std::thread::sleep(std::time::Duration::from_millis(1));
        spins += 1;
        assert!(spins < 60_000, "the key builder never finished");
    }
    a.on_snapshot(renamed_snapshot());
    press(&mut a, "ratings<enter>");
    let warm = names_of(&a);
    let mut cold = app();
    cold.warm_keys_at = usize::MAX;
    press(&mut cold, ":po<enter>");
    cold.on_snapshot(renamed_snapshot());
    press(&mut cold, "/ratings<enter>");
    assert!(!warm.is_empty(), "{warm:?}");
    assert!(!warm.iter().any(|n| n == "moved-away"), "{warm:?}");
    assert_eq!(warm, names_of(&cold));
    // the old name is gone from the first cluster: one row fewer than before the rename
    let mut before = app();
    press(&mut before, ":po<enter>/ratings<enter>");
    assert_eq!(warm.len(), names_of(&before).len() - 1, "{warm:?}");
}

/// A flash lasts seconds and is cut at 80 columns; `:messages` keeps every one, whole.
#[test]
fn messages_keep_every_flash_whole() {
    let mut a = app();
    let long = format!("{} the end", "x".repeat(150));
    a.flash(long.clone(), true);
    a.flash("second", false);
    press(&mut a, ":messages<enter>");
    let t = text(&render(&mut a, 80, 24).expect("render"));
    assert!(t.contains("12:00:00 error"), "{t}");
    assert!(t.contains("info  second"), "{t}");
    let words: Vec<&str> = t
        .lines()
        .flat_map(|l| l.trim_matches(['│', ' ']).split_whitespace())
        .collect();
    let joined = words.join(" ");
    assert!(
        joined.contains("the end"),
        "the long one whole (wrapped): {t}"
    );
    assert_eq!(t.matches('x').count(), 150, "nothing cut: {t}");
}
