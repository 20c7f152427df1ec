//! Rendering: a pure function of the app state. Only the rows on screen get cell text.

use super::app::{App, Mode, SortKey};
use super::keymap::Action;
use super::view::{
    ViewKind, glyph, health_cell, policy_cells, policy_level, state_glyph, view_names,
};
use crate::model::ConnState;
use crate::model::health::Level;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use unicode_width::UnicodeWidthStr;

/// The console's three rows: header (`header` rows: 2, or 0 with `--headless`), body,
/// command bar.
pub fn frame_areas(area: Rect, header: u16) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(header),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// How many lines a bordered full-screen text (help, YAML, logs, describe) shows.
pub fn text_lines_visible(width: u16, height: u16, header: u16) -> usize {
    let [_, body, _] = frame_areas(Rect::new(0, 0, width, height), header);
    body.height.saturating_sub(2).max(1) as usize
}

/// Draw the whole console.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [header, body, bar] = frame_areas(area, app.header_rows());
    if header.height > 0 {
        draw_header(f, app, header);
    }
    match &app.mode {
        Mode::Help(scroll) => draw_help(f, app, body, *scroll),
        Mode::Text(tv) => super::text::draw(f, tv, &app.theme, body),
        Mode::Editor(ed) => super::editor::draw_editor(f, app, ed, body),
        Mode::Confirm(c) => {
            match &c.editor {
                Some(ed) => super::editor::draw_editor(f, app, ed, body),
                None => draw_table(f, app, body),
            }
            super::editor::draw_confirm(f, app, c, body);
        }
        Mode::Pick(i) => {
            draw_table(f, app, body);
            super::editor::draw_picker(f, app, *i, body);
        }
        _ => draw_table(f, app, body),
    }
    draw_bar(f, app, bar);
}

pub fn level_style(app: &App, l: Level) -> Style {
    let t = &app.theme;
    match l {
        Level::Ok => t.ok,
        Level::NotReady => t.notready,
        Level::Unknown => t.muted,
        Level::Warning => t.warn,
        Level::Degraded => t.degraded,
        Level::Failure => t.fail,
    }
}

