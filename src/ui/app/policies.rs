//! The policies view, the editor and its dialogs: the App's authoring half.

use super::*;
use crate::author::{Answer, Job, PreviewJob};
use crate::ui::editor::{Confirm, ConfirmWhat, Editor, PreviewTab};

/// The policies view, the editor and its dialogs.
impl App {
    /// The preview job for the editor's current text.
    pub(super) fn preview_intent(&self, ed: &Editor) -> Intent {
        Intent::Author(Job::Preview(PreviewJob {
            generation: ed.generation,
            text: ed.text(),
            target: ed.target.clone(),
            replaces: ed.replaces.clone(),
            store: ed.store.clone(),
            snap: self.snap.clone(),
            dirty: ed.dirty(),
        }))
    }

    /// Open the editor on `text` and ask for its first preview.
    pub(super) fn open_editor(&mut self, mut ed: Editor) -> Vec<Intent> {
        ed.generation = self.next_job;
        self.next_job += 1;
        let i = self.preview_intent(&ed);
        self.mode = Mode::Editor(Box::new(ed));
        vec![i]
    }

    pub(super) fn on_pick_action(&mut self, a: Action, i: usize) -> Vec<Intent> {
        let n = crate::author::TEMPLATES.len();
        match a {
            Action::Down => self.mode = Mode::Pick((i + 1).min(n - 1)),
            Action::Up => self.mode = Mode::Pick(i.saturating_sub(1)),
            Action::Back => self.mode = Mode::Normal,
            Action::Drill => {
                let Some(dir) = self.policy_dir.clone() else {
                    self.mode = Mode::Normal;
                    return vec![];
                };
                let (key, _, text) = crate::author::TEMPLATES[i.min(n - 1)];
                // a name no policy or file has yet
                let taken = |name: &str| {
                    self.board.rows.iter().any(|r| r.name == name)
                        || self
                            .board
                            .texts
                            .contains_key(&dir.join(format!("{name}.yaml")))
                };
                let name = (1..)
                    .map(|k| format!("{key}-{k}"))
                    .find(|n| !taken(n))
                    .unwrap_or_else(|| key.to_string());
                // never a read-only cluster; another cluster's leg only where a VirtualMesh
                // federates (without it that share would reach nothing)
                let fleet = crate::author::TemplateFleet {
                    readonly: self.readonly_clusters.clone(),
                    federated: self.board.rows.iter().any(|r| {
                        r.kind == "VirtualMesh" && r.state != crate::translate::State::Invalid
                    }),
                };
                let text = crate::author::fill_template_with(text, &self.snap, &name, &fleet);
                let kind = text
                    .lines()
                    .find_map(|l| l.strip_prefix("kind: "))
                    .unwrap_or("policy")
                    .to_string();
                let ed = Editor::new(
                    &text,
                    dir.join(format!("{name}.yaml")),
                    format!("new {kind} {name}"),
                    String::new(),
                    &self.theme,
                );
                return self.open_editor(ed);
            }
            _ => {}
        }
        vec![]
    }

