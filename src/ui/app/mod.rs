//! The console's state and what keys do to it. Pure: no terminal, no network, no clock of its
//! own (`now` is set by the event loop). Keys turn into state changes plus `Intent`s (fetch a
//! YAML, follow a log) that the event loop carries out off this thread.
//!
//! The parts: `table` (a page's scan: scope, filter, label selector, sort keys), `command`
//! (the command line's completion), `describe` (the describe text), `policies` (the policies
//! view, the editor and its dialogs); this file holds the state, the table and text views' keys
//! and the jobs' answers.

use super::editor::{Confirm, Editor};
use super::keymap::{Action, Ctx, Key, Keymap};
use super::theme::Theme;
use super::view::{Item, ViewKind, parse_view};
use crate::author::{Answer, Board, Job};
use crate::model::Snapshot;
use crate::model::health::Level;
use crate::selector::LabelSelector;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nucleo_matcher::{Matcher, Utf32Str};
use std::path::PathBuf;
use std::sync::Arc;

mod command;
mod describe;
mod policies;
mod table;

use command::complete_view;
pub use describe::describe;
use describe::row_title;
pub use table::parse_filter;
use table::{CellKey, Scan, TextFilter, new_matcher};

/// A row: (cluster index in the snapshot, item index in that cluster's list).
pub type RowRef = (u32, u32);

/// The least a log view keeps, and the most bytes it holds (older lines drop first).
pub const LOG_CAP_BYTES: usize = 2 * 1024 * 1024;
/// The most `c` copies at once (terminals cap OSC 52; xterm takes about 100 KB of base64).
pub const COPY_CAP_BYTES: usize = 64 * 1024;
/// How long a flash message stays.
pub const FLASH_SECS: i64 = 4;

/// Narrows a view to what a drill-down picked (a service's workloads, a workload's pods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Only {
    pub cluster: String,
    pub namespace: String,
    pub names: Vec<String>,
    /// Shown in the title: `of svc reviews`.
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub only: Option<Only>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Cluster order, then the model's (namespace, name) order.
    Natural,
    Name,
    Age,
    Status,
    Column(usize),
}

/// One entry of the view history.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub kind: ViewKind,
    pub scope: Scope,
    pub filter: String,
    pub sort: SortKey,
    pub reverse: bool,
    pub faults_only: bool,
    /// The selected column (for column sort).
    pub column: usize,
    /// The selected row, by (cluster, namespace, name), so it survives updates.
    pub selected: Option<(String, String, String)>,
    pub cursor: usize,
    pub offset: usize,
}

impl Page {
    pub fn new(kind: ViewKind) -> Page {
        Page {
            kind,
            scope: Scope::default(),
            filter: String::new(),
            sort: SortKey::Natural,
            reverse: false,
            faults_only: false,
            column: 0,
            selected: None,
            cursor: 0,
            offset: 0,
        }
    }
}

pub use super::text::{TextKind, TextState, TextView};

#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    Command(String),
    Filter(String),
    Help(usize),
    Text(TextView),
    /// The policy editor with its preview.
    Editor(Box<Editor>),
    /// A confirmation dialog over the view.
    Confirm(Box<Confirm>),
    /// The template picker of `new policy` (the selected template).
    Pick(usize),
}

/// What the event loop must do for the app.
#[derive(Debug)]
pub enum Intent {
    /// A job for the authoring worker (board, preview, save, delete plan).
    Author(Job),
    /// Check Kubernetes RBAC, dry-run, then apply a plan; then remove `remove` (a deleted
    /// policy's file). Progress comes back as lines of `job`.
    Apply {
        job: u64,
        plan: Arc<crate::plan::Plan>,
        remove: Option<PathBuf>,
    },
    /// GET one object and show it as YAML.
    FetchYaml {
        job: u64,
        cluster: String,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    },
    /// Follow a pod's logs (all containers' default: the first container).
    FollowLogs {
        job: u64,
        cluster: String,
        namespace: String,
        pod: String,
    },
    /// Stop a running job (a log stream).
    Cancel(u64),
    /// Suspend the console and hand `text` to the user's editor ($VISUAL, $EDITOR, else vi)
    /// in a private file named like `name`; the result comes back through
    /// [`App::on_external_edit`].
    ExternalEdit {
        text: String,
        name: String,
    },
    /// Put text on the terminal's clipboard (OSC 52); `what` says what it is, for the flash.
    Copy {
        text: String,
        what: String,
    },
    Quit,
}

/// What a job sends back.
#[derive(Debug, Clone)]
pub enum JobEvent {
    Text(u64, String),
    Lines(u64, Vec<String>),
    Ended(u64, String),
    Failed(u64, String),
    /// The authoring worker's answer.
    Author(Answer),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub at: DateTime<Utc>,
}

/// Match keys kept for one cluster view in one view kind (with the view they were built from:
/// a changed cluster builds its keys again).
type KeptKeys = (
    Arc<crate::model::ClusterView>,
    ViewKind,
    Arc<table::MatchKeys>,
);

pub struct App {
    pub snap: Arc<Snapshot>,
    pub pages: Vec<Page>,
    pub pos: usize,
    pub rows: Vec<RowRef>,
    /// Rows of the view before filters (for `12/340` in the title).
    pub total: usize,
    pub mode: Mode,
    pub flash: Option<Flash>,
    /// Every flash of this session, oldest first (at most `MESSAGES_KEPT`): `:messages`.
    pub messages: std::collections::VecDeque<Flash>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub readonly: bool,
    /// The terminal draws no Unicode: frames are made ASCII after drawing.
    pub ascii: bool,
    /// `c` copies through OSC 52 (over SSH, in tmux, or asked for).
    pub clipboard: bool,
    /// No header (`--headless`, k9s's): two more rows for the table in a tiny pane.
    pub headless: bool,
    /// The namespace new views open in (`-n`, `:ns`); None: all.
    pub namespace: Option<String>,
    /// Read-only contexts (settings), shown on their chips.
    pub readonly_clusters: Vec<String>,
    pub now: DateTime<Utc>,
    /// Table rows that fit on screen (set by the event loop from the terminal size).
    pub viewport: usize,
    pub width: u16,
    pub height: u16,
    pub quit: bool,
    next_job: u64,
    /// A bad filter (label selector) — shown, rows left unfiltered.
    pub filter_error: Option<String>,
    matcher: Matcher,
    /// Match keys of cluster views the snapshot still has: those of the last filtered refresh
    /// (its view kind), kept through unfiltered refreshes, and those built while the filter
    /// line opened (a changed cluster builds its keys again).
    match_keys: Vec<KeptKeys>,
    /// Match keys being built on a helper thread since the filter line opened (the first
    /// keystroke over a big fleet then only matches); taken when done, never waited for.
    warming: Option<std::thread::JoinHandle<Vec<KeptKeys>>>,
    /// Fleets with at least this many rows in the view get their match keys built when the
    /// filter line opens (smaller ones build them within a keystroke's millisecond).
    pub warm_keys_at: usize,
    /// The policies view's rows and the texts the editor opens.
    pub board: Arc<Board>,
    /// Where new policy files go; None: this console does not author policies.
    pub policy_dir: Option<PathBuf>,
    /// The event loop should send the worker a board job (set by the app, cleared by the loop).
    pub want_board: bool,
    /// The editor parked under the help screen.
    parked: Option<Box<Editor>>,
    /// The delete-plan job whose answer opens the confirmation, with the row's file.
    pending_delete: Option<(u64, String, Option<PathBuf>)>,
    /// The newest golden signals, and the tolerances that judge them.
    pub signals: Arc<crate::signals_core::Signals>,
    pub tolerances: Arc<crate::signals_core::health::Tolerances>,
    /// The traffic view's rows (every edge, judged), rebuilt when signals arrive.
    pub edges: Arc<Vec<crate::ui::view::EdgeRow>>,
    /// A sparkline the describe view asked for: the event loop sends it to the refresh task.
    pub want_history: Option<(crate::signals_core::View, crate::signals_core::Subject)>,
    /// The subject the open describe view shows signals of (redrawn when its history comes).
    describing: Option<(crate::signals_core::View, crate::signals_core::Subject)>,
}

