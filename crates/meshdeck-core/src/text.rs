//! Text from servers on the way to a terminal. A name, a message or a header a server sent can
//! carry control characters: an OSC 52 sequence writes the clipboard, OSC 0 the window title,
//! `ESC[2J` clears the screen (kubectl's CVE-2021-25743). Every place meshdeck prints such text
//! outside the console (tables, errors, the log) escapes it with [`escape`] first: the bytes stay
//! visible, none of them acts.

use std::borrow::Cow;

/// `s` with every control character (C0 but for tab, DEL, C1) written as a visible escape:
/// `ESC` becomes `\x1b`, U+009B becomes `\u{9b}`. Text without one is returned as it is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if acts(c) {
            let n = u32::from(c);
            if n < 0x80 {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`] line by line: the line ends stay (a message of several lines).
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && acts(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

/// Whether a terminal would act on `c` rather than show it (a tab only moves the cursor).
fn acts(c: char) -> bool {
    c.is_control() && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_act_no_more() {
        assert!(matches!(escape("reviews-v1"), Cow::Borrowed(_)));
        let osc52 = "a\x1b]52;c;aGk=\x07b";
        assert_eq!(escape(osc52), "a\\x1b]52;c;aGk=\\x07b");
        assert_eq!(escape("\u{9b}2J\r\n"), "\\u{9b}2J\\x0d\\x0a");
        assert!(!escape("x\x1b[2J\u{9d}0;t\x07").contains(['\x1b', '\u{9d}', '\x07']));
        assert_eq!(escape_lines("a\x1b]0;t\x07\nb\n"), "a\\x1b]0;t\\x07\nb\n");
    }
}
