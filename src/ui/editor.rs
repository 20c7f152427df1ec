//! The policy editor and its dialogs: state, key handling helpers and drawing. The editor is a
//! ratatui-textarea with line numbers, undo/redo and regex search; every edit bumps a
//! generation and asks the authoring worker for a preview (latest wins), so typing never
//! waits. Diagnostics come back positioned in the text and are drawn as markers on their
//! lines, with the messages in the pane below.

use super::app::App;
use super::keymap::Action;
use crate::author::{Preview, RoleCheck};
use crate::plan::{Action as PlanAction, Plan};
use crate::policy::{PolicyId, Severity};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs};
use ratatui_textarea::TextArea;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewTab {
    Objects,
    Diff,
    Problems,
}

impl PreviewTab {
    pub fn next(self) -> PreviewTab {
        match self {
            PreviewTab::Objects => PreviewTab::Diff,
            PreviewTab::Diff => PreviewTab::Problems,
            PreviewTab::Problems => PreviewTab::Objects,
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// The editor's state.
#[derive(Debug, Clone)]
pub struct Editor {
    pub area: TextArea<'static>,
    /// The file the policy is saved to.
    pub target: PathBuf,
    pub title: String,
    /// The policies being edited (a rename drops them).
    pub replaces: Vec<PolicyId>,
    /// The cluster storing the policy as a custom resource, when it is one.
    pub store: Option<String>,
    /// The text as last saved (or opened): the editor is dirty when it differs.
    pub saved: String,
    pub generation: u64,
    pub preview: Option<Arc<Preview>>,
    pub tab: PreviewTab,
    pub scroll: usize,
    /// `Some` while a search pattern is being typed.
    pub search: Option<String>,
    /// The close prompt is open.
    pub closing: bool,
    pub note: Option<(String, bool)>,
}

/// The lines the editor holds for a text: a lone CR is a line break to YAML (and to its
/// positions), so it is shown as one; CRLF is one break.
fn editor_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

impl Editor {
    pub fn new(
        text: &str,
        target: PathBuf,
        title: String,
        saved: String,
        theme: &super::theme::Theme,
    ) -> Editor {
        let lines = editor_lines(text);
        // compared as the editor holds text: CRLF or no final newline is not an edit
        let saved = {
            let mut t = editor_lines(&saved).join("\n");
            t.push('\n');
            t
        };
        let mut area = TextArea::new(lines);
        area.set_style(theme.text);
        area.set_cursor_style(theme.selection);
        area.set_line_number_style(theme.muted);
        area.set_cursor_line_style(Style::default());
        area.set_search_style(theme.warn.add_modifier(Modifier::REVERSED));
        area.set_max_histories(500);
        area.set_tab_length(2);
        Editor {
            area,
            target,
            title,
            replaces: vec![],
            store: None,
            saved,
            generation: 1,
            preview: None,
            tab: PreviewTab::Objects,
            scroll: 0,
            search: None,
            closing: false,
            note: None,
        }
    }

    pub fn text(&self) -> String {
        let mut t = self.area.lines().join("\n");
        t.push('\n');
        t
    }

    pub fn dirty(&self) -> bool {
        self.text() != self.saved
    }

    /// Whether the preview shown answers the current text.
    pub fn fresh(&self) -> bool {
        self.preview
            .as_ref()
            .is_some_and(|p| p.generation == self.generation)
    }

    /// Errors positioned in the text: (0-based line, 0-based column, message).
    pub fn markers(&self) -> Vec<(usize, usize, String, bool)> {
        let Some(p) = &self.preview else {
            return vec![];
        };
        p.diagnostics
            .iter()
            .filter_map(|d| {
                let pos = d.pos?;
                let msg = if d.path.is_empty() {
                    d.message.clone()
                } else {
                    format!("{}: {}", d.path, d.message)
                };
                Some((
                    pos.line.saturating_sub(1),
                    pos.col.saturating_sub(1),
                    msg,
                    d.severity == Severity::Error,
                ))
            })
            .collect()
    }

    /// Move the cursor to the next error after it (wrapping).
    pub fn next_error(&mut self) -> bool {
        let mut ms = self.markers();
        if ms.is_empty() {
            return false;
        }
        ms.sort_by_key(|m| (m.0, m.1));
        let c = self.area.cursor();
        let (row, col) = (c.0, c.1);
        let next = ms
            .iter()
            .find(|m| (m.0, m.1) > (row, col))
            .or(ms.first())
            .map(|m| (m.0, m.1));
        if let Some((r, c)) = next {
            self.area
                .move_cursor(ratatui_textarea::CursorMove::Jump(r as u16, c as u16));
            return true;
        }
        false
    }

    /// The preview's lines for the current tab.
    pub fn preview_lines(&self, app: &App) -> Vec<Line<'static>> {
        let t = &app.theme;
        let Some(p) = &self.preview else {
            return vec![Line::styled("computing…", t.muted)];
        };
        let mut out: Vec<Line<'static>> = Vec::new();
        match self.tab {
            PreviewTab::Objects => {
                if p.objects.is_empty() {
                    out.push(Line::styled(
                        if p.policies.is_empty() {
                            "no policy in the text yet"
                        } else {
                            "the draft generates no objects (see problems)"
                        },
                        t.muted,
                    ));
                }
                for l in crate::author::objects_text(&p.objects) {
                    let style = if l.starts_with("# ──") {
                        t.title
                    } else if l == "---" {
                        t.muted
                    } else {
                        t.text
                    };
                    out.push(Line::styled(l, style));
                }
            }
            PreviewTab::Diff => {
                out.push(Line::styled(role_line(&p.roles), role_style(app, &p.roles)));
                out.push(Line::styled(
                    "kubernetes rbac: asked per write (SelfSubjectAccessReview) when you apply",
                    t.muted,
                ));
                out.push(Line::from(""));
                if p.plan.items.is_empty() {
                    out.push(Line::styled("no objects to plan", t.muted));
                }
                for line in summary_lines(&p.plan) {
                    out.push(Line::styled(line, t.text));
                }
                for i in &p.plan.items {
                    out.push(Line::from(""));
                    let style = match i.action {
                        PlanAction::Create => t.ok,
                        PlanAction::Update => t.warn,
                        PlanAction::Delete | PlanAction::Conflict => t.fail,
                        PlanAction::Unchanged => t.muted,
                    };
                    out.push(Line::styled(
                        format!("{} {}", i.action.word(), i.id()),
                        style,
                    ));
                    if i.action == PlanAction::Conflict {
                        out.push(Line::styled(
                            "  not meshdeck's: will not be overwritten",
                            t.fail,
                        ));
                    }
                    for d in i.diff.lines() {
                        let s = if d.starts_with('+') && !d.starts_with("+++") {
                            t.ok
                        } else if d.starts_with('-') && !d.starts_with("---") {
                            t.fail
                        } else if d.starts_with("@@") {
                            t.muted
                        } else {
                            t.text
                        };
                        out.push(Line::styled(d.to_string(), s));
                    }
                }
            }
            PreviewTab::Problems => {
                let mut any = false;
                for d in &p.diagnostics {
                    any = true;
                    let s = if d.severity == Severity::Error {
                        t.fail
                    } else {
                        t.warn
                    };
                    out.push(Line::styled(d.to_string(), s));
                }
                for s in &p.statuses {
                    out.push(Line::styled(
                        format!("{}: {}", s.policy, s.state.word()),
                        match s.state {
                            crate::translate::State::Accepted => t.ok,
                            crate::translate::State::Warning => t.warn,
                            _ => t.fail,
                        },
                    ));
                    for e in s.errors.iter().chain(&s.warnings) {
                        any = true;
                        out.push(Line::styled(format!("  {e}"), t.text));
                    }
                    if !s.clusters.is_empty() {
                        out.push(Line::styled(
                            format!(
                                "  clusters: {}",
                                s.clusters.iter().cloned().collect::<Vec<_>>().join(", ")
                            ),
                            t.muted,
                        ));
                    }
                }
                for (w, e) in &p.schema {
                    any = true;
                    out.push(Line::styled(format!("schema: {w}: {e}"), t.fail));
                }
                if let RoleCheck::Denied(ds) = &p.roles {
                    for d in ds {
                        any = true;
                        out.push(Line::styled(
                            format!("role check: {}: {}", d.policy, d.reason),
                            t.fail,
                        ));
                    }
                }
                for w in &p.warnings {
                    any = true;
                    out.push(Line::styled(w.clone(), t.warn));
                }
                if !any {
                    out.push(Line::styled("no problems", t.ok));
                }
                // fixed-width fields: the line is as long on a slow machine as on a fast one
                out.push(Line::styled(
                    format!(
                        "translated in {:>6.1} ms against snapshot #{:<6}",
                        (p.took.as_secs_f64() * 1000.0).min(9999.9),
                        p.snapshot_seq % 1_000_000
                    ),
                    t.muted,
                ));
            }
        }
        out
    }
}

fn role_line(r: &RoleCheck) -> String {
    match r {
        RoleCheck::Off => {
            "role check: no meshdeck Roles found: off (Kubernetes RBAC still applies)".into()
        }
        RoleCheck::Allowed(s) => format!("role check: {s}"),
        RoleCheck::Denied(d) => format!(
            "role check: DENIED: {}",
            d.first().map(|d| d.reason.as_str()).unwrap_or("")
        ),
    }
}

fn role_style(app: &App, r: &RoleCheck) -> Style {
    match r {
        RoleCheck::Off => app.theme.muted,
        RoleCheck::Allowed(_) => app.theme.ok,
        RoleCheck::Denied(_) => app.theme.fail,
    }
}

/// `cluster  kind  +create ~update -delete` lines of a plan.
pub fn summary_lines(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for ((cluster, kind), acts) in plan.summary() {
        let mut parts = Vec::new();
        for (a, n) in acts {
            parts.push(format!("{} {n}", a.word()));
        }
        out.push(format!("{cluster:<12} {kind:<22} {}", parts.join(", ")));
    }
    out
}

/// What a confirmation dialog will do on `yes`.
#[derive(Debug, Clone)]
pub enum ConfirmWhat {
    /// Save the editor's text, then apply the plan.
    Apply { save: Option<(PathBuf, String)> },
    /// Apply the plan (deletes), then remove the policy's file.
    Delete { file: Option<PathBuf> },
}

#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub plan: Arc<Plan>,
    pub what: ConfirmWhat,
    /// The editor to return to on `no`.
    pub editor: Option<Box<Editor>>,
}

/// Draw the editor: text on the left (or top), preview on the right (or bottom), problems
/// and keys below.
pub fn draw_editor(f: &mut Frame, app: &App, ed: &Editor, area: Rect) {
    let t = &app.theme;
    let [main, problems] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(3)]).areas(area);
    let (text_area, preview_area) = if area.width >= 120 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(main);
        (a, b)
    } else {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(main);
        (a, b)
    };
    // the text
    let dirty = if ed.dirty() { " [+]" } else { "" };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Span::styled(format!(" {}{dirty} ", ed.title), t.title))
        .title_bottom(Span::styled(format!(" {} ", ed.target.display()), t.muted));
    let inner = block.inner(text_area);
    f.render_widget(block, text_area);
    let ta = &ed.area;
    f.render_widget(ta, inner);
    // markers: the line number of a line with an error, and the character at its column
    let (top, left) = ta.scroll_offset();
    let gutter = ta.line_number_width();
    for (line, col, _, error) in ed.markers() {
        let Some(row) = line.checked_sub(top as usize) else {
            continue;
        };
        if row >= inner.height as usize {
            continue;
        }
        let y = inner.y + row as u16;
        let style = if error { t.fail } else { t.warn };
        let buf = f.buffer_mut();
        if let Some(c) = buf.cell_mut((inner.x, y)) {
            c.set_symbol(if error { "✗" } else { "!" });
            c.set_style(style.add_modifier(Modifier::BOLD));
        }
        if let Some(x) = (col + gutter as usize)
            .checked_sub(left as usize)
            .map(|x| inner.x as usize + x)
            .filter(|x| *x < (inner.x + inner.width) as usize)
            && let Some(c) = buf.cell_mut((x as u16, y))
        {
            c.set_style(style.add_modifier(Modifier::UNDERLINED | Modifier::REVERSED));
        }
    }
    // the preview
    let state = match &ed.preview {
        None => "…".to_string(),
        Some(_) if !ed.fresh() => "updating…".to_string(),
        Some(p) => format!("{:>4.0} ms", (p.took.as_secs_f64() * 1000.0).min(9999.0)),
    };
    let pblock = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Span::styled(" preview ", t.title))
        .title_bottom(Span::styled(format!(" {state} "), t.muted));
    let pinner = pblock.inner(preview_area);
    f.render_widget(pblock, preview_area);
    let [tabs_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(pinner);
    let counts = ed.preview.as_ref().map(|p| {
        (
            p.objects.len(),
            p.plan.changes().count(),
            p.errors() + p.statuses.iter().map(|s| s.warnings.len()).sum::<usize>(),
        )
    });
    let (o, d, e) = counts.unwrap_or_default();
    let tabs = Tabs::new(vec![
        format!("objects {o}"),
        format!("diff {d}"),
        format!("problems {e}"),
    ])
    .select(ed.tab.index())
    .style(t.muted)
    .highlight_style(t.selection)
    .divider("│");
    f.render_widget(tabs, tabs_area);
    let lines = ed.preview_lines(app);
    let scroll = ed.scroll.min(lines.len().saturating_sub(1));
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(scroll).collect::<Vec<_>>()),
        body,
    );
    // problems and notes
    let mut pl: Vec<Line> = Vec::new();
    if let Some(s) = &ed.search {
        pl.push(Line::from(vec![
            Span::styled("search: ", t.key),
            Span::styled(format!("{s}▏"), t.text),
        ]));
    }
    if let Some((n, err)) = &ed.note {
        pl.push(Line::styled(n.clone(), if *err { t.fail } else { t.ok }));
    }
    let row = ed.area.cursor().0;
    let mut ms = ed.markers();
    // the error on the cursor's line first
    ms.sort_by_key(|m| (m.0 != row, m.0, m.1));
    for (line, col, msg, error) in ms.iter().take(2) {
        pl.push(Line::styled(
            format!("{}:{}: {msg}", line + 1, col + 1),
            if *error { t.fail } else { t.warn },
        ));
    }
    if ms.is_empty()
        && let Some(p) = &ed.preview
        && ed.fresh()
    {
        let s = match p.applicable() {
            Ok(()) => format!(
                "valid: {} changes in {} — {} applies",
                p.plan.changes().count(),
                p.plan.clusters().into_iter().collect::<Vec<_>>().join(", "),
                app.keymap.first(Action::EditorApply)
            ),
            Err(e) => e,
        };
        let ok = p.applicable().is_ok();
        pl.push(Line::styled(s, if ok { t.ok } else { t.warn }));
    }
    pl.truncate(3);
    f.render_widget(
        Paragraph::new(pl).wrap(ratatui::widgets::Wrap { trim: false }),
        problems,
    );
    if ed.closing {
        draw_dialog(
            f,
            app,
            area,
            " unsaved changes ",
            vec![
                Line::styled(
                    format!("{} has unsaved changes.", ed.target.display()),
                    t.text,
                ),
                Line::from(""),
                Line::from(vec![
                    Span::styled(app.keymap.first(Action::KeepDraft), t.key),
                    Span::styled(" keep the draft   ", t.text),
                    Span::styled(app.keymap.first(Action::DiscardDraft), t.key),
                    Span::styled(" discard   ", t.text),
                    Span::styled(app.keymap.first(Action::Cancel), t.key),
                    Span::styled(" back to editing", t.text),
                ]),
            ],
        );
    }
}