fn state_style(app: &App, s: &ConnState) -> Style {
    let t = &app.theme;
    match s {
        ConnState::Synced => t.ok,
        ConnState::Partial { .. } => t.warn,
        ConnState::Connecting
        | ConnState::Syncing { .. }
        | ConnState::WaitingForCredentials { .. } => t.muted,
        ConnState::Stale { .. } => t.degraded,
        ConnState::Unreachable { .. }
        | ConnState::AuthError { .. }
        | ConnState::ConfigError { .. } => t.fail,
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let snap = &app.snap;
    let total = snap.clusters.len();
    let synced = snap
        .clusters
        .iter()
        .filter(|c| c.state == ConnState::Synced)
        .count();
    // synced for what the session may see: current, not the whole cluster
    let partial = snap
        .clusters
        .iter()
        .filter(|c| matches!(c.state, ConnState::Partial { .. }))
        .count();
    let mut failing = 0usize;
    let mut degraded = 0usize;
    for c in &snap.clusters {
        failing += c.health_counts.get(&Level::Failure).copied().unwrap_or(0);
        degraded += c.health_counts.get(&Level::Degraded).copied().unwrap_or(0);
    }
    // the objects a configuration finding fails or degrades count too (never `✓ healthy` over
    // an IST0101 error)
    for n in app.board.finding_notes.values() {
        match n.level {
            Level::Failure => failing += 1,
            Level::Degraded => degraded += 1,
            _ => {}
        }
    }
    // clusters without current data: the header never says healthy over them
    let unknown = snap
        .clusters
        .iter()
        .filter(|c| c.health.level == Level::Unknown || !c.state.is_current())
        .count();
    let mut users: Vec<&str> = snap.clusters.iter().map(|c| c.user.as_str()).collect();
    users.sort();
    users.dedup();
    // one identity when every cluster agrees, else how many (describe shows each)
    let user = match users.as_slice() {
        [] => "user -".to_string(),
        [one] => format!("user {one}"),
        many => format!("{} identities", many.len()),
    };
    let sep = Span::styled(" │ ", t.muted);
    let mut l1 = vec![
        Span::styled(" meshdeck ", t.title),
        sep.clone(),
        Span::styled(
            if partial > 0 {
                format!("clusters {synced}/{total} synced, {partial} partial")
            } else {
                format!("clusters {synced}/{total} synced")
            },
            if synced == total { t.ok } else { t.warn },
        ),
        sep.clone(),
    ];
    if failing + degraded + unknown == 0 {
        l1.push(Span::styled(format!("{} healthy", glyph(Level::Ok)), t.ok));
    } else {
        if unknown > 0 {
            l1.push(Span::styled(
                format!("{} {unknown} unknown", glyph(Level::Unknown)),
                t.warn,
            ));
            if failing + degraded > 0 {
                l1.push(Span::raw(" "));
            }
        }
        if failing > 0 {
            l1.push(Span::styled(
                format!("{} {failing} failing", glyph(Level::Failure)),
                t.fail,
            ));
            l1.push(Span::raw(" "));
        }
        if degraded > 0 {
            l1.push(Span::styled(
                format!("{} {degraded} degraded", glyph(Level::Degraded)),
                t.degraded,
            ));
        }
    }
    // configuration findings (errors and warnings) from the last analysis
    let findings = app
        .board
        .findings
        .iter()
        .filter(|f| f.level >= crate::analyze::Level::Warning)
        .count();
    if findings > 0 {
        l1.push(sep.clone());
        l1.push(Span::styled(
            format!(
                "{findings} finding{} (:an)",
                if findings == 1 { "" } else { "s" }
            ),
            t.warn,
        ));
    }
    l1.push(sep);
    l1.push(Span::styled(user, t.muted));
    // the badge goes on the right when everything fits, else first: it is never cut off
    let badge = " READ-ONLY ";
    if app.readonly {
        let left_w: usize = l1.iter().map(|s| s.content.width()).sum();
        match (area.width as usize).checked_sub(left_w + badge.width()) {
            Some(pad) => {
                l1.push(Span::raw(" ".repeat(pad)));
                l1.push(Span::styled(badge, t.readonly));
            }
            None => l1.insert(0, Span::styled(badge, t.readonly)),
        }
    }
    // line 2: one chip per cluster; problems first when they do not all fit
    let mut chips: Vec<(Vec<Span>, usize, bool)> = Vec::new();
    for c in &snap.clusters {
        let mut spans = vec![Span::styled(
            format!("{}{}", state_glyph(&c.state), c.name),
            state_style(app, &c.state),
        )];
        match &c.state {
            ConnState::Synced => {}
            ConnState::Partial { .. } | ConnState::WaitingForCredentials { .. } => {
                spans.push(Span::styled(
                    format!(" {}", c.state.word()),
                    state_style(app, &c.state),
                ));
            }
            ConnState::Stale { since, .. } | ConnState::Unreachable { since, .. } => {
                let age = super::view::age(Some(since), app.now);
                spans.push(Span::styled(
                    format!(" {} {age}", c.state.word()),
                    state_style(app, &c.state),
                ));
            }
            other => spans.push(Span::styled(
                format!(" {}", super::view::state_cell(other)),
                state_style(app, other),
            )),
        }
        if app.readonly_clusters.contains(&c.name) {
            spans.push(Span::styled(" RO", t.readonly));
        }
        let w: usize = spans.iter().map(|s| s.content.width()).sum();
        chips.push((spans, w, c.state != ConnState::Synced));
    }
    let width = area.width as usize;
    let need: usize = chips.iter().map(|c| c.1 + 2).sum();
    if need > width {
        // keep clusters that need attention visible
        chips.sort_by_key(|c| !c.2);
    }
    let mut l2: Vec<Span> = vec![Span::raw(" ")];
    let mut used = 1usize;
    let n = chips.len();
    for (i, (spans, w, _)) in chips.into_iter().enumerate() {
        let rest = n - i - 1;
        let more = if rest > 0 {
            format!("+{rest}").len() + 1
        } else {
            0
        };
        if used + w + 2 + more > width && i > 0 {
            l2.push(Span::styled(format!("+{}", n - i), t.muted));
            break;
        }
        l2.extend(spans);
        l2.push(Span::raw("  "));
        used += w + 2;
    }
    let p = Paragraph::new(vec![Line::from(l1), Line::from(l2)]).style(t.header);
    f.render_widget(p, area);
}

/// Which columns fit: drop the most droppable ones until the minimum widths fit.
pub fn visible_columns(kind: ViewKind, width: u16) -> Vec<usize> {
    let cols = kind.columns();
    let mut keep: Vec<usize> = (0..cols.len()).collect();
    let avail = width.saturating_sub(2) as usize;
    loop {
        let need: usize = keep.iter().map(|&i| cols[i].min as usize + 1).sum();
        if need <= avail {
            break;
        }
        let Some((pos, _)) = keep
            .iter()
            .enumerate()
            .filter(|(_, i)| cols[**i].drop > 0)
            .max_by_key(|(p, i)| (cols[**i].drop, *p))
        else {
            break;
        };
        keep.remove(pos);
    }
    keep
}

fn table_title(app: &App) -> Vec<Span<'static>> {
    let t = &app.theme;
    let p = app.page();
    let mut s = vec![Span::styled(format!(" {}", p.kind.title()), t.title)];
    // without a header the read-only badge moves here: it is never out of sight
    if app.headless && app.readonly {
        s.insert(0, Span::styled(" READ-ONLY ", t.readonly));
    }
    if let Some(o) = &p.scope.only {
        s.push(Span::styled(
            format!(" of {} @{}", o.what, o.cluster),
            t.accent,
        ));
    }
    if let Some(c) = &p.scope.cluster {
        s.push(Span::styled(format!(" @{c}"), t.accent));
    }
    if let Some(ns) = &p.scope.namespace {
        s.push(Span::styled(format!(" ns:{ns}"), t.accent));
    }
    if !p.filter.is_empty() {
        s.push(Span::styled(format!(" /{}", p.filter), t.input));
    }
    if p.faults_only {
        s.push(Span::styled(" faults only", t.warn));
    }
    s.push(Span::styled(
        format!(" [{}/{}] ", app.rows.len(), app.total),
        t.muted,
    ));
    s
}

