//! What the terminal can show, from the environment (`NO_COLOR`, `COLORTERM`, `TERM`, the
//! locale): how many colours, and whether it draws Unicode. Fixed for the process, decided
//! once at start-up; themes are fitted to it, and frames are made ASCII when it draws no
//! Unicode.

use ratatui::style::{Color, Style};

/// How many colours the terminal says it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Colors {
    None,
    Ansi16,
    Indexed256,
    TrueColor,
}

/// The terminal's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub colors: Colors,
    pub unicode: bool,
}

impl Caps {
    /// From a variable lookup (the process environment in the console, a map in tests).
    /// Colours: none with `NO_COLOR` or `TERM=dumb`; truecolor when `COLORTERM` says so; 256
    /// when `TERM` names it (`xterm-256color`, `tmux-256color`, ...) or a terminal known to
    /// have it; otherwise 16 (`screen`, `vt100`, `linux`, plain `xterm`): never more than the
    /// terminal says. Unicode when the locale (`LC_ALL`, else `LC_CTYPE`, else `LANG`) is UTF-8.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Caps {
        let set = |k: &str| var(k).filter(|v| !v.is_empty());
        let term = set("TERM").unwrap_or_default().to_ascii_lowercase();
        let colors = if set("NO_COLOR").is_some() || term == "dumb" {
            Colors::None
        } else if set("COLORTERM")
            .is_some_and(|c| matches!(c.to_ascii_lowercase().as_str(), "truecolor" | "24bit"))
        {
            Colors::TrueColor
        } else if term.contains("256color")
            || [
                "xterm-kitty",
                "alacritty",
                "wezterm",
                "foot",
                "xterm-ghostty",
            ]
            .iter()
            .any(|t| term == *t)
        {
            Colors::Indexed256
        } else {
            Colors::Ansi16
        };
        let locale = set("LC_ALL")
            .or_else(|| set("LC_CTYPE"))
            .or_else(|| set("LANG"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let unicode = locale.contains("utf-8") || locale.contains("utf8");
        Caps { colors, unicode }
    }

    /// The process environment's.
    pub fn detect() -> Caps {
        Caps::from_env(|k| std::env::var(k).ok())
    }
}

/// Whether `c` copies: `osc52` always, `off` never, `auto` over SSH (`SSH_CONNECTION`,
/// `SSH_TTY`) or inside tmux (`TMUX`), where there is no other clipboard to reach.
pub fn clipboard_on(
    mode: Option<crate::cli::ClipboardMode>,
    var: impl Fn(&str) -> Option<String>,
) -> bool {
    use crate::cli::ClipboardMode;
    let set = |k: &str| var(k).is_some_and(|v| !v.is_empty());
    match mode.unwrap_or(ClipboardMode::Auto) {
        ClipboardMode::Osc52 => true,
        ClipboardMode::Off => false,
        ClipboardMode::Auto => set("SSH_CONNECTION") || set("SSH_TTY") || set("TMUX"),
    }
}

/// The OSC 52 sequence that puts `text` on the clipboard; inside tmux wrapped in its DCS
/// passthrough (tmux ≥ 3.3 passes it on with `allow-passthrough on`, older ones always).
pub fn osc52(text: &str, tmux: bool) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let seq = format!("\x1b]52;c;{b64}\x07");
    if tmux {
        // ESCs inside the passthrough are doubled
        format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b")).into_bytes()
    } else {
        seq.into_bytes()
    }
}

/// The ASCII stand-in of a glyph meshdeck draws (one cell, like the glyph).
fn ascii_of(sym: &str) -> &'static str {
    match sym {
        "✓" => "+",
        "○" => "o",
        "▲" => "^",
        "✗" => "x",
        "◐" => "%",
        "…" => ".",
        "│" | "┃" | "║" => "|",
        "─" | "━" | "═" => "-",
        "┌" | "┐" | "└" | "┘" | "├" | "┤" | "┬" | "┴" | "┼" | "╭" | "╮" | "╰" | "╯" => {
            "+"
        }
        "↑" | "▲ " => "^",
        "↓" => "v",
        "→" => ">",
        "←" => "<",
        "·" | "•" => ".",
        "×" => "x",
        "✎" => "*",
        "█" | "▌" | "▐" => "#",
        // sparklines, lowest to highest
        "▁" => "_",
        "▂" => ".",
        "▃" => "-",
        "▄" => "=",
        "▅" => "+",
        "▆" => "*",
        "▇" => "%",
        "≥" => ">",
        _ => "?",
    }
}