/// A centred box with a border and lines.
pub fn draw_dialog(f: &mut Frame, app: &App, area: Rect, title: &str, lines: Vec<Line>) {
    let t = &app.theme;
    let want_w = lines.iter().map(|l| l.width()).max().unwrap_or(20) as u16 + 4;
    let w = want_w.clamp(30, area.width.saturating_sub(2).max(10));
    // long lines wrap inside the box
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_w))
        .sum();
    let h = (rows as u16 + 2).min(area.height);
    let x = area.x + (area.width.saturating_sub(w)) / 2;
    let y = area.y + (area.height.saturating_sub(h)) / 2;
    let r = Rect::new(x, y, w, h);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.title)
        .title(Span::styled(title.to_string(), t.title));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: false }),
        r,
    );
}

/// The confirmation dialog: the plan summary and the exact clusters.
pub fn draw_confirm(f: &mut Frame, app: &App, c: &Confirm, area: Rect) {
    let t = &app.theme;
    let clusters: Vec<&str> = c.plan.clusters().into_iter().collect();
    let mut lines = vec![
        Line::styled(c.title.clone(), t.text),
        Line::from(""),
        Line::from(vec![
            Span::styled("clusters: ", t.key),
            Span::styled(clusters.join(", "), t.title),
        ]),
    ];
    let max = (area.height as usize).saturating_sub(9).max(1);
    let sums = summary_lines(&c.plan);
    let n = sums.len();
    for s in sums.into_iter().take(max) {
        lines.push(Line::styled(s, t.text));
    }
    if n > max {
        lines.push(Line::styled(format!("… {} more", n - max), t.muted));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "server-side dry-run of everything first; nothing is written unless it all passes",
        t.muted,
    ));
    lines.push(Line::from(vec![
        Span::styled(app.keymap.first(Action::Confirm), t.key),
        Span::styled(" apply   ", t.text),
        Span::styled(app.keymap.first(Action::Cancel), t.key),
        Span::styled(" cancel", t.text),
    ]));
    let title = match c.what {
        ConfirmWhat::Apply { .. } => " apply? ",
        ConfirmWhat::Delete { .. } => " delete? ",
    };
    draw_dialog(f, app, area, title, lines);
}

