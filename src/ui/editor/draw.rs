//! Drawing the editor, its preview pane and its dialogs: pure functions of the app's state.

use super::*;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs};

pub(super) fn role_line(r: &RoleCheck) -> String {
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

pub(super) fn role_style(app: &App, r: &RoleCheck) -> Style {
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

/// Draw the editor: text on the left (or top), preview on the right (or bottom), problems
/// and keys below.
/// The editor's panes in its area: text, preview, problems.
pub fn editor_areas(area: Rect) -> (Rect, Rect, Rect) {
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
    (text_area, preview_area, problems)
}

/// How many preview lines are visible on a `width`×`height` screen (what scrolling moves by).
pub fn preview_lines_visible(width: u16, height: u16, header: u16) -> usize {
    let [_, body, _] = crate::ui::draw::frame_areas(Rect::new(0, 0, width, height), header);
    let (_, preview, _) = editor_areas(body);
    // borders, and the tab row
    preview.height.saturating_sub(3).max(1) as usize
}

pub fn draw_editor(f: &mut Frame, app: &App, ed: &Editor, area: Rect) {
    let t = &app.theme;
    let (text_area, preview_area, problems) = editor_areas(area);
    // the text
    let dirty = if ed.dirty() { " [+]" } else { "" };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Span::styled(format!(" {}{dirty} ", ed.title), t.title))
        .title_bottom(Span::styled(
            format!(" {} ", app.short_path(&ed.target)),
            t.muted,
        ));
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
    let mut para = Paragraph::new(lines.into_iter().skip(scroll).collect::<Vec<_>>());
    // problems are read, not scanned: wrapped, never cut (objects and diffs keep columns)
    if ed.tab == super::PreviewTab::Problems {
        para = para.wrap(ratatui::widgets::Wrap { trim: false });
    }
    f.render_widget(para, body);
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
                "valid: {} in {} — {} applies",
                crate::ui::text::count(p.plan.changes().count(), "change", "changes"),
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
                    format!("{} has unsaved changes.", app.short_path(&ed.target)),
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
pub fn draw_dialog(f: &mut Frame, app: &App, area: Rect, title: &str, mut lines: Vec<Line>) {
    let t = &app.theme;
    let want_w = lines.iter().map(|l| l.width()).max().unwrap_or(20) as u16 + 4;
    // at least 30 wide when the terminal has room, never wider than it (no panic at 20×5)
    let room = area.width.saturating_sub(2).max(1);
    let w = want_w.max(30).min(room);
    // long lines wrap inside the box; the last line — the dialog's keys — is pinned to the
    // bottom, so a long path above it can never push `y apply  n cancel` out of the box
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let text = |l: &Line| -> String { l.spans.iter().map(|s| s.content.as_ref()).collect() };
    let keys = lines.pop().unwrap_or_default();
    let key_rows = crate::ui::text::wrapped_rows(&text(&keys), inner_w);
    let body_rows: usize = lines
        .iter()
        .map(|l| crate::ui::text::wrapped_rows(&text(l), inner_w))
        .sum();
    let h = ((body_rows + key_rows) as u16 + 2).min(area.height);
    let x = area.x + (area.width.saturating_sub(w)) / 2;
    let y = area.y + (area.height.saturating_sub(h)) / 2;
    let r = Rect::new(x, y, w, h);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.title)
        .title(Span::styled(title.to_string(), t.title));
    let inner = block.inner(r);
    f.render_widget(block, r);
    let key_h = (key_rows as u16).min(inner.height);
    let body = Rect::new(inner.x, inner.y, inner.width, inner.height - key_h);
    let key_area = Rect::new(inner.x, inner.y + body.height, inner.width, key_h);
    let wrap = ratatui::widgets::Wrap { trim: false };
    f.render_widget(Paragraph::new(lines).wrap(wrap), body);
    f.render_widget(Paragraph::new(keys).wrap(wrap), key_area);
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
    if !c.others.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!(
                "not in this apply ({} of the fleet's other policies, as `meshdeck apply` would do):",
                c.others.len()
            ),
            t.warn,
        ));
        for o in c.others.iter().take(3) {
            lines.push(Line::styled(format!("  {o}"), t.warn));
        }
        if c.others.len() > 3 {
            lines.push(Line::styled(
                format!("  … {} more (:pol)", c.others.len() - 3),
                t.muted,
            ));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "server-side dry-run of everything first; nothing is written unless it all passes",
        t.muted,
    ));
    let (title, verb) = match c.what {
        ConfirmWhat::Apply { .. } => (" apply? ", " apply   "),
        ConfirmWhat::Delete { .. } => (" delete? ", " delete   "),
    };
    lines.push(Line::from(vec![
        Span::styled(app.keymap.first(Action::Confirm), t.key),
        Span::styled(verb, t.text),
        Span::styled(app.keymap.first(Action::Cancel), t.key),
        Span::styled(" cancel", t.text),
    ]));
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