    /// `e` / enter on a policy: the editor on its file (every policy of a multi-document file),
    /// or on a stored policy's YAML (saved to the policy directory, applied to its cluster).
    pub(super) fn edit_policy(&mut self) -> Vec<Intent> {
        if self.readonly {
            self.flash("read-only: policies cannot be edited in this session", true);
            return vec![];
        }
        let Some(row) = self.selected_policy().cloned() else {
            return vec![];
        };
        let ids = |f: &Option<PathBuf>| -> Vec<crate::policy::PolicyId> {
            self.board
                .rows
                .iter()
                .filter(|r| r.file == *f)
                .filter_map(|r| r.policy.clone())
                .collect()
        };
        let mut ed = match (&row.file, &self.policy_dir) {
            (Some(f), _) if row.draft => {
                let text = self.board.drafts.get(f).cloned().unwrap_or_default();
                let mut ed = Editor::new(
                    &text,
                    f.clone(),
                    format!("new {} {} (draft)", row.kind, row.name),
                    String::new(),
                    &self.theme,
                );
                ed.note = Some(("restored your unsaved draft".into(), false));
                ed
            }
            (Some(f), _) => {
                let Some(text) = self.board.texts.get(f).cloned() else {
                    self.flash(format!("{}: could not be read", self.short_path(f)), true);
                    return vec![];
                };
                let draft = self.board.drafts.get(f).filter(|d| **d != text).cloned();
                let mut ed = Editor::new(
                    draft.as_deref().unwrap_or(&text),
                    f.clone(),
                    format!("edit {}", self.short_path(f)),
                    text.clone(),
                    &self.theme,
                );
                if draft.is_some() {
                    ed.note = Some((
                        "restored your unsaved draft (esc, then d, discards it)".into(),
                        false,
                    ));
                }
                ed.replaces = ids(&row.file);
                ed
            }
            (None, Some(dir)) => {
                let Some(text) = row.text.clone() else {
                    return vec![];
                };
                let target = dir.join(format!("{}.yaml", row.name));
                let mut ed = Editor::new(
                    &text,
                    target,
                    format!("edit {} {} (stored in {})", row.kind, row.name, row.origin),
                    String::new(),
                    &self.theme,
                );
                ed.store = crate::policy::stored_in(&row.origin).map(str::to_string);
                ed.replaces = row.policy.clone().into_iter().collect();
                ed
            }
            (None, None) => {
                self.flash(
                    "this console has no policy directory (--policies DIR)",
                    true,
                );
                return vec![];
            }
        };
        ed.tab = PreviewTab::Objects;
        self.open_editor(ed)
    }

    /// `ctrl-d` on a policy: ask the worker for the plan that removes it, then confirm.
    pub(super) fn delete_policy(&mut self) -> Vec<Intent> {
        if self.readonly {
            self.flash(
                "read-only: policies cannot be deleted in this session",
                true,
            );
            return vec![];
        }
        let Some(row) = self.selected_policy().cloned() else {
            return vec![];
        };
        if row.draft
            && let Some(target) = row.file.clone()
        {
            self.want_board = true;
            self.flash(
                format!("draft of {} discarded", self.short_path(&target)),
                false,
            );
            return vec![Intent::Author(Job::Discard { target })];
        }
        let Some(id) = row.policy.clone() else {
            self.flash(
                format!(
                    "{}: fix or remove the file; it holds no valid policy",
                    row.origin
                ),
                true,
            );
            return vec![];
        };
        if let Some(f) = &row.file {
            let n = self
                .board
                .rows
                .iter()
                .filter(|r| r.file == row.file)
                .count();
            if n > 1 {
                self.flash(
                    format!(
                        "{} holds {n} policies: edit the file ({}) and remove the document",
                        self.short_path(f),
                        self.keymap.first(Action::EditPolicy)
                    ),
                    true,
                );
                return vec![];
            }
        }
        let job = self.alloc_job();
        self.pending_delete = Some((job, row.id(), row.file.clone()));
        self.flash(format!("planning the removal of {}…", row.id()), false);
        vec![Intent::Author(Job::DeletePlan {
            job,
            id,
            snap: self.snap.clone(),
        })]
    }

    pub(super) fn describe_policy(&mut self) {
        let Some(r) = self.selected_policy().cloned() else {
            return;
        };
        let mut lines = Vec::new();
        let mut kv = |k: &str, v: String| lines.push(format!("{k:<12}{v}"));
        kv("Policy:", format!("{} {}/{}", r.kind, r.namespace, r.name));
        kv("Origin:", r.origin.clone());
        kv("Status:", r.state.word().to_string());
        for why in &r.reasons {
            kv("  because:", why.clone());
        }
        kv("Sources:", r.sources.clone());
        kv("Targets:", r.targets.clone());
        kv(
            "Clusters:",
            if r.clusters.is_empty() {
                "-".into()
            } else {
                r.clusters.join(", ")
            },
        );
        let job = self.alloc_job();
        let mut tv = TextView::new(
            TextKind::Describe,
            format!("describe policy {}", r.id()),
            job,
        );
        tv.follow = false;
        tv.push_lines(lines, usize::MAX);
        tv.state = TextState::Ready;
        self.mode = Mode::Text(tv);
    }

