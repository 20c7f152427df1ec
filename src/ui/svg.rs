//! Render a ratatui buffer as an SVG picture (for `meshdeck screenshots`): one rectangle per
//! run of background colour, one text run per run of style, xterm's 256-colour palette.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

const CW: f32 = 8.4;
const CH: f32 = 17.0;
const DEFAULT_FG: (u8, u8, u8) = (0xd0, 0xd0, 0xd0);
const DEFAULT_BG: (u8, u8, u8) = (0x1c, 0x1c, 0x1c);

const ANSI: [(u8, u8, u8); 16] = [
    (0x00, 0x00, 0x00),
    (0xcd, 0x00, 0x00),
    (0x00, 0xcd, 0x00),
    (0xcd, 0xcd, 0x00),
    (0x00, 0x00, 0xee),
    (0xcd, 0x00, 0xcd),
    (0x00, 0xcd, 0xcd),
    (0xe5, 0xe5, 0xe5),
    (0x7f, 0x7f, 0x7f),
    (0xff, 0x00, 0x00),
    (0x00, 0xff, 0x00),
    (0xff, 0xff, 0x00),
    (0x5c, 0x5c, 0xff),
    (0xff, 0x00, 0xff),
    (0x00, 0xff, 0xff),
    (0xff, 0xff, 0xff),
];

fn rgb(c: Color, default: (u8, u8, u8)) -> (u8, u8, u8) {
    match c {
        Color::Reset => default,
        Color::Black => ANSI[0],
        Color::Red => ANSI[1],
        Color::Green => ANSI[2],
        Color::Yellow => ANSI[3],
        Color::Blue => ANSI[4],
        Color::Magenta => ANSI[5],
        Color::Cyan => ANSI[6],
        Color::Gray => ANSI[7],
        Color::DarkGray => ANSI[8],
        Color::LightRed => ANSI[9],
        Color::LightGreen => ANSI[10],
        Color::LightYellow => ANSI[11],
        Color::LightBlue => ANSI[12],
        Color::LightMagenta => ANSI[13],
        Color::LightCyan => ANSI[14],
        Color::White => ANSI[15],
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(n) if n < 16 => ANSI[n as usize],
        Color::Indexed(n) if n < 232 => {
            let i = n - 16;
            let step = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (step(i / 36), step((i / 6) % 6), step(i % 6))
        }
        Color::Indexed(n) => {
            let v = 8 + (n - 232) * 10;
            (v, v, v)
        }
    }
}

fn hex(c: (u8, u8, u8)) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One cell, resolved: symbol, foreground, background, modifiers.
type Resolved = (String, (u8, u8, u8), (u8, u8, u8), Modifier);

/// The SVG text of a buffer.
pub fn to_svg(buf: &Buffer) -> String {
    let area = buf.area;
    let w = area.width as f32 * CW;
    let h = area.height as f32 * CH;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"{}\"/>\n\
         <g font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\" xml:space=\"preserve\">\n",
        hex(DEFAULT_BG)
    );
    for y in 0..area.height {
        // resolve each cell's colours once
        let cells: Vec<Resolved> = (0..area.width)
            .map(|x| {
                let c = &buf[(area.x + x, area.y + y)];
                let mut fg = rgb(c.fg, DEFAULT_FG);
                let mut bg = rgb(c.bg, DEFAULT_BG);
                if c.modifier.contains(Modifier::REVERSED) {
                    std::mem::swap(&mut fg, &mut bg);
                }
                (c.symbol().to_string(), fg, bg, c.modifier)
            })
            .collect();
        let ty = y as f32 * CH;
        let mut x = 0usize;
        while x < cells.len() {
            let bg = cells[x].2;
            let mut e = x;
            while e < cells.len() && cells[e].2 == bg {
                e += 1;
            }
            if bg != DEFAULT_BG {
                out.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{ty:.1}\" width=\"{:.1}\" height=\"{CH}\" fill=\"{}\"/>\n",
                    x as f32 * CW,
                    (e - x) as f32 * CW,
                    hex(bg)
                ));
            }
            x = e;
        }
        let mut x = 0usize;
        while x < cells.len() {
            let (fg, m) = (cells[x].1, cells[x].3);
            let mut e = x;
            let mut text = String::new();
            while e < cells.len() && cells[e].1 == fg && cells[e].3 == m {
                text.push_str(&cells[e].0);
                e += 1;
            }
            if !text.trim().is_empty() {
                let mut attrs = String::new();
                if m.contains(Modifier::BOLD) {
                    attrs.push_str(" font-weight=\"bold\"");
                }
                if m.contains(Modifier::ITALIC) {
                    attrs.push_str(" font-style=\"italic\"");
                }
                if m.contains(Modifier::UNDERLINED) {
                    attrs.push_str(" text-decoration=\"underline\"");
                }
                out.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\"{attrs}>{}</text>\n",
                    x as f32 * CW,
                    ty + CH - 4.0,
                    hex(fg),
                    esc(&text)
                ));
            }
            x = e;
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn colours_and_text_reach_the_svg() {
        let mut b = Buffer::empty(Rect::new(0, 0, 10, 2));
        b.set_string(0, 0, "ok <x>", Style::default().fg(Color::Indexed(196)));
        b.set_string(
            0,
            1,
            "sel",
            Style::default().add_modifier(Modifier::REVERSED),
        );
        let s = to_svg(&b);
        assert!(s.contains("fill=\"#ff0000\""), "{s}");
        assert!(s.contains("ok &lt;x&gt;"), "{s}");
        // reversed default colours: background becomes the default foreground
        assert!(s.contains(&format!("fill=\"{}\"", hex(DEFAULT_FG))), "{s}");
    }
}