/// How many flashes `:messages` keeps.
pub const MESSAGES_KEPT: usize = 200;

impl App {
    pub fn new(snap: Arc<Snapshot>, keymap: Keymap, theme: Theme, readonly: bool) -> App {
        let mut app = App {
            snap,
            pages: vec![Page::new(ViewKind::Clusters)],
            pos: 0,
            rows: vec![],
            total: 0,
            mode: Mode::Normal,
            flash: None,
            messages: std::collections::VecDeque::new(),
            keymap,
            theme,
            readonly,
            ascii: false,
            clipboard: false,
            namespace: None,
            headless: false,
            readonly_clusters: vec![],
            now: Utc::now(),
            viewport: 18,
            width: 80,
            height: 24,
            quit: false,
            next_job: 1,
            filter_error: None,
            matcher: new_matcher(),
            match_keys: Vec::new(),
            warming: None,
            warm_keys_at: 20_000,
            board: Arc::new(Board::default()),
            policy_dir: None,
            want_board: false,
            parked: None,
            pending_delete: None,
            signals: Arc::new(crate::signals_core::Signals::default()),
            tolerances: Arc::new(crate::signals_core::health::Tolerances::default()),
            edges: Arc::new(Vec::new()),
            want_history: None,
            describing: None,
        };
        app.refresh();
        app
    }