    /// The policy's text, read-only (`y`, and enter in read-only mode).
    pub(super) fn policy_text(&mut self) {
        let Some(r) = self.selected_policy().cloned() else {
            return;
        };
        let text = match &r.file {
            Some(f) => self.board.texts.get(f).cloned(),
            None => r.text.clone(),
        };
        let Some(text) = text else {
            self.flash(format!("{}: could not be read", r.origin), true);
            return;
        };
        let job = self.alloc_job();
        let mut tv = TextView::new(TextKind::Yaml, format!("yaml {}", r.origin), job);
        tv.follow = false;
        tv.push_lines(text.lines().map(str::to_string), usize::MAX);
        tv.state = TextState::Ready;
        self.mode = Mode::Text(tv);
    }

    pub(super) fn on_editor_key(&mut self, ev: KeyEvent) -> Vec<Intent> {
        let key = Key::from_event(&ev);
        let Mode::Editor(ed) = &mut self.mode else {
            return vec![];
        };
        if ed.closing {
            let a = key.and_then(|k| self.keymap.action_in(k, Ctx::Dialog));
            let Mode::Editor(ed) = &mut self.mode else {
                return vec![];
            };
            match a {
                Some(Action::KeepDraft) => {
                    let t = ed.target.clone();
                    self.mode = Mode::Normal;
                    self.want_board = true;
                    self.flash(format!("draft of {} kept", self.short_path(&t)), false);
                }
                Some(Action::DiscardDraft) => {
                    let target = ed.target.clone();
                    self.mode = Mode::Normal;
                    self.want_board = true;
                    self.flash("changes discarded", false);
                    return vec![Intent::Author(Job::Discard { target })];
                }
                Some(Action::Cancel) => ed.closing = false,
                _ => {}
            }
            return vec![];
        }
        if let Some(s) = &mut ed.search {
            match ev.code {
                KeyCode::Esc => ed.search = None,
                KeyCode::Enter => {
                    let pat = std::mem::take(s);
                    ed.search = None;
                    match ed.area.set_search_pattern(&pat) {
                        Ok(()) if pat.is_empty() => ed.note = None,
                        Ok(()) => {
                            let hit = ed.area.search_forward(true);
                            ed.note = Some((
                                if hit {
                                    format!("/{pat}")
                                } else {
                                    format!("/{pat}: no match")
                                },
                                !hit,
                            ));
                        }
                        Err(e) => ed.note = Some((format!("search: {e}"), true)),
                    }
                }
                KeyCode::Backspace => {
                    s.pop();
                }
                KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => s.push(c),
                _ => {}
            }
            return vec![];
        }
        let action = key.and_then(|k| self.keymap.action_in(k, Ctx::Editor));
        // the preview scrolls by what it shows, and stops at its end
        let shown =
            crate::ui::editor::preview_lines_visible(self.width, self.height, self.header_rows());
        let preview_total = match (&self.mode, action) {
            (Mode::Editor(ed), Some(Action::PreviewDown)) => ed.preview_lines(self).len(),
            _ => 0,
        };
        let Mode::Editor(ed) = &mut self.mode else {
            return vec![];
        };
        let changed = match action {
            Some(Action::EditorSave) => {
                let text = ed.text();
                ed.saved = text.clone();
                ed.note = Some((
                    format!(
                        "saving {}…",
                        short_path(&ed.target, self.policy_dir.as_deref())
                    ),
                    false,
                ));
                return vec![Intent::Author(Job::Save {
                    path: ed.target.clone(),
                    text,
                })];
            }
            Some(Action::EditorApply) => return self.editor_apply(),
            Some(Action::PreviewTab) => {
                ed.tab = ed.tab.next();
                ed.scroll = 0;
                false
            }
            Some(Action::PreviewDown) => {
                ed.scroll = (ed.scroll + shown).min(preview_total.saturating_sub(shown));
                false
            }
            Some(Action::PreviewUp) => {
                ed.scroll = ed.scroll.saturating_sub(shown);
                false
            }
            Some(Action::EditorSearch) => {
                ed.search = Some(String::new());
                false
            }
            Some(Action::SearchNext) => {
                if !ed.area.search_forward(false) {
                    ed.note = Some(("no match".into(), true));
                }
                false
            }
            Some(Action::NextError) => {
                if !ed.next_error() {
                    ed.note = Some(("no errors".into(), false));
                }
                false
            }
            Some(Action::Undo) => ed.area.undo(),
            Some(Action::Redo) => ed.area.redo(),
            Some(Action::EditorClose) => {
                if ed.dirty() {
                    ed.closing = true;
                } else {
                    self.mode = Mode::Normal;
                    self.want_board = true;
                }
                false
            }
            Some(Action::EditorHelp) => {
                if let Mode::Editor(ed) = std::mem::replace(&mut self.mode, Mode::Help(0)) {
                    self.parked = Some(ed);
                }
                false
            }
            // Enter keeps the line's indentation (YAML is indentation), as editors do
            _ if ev.code == KeyCode::Enter && ev.modifiers.is_empty() => {
                let row = ed.area.cursor().0;
                let indent: String = ed
                    .area
                    .lines()
                    .get(row)
                    .map(|l| l.chars().take_while(|c| *c == ' ').collect())
                    .unwrap_or_default();
                ed.area.insert_newline();
                ed.area.insert_str(&indent);
                true
            }
            _ => ed.area.input(ev),
        };
        if changed && let Mode::Editor(ed) = &mut self.mode {
            ed.generation = self.next_job;
            self.next_job += 1;
            ed.note = None;
        }
        if changed && let Mode::Editor(ed) = &self.mode {
            return vec![self.preview_intent(ed)];
        }
        vec![]
    }