/// The template picker.
pub fn draw_picker(f: &mut Frame, app: &App, cursor: usize, area: Rect) {
    let t = &app.theme;
    let mut lines = vec![
        Line::styled("new policy from a template:", t.text),
        Line::from(""),
    ];
    for (i, (_, title, _)) in crate::author::TEMPLATES.iter().enumerate() {
        let s = if i == cursor { t.selection } else { t.text };
        lines.push(Line::styled(format!(" {} {title} ", i + 1), s));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled(app.keymap.first(Action::Drill), t.key),
        Span::styled(" choose   ", t.text),
        Span::styled(app.keymap.first(Action::Back), t.key),
        Span::styled(" cancel", t.text),
    ]));
    draw_dialog(f, app, area, " new policy ", lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(text: &str) -> Editor {
        let theme = crate::ui::theme::load("default", None).expect("theme");
        Editor::new(
            text,
            PathBuf::from("p.yaml"),
            "p".into(),
            text.to_string(),
            &theme,
        )
    }

    #[test]
    fn crlf_and_a_missing_final_newline_are_not_edits() {
        for text in [
            "a: 1\r\nb: 2\r\n",
            "a: 1\nb: 2",
            "a: 1\r\nb: 2",
            "",
            "a: 1\n",
        ] {
            let ed = open(text);
            assert!(!ed.dirty(), "{text:?} opened dirty");
        }
        let mut ed = open("a: 1\r\n");
        ed.area.insert_char('x');
        assert!(ed.dirty());
    }
}
