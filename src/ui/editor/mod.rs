//! The policy editor and its dialogs: their state and key-handling helpers (drawing is in
//! `draw.rs`, pure functions of the state). The editor is a
//! ratatui-textarea with line numbers, undo/redo and regex search; every edit bumps a
//! generation and asks the authoring worker for a preview (latest wins), so typing never
//! waits. Diagnostics come back positioned in the text and are drawn as markers on their
//! lines, with the messages in the pane below.

mod draw;

use super::app::App;
use super::keymap::Action;
use crate::author::{Preview, RoleCheck};
use crate::plan::{Action as PlanAction, Plan};
use crate::policy::{PolicyId, Severity};
pub use draw::{
    draw_confirm, draw_dialog, draw_editor, draw_picker, preview_lines_visible, summary_lines,
};
use draw::{role_line, role_style};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
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
                // the draft's own path is the editor's title: a problem starts at its
                // position, so the message fits (it used to be cut after the path at 80x24)
                let own = format!("{}:", self.target.display());
                let short = |s: &str| {
                    s.strip_prefix(&own)
                        .map(str::to_string)
                        .unwrap_or_else(|| s.to_string())
                };
                let mut any = false;
                for d in &p.diagnostics {
                    any = true;
                    let s = if d.severity == Severity::Error {
                        t.fail
                    } else {
                        t.warn
                    };
                    out.push(Line::styled(short(&d.to_string()), s));
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
                        out.push(Line::styled(format!("  {}", short(e)), t.text));
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
                // what the analysis of the fleet as it would be says
                for f in &p.findings_added {
                    any = true;
                    out.push(Line::styled(
                        format!(
                            "applying this adds {} in {}: {} — {}",
                            f.code, f.cluster, f.object, f.message
                        ),
                        t.warn,
                    ));
                }
                for f in &p.findings_fixed {
                    out.push(Line::styled(
                        format!(
                            "applying this fixes {} in {}: {}",
                            f.code, f.cluster, f.object
                        ),
                        t.ok,
                    ));
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
    /// What the fleet's other policies want that this apply will not make (one plan: the
    /// rest is `meshdeck apply`'s, and `diff` will show it).
    pub others: Vec<String>,
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