    /// The editor's apply: only a fresh, valid, allowed preview with changes gets a dialog.
    pub(super) fn editor_apply(&mut self) -> Vec<Intent> {
        if self.readonly {
            self.flash("read-only: nothing can be applied in this session", true);
            return vec![];
        }
        let Mode::Editor(ed) = &mut self.mode else {
            return vec![];
        };
        let preview = match &ed.preview {
            Some(p) if ed.fresh() => p.clone(),
            _ => {
                ed.note = Some(("the preview is still updating: try again".into(), true));
                return vec![];
            }
        };
        if let Err(e) = preview.applicable() {
            // the editor's own path is its title: the refusal keeps room for what matters
            let own = format!("{}:", ed.target.display());
            ed.note = Some((e.replace(&own, ""), true));
            return vec![];
        }
        // a context marked readOnly in the settings is never written, not even partly
        let ro: Vec<&str> = preview
            .plan
            .clusters()
            .into_iter()
            .filter(|c| self.readonly_clusters.iter().any(|r| r == c))
            .collect();
        if !ro.is_empty() {
            ed.note = Some((
                format!(
                    "read-only: {} {} readOnly in the settings; nothing is sent",
                    ro.join(", "),
                    if ro.len() == 1 { "is" } else { "are" }
                ),
                true,
            ));
            return vec![];
        }
        let text = ed.text();
        let title = format!(
            "apply {} ({}) and save {}",
            preview
                .policies
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            crate::ui::text::count(preview.plan.changes().count(), "change", "changes"),
            short_path(&ed.target, self.policy_dir.as_deref())
        );
        let target = ed.target.clone();
        // the other policies the board says are not (wholly) on the fleet: this apply leaves
        // them as they are, and says so
        let mine: Vec<String> = preview.policies.iter().map(|p| p.key()).collect();
        let others: Vec<String> = self
            .board
            .rows
            .iter()
            .filter(|r| {
                r.not_on_fleet && r.policy.as_ref().is_some_and(|p| !mine.contains(&p.key()))
            })
            .map(|r| format!("{} {}/{}: {}", r.kind, r.namespace, r.name, r.reason))
            .collect();
        let Mode::Editor(ed) = std::mem::replace(&mut self.mode, Mode::Normal) else {
            return vec![];
        };
        self.mode = Mode::Confirm(Box::new(Confirm {
            title,
            plan: Arc::new(preview.plan.clone()),
            what: ConfirmWhat::Apply {
                save: Some((target, text)),
            },
            editor: Some(ed),
            others,
        }));
        vec![]
    }