/// Make a drawn frame ASCII: every cell that holds anything else gets its stand-in, so a
/// terminal without a UTF-8 locale shows `+ ok` and `+--+` borders, not mojibake. Applied once
/// per frame after drawing, so every view, dialog and border is covered.
pub fn asciify(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        let sym = cell.symbol();
        if !sym.is_ascii() {
            let a = ascii_of(sym);
            cell.set_symbol(a);
        }
    }
}

/// The console's writer: holds a frame until it is flushed, then, for a 16-colour terminal,
/// spells the 16 colours as the classic SGR codes (`31`, `91`, `41`, `101`). crossterm writes
/// every colour as a 256-colour sequence (`38;5;1`), which a `TERM=screen` terminal may not
/// know.
pub struct SgrWriter<W: std::io::Write> {
    inner: W,
    buf: Vec<u8>,
    ansi16: bool,
}

impl<W: std::io::Write> SgrWriter<W> {
    pub fn new(inner: W, colors: Colors) -> SgrWriter<W> {
        SgrWriter {
            inner,
            buf: Vec::with_capacity(1 << 16),
            ansi16: colors <= Colors::Ansi16,
        }
    }
}

impl<W: std::io::Write> std::io::Write for SgrWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.ansi16 {
            let out = classic_sgr(&self.buf);
            self.inner.write_all(&out)?;
        } else {
            self.inner.write_all(&self.buf)?;
        }
        self.buf.clear();
        self.inner.flush()
    }
}