    /// The signals and tolerances for the rows' cells.
    pub fn sig(&self) -> crate::ui::view::SignalCtx<'_> {
        crate::ui::view::SignalCtx {
            signals: &self.signals,
            tolerances: &self.tolerances,
        }
    }

    /// New golden signals: rebuild the traffic view's rows and refresh the view (faults-only
    /// and the health sort read the traffic health).
    pub fn on_signals(&mut self, s: Arc<crate::signals_core::Signals>) {
        let mut edges: Vec<crate::ui::view::EdgeRow> = s
            .edges
            .iter()
            .map(|(e, t)| crate::ui::view::EdgeRow {
                edge: e.clone(),
                traffic: t.clone(),
                health: self.tolerances.evaluate(
                    "edge",
                    &e.dest_namespace,
                    &e.dest_service,
                    None,
                    t,
                    &s.window,
                ),
                stale: s.state(&e.cluster).is_some_and(|st| st.stale.is_some()),
            })
            .collect();
        edges.sort_by(|a, b| a.edge.cmp(&b.edge));
        self.edges = Arc::new(edges);
        let arrived = self
            .describing
            .as_ref()
            .is_some_and(|d| s.history.contains_key(d) && !self.signals.history.contains_key(d));
        self.signals = s;
        // the open description gets its sparklines as soon as they come
        if arrived && matches!(&self.mode, Mode::Text(tv) if tv.kind == TextKind::Describe) {
            self.describe();
        }
        if matches!(
            self.page().kind,
            ViewKind::Services | ViewKind::Workloads | ViewKind::Traffic
        ) {
            self.refresh();
        }
    }

    /// The namespaces on screen, per cluster (the sidecar fallback scrapes those first).
    pub fn focus(&self) -> std::collections::BTreeSet<(String, String)> {
        let p = self.page();
        let end = (p.offset + self.viewport).min(self.rows.len());
        let mut out = std::collections::BTreeSet::new();
        if !matches!(
            p.kind,
            ViewKind::Services | ViewKind::Workloads | ViewKind::Pods
        ) {
            return out;
        }
        for &(ci, ii) in &self.rows[p.offset.min(end)..end] {
            if let Some(c) = self.snap.clusters.get(ci as usize)
                && let Some(it) = p.kind.item(c, ii as usize)
            {
                out.insert((c.name.clone(), it.namespace().to_string()));
            }
        }
        out
    }

    pub fn page(&self) -> &Page {
        &self.pages[self.pos]
    }
    fn page_mut(&mut self) -> &mut Page {
        &mut self.pages[self.pos]
    }

    /// The row under the cursor.
    pub fn selected_item(&self) -> Option<(&crate::model::ClusterView, Item<'_>)> {
        let (ci, ii) = *self.rows.get(self.page().cursor)?;
        let c = self.snap.clusters.get(ci as usize)?;
        Some((c, self.page().kind.item(c, ii as usize)?))
    }

    /// The header's rows: 2, or none with `--headless`.
    pub fn header_rows(&self) -> u16 {
        if self.headless { 0 } else { 2 }
    }

    pub fn set_size(&mut self, width: u16, height: u16) {
        self.width = width;
        self.height = height;
        // header, command bar 1, borders 2, column headings 1
        self.viewport = (height as usize)
            .saturating_sub(4 + self.header_rows() as usize)
            .max(1);
        self.clamp();
    }

    pub fn on_snapshot(&mut self, snap: Arc<Snapshot>) {
        self.snap = snap;
        self.refresh();
    }

    pub fn flash(&mut self, text: impl Into<String>, error: bool) {
        let f = Flash {
            text: text.into(),
            error,
            at: self.now,
        };
        // a flash lasts seconds and a long one is cut at 80 columns: every one is kept
        if self.messages.len() >= MESSAGES_KEPT {
            self.messages.pop_front();
        }
        self.messages.push_back(f.clone());
        self.flash = Some(f);
    }

    /// A path as a person reads it at 80 columns: relative to the policy directory when it is
    /// in it, else `~/…` under the home directory, else whole.
    pub fn short_path(&self, p: &std::path::Path) -> String {
        short_path(p, self.policy_dir.as_deref())
    }

    /// What the user's editor gave back: the console's editor takes the text (one undoable
    /// change; the preview validates it; nothing is saved until asked), or says why not and
    /// keeps what it had.
    pub fn on_external_edit(&mut self, result: Result<String, String>) -> Vec<Intent> {
        let Mode::Editor(ed) = &mut self.mode else {
            return vec![];
        };
        match result {
            Ok(text) if text.trim_end() == ed.text().trim_end() => {
                ed.note = Some(("no change in the external editor".into(), false));
            }
            Ok(text) => {
                ed.area.select_all();
                ed.area.cut();
                ed.area.insert_str(text.trim_end_matches('\n'));
                ed.generation = self.next_job;
                self.next_job += 1;
                ed.note = Some((
                    "edited in the external editor: checking; ctrl-s saves, ctrl-z undoes".into(),
                    false,
                ));
            }
            Err(e) => {
                ed.note = Some((format!("external editor: {e}; the text is as it was"), true));
            }
        }
        match &self.mode {
            Mode::Editor(ed) => vec![self.preview_intent(ed)],
            _ => vec![],
        }
    }

    /// `:messages`: every flash of the session, whole, with its time.
    fn show_messages(&mut self) {
        let lines: Vec<String> = if self.messages.is_empty() {
            vec!["no messages yet".into()]
        } else {
            self.messages
                .iter()
                .map(|m| {
                    format!(
                        "{} {} {}",
                        m.at.format("%H:%M:%S"),
                        if m.error { "error" } else { "info " },
                        m.text
                    )
                })
                .collect()
        };
        let job = self.alloc_job();
        let mut tv = TextView::new(TextKind::Describe, "messages".into(), job);
        tv.follow = true;
        // whole: a long path or error wraps instead of running off the screen
        tv.wrap = true;
        tv.push_lines(lines, usize::MAX);
        tv.state = TextState::Ready;
        self.mode = Mode::Text(tv);
    }

    /// The flash to show now, if it has not expired.
    pub fn current_flash(&self) -> Option<&Flash> {
        self.flash
            .as_ref()
            .filter(|f| (self.now - f.at).num_seconds() < FLASH_SECS)
    }

    /// Set the current page's filter and recompute (one keystroke in filter mode).
    pub fn set_filter(&mut self, f: &str) {
        self.take_warm_keys();
        let old = std::mem::replace(&mut self.page_mut().filter, f.to_string());
        // Typing one more character of a fuzzy filter can only narrow the rows: test just the
        // rows that passed before (their order, and so the sort, is kept). Only rows that
        // index a cluster's objects: the policies and analysis views' rows index the board,
        // and refresh (a few hundred rows) filters those.
        let (old_text, old_inv, old_lbl) = parse_filter(&old);
        let (new_text, new_inv, new_lbl) = parse_filter(f);
        let kind = self.page().kind;
        if !matches!(kind, ViewKind::Policies | ViewKind::Analysis)
            && !old_text.is_empty()
            && !old_inv
            && !new_inv
            && old_lbl.is_none()
            && new_lbl.is_none()
            && new_text.starts_with(old_text)
            && self.filter_error.is_none()
            && self.rows.len() <= 20_000
        {
            let filter = TextFilter::new(new_text, false);
            let mut buf = String::new();
            let snap = self.snap.clone();
            let rows = std::mem::take(&mut self.rows);
            // each cluster's kept keys, looked up once, not once per row
            let keys: Vec<Option<Arc<table::MatchKeys>>> = snap
                .clusters
                .iter()
                .map(|c| self.kept_keys(kind, c))
                .collect();
            let matcher = &mut self.matcher;
            let kept: Vec<RowRef> = rows
                .into_iter()
                .filter(|&(ci, ii)| {
                    let c = &snap.clusters[ci as usize];
                    let key = keys[ci as usize]
                        .as_deref()
                        .and_then(|k| k.get(ii as usize));
                    match key {
                        Some(text) => filter.hits(matcher, text),
                        None => kind.item(c, ii as usize).is_some_and(|it| {
                            Self::filter_hit(matcher, &filter, &c.name, &it, &mut buf)
                        }),
                    }
                })
                .collect();
            self.rows = kept;
            self.clamp();
            return;
        }
        self.refresh();
    }

    /// Recompute the rows of the current page: scope, filter, faults-only, sort; then put the
    /// cursor back on the selected row.
    pub fn refresh(&mut self) {
        let page = self.pages[self.pos].clone();
        let kind = page.kind;
        if kind == ViewKind::Policies {
            self.refresh_policies(&page);
            return;
        }
        if kind == ViewKind::Analysis {
            self.refresh_findings(&page);
            return;
        }
        if kind == ViewKind::Traffic {
            self.refresh_edges(&page);
            return;
        }
        let (filter, invert, labels) = parse_filter(&page.filter);
        self.filter_error = None;
        let selector = match labels.map(LabelSelector::parse) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                self.filter_error = Some(format!("label filter: {e}"));
                None
            }
            None => None,
        };
        let signals = self.signals.clone();
        let tolerances = self.tolerances.clone();
        let board = self.board.clone();
        let scan = Scan {
            page: &page,
            notes: &board.finding_notes,
            selector,
            filter: TextFilter::new(filter, invert),
            sig: crate::ui::view::SignalCtx {
                signals: &signals,
                tolerances: &tolerances,
            },
        };
        let snap = self.snap.clone();
        let work: Vec<(usize, &crate::model::ClusterView)> = snap
            .clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                page.scope.cluster.as_ref().is_none_or(|s| *s == c.name)
                    && page.scope.only.as_ref().is_none_or(|o| o.cluster == c.name)
            })
            .map(|(i, c)| (i, &**c))
            .collect();
        let estimate: usize = work.iter().map(|(_, c)| kind.len(c)).sum();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(work.len());
        // Text filters over big fleets use every core: each thread scans whole clusters with
        // its own matcher, and the parts are joined in cluster order.
        let filtering = !scan.filter.is_empty();
        // the kept match keys of each cluster, when its view is the one they were built from
        let kept: Vec<Option<Arc<table::MatchKeys>>> = work
            .iter()
            .map(|(ci, _)| self.kept_keys(kind, &snap.clusters[*ci]))
            .collect();
        let scan_one = |ci: usize,
                        c: &crate::model::ClusterView,
                        keys: &Option<Arc<table::MatchKeys>>,
                        m: &mut Matcher| {
            let keys = if filtering {
                Some(
                    keys.clone()
                        .unwrap_or_else(|| Arc::new(table::MatchKeys::build(kind, c))),
                )
            } else {
                None
            };
            let (rows, total) = scan.cluster(ci, c, m, keys.as_deref());
            (rows, total, keys)
        };
        let parts: Vec<(Vec<RowRef>, usize, Option<Arc<table::MatchKeys>>)> =
            if filtering && estimate > 20_000 && threads > 1 {
                let per = work.len().div_ceil(threads);
                let jobs: Vec<_> = work.iter().zip(&kept).collect();
                std::thread::scope(|s| {
                    let handles: Vec<_> = jobs
                        .chunks(per)
                        .map(|chunk| {
                            let scan_one = &scan_one;
                            s.spawn(move || {
                                let mut m = new_matcher();
                                chunk
                                    .iter()
                                    .map(|((ci, c), k)| scan_one(*ci, c, k, &mut m))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().unwrap_or_default())
                        .collect()
                })
            } else {
                let mut m = std::mem::replace(&mut self.matcher, new_matcher());
                let out = work
                    .iter()
                    .zip(&kept)
                    .map(|((ci, c), k)| scan_one(*ci, c, k, &mut m))
                    .collect();
                self.matcher = m;
                out
            };
        if !filtering {
            // kept for the next filter only while their view is the snapshot's (keys of a
            // replaced view would keep it alive, and would be built again anyway)
            let current = &snap.clusters;
            self.match_keys
                .retain(|(v, _, _)| current.iter().any(|c| Arc::ptr_eq(c, v)));
        } else {
            self.match_keys = work
                .iter()
                .zip(&parts)
                .filter_map(|((ci, _), p)| {
                    p.2.clone().map(|k| (snap.clusters[*ci].clone(), kind, k))
                })
                .collect();
        }
        let total: usize = parts.iter().map(|p| p.1).sum();
        let mut rows: Vec<RowRef> = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
        let mut keys_of: std::collections::HashMap<u32, Arc<table::MatchKeys>> =
            std::collections::HashMap::new();
        for ((ci, _), (r, _, k)) in work.iter().zip(parts) {
            rows.extend(r);
            if let Some(k) = k {
                keys_of.insert(*ci as u32, k);
            }
        }
        self.sort_rows(&mut rows, &page);
        // a filter's exact hits (`/ware` in `warehouse`) come before its fuzzy ones, each in
        // the view's order
        if filtering && page.sort == SortKey::Natural {
            rows.sort_by_cached_key(|&(ci, ii)| {
                !keys_of
                    .get(&ci)
                    .and_then(|k| k.get(ii as usize))
                    .is_some_and(|t| scan.filter.exact(t))
            });
        }
        self.rows = rows;
        self.total = total;
        // find the selected row again
        if let Some((cl, ns, name)) = &page.selected
            && let Some(p) = self.rows.iter().position(|&(ci, ii)| {
                let c = &self.snap.clusters[ci as usize];
                c.name == *cl
                    && kind
                        .item(c, ii as usize)
                        .is_some_and(|it| it.name() == name && it.namespace() == ns)
            })
        {
            self.page_mut().cursor = p;
        }
        self.clamp();
    }

    /// Start building, off the UI thread, the match keys the current view lacks (a big fleet's
    /// first keystroke would otherwise build 100k rows' keys: ~15 ms).
    fn warm_keys(&mut self) {
        let kind = self.page().kind;
        if matches!(
            kind,
            ViewKind::Policies | ViewKind::Analysis | ViewKind::Traffic
        ) || self.warming.is_some()
        {
            return;
        }
        let missing: Vec<Arc<crate::model::ClusterView>> = self
            .snap
            .clusters
            .iter()
            .filter(|c| self.kept_keys(kind, c).is_none())
            .cloned()
            .collect();
        let rows: usize = missing.iter().map(|c| kind.len(c)).sum();
        if rows == 0 || rows < self.warm_keys_at {
            return;
        }
        self.warming = std::thread::Builder::new()
            .name("match-keys".into())
            .spawn(move || {
                missing
                    .into_iter()
                    .map(|c| {
                        let k = Arc::new(table::MatchKeys::build(kind, &c));
                        (c, kind, k)
                    })
                    .collect()
            })
            .ok();
    }

    /// Whether match keys are still being built off the UI thread.
    pub fn warming_keys(&self) -> bool {
        self.warming.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Keep the keys built off the UI thread, once done, of the views the snapshot still has
    /// (a cluster that changed meanwhile builds its keys again).
    fn take_warm_keys(&mut self) {
        if self.warming_keys() {
            return;
        }
        let Some(Ok(built)) = self.warming.take().map(|h| h.join()) else {
            return;
        };
        for (c, kind, k) in built {
            if self.snap.clusters.iter().any(|x| Arc::ptr_eq(x, &c))
                && self.kept_keys(kind, &c).is_none()
            {
                self.match_keys.push((c, kind, k));
            }
        }
    }

    /// The match keys kept for this cluster view in this view kind (built from this very view).
    fn kept_keys(
        &self,
        kind: ViewKind,
        c: &Arc<crate::model::ClusterView>,
    ) -> Option<Arc<table::MatchKeys>> {
        self.match_keys
            .iter()
            .find(|(v, k, _)| *k == kind && Arc::ptr_eq(v, c))
            .map(|(_, _, keys)| keys.clone())
    }

    /// Whether a row passes the text filter: a fuzzy match on `cluster/namespace/name`; with
    /// `!`, rows that do not contain the text.
    fn filter_hit(
        matcher: &mut Matcher,
        filter: &TextFilter,
        cluster: &str,
        item: &Item<'_>,
        buf: &mut String,
    ) -> bool {
        buf.clear();
        buf.push_str(cluster);
        buf.push('/');
        buf.push_str(item.namespace());
        buf.push('/');
        buf.push_str(item.name());
        filter.hits(matcher, buf)
    }

    /// The policies view's rows: board rows by index, filtered (fuzzy on
    /// kind/namespace/name/origin), faults-only keeps rows that are not accepted.
    fn refresh_policies(&mut self, page: &Page) {
        let (filter, invert, _) = parse_filter(&page.filter);
        let filter = TextFilter::new(filter, invert);
        let board = self.board.clone();
        let mut rows = Vec::new();
        for (i, r) in board.rows.iter().enumerate() {
            if page.faults_only && r.state == crate::translate::State::Accepted {
                continue;
            }
            if !filter.is_empty()
                && !filter.hits(
                    &mut self.matcher,
                    &format!("{}/{}/{}/{}", r.kind, r.namespace, r.name, r.origin),
                )
            {
                continue;
            }
            rows.push((0u32, i as u32));
        }
        if let Some((_, ns, name)) = &page.selected
            && let Some(p) = rows.iter().position(|&(_, i)| {
                board
                    .rows
                    .get(i as usize)
                    .is_some_and(|r| &r.namespace == ns && &r.name == name)
            })
        {
            self.page_mut().cursor = p;
        }
        self.total = board.rows.len();
        self.rows = rows;
        self.clamp();
    }

    /// The analysis view's rows: the findings in scope (cluster, namespace), filtered.
    fn refresh_findings(&mut self, page: &Page) {
        let (filter, invert, _) = parse_filter(&page.filter);
        let filter = TextFilter::new(filter, invert);
        let board = self.board.clone();
        let mut rows = Vec::new();
        for (i, f) in board.findings.iter().enumerate() {
            if page.scope.cluster.as_ref().is_some_and(|c| *c != f.cluster) {
                continue;
            }
            if let Some(ns) = &page.scope.namespace
                && !f.object.contains(&format!(" {ns}/"))
            {
                continue;
            }
            if page.faults_only && f.level == crate::analyze::Level::Info {
                continue;
            }
            if !filter.is_empty()
                && !filter.hits(
                    &mut self.matcher,
                    &format!("{} {} {} {}", f.code, f.cluster, f.object, f.message),
                )
            {
                continue;
            }
            rows.push((0u32, i as u32));
        }
        // errors first by default; `S` (level), `N` (object) and a column sort reorder too
        let f = |r: &RowRef| &board.findings[r.1 as usize];
        match page.sort {
            SortKey::Natural | SortKey::Status | SortKey::Age => {
                rows.sort_by_key(|r| std::cmp::Reverse(f(r).level))
            }
            SortKey::Name => rows
                .sort_by(|a, b| (&f(a).object, &f(a).cluster).cmp(&(&f(b).object, &f(b).cluster))),
            SortKey::Column(col) => rows.sort_by_cached_key(|r| {
                let mut cells = crate::ui::view::finding_cells(f(r));
                if col < cells.len() {
                    std::mem::take(&mut cells[col])
                } else {
                    String::new()
                }
            }),
        }
        if page.reverse {
            rows.reverse();
        }
        self.total = board.findings.len();
        self.rows = rows;
        self.clamp();
    }

    /// The traffic view's rows: scope (cluster; namespace of either end), faults only, text.
    fn refresh_edges(&mut self, page: &Page) {
        let (filter, invert, _) = parse_filter(&page.filter);
        let filter = TextFilter::new(filter, invert);
        let edges = self.edges.clone();
        let mut rows = Vec::new();
        for (i, r) in edges.iter().enumerate() {
            let e = &r.edge;
            if page.scope.cluster.as_ref().is_some_and(|c| *c != e.cluster) {
                continue;
            }
            if let Some(ns) = &page.scope.namespace
                && e.source_namespace != *ns
                && e.dest_namespace != *ns
            {
                continue;
            }
            if page.faults_only && r.level() == Level::Ok && !r.stale {
                continue;
            }
            if !filter.is_empty()
                && !filter.hits(
                    &mut self.matcher,
                    &format!(
                        "{} {}/{} {}/{}",
                        e.cluster,
                        e.source_namespace,
                        e.source_workload,
                        e.dest_namespace,
                        e.dest_service
                    ),
                )
            {
                continue;
            }
            rows.push((0u32, i as u32));
        }
        match page.sort {
            SortKey::Status => rows.sort_by_key(|r| std::cmp::Reverse(edges[r.1 as usize].level())),
            SortKey::Column(3) => rows.sort_by(|a, b| {
                edges[b.1 as usize]
                    .traffic
                    .rps
                    .total_cmp(&edges[a.1 as usize].traffic.rps)
            }),
            SortKey::Column(4) => rows.sort_by(|a, b| {
                let e = |r: &RowRef| edges[r.1 as usize].traffic.err_pct().unwrap_or(0.0);
                e(b).total_cmp(&e(a))
            }),
            SortKey::Column(5) => rows.sort_by(|a, b| {
                let e = |r: &RowRef| edges[r.1 as usize].traffic.p99_ms.unwrap_or(0.0);
                e(b).total_cmp(&e(a))
            }),
            _ => {}
        }
        if page.reverse {
            rows.reverse();
        }
        self.total = edges.len();
        self.rows = rows;
        self.clamp();
    }

    /// The edge under the cursor (traffic view).
    pub fn selected_edge(&self) -> Option<&crate::ui::view::EdgeRow> {
        if self.page().kind != ViewKind::Traffic {
            return None;
        }
        let (_, i) = *self.rows.get(self.page().cursor)?;
        self.edges.get(i as usize)
    }

    /// `t` on a service or workload: the traffic view of its edges (who calls it, whom it
    /// calls), in its cluster.
    fn traffic_of_selected(&mut self) -> Vec<Intent> {
        let Some((c, item)) = self.selected_item() else {
            return vec![];
        };
        if !matches!(item, Item::Service(_) | Item::Workload(_)) {
            self.flash("traffic: select a service or a workload", true);
            return vec![];
        }
        let cmd = format!("traffic @{} /{}", c.name, item.name());
        self.run_command(&cmd)
    }

    /// The finding under the cursor (analysis view).
    pub fn selected_finding(&self) -> Option<&crate::analyze::Finding> {
        if self.page().kind != ViewKind::Analysis {
            return None;
        }
        let (_, i) = *self.rows.get(self.page().cursor)?;
        self.board.findings.get(i as usize)
    }

    /// Enter on a finding: the object it names, in its view and cluster.
    fn open_finding(&mut self) -> Vec<Intent> {
        let Some(f) = self.selected_finding().cloned() else {
            return vec![];
        };
        let (kind, rest) = f.object.split_once(' ').unwrap_or(("", &f.object));
        let (ns, name) = rest.split_once('/').unwrap_or(("", rest));
        let view = super::view::ISTIO_VIEWS
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, v, _)| *v)
            .unwrap_or(match kind {
                "Namespace" => "ctx",
                "Pod" => "pods",
                "Deployment" | "StatefulSet" => "workloads",
                _ => "istio",
            });
        let scope = if ns.is_empty() {
            String::new()
        } else {
            format!(" {ns}")
        };
        self.run_command(&format!("{view} @{}{scope} /{name}", f.cluster))
    }

    /// The policy row under the cursor (policies view).
    pub fn selected_policy(&self) -> Option<&crate::author::PolicyRow> {
        if self.page().kind != ViewKind::Policies {
            return None;
        }
        let (_, i) = *self.rows.get(self.page().cursor)?;
        self.board.rows.get(i as usize)
    }

    fn sort_rows(&self, rows: &mut [RowRef], page: &Page) {
        let kind = page.kind;
        let snap = &self.snap;
        let item = |r: &RowRef| {
            let c = &snap.clusters[r.0 as usize];
            (c, kind.item(c, r.1 as usize))
        };
        match page.sort {
            SortKey::Natural => {}
            SortKey::Name => rows.sort_by(|a, b| {
                let (ca, ia) = item(a);
                let (cb, ib) = item(b);
                let ka = ia.map(|i| (i.name(), i.namespace()));
                let kb = ib.map(|i| (i.name(), i.namespace()));
                ka.cmp(&kb).then_with(|| ca.name.cmp(&cb.name))
            }),
            // youngest first, as k9s does
            SortKey::Age => {
                rows.sort_by_cached_key(|r| std::cmp::Reverse(item(r).1.and_then(|i| i.created())))
            }
            // worst first
            SortKey::Status => {
                // one read of each row, not one per comparison
                let sig = self.sig();
                rows.sort_by_cached_key(|r| {
                    let (c, i) = item(r);
                    std::cmp::Reverse(
                        i.map(|i| i.level_noted(Some(&sig), self.finding_note(c, &i))),
                    )
                })
            }
            SortKey::Column(col) => {
                let mut keyed: Vec<(CellKey, RowRef)> = rows
                    .iter()
                    .map(|r| {
                        let (c, it) = item(r);
                        let cell = it
                            .map(|i| {
                                i.cells(
                                    kind,
                                    c,
                                    self.now,
                                    self.finding_note(c, &i),
                                    Some(&self.sig()),
                                )
                            })
                            .and_then(|mut cells| {
                                (col < cells.len()).then(|| std::mem::take(&mut cells[col]))
                            })
                            .unwrap_or_default();
                        (CellKey::of(cell), *r)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                for (slot, (_, r)) in rows.iter_mut().zip(keyed) {
                    *slot = r;
                }
            }
        }
        if page.reverse {
            rows.reverse();
        }
    }

    fn clamp(&mut self) {
        let n = self.rows.len();
        let vp = self.viewport.max(1);
        let p = &mut self.pages[self.pos];
        if n == 0 {
            p.cursor = 0;
            p.offset = 0;
            return;
        }
        p.cursor = p.cursor.min(n - 1);
        if p.cursor < p.offset {
            p.offset = p.cursor;
        }
        if p.cursor >= p.offset + vp {
            p.offset = p.cursor + 1 - vp;
        }
        p.offset = p.offset.min(n.saturating_sub(vp));
    }

    fn remember_selection(&mut self) {
        if self.page().kind == ViewKind::Policies {
            let sel = self
                .selected_policy()
                .map(|r| (r.origin.clone(), r.namespace.clone(), r.name.clone()));
            self.page_mut().selected = sel;
            return;
        }
        let sel = self.selected_item().map(|(c, it)| {
            (
                c.name.clone(),
                it.namespace().to_string(),
                it.name().to_string(),
            )
        });
        self.page_mut().selected = sel;
    }

    fn move_cursor(&mut self, to: usize) {
        self.page_mut().cursor = to;
        self.clamp();
        self.remember_selection();
    }

    /// Open a page (a new history entry after the current one).
    pub fn open(&mut self, page: Page) {
        if page.kind == ViewKind::Policies || page.kind == ViewKind::Analysis {
            self.want_board = true;
        }
        self.pages.truncate(self.pos + 1);
        self.pages.push(page);
        self.pos = self.pages.len() - 1;
        if self.pages.len() > 64 {
            self.pages.remove(0);
            self.pos -= 1;
        }
        self.refresh();
    }

    fn alloc_job(&mut self) -> u64 {
        let j = self.next_job;
        self.next_job += 1;
        j
    }

    /// Handle one key press.
    pub fn on_key(&mut self, ev: KeyEvent) -> Vec<Intent> {
        if let Mode::Command(_) | Mode::Filter(_) = self.mode {
            let filter = matches!(self.mode, Mode::Filter(_));
            return self.on_input_key(ev, filter);
        }
        if matches!(self.mode, Mode::Editor(_)) {
            return self.on_editor_key(ev);
        }
        let Some(key) = Key::from_event(&ev) else {
            return vec![];
        };
        if matches!(self.mode, Mode::Confirm(_)) {
            return match self.keymap.action_in(key, Ctx::Dialog) {
                Some(a) => self.on_confirm_action(a),
                None => vec![],
            };
        }
        if let Mode::Pick(i) = self.mode {
            return match self.keymap.action_in(key, Ctx::Table) {
                Some(a) => self.on_pick_action(a, i),
                None => vec![],
            };
        }
        let in_text = matches!(self.mode, Mode::Text(_) | Mode::Help(_));
        let ctx = if in_text {
            Ctx::Text
        } else if self.page().kind == ViewKind::Policies {
            Ctx::Policies
        } else {
            Ctx::Table
        };
        let Some(action) = self.keymap.action_in(key, ctx) else {
            if !in_text {
                self.flash(
                    format!(
                        "{} is not bound here; {} shows the keys",
                        key.display(),
                        self.keymap.first(Action::Help)
                    ),
                    false,
                );
            }
            return vec![];
        };
        if in_text {
            return self.on_text_action(action);
        }
        self.on_table_action(action)
    }

    fn on_input_key(&mut self, ev: KeyEvent, filter: bool) -> Vec<Intent> {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match ev.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                if filter {
                    // Esc while typing a filter drops it, as in k9s
                    self.page_mut().filter.clear();
                    self.refresh();
                }
                return vec![];
            }
            KeyCode::Enter => {
                let t = match std::mem::replace(&mut self.mode, Mode::Normal) {
                    Mode::Command(t) | Mode::Filter(t) => t,
                    _ => String::new(),
                };
                if filter {
                    self.page_mut().filter = t;
                    self.refresh();
                    if let Some(e) = self.filter_error.clone() {
                        self.flash(e, true);
                    }
                    return vec![];
                }
                return self.run_command(&t);
            }
            _ => {}
        }
        let (Mode::Command(text) | Mode::Filter(text)) = &mut self.mode else {
            return vec![];
        };
        match ev.code {
            KeyCode::Backspace if text.pop().is_none() => {
                self.mode = Mode::Normal;
                return vec![];
            }
            KeyCode::Backspace => {}
            KeyCode::Char('u') if ctrl => text.clear(),
            KeyCode::Char('c') if ctrl => {
                self.mode = Mode::Normal;
                return vec![];
            }
            KeyCode::Char('w') if ctrl => {
                let trimmed = text.trim_end().len();
                let cut = text[..trimmed].rfind(' ').map(|i| i + 1).unwrap_or(0);
                text.truncate(cut);
            }
            KeyCode::Tab if !filter => {
                if let Some(done) = complete_view(text) {
                    *text = done;
                }
            }
            KeyCode::Char(c) if !ctrl => text.push(c),
            _ => {}
        }
        if filter {
            let t = text.clone();
            self.set_filter(&t);
        }
        vec![]
    }

    /// `:svc`, `:po @eu-west`, `:wl bookinfo @us-east`, `:q`.
    pub fn run_command(&mut self, cmd: &str) -> Vec<Intent> {
        let mut words = cmd.split_whitespace();
        let Some(first) = words.next() else {
            return vec![];
        };
        if matches!(first, "q" | "q!" | "quit" | "exit") {
            self.quit = true;
            return vec![Intent::Quit];
        }
        if matches!(first, "help" | "h") {
            self.mode = Mode::Help(0);
            return vec![];
        }
        if matches!(first, "messages" | "msg" | "messages!") {
            self.show_messages();
            return vec![];
        }
        if matches!(first, "ns" | "namespace") {
            // k9s's namespace switch: this view and every view opened after it
            let ns = words.next().filter(|w| !matches!(*w, "all" | "-A" | "*"));
            if let Some(ns) = ns {
                let known: std::collections::BTreeSet<&str> = self
                    .snap
                    .clusters
                    .iter()
                    .flat_map(|c| c.namespaces.iter().map(|n| n.name.as_str()))
                    .collect();
                if !known.is_empty() && !known.contains(ns) {
                    let names: Vec<&str> = known.iter().copied().collect();
                    self.flash(
                        format!(
                            "no namespace `{ns}` in the fleet{}",
                            crate::policy::did_you_mean(ns, &names)
                        ),
                        true,
                    );
                    return vec![];
                }
            }
            self.namespace = ns.map(str::to_string);
            self.page_mut().scope.namespace = self.namespace.clone();
            self.refresh();
            return vec![];
        }
        let Some(kind) = parse_view(first) else {
            self.flash(
                format!(
                    "unknown view `{first}` (try :svc, :wl, :po, :vs, :ctx, :mesh; ? lists them)"
                ),
                true,
            );
            return vec![];
        };
        let mut page = Page::new(kind);
        if kind != ViewKind::Clusters && kind != ViewKind::Meshes {
            page.scope.namespace = self.namespace.clone();
        }
        for w in words {
            if let Some(cl) = w.strip_prefix('@') {
                if cl.is_empty() || cl == "all" {
                    continue;
                }
                if self.snap.cluster(cl).is_none() {
                    let known: Vec<&str> =
                        self.snap.clusters.iter().map(|c| c.name.as_str()).collect();
                    self.flash(
                        format!("no cluster `{cl}` (connected: {})", known.join(", ")),
                        true,
                    );
                    return vec![];
                }
                page.scope.cluster = Some(cl.to_string());
            } else if w == "-A" || w == "all" {
                page.scope.namespace = None;
            } else if let Some(f) = w.strip_prefix('/') {
                page.filter = f.to_string();
            } else if kind == ViewKind::Clusters {
                // `:ctx eu-west` picks that cluster
                page.scope.cluster = Some(w.to_string());
            } else {
                page.scope.namespace = Some(w.to_string());
            }
        }
        self.open(page);
        vec![]
    }

    fn on_text_action(&mut self, action: Action) -> Vec<Intent> {
        // full-screen texts move by what they show and stop at their end
        let vp = crate::ui::draw::text_lines_visible(self.width, self.height, self.header_rows());
        let help_max = if matches!(self.mode, Mode::Help(_)) {
            crate::ui::draw::help_lines(self).len().saturating_sub(vp)
        } else {
            0
        };
        if let Mode::Help(scroll) = &mut self.mode {
            match action {
                Action::Back | Action::Help => {
                    self.mode = match self.parked.take() {
                        Some(ed) => Mode::Editor(ed),
                        None => Mode::Normal,
                    }
                }
                Action::Quit => {
                    self.quit = true;
                    return vec![Intent::Quit];
                }
                Action::Down => *scroll = (*scroll + 1).min(help_max),
                Action::Up => *scroll = scroll.saturating_sub(1),
                Action::PageDown => *scroll = (*scroll + vp).min(help_max),
                Action::PageUp => *scroll = scroll.saturating_sub(vp),
                Action::Top => *scroll = 0,
                Action::Bottom => *scroll = help_max,
                _ => {}
            }
            return vec![];
        }
        let Mode::Text(tv) = &mut self.mode else {
            return vec![];
        };
        if tv.on_action(action, vp) {
            return vec![];
        }
        match action {
            Action::Back => {
                let job = tv.job;
                let live = tv.state == TextState::Live || tv.state == TextState::Loading;
                self.mode = Mode::Normal;
                if live {
                    return vec![Intent::Cancel(job)];
                }
            }
            Action::Quit => {
                self.quit = true;
                return vec![Intent::Cancel(tv.job), Intent::Quit];
            }
            Action::Help => self.mode = Mode::Help(0),
            Action::Copy => {
                let text: Vec<&str> = tv.lines.iter().map(String::as_str).collect();
                let (text, what) = (text.join("\n"), tv.title.clone());
                return self.copy(text, what);
            }
            _ => {}
        }
        vec![]
    }

    /// Ask for a copy, if the clipboard is on and the text fits.
    pub fn copy(&mut self, text: String, what: String) -> Vec<Intent> {
        if !self.clipboard {
            self.flash(
                "clipboard off (not over SSH or in tmux): start with --clipboard osc52 to copy",
                true,
            );
            return vec![];
        }
        if text.len() > COPY_CAP_BYTES {
            self.flash(
                format!(
                    "{what}: {} KiB is more than the {} KiB a terminal clipboard takes; not copied",
                    text.len() / 1024,
                    COPY_CAP_BYTES / 1024
                ),
                true,
            );
            return vec![];
        }
        vec![Intent::Copy { text, what }]
    }

    fn on_table_action(&mut self, action: Action) -> Vec<Intent> {
        let n = self.rows.len();
        let vp = self.viewport.max(1);
        let cur = self.page().cursor;
        match action {
            Action::Quit => {
                self.quit = true;
                return vec![Intent::Quit];
            }
            Action::Help => self.mode = Mode::Help(0),
            Action::Copy => {
                let Some((_, item)) = self.selected_item() else {
                    return vec![];
                };
                let name = item.name().to_string();
                let what = format!("name {name}");
                return self.copy(name, what);
            }
            Action::Command => self.mode = Mode::Command(String::new()),
            Action::Filter => {
                let f = self.page().filter.clone();
                self.mode = Mode::Filter(f);
                self.warm_keys();
            }
            Action::Back => {
                if !self.page().filter.is_empty() {
                    self.page_mut().filter.clear();
                    self.refresh();
                } else if self.pos > 0 {
                    self.pos -= 1;
                    self.refresh();
                }
            }
            Action::HistoryBack if self.pos > 0 => {
                self.pos -= 1;
                self.refresh();
            }
            Action::HistoryForward if self.pos + 1 < self.pages.len() => {
                self.pos += 1;
                self.refresh();
            }
            Action::Up => self.move_cursor(cur.saturating_sub(1)),
            Action::Down => self.move_cursor((cur + 1).min(n.saturating_sub(1))),
            Action::PageUp => self.move_cursor(cur.saturating_sub(vp)),
            Action::PageDown => self.move_cursor((cur + vp).min(n.saturating_sub(1))),
            Action::Top => self.move_cursor(0),
            Action::Bottom => self.move_cursor(n.saturating_sub(1)),
            Action::SortName => self.set_sort(SortKey::Name),
            Action::SortAge => self.set_sort(SortKey::Age),
            Action::SortStatus => self.set_sort(SortKey::Status),
            Action::SortColumn => {
                let c = self.page().column;
                self.set_sort(SortKey::Column(c));
            }
            Action::ColumnLeft => {
                let p = self.page_mut();
                p.column = p.column.saturating_sub(1);
            }
            Action::ColumnRight => {
                let cols = self.page().kind.columns().len();
                let p = self.page_mut();
                p.column = (p.column + 1).min(cols - 1);
            }
            Action::FaultsOnly => {
                let p = self.page_mut();
                p.faults_only = !p.faults_only;
                let on = p.faults_only;
                self.refresh();
                self.flash(
                    if on {
                        "showing only rows that are not ok"
                    } else {
                        "showing every row"
                    },
                    false,
                );
            }
            Action::Drill if self.page().kind == ViewKind::Analysis => {
                return self.open_finding();
            }
            Action::Describe if self.page().kind == ViewKind::Analysis => {
                if let Some(f) = self.selected_finding().cloned() {
                    let mut tv = TextView::new(
                        TextKind::Describe,
                        format!("finding {} {}", f.code, f.object),
                        0,
                    );
                    tv.push_lines(
                        [
                            format!("{:<12}{} {}", "Finding:", f.code, f.level.word()),
                            format!("{:<12}{}", "Cluster:", f.cluster),
                            format!("{:<12}{}", "Object:", f.object),
                            format!("{:<12}{}", "Field:", f.path),
                            format!("{:<12}{}", "Message:", f.message),
                            format!("{:<12}{}", "Fix:", f.hint),
                        ],
                        LOG_CAP_BYTES,
                    );
                    tv.state = TextState::Ready;
                    self.mode = Mode::Text(tv);
                }
                return vec![];
            }
            Action::Drill if self.page().kind == ViewKind::Policies => {
                return if self.readonly {
                    self.policy_text();
                    vec![]
                } else {
                    self.edit_policy()
                };
            }
            Action::Describe if self.page().kind == ViewKind::Policies => self.describe_policy(),
            Action::Yaml if self.page().kind == ViewKind::Policies => self.policy_text(),
            Action::Drill => return self.drill(),
            Action::Describe => self.describe(),
            Action::Yaml => return self.yaml(),
            Action::Logs => return self.logs(),
            Action::Traffic => return self.traffic_of_selected(),
            Action::NewPolicy
            | Action::EditPolicy
            | Action::EditExternal
            | Action::DeletePolicy
                if self.readonly =>
            {
                self.flash(
                    "read-only: policies cannot be created, edited or deleted in this session",
                    true,
                );
            }
            Action::NewPolicy => {
                if self.policy_dir.is_none() {
                    self.flash(
                        "this console has no policy directory (--policies DIR)",
                        true,
                    );
                } else {
                    self.mode = Mode::Pick(0);
                }
            }
            Action::EditPolicy => return self.edit_policy(),
            Action::EditExternal => {
                let mut out = self.edit_policy();
                if let Mode::Editor(ed) = &self.mode {
                    let name = ed
                        .target
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_else(|| "policy.yaml".into());
                    out.push(Intent::ExternalEdit {
                        text: ed.text(),
                        name,
                    });
                }
                return out;
            }
            Action::DeletePolicy => return self.delete_policy(),
            _ => {}
        }
        vec![]
    }

    fn set_sort(&mut self, key: SortKey) {
        let p = self.page_mut();
        if p.sort == key {
            p.reverse = !p.reverse;
        } else {
            p.sort = key;
            p.reverse = false;
        }
        self.refresh();
        self.page_mut().cursor = 0;
        self.clamp();
        self.remember_selection();
    }

    fn drill(&mut self) -> Vec<Intent> {
        let Some((c, item)) = self.selected_item() else {
            return vec![];
        };
        let cluster = c.name.clone();
        let page = match item {
            Item::Cluster(_) | Item::Mesh(_) => {
                let mut p = Page::new(ViewKind::Services);
                p.scope.cluster = Some(cluster);
                p
            }
            Item::Service(s) => {
                let mut p = Page::new(ViewKind::Workloads);
                p.scope.only = Some(Only {
                    cluster,
                    namespace: s.namespace.clone(),
                    names: s.workloads.clone(),
                    what: format!("svc {}/{}", s.namespace, s.name),
                });
                p
            }
            Item::Workload(w) => {
                let mut p = Page::new(ViewKind::Pods);
                p.scope.only = Some(Only {
                    cluster,
                    namespace: w.namespace.clone(),
                    names: w.pods.iter().map(|p| p.to_string()).collect(),
                    what: format!("{} {}/{}", w.kind.as_str(), w.namespace, w.name),
                });
                p
            }
            Item::Pod(_) => return self.logs(),
            Item::Object(_) => return self.yaml(),
        };
        self.remember_selection();
        self.open(page);
        vec![]
    }

    /// What the configuration findings say of this row's object (its REASON note).
    pub fn finding_note(
        &self,
        c: &crate::model::ClusterView,
        item: &Item<'_>,
    ) -> Option<&crate::author::FindingNote> {
        note_of(&self.board.finding_notes, c, item)
    }

    fn describe(&mut self) {
        let Some((c, item)) = self.selected_item() else {
            return;
        };
        // the health says the traffic's verdict and the configuration findings' too
        let mut health = item.health_in(Some(&self.sig()));
        if let Some(n) = self.finding_note(c, &item)
            && n.level > health.level
        {
            let h = health.to_mut();
            h.level = n.level;
            h.reasons.insert(0, n.text.clone());
        }
        let mut lines = describe(c, item, self.page().kind, &health);
        lines.extend(describe::traffic_lines(self, c, &item));
        let subject = match item {
            Item::Service(_) => Some(crate::signals_core::View::Services),
            Item::Workload(_) => Some(crate::signals_core::View::Workloads),
            _ => None,
        }
        .map(|v| {
            (
                v,
                crate::signals_core::Subject::new(&c.name, item.namespace(), item.name()),
            )
        });
        // the findings that name this object (the analysis, from the last board)
        let me = crate::analyze::object_name(item.kind(), item.namespace(), item.name());
        let mine: Vec<&crate::analyze::Finding> = self
            .board
            .findings
            .iter()
            .filter(|f| f.cluster == c.name && f.object == me)
            .collect();
        for f in &mine {
            lines.push(format!(
                "{:<18}{} {} {}: {}",
                "Finding:",
                f.code,
                f.level.word(),
                f.path,
                f.message
            ));
            lines.push(format!("{:<18}{}", "  fix:", f.hint));
        }
        let title = format!("describe {}", row_title(c, &item));
        // the last 30 minutes from Prometheus: asked for once per describe
        if let Some(subj) = &subject
            && !self.signals.history.contains_key(subj)
        {
            self.want_history = Some(subj.clone());
        }
        self.describing = subject;
        let job = self.alloc_job();
        let mut tv = TextView::new(TextKind::Describe, title, job);
        tv.follow = false;
        tv.push_lines(lines, usize::MAX);
        tv.state = TextState::Ready;
        self.mode = Mode::Text(tv);
    }

    fn yaml(&mut self) -> Vec<Intent> {
        let Some((c, item)) = self.selected_item() else {
            return vec![];
        };
        if matches!(item, Item::Cluster(_) | Item::Mesh(_)) {
            self.flash(
                format!(
                    "a {} row has no single object; {} describes it",
                    if matches!(item, Item::Cluster(_)) {
                        "cluster"
                    } else {
                        "mesh"
                    },
                    self.keymap.first(Action::Describe)
                ),
                false,
            );
            return vec![];
        }
        if item.kind() == "Secret" {
            self.flash("meshdeck never shows Secrets", true);
            return vec![];
        }
        let intent_fields = (
            c.name.clone(),
            item.api_version().to_string(),
            item.kind().to_string(),
            item.namespace().to_string(),
            item.name().to_string(),
        );
        let title = format!("yaml {}", row_title(c, &item));
        let job = self.alloc_job();
        let mut tv = TextView::new(TextKind::Yaml, title, job);
        tv.follow = false;
        self.mode = Mode::Text(tv);
        let (cluster, api_version, kind, namespace, name) = intent_fields;
        vec![Intent::FetchYaml {
            job,
            cluster,
            api_version,
            kind,
            namespace,
            name,
        }]
    }

    fn logs(&mut self) -> Vec<Intent> {
        let Some((c, item)) = self.selected_item() else {
            return vec![];
        };
        let Item::Pod(p) = item else {
            self.flash(
                "logs are for pods: drill down to a pod (enter) first",
                false,
            );
            return vec![];
        };
        let (cluster, namespace, pod) = (
            c.name.clone(),
            p.namespace().to_string(),
            p.name().to_string(),
        );
        let title = format!("logs {cluster}/{namespace}/{pod}");
        let job = self.alloc_job();
        self.mode = Mode::Text(TextView::new(TextKind::Logs, title, job));
        vec![Intent::FollowLogs {
            job,
            cluster,
            namespace,
            pod,
        }]
    }

    /// A job's answer; answers for a view that is gone are dropped.
    pub fn on_job(&mut self, ev: JobEvent) {
        let ev = match ev {
            JobEvent::Author(a) => return self.on_answer(a),
            other => other,
        };
        let vp = self.viewport.max(1);
        let Mode::Text(tv) = &mut self.mode else {
            return;
        };
        let job = match &ev {
            JobEvent::Text(j, _)
            | JobEvent::Lines(j, _)
            | JobEvent::Ended(j, _)
            | JobEvent::Failed(j, _) => *j,
            JobEvent::Author(_) => return,
        };
        if job != tv.job {
            return;
        }
        match ev {
            JobEvent::Text(_, t) => {
                tv.lines.clear();
                tv.bytes = 0;
                tv.push_lines(t.lines().map(str::to_string), usize::MAX);
                tv.state = TextState::Ready;
            }
            JobEvent::Lines(_, ls) => {
                tv.push_lines(ls, LOG_CAP_BYTES);
                tv.state = TextState::Live;
            }
            JobEvent::Ended(_, why) => tv.state = TextState::Ended(why),
            JobEvent::Failed(_, e) => tv.state = TextState::Failed(e),
            JobEvent::Author(_) => {}
        }
        if tv.kind == TextKind::Apply
            && matches!(tv.state, TextState::Ended(_) | TextState::Failed(_))
        {
            self.want_board = true;
        }
        if tv.follow {
            tv.scroll = tv.lines.len().saturating_sub(vp);
        }
    }
}

/// What the configuration findings say of one row (None for clusters, and when nothing does).
pub(crate) fn note_of<'n>(
    notes: &'n std::collections::HashMap<(String, String), crate::author::FindingNote>,
    c: &crate::model::ClusterView,
    item: &Item<'_>,
) -> Option<&'n crate::author::FindingNote> {
    if notes.is_empty() || matches!(item, Item::Cluster(_)) {
        return None;
    }
    let me = crate::analyze::object_name(item.kind(), item.namespace(), item.name());
    notes.get(&(c.name.clone(), me))
}

/// [`App::short_path`], for any policy directory.
pub fn short_path(p: &std::path::Path, policy_dir: Option<&std::path::Path>) -> String {
    if let Some(rest) = policy_dir.and_then(|d| p.strip_prefix(d).ok())
        && !rest.as_os_str().is_empty()
    {
        return rest.display().to_string();
    }
    if let Some(home) = std::env::var_os("HOME").map(std::path::PathBuf::from)
        && !home.as_os_str().is_empty()
        && let Ok(rest) = p.strip_prefix(&home)
    {
        return format!("~/{}", rest.display());
    }
    p.display().to_string()
}