fn draw_table(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let p = app.page();
    let kind = p.kind;
    let cols = kind.columns();
    let vis = visible_columns(kind, area.width);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Line::from(table_title(app)));
    let inner_h = area.height.saturating_sub(3) as usize;
    let mut start = p.offset.min(app.rows.len());
    let end = (start + inner_h).min(app.rows.len());
    let health_col = cols
        .iter()
        .position(|c| c.role == crate::ui::view::Role::Health);
    let state_col = cols
        .iter()
        .position(|c| c.role == crate::ui::view::Role::State);
    // cell text for the rows on screen only
    let mut lines: Vec<(Vec<String>, Level, bool, Option<&ConnState>)> =
        Vec::with_capacity(end - start);
    let policies = kind == ViewKind::Policies;
    let analysis = kind == ViewKind::Analysis;
    for &(_, i) in app.rows[start..end].iter().filter(|_| policies) {
        if let Some(r) = app.board.rows.get(i as usize) {
            lines.push((policy_cells(r), policy_level(r.state), false, None));
        }
    }
    for &(_, i) in app.rows[start..end].iter().filter(|_| analysis) {
        if let Some(x) = app.board.findings.get(i as usize) {
            lines.push((
                crate::ui::view::finding_cells(x),
                crate::ui::view::finding_level(x.level),
                false,
                None,
            ));
        }
    }
    let traffic = kind == ViewKind::Traffic;
    for &(_, i) in app.rows[start..end].iter().filter(|_| traffic) {
        if let Some(r) = app.edges.get(i as usize) {
            lines.push((crate::ui::view::edge_cells(r), r.level(), r.stale, None));
        }
    }
    for &(ci, ii) in app.rows[start..end]
        .iter()
        .filter(|_| !policies && !analysis && !traffic)
    {
        let Some(c) = app.snap.clusters.get(ci as usize) else {
            continue;
        };
        let Some(item) = kind.item(c, ii as usize) else {
            continue;
        };
        let sig = app.sig();
        let note = app.finding_note(c, &item);
        let cells = item.cells(kind, c, app.now, note, Some(&sig));
        lines.push((
            cells,
            item.level_noted(Some(&sig), note),
            c.state.is_stale(),
            Some(&c.state),
        ));
    }
    let mut widths: Vec<usize> = vis.iter().map(|&i| cols[i].name.width()).collect();
    for (cells, ..) in &lines {
        for (w, &i) in widths.iter_mut().zip(&vis) {
            if let Some(c) = cells.get(i) {
                *w = (*w).max(c.width());
            }
        }
    }
    for w in widths.iter_mut() {
        *w = (*w).min(48);
    }
    // wide cells (a long source or name) must not push the health off the screen: the
    // widest columns give up width, down to their minimum, until the row fits
    let avail = area.width.saturating_sub(2) as usize;
    let last = widths.len().saturating_sub(1);
    // (the last column fills what is left: it needs only its minimum)
    let last_min = vis.last().map_or(0, |&i| cols[i].min as usize);
    while widths[..last].iter().map(|w| w + 1).sum::<usize>() + last_min > avail {
        let shrink = (0..widths.len())
            .filter(|&n| {
                let c = &cols[vis[n]];
                n != last
                    && widths[n] > c.min as usize
                    && !matches!(
                        c.role,
                        crate::ui::view::Role::Health | crate::ui::view::Role::State
                    )
            })
            .max_by_key(|&n| (widths[n], n));
        match shrink {
            Some(n) => widths[n] -= 1,
            None => break,
        }
    }
    // the selected row's reason is must-read: when its column is dropped or cut, it shows
    // in full on the table's bottom border
    let reason_col = cols
        .iter()
        .position(|c| c.role == crate::ui::view::Role::Reason);
    let selected_reason = reason_col.and_then(|rc| {
        let (cells, ..) = lines.get(p.cursor.checked_sub(start)?)?;
        let r = cells.get(rc)?;
        if r.is_empty() {
            return None;
        }
        let inner = area.width.saturating_sub(2) as usize;
        let shown = match vis.iter().position(|&i| i == rc) {
            // the last column fills what the others leave
            Some(pos) if pos + 1 == vis.len() => {
                let others: usize = widths[..pos].iter().map(|w| w + 1).sum();
                inner.saturating_sub(others)
            }
            Some(pos) => widths[pos],
            None => 0,
        };
        (r.width() > shown).then(|| r.clone())
    });
    // ... in up to three wrapped lines under the table, which gives up rows for them (the
    // selected row stays on screen)
    let area = match &selected_reason {
        Some(r) if area.height > 6 => {
            let need = crate::ui::text::wrapped_rows(r, area.width as usize).min(3) as u16;
            let [table_area, reason_area] =
                Layout::vertical([Constraint::Min(4), Constraint::Length(need)]).areas(area);
            f.render_widget(
                Paragraph::new(r.clone())
                    .style(t.warn)
                    .wrap(ratatui::widgets::Wrap { trim: false }),
                reason_area,
            );
            let fits = table_area.height.saturating_sub(3) as usize;
            let at = p.cursor.saturating_sub(start);
            if at >= fits {
                let k = (at + 1 - fits).min(lines.len());
                lines.drain(..k);
                start += k;
            }
            lines.truncate(fits);
            table_area
        }
        _ => area,
    };
    let header = Row::new(vis.iter().map(|&i| {
        let mut name = cols[i].name.to_string();
        let mut st = t.column;
        let sorted = match p.sort {
            SortKey::Column(c) => c == i,
            SortKey::Name => {
                cols[i].role == crate::ui::view::Role::Name
                    || (kind == ViewKind::Clusters && i == 0)
            }
            SortKey::Age => cols[i].role == crate::ui::view::Role::Age,
            SortKey::Status => cols[i].role == crate::ui::view::Role::Health,
            SortKey::Natural => false,
        };
        if sorted {
            name.push(if p.reverse { '↓' } else { '↑' });
            st = t.sorted;
        }
        if p.column == i {
            st = st.add_modifier(Modifier::UNDERLINED);
        }
        Cell::from(name).style(st)
    }));
    let rows: Vec<Row> = lines
        .into_iter()
        .map(|(mut cells, level, stale, state)| {
            let base = if stale { t.stale } else { t.text };
            Row::new(vis.iter().map(|&i| {
                let text = std::mem::take(cells.get_mut(i).unwrap_or(&mut String::new()));
                let st = if Some(i) == health_col {
                    level_style(app, level)
                } else if Some(i) == state_col {
                    state.map(|s| state_style(app, s)).unwrap_or(base)
                } else {
                    base
                };
                Cell::from(text).style(st)
            }))
        })
        .collect();
    let constraints: Vec<Constraint> = widths
        .iter()
        .enumerate()
        .map(|(n, w)| {
            if n + 1 == widths.len() {
                Constraint::Fill(1)
            } else {
                Constraint::Length(*w as u16)
            }
        })
        .collect();
    let empty = app.rows.is_empty();
    let table = Table::new(rows, constraints)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(t.selection);
    let mut state = TableState::default();
    if !empty {
        state.select(Some(p.cursor.saturating_sub(start)));
    }
    f.render_stateful_widget(table, area, &mut state);
    if empty {
        let msg = if app.total > 0 {
            "no rows match the filter (esc clears it)".to_string()
        } else if analysis {
            "no findings: the fleet's configuration passes every analyzer (or is still being read)"
                .to_string()
        } else if policies {
            match &app.policy_dir {
                Some(d) if !app.readonly => format!(
                    "no policies in {} or the fleet yet: {} creates one",
                    d.display(),
                    app.keymap.first(Action::NewPolicy)
                ),
                _ => "no policies in the fleet".to_string(),
            }
        } else if app
            .snap
            .clusters
            .iter()
            .all(|c| !c.state.is_stale() && !c.state.is_current())
        {
            "waiting for clusters to sync…".to_string()
        } else {
            format!("no {} in the selected clusters", kind.title())
        };
        let r = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1.min(area.height.saturating_sub(2)),
        };
        f.render_widget(Paragraph::new(msg).style(t.muted), r);
    }
}