    pub(super) fn on_confirm_action(&mut self, a: Action) -> Vec<Intent> {
        match a {
            Action::Cancel => {
                if let Mode::Confirm(c) = std::mem::replace(&mut self.mode, Mode::Normal) {
                    if let Some(ed) = c.editor {
                        self.mode = Mode::Editor(ed);
                    } else {
                        self.flash("not applied", false);
                    }
                }
                vec![]
            }
            Action::Confirm if self.readonly => {
                self.mode = Mode::Normal;
                self.flash("read-only: nothing can be applied in this session", true);
                vec![]
            }
            Action::Confirm => {
                let Mode::Confirm(c) = std::mem::replace(&mut self.mode, Mode::Normal) else {
                    return vec![];
                };
                let mut out = Vec::new();
                let remove = match c.what {
                    ConfirmWhat::Apply { save } => {
                        if let Some((path, text)) = save {
                            out.push(Intent::Author(Job::Save { path, text }));
                        }
                        None
                    }
                    ConfirmWhat::Delete { file } => file,
                };
                let job = self.alloc_job();
                let mut tv = TextView::new(TextKind::Apply, c.title.clone(), job);
                tv.push_lines(
                    [format!(
                        "{} in {}",
                        crate::ui::text::count(c.plan.changes().count(), "change", "changes"),
                        c.plan.clusters().into_iter().collect::<Vec<_>>().join(", ")
                    )],
                    usize::MAX,
                );
                self.mode = Mode::Text(tv);
                out.push(Intent::Apply {
                    job,
                    plan: c.plan,
                    remove,
                });
                out
            }
            _ => vec![],
        }
    }

    /// An answer of the authoring worker.
    pub(super) fn on_answer(&mut self, a: Answer) {
        match a {
            Answer::Board(b) => {
                self.board = b;
                if matches!(self.page().kind, ViewKind::Policies | ViewKind::Analysis) {
                    self.refresh();
                }
            }
            Answer::Preview(p) => {
                if let Mode::Editor(ed) = &mut self.mode
                    && p.generation <= ed.generation
                    && ed
                        .preview
                        .as_ref()
                        .is_none_or(|old| old.generation <= p.generation)
                {
                    ed.preview = Some(p);
                } else if let Some(ed) = &mut self.parked
                    && p.generation <= ed.generation
                {
                    ed.preview = Some(p);
                }
            }
            Answer::Saved(path, r) => {
                self.want_board = true;
                let msg = match &r {
                    Ok(()) => format!("saved {}", self.short_path(&path)),
                    Err(e) => format!("not saved: {e}"),
                };
                if let Mode::Editor(ed) = &mut self.mode
                    && ed.target == path
                {
                    if r.is_err() {
                        ed.saved.clear();
                    }
                    ed.note = Some((msg.clone(), r.is_err()));
                } else {
                    self.flash(msg, r.is_err());
                }
            }
            Answer::Removed(path, r) => {
                self.want_board = true;
                match r {
                    Ok(()) => self.flash(format!("removed {}", self.short_path(&path)), false),
                    Err(e) => self.flash(format!("could not remove the file: {e}"), true),
                }
            }
            Answer::DeletePlan(job, plan) => {
                let Some((j, id, file)) = self.pending_delete.take() else {
                    return;
                };
                if j != job {
                    self.pending_delete = Some((j, id, file));
                    return;
                }
                let what = if plan.has_changes() {
                    format!(
                        "delete {id}: {} to live objects",
                        crate::ui::text::count(plan.changes().count(), "change", "changes")
                    )
                } else {
                    format!("delete {id}: nothing of it is live")
                };
                let title = match &file {
                    Some(f) => format!("{what}; then remove {}", self.short_path(f)),
                    None => what,
                };
                self.mode = Mode::Confirm(Box::new(Confirm {
                    title,
                    plan,
                    what: ConfirmWhat::Delete { file },
                    editor: None,
                    others: vec![],
                }));
            }
        }
    }
}