/// Rewrite `ESC [ … 38;5;N … m` / `48;5;N` with N < 16 into classic codes; the rest as it is.
pub fn classic_sgr(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == 0x1b && input.get(i + 1) == Some(&b'[') {
            // find the final byte of the CSI sequence
            let start = i + 2;
            let mut j = start;
            while j < input.len() && !(0x40..=0x7e).contains(&input[j]) {
                j += 1;
            }
            if j < input.len() && input[j] == b'm' {
                let params = String::from_utf8_lossy(&input[start..j]);
                let parts: Vec<&str> = params.split(';').collect();
                let mut new: Vec<String> = Vec::new();
                let mut k = 0;
                while k < parts.len() {
                    let n = parts.get(k + 2).and_then(|p| p.parse::<u8>().ok());
                    match (parts[k], parts.get(k + 1), n) {
                        ("38", Some(&"5"), Some(n)) if n < 16 => {
                            new.push(
                                if n < 8 {
                                    30 + u16::from(n)
                                } else {
                                    82 + u16::from(n)
                                }
                                .to_string(),
                            );
                            k += 3;
                        }
                        ("48", Some(&"5"), Some(n)) if n < 16 => {
                            new.push(
                                if n < 8 {
                                    40 + u16::from(n)
                                } else {
                                    92 + u16::from(n)
                                }
                                .to_string(),
                            );
                            k += 3;
                        }
                        (p, _, _) => {
                            new.push(p.to_string());
                            k += 1;
                        }
                    }
                }
                out.extend_from_slice(b"\x1b[");
                out.extend_from_slice(new.join(";").as_bytes());
                out.push(b'm');
                i = j + 1;
                continue;
            }
            if j < input.len() {
                out.extend_from_slice(&input[i..=j]);
                i = j + 1;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// xterm's palette for colour `n` (0-255), as RGB.
fn xterm_rgb(n: u8) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    match n {
        0..=15 => BASE[n as usize],
        16..=231 => {
            let i = n - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let g = 8 + (n - 232) * 10;
            (g, g, g)
        }
    }
}

const ANSI: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

fn nearest(rgb: (u8, u8, u8), candidates: impl Iterator<Item = u8>) -> u8 {
    let d = |a: (u8, u8, u8), b: (u8, u8, u8)| {
        let s = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        s(a.0, b.0) + s(a.1, b.1) + s(a.2, b.2)
    };
    candidates
        .min_by_key(|&n| d(rgb, xterm_rgb(n)))
        .unwrap_or(0)
}

/// A colour the terminal can show: 256-colour and RGB colours become the nearest of the 16
/// (or of the 256) it has; without colour, the terminal's own.
pub fn fit(c: Color, colors: Colors) -> Color {
    match (colors, c) {
        (Colors::None, _) => Color::Reset,
        (Colors::TrueColor, c) => c,
        (Colors::Indexed256, Color::Rgb(r, g, b)) => Color::Indexed(nearest((r, g, b), 16..=255)),
        (Colors::Indexed256, c) => c,
        (Colors::Ansi16, Color::Indexed(n)) if n < 16 => ANSI[n as usize],
        (Colors::Ansi16, Color::Indexed(n)) => ANSI[nearest(xterm_rgb(n), 0..16) as usize],
        (Colors::Ansi16, Color::Rgb(r, g, b)) => ANSI[nearest((r, g, b), 0..16) as usize],
        (Colors::Ansi16, c) => c,
    }
}

/// A style the terminal can show.
pub fn fit_style(s: Style, colors: Colors) -> Style {
    Style {
        fg: s.fg.map(|c| fit(c, colors)),
        bg: s.bg.map(|c| fit(c, colors)),
        ..s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(vars: &[(&str, &str)]) -> Caps {
        Caps::from_env(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_terminal_says_what_it_has_and_gets_no_more() {
        let utf8 = ("LANG", "en_US.UTF-8");
        assert_eq!(caps(&[("TERM", "screen"), utf8]).colors, Colors::Ansi16);
        assert_eq!(caps(&[("TERM", "vt100")]).colors, Colors::Ansi16);
        assert_eq!(caps(&[("TERM", "linux")]).colors, Colors::Ansi16);
        assert_eq!(caps(&[("TERM", "xterm")]).colors, Colors::Ansi16);
        assert_eq!(caps(&[]).colors, Colors::Ansi16);
        assert_eq!(
            caps(&[("TERM", "screen-256color")]).colors,
            Colors::Indexed256
        );
        assert_eq!(
            caps(&[("TERM", "xterm-256color"), ("COLORTERM", "truecolor")]).colors,
            Colors::TrueColor
        );
        assert_eq!(
            caps(&[("TERM", "xterm-256color"), ("NO_COLOR", "1")]).colors,
            Colors::None
        );
        assert_eq!(caps(&[("TERM", "dumb")]).colors, Colors::None);
        assert!(caps(&[utf8]).unicode);
        assert!(!caps(&[("LANG", "C")]).unicode);
        assert!(!caps(&[]).unicode, "no locale: POSIX, not UTF-8");
        assert!(
            !caps(&[("LANG", "en_US.UTF-8"), ("LC_ALL", "C")]).unicode,
            "LC_ALL wins"
        );
    }

    #[test]
    fn osc52_plain_and_through_tmux() {
        assert_eq!(osc52("hi", false), b"\x1b]52;c;aGk=\x07".to_vec());
        assert_eq!(
            osc52("hi", true),
            b"\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\".to_vec()
        );
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(clipboard_on(None, env(&[("SSH_TTY", "/dev/pts/3")])));
        assert!(clipboard_on(
            None,
            env(&[("TMUX", "/tmp/tmux-0/default,1,0")])
        ));
        assert!(!clipboard_on(None, env(&[])));
        assert!(clipboard_on(
            Some(crate::cli::ClipboardMode::Osc52),
            env(&[])
        ));
        assert!(!clipboard_on(
            Some(crate::cli::ClipboardMode::Off),
            env(&[("SSH_TTY", "x")])
        ));
    }

    #[test]
    fn sixteen_colours_are_written_as_classic_codes() {
        let got = classic_sgr(b"a\x1b[38;5;1mred\x1b[48;5;12;1mx\x1b[38;5;200mq\x1b[2J");
        assert_eq!(
            String::from_utf8_lossy(&got),
            "a\x1b[31mred\x1b[104;1mx\x1b[38;5;200mq\x1b[2J"
        );
    }

    #[test]
    fn an_ascii_frame_holds_only_ascii() {
        use ratatui::buffer::Buffer;
        use ratatui::layout::Rect;
        let mut b = Buffer::empty(Rect::new(0, 0, 6, 1));
        b.set_string(0, 0, "✓ ok│…", Style::default());
        asciify(&mut b);
        let text: String = b.content.iter().map(|c| c.symbol()).collect();
        assert_eq!(text, "+ ok|.");
    }

    #[test]
    fn colours_fit_down_to_what_the_terminal_has() {
        assert_eq!(fit(Color::Indexed(196), Colors::Ansi16), Color::LightRed);
        assert_eq!(fit(Color::Indexed(2), Colors::Ansi16), Color::Green);
        assert_eq!(fit(Color::Rgb(0, 0, 0), Colors::Ansi16), Color::Black);
        assert_eq!(
            fit(Color::Rgb(255, 0, 0), Colors::Indexed256),
            Color::Indexed(196)
        );
        assert_eq!(
            fit(Color::Indexed(244), Colors::Indexed256),
            Color::Indexed(244)
        );
        assert_eq!(fit(Color::Red, Colors::None), Color::Reset);
    }
}