/// The help text: generated from the live key table, the view names and the filter syntax.
pub fn help_lines(app: &App) -> Vec<(String, String)> {
    use super::keymap::Scope;
    let mut out: Vec<(String, String)> = Vec::new();
    for (title, scopes) in [
        ("KEYS", &[Scope::Table, Scope::Both, Scope::Text][..]),
        ("POLICIES VIEW (:pol)", &[Scope::Policies][..]),
        ("POLICY EDITOR", &[Scope::Editor][..]),
        ("DIALOGS", &[Scope::Dialog][..]),
    ] {
        if !out.is_empty() {
            out.push((String::new(), String::new()));
        }
        let ro = app.readonly && matches!(scopes[0], Scope::Policies | Scope::Editor);
        out.push((
            title.into(),
            if ro {
                "read-only: hidden".into()
            } else {
                String::new()
            },
        ));
        if ro {
            continue;
        }
        for a in Action::ALL.iter().filter(|a| scopes.contains(&a.scope())) {
            let keys: Vec<String> = app.keymap.keys(*a).iter().map(|k| k.display()).collect();
            out.push((keys.join(" "), a.help().to_string()));
        }
    }
    out.push((String::new(), String::new()));
    out.push(("VIEWS (:name)".into(), String::new()));
    for (n, alias) in view_names() {
        out.push((format!(":{n}"), alias.to_string()));
    }
    out.push((":VIEW @cluster".into(), "only that cluster".into()));
    out.push((":VIEW namespace".into(), "only that namespace".into()));
    out.push((
        ":messages".into(),
        "msg: every message of the session, whole".into(),
    ));
    out.push((":q".into(), "quit".into()));
    out.push((String::new(), String::new()));
    out.push(("FILTER (/)".into(), String::new()));
    out.push((
        "/text".into(),
        "fuzzy match on cluster/namespace/name".into(),
    ));
    out.push(("/!text".into(), "rows that do not contain text".into()));
    out.push(("/-l app=x,v!=2".into(), "label selector".into()));
    out.push((String::new(), String::new()));
    out.push(("HEALTH".into(), String::new()));
    for l in [
        Level::Ok,
        Level::NotReady,
        Level::Unknown,
        Level::Warning,
        Level::Degraded,
        Level::Failure,
    ] {
        out.push((health_cell(l, false), String::new()));
    }
    out.push(("~".into(), "the cluster is stale: last known data".into()));
    out
}

