//! The text viewer: describe, YAML, logs and an apply's progress. Its state, what scrolling
//! keys do to it, and how it draws — nothing of the app but the theme.

use super::keymap::Action;
use super::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextKind {
    Describe,
    Yaml,
    Logs,
    /// An apply's progress and results.
    Apply,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextState {
    Loading,
    Ready,
    /// Following a stream (logs).
    Live,
    Ended(String),
    Failed(String),
}

/// A full-screen text view: describe, YAML, logs.
#[derive(Debug, Clone, PartialEq)]
pub struct TextView {
    pub kind: TextKind,
    pub title: String,
    pub lines: VecDeque<String>,
    pub bytes: usize,
    /// Lines dropped from the front to keep under the byte cap.
    pub dropped: usize,
    pub scroll: usize,
    /// Stay at the bottom as lines arrive.
    pub follow: bool,
    pub wrap: bool,
    pub state: TextState,
    pub job: u64,
}

impl TextView {
    pub fn new(kind: TextKind, title: String, job: u64) -> TextView {
        TextView {
            kind,
            title,
            lines: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            scroll: 0,
            follow: true,
            wrap: false,
            state: TextState::Loading,
            job,
        }
    }

    /// Append lines, dropping the oldest once the byte cap is passed.
    pub fn push_lines(&mut self, lines: impl IntoIterator<Item = String>, cap: usize) {
        for l in lines {
            self.bytes += l.len() + 1;
            self.lines.push_back(l);
        }
        while self.bytes > cap {
            match self.lines.pop_front() {
                Some(l) => {
                    self.bytes -= l.len() + 1;
                    self.dropped += 1;
                    self.scroll = self.scroll.saturating_sub(1);
                }
                None => break,
            }
        }
    }
}

impl TextView {
    /// Scroll, follow and wrap keys; `false` when the action is not the viewer's.
    pub fn on_action(&mut self, action: Action, viewport: usize) -> bool {
        let vp = viewport.max(1);
        let max = self.lines.len().saturating_sub(vp);
        match action {
            Action::Down => {
                self.scroll = (self.scroll + 1).min(max);
                self.follow = self.scroll >= max;
            }
            Action::Up => {
                self.scroll = self.scroll.saturating_sub(1);
                self.follow = false;
            }
            Action::PageDown => {
                self.scroll = (self.scroll + vp).min(max);
                self.follow = self.scroll >= max;
            }
            Action::PageUp => {
                self.scroll = self.scroll.saturating_sub(vp);
                self.follow = false;
            }
            Action::Top => {
                self.scroll = 0;
                self.follow = false;
            }
            Action::Bottom => {
                self.scroll = max;
                self.follow = true;
            }
            Action::Wrap => self.wrap = !self.wrap,
            _ => return false,
        }
        true
    }
}

/// Draw a text view: its title (state, dropped lines, wrap) and the visible lines.
pub fn draw(f: &mut Frame, tv: &TextView, t: &Theme, area: Rect) {
    let state = match &tv.state {
        TextState::Loading => "loading…".to_string(),
        TextState::Ready => format!("{} lines", tv.lines.len()),
        TextState::Live => {
            if tv.follow {
                "following".to_string()
            } else {
                "paused (G follows)".to_string()
            }
        }
        TextState::Ended(why) => format!("ended: {why}"),
        TextState::Failed(e) => format!("error: {e}"),
    };
    let mut title = vec![
        Span::styled(format!(" {} ", tv.title), t.title),
        Span::styled(format!("[{state}] "), t.muted),
    ];
    if tv.dropped > 0 {
        title.push(Span::styled(
            format!(
                "[{} older lines dropped to stay under {} KiB] ",
                tv.dropped,
                super::app::LOG_CAP_BYTES / 1024
            ),
            t.muted,
        ));
    }
    if tv.wrap {
        title.push(Span::styled("[wrap] ", t.muted));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Line::from(title));
    let h = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = tv
        .lines
        .iter()
        .skip(tv.scroll)
        .take(h)
        .map(|l| {
            let st = match tv.kind {
                TextKind::Yaml if l.trim_start().starts_with('#') => t.muted,
                TextKind::Describe if l.starts_with("Health:") || l.starts_with("  because:") => {
                    t.warn
                }
                _ => t.text,
            };
            Line::styled(l.clone(), st)
        })
        .collect();
    let mut p = Paragraph::new(lines).block(block);
    if tv.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, area);
    if let TextState::Failed(e) = &tv.state
        && tv.lines.is_empty()
    {
        let r = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 2.min(area.height.saturating_sub(2)),
        };
        f.render_widget(
            Paragraph::new(e.clone())
                .style(t.fail)
                .wrap(Wrap { trim: true }),
            r,
        );
    }
}

/// How many rows `text` takes when word-wrapped at `width` (as ratatui wraps: at spaces,
/// breaking words longer than the width).
pub fn wrapped_rows(text: &str, width: usize) -> usize {
    use unicode_width::UnicodeWidthStr;
    let width = width.max(1);
    let mut rows = 1;
    let mut cur = 0usize;
    for word in text.split(' ') {
        let w = word.width();
        if cur == 0 {
            cur = w;
        } else if cur + 1 + w <= width {
            cur += 1 + w;
        } else {
            rows += 1;
            cur = w;
        }
        while cur > width {
            rows += 1;
            cur -= width;
        }
    }
    rows
}

pub use meshdeck_core::count;