fn draw_help(f: &mut Frame, app: &App, area: Rect, scroll: usize) {
    let t = &app.theme;
    let lines = help_lines(app);
    let kw = lines
        .iter()
        .map(|l| l.0.width())
        .max()
        .unwrap_or(10)
        .min(28);
    let text: Vec<Line> = lines
        .iter()
        .skip(scroll)
        .map(|(k, v)| {
            if v.is_empty()
                && !k.starts_with(glyph(Level::Ok))
                && k.chars().all(|c| !c.is_lowercase())
            {
                Line::styled(k.clone(), t.title)
            } else {
                Line::from(vec![
                    Span::styled(format!("{k:<kw$}  "), t.key),
                    Span::styled(v.clone(), t.text),
                ])
            }
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Span::styled(
            format!(" help — keymap {} ", app.keymap.name),
            t.title,
        ));
    f.render_widget(Paragraph::new(text).block(block), area);
}

/// The hints for the current mode, most important first.
pub fn hints(app: &App) -> Vec<(String, &'static str)> {
    let k = |a: Action| app.keymap.first(a);
    match &app.mode {
        Mode::Editor(ed) if ed.closing => vec![
            (k(Action::KeepDraft), "keep draft"),
            (k(Action::DiscardDraft), "discard"),
            (k(Action::Cancel), "back"),
        ],
        Mode::Editor(_) => vec![
            (k(Action::EditorApply), "apply"),
            (k(Action::EditorSave), "save"),
            (k(Action::PreviewTab), "preview tab"),
            (k(Action::NextError), "next error"),
            (k(Action::EditorSearch), "search"),
            (k(Action::Undo), "undo"),
            (k(Action::EditorClose), "close"),
            (k(Action::EditorHelp), "keys"),
        ],
        Mode::Confirm(_) => vec![(k(Action::Confirm), "yes"), (k(Action::Cancel), "no")],
        Mode::Pick(_) => vec![
            (k(Action::Drill), "choose"),
            (k(Action::Down), "down"),
            (k(Action::Back), "cancel"),
        ],
        Mode::Help(_) => vec![
            (k(Action::Back), "close"),
            (k(Action::Down), "down"),
            (k(Action::Quit), "quit"),
        ],
        Mode::Text(_) => vec![
            (k(Action::Back), "back"),
            (k(Action::Wrap), "wrap"),
            (k(Action::Bottom), "end/follow"),
            (k(Action::Top), "top"),
            (k(Action::Help), "help"),
            (k(Action::Quit), "quit"),
        ],
        _ => {
            let kind = app.page().kind;
            if kind == ViewKind::Policies {
                let mut v = vec![(k(Action::Command), "view")];
                if app.readonly || app.policy_dir.is_none() {
                    v.push((k(Action::Drill), "yaml"));
                } else {
                    v.push((k(Action::NewPolicy), "new"));
                    v.push((k(Action::EditPolicy), "edit"));
                    v.push((k(Action::DeletePolicy), "delete"));
                }
                v.push((k(Action::Describe), "describe"));
                v.push((k(Action::Filter), "filter"));
                v.push((k(Action::FaultsOnly), "problems"));
                v.push((k(Action::Help), "help"));
                if app.pos > 0 {
                    v.push((k(Action::Back), "back"));
                }
                return v;
            }
            let open = match kind {
                ViewKind::Pods => "logs",
                ViewKind::Istio(_) => "yaml",
                _ => "open",
            };
            let mut v = vec![
                (k(Action::Command), "view"),
                (k(Action::Filter), "filter"),
                (k(Action::Drill), open),
                (k(Action::Describe), "describe"),
            ];
            if !matches!(kind, ViewKind::Clusters | ViewKind::Meshes) {
                v.push((k(Action::Yaml), "yaml"));
            }
            if kind == ViewKind::Pods {
                v.push((k(Action::Logs), "logs"));
            }
            v.push((k(Action::Help), "help"));
            v.push((k(Action::Quit), "quit"));
            if app.pos > 0 || !app.page().filter.is_empty() {
                v.insert(3, (k(Action::Back), "back"));
            }
            v.push((k(Action::FaultsOnly), "faults"));
            v.push((k(Action::SortStatus), "sort health"));
            v
        }
    }
}

fn draw_bar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let line = match &app.mode {
        Mode::Command(text) => Line::from(vec![
            Span::styled(":", t.key),
            Span::styled(text.clone(), t.input),
            Span::styled("█", t.input),
            Span::styled("  enter go · tab complete · esc cancel", t.hint),
        ]),
        Mode::Filter(text) => {
            let mut v = vec![
                Span::styled("/", t.key),
                Span::styled(text.clone(), t.input),
                Span::styled("█", t.input),
            ];
            match &app.filter_error {
                Some(e) => v.push(Span::styled(format!("  {e}"), t.flash_error)),
                None => v.push(Span::styled("  enter keep · esc clear", t.hint)),
            }
            Line::from(v)
        }
        _ => match app.current_flash() {
            Some(fl) => Line::styled(
                format!(" {}", fl.text),
                if fl.error {
                    t.flash_error
                } else {
                    t.flash_info
                },
            ),
            None => {
                let mut spans = Vec::new();
                let mut used = 0usize;
                for (key, what) in hints(app) {
                    let w = key.width() + what.width() + 4;
                    if used + w > area.width as usize {
                        break;
                    }
                    spans.push(Span::styled(format!("<{key}>"), t.key));
                    spans.push(Span::styled(format!("{what}  "), t.hint));
                    used += w;
                }
                Line::from(spans)
            }
        },
    };
    f.render_widget(Paragraph::new(line), area);
}
