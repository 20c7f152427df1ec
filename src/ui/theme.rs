//! Themes: a semantic palette (ok, warn, fail, muted, accent, ...) loaded from `themes/*.yaml`.
//! Call sites ask for a meaning (`theme.ok`), never for a colour. A theme file may be partial
//! and `extends` another (default: `default`); the shipped themes are compiled in, and a user
//! file of the same name in the themes directory replaces a shipped one.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The themes meshdeck ships (`themes/`), by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.yaml")),
    ("16color", include_str!("../../themes/16color.yaml")),
    ("mono", include_str!("../../themes/mono.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    ("production", include_str!("../../themes/production.yaml")),
];

/// One style as written in a theme file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleSpec {
    pub fg: Option<String>,
    pub bg: Option<String>,
    #[serde(default)]
    pub bold: bool,
    #[serde(default)]
    pub italic: bool,
    #[serde(default)]
    pub underlined: bool,
    #[serde(default)]
    pub reversed: bool,
    #[serde(default)]
    pub dim: bool,
}

/// Parse a colour: a name (`red`, `darkgray`, `lightcyan`...), `0`-`255`, `#rrggbb`, or
/// `default` (the terminal's own colour).
pub fn parse_color(s: &str) -> Result<Color, String> {
    let t = s.trim().to_ascii_lowercase();
    let named = match t.as_str() {
        "default" | "reset" => Some(Color::Reset),
        "black" => Some(Color::Black),
        "red" => Some(Color::Red),
        "green" => Some(Color::Green),
        "yellow" => Some(Color::Yellow),
        "blue" => Some(Color::Blue),
        "magenta" => Some(Color::Magenta),
        "cyan" => Some(Color::Cyan),
        "gray" | "grey" => Some(Color::Gray),
        "darkgray" | "darkgrey" => Some(Color::DarkGray),
        "lightred" => Some(Color::LightRed),
        "lightgreen" => Some(Color::LightGreen),
        "lightyellow" => Some(Color::LightYellow),
        "lightblue" => Some(Color::LightBlue),
        "lightmagenta" => Some(Color::LightMagenta),
        "lightcyan" => Some(Color::LightCyan),
        "white" => Some(Color::White),
        _ => None,
    };
    if let Some(c) = named {
        return Ok(c);
    }
    if let Ok(n) = t.parse::<u8>() {
        return Ok(Color::Indexed(n));
    }
    if let Some(hex) = t.strip_prefix('#')
        && hex.len() == 6
        && let Ok(v) = u32::from_str_radix(hex, 16)
    {
        return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    Err(format!(
        "`{s}` is not a colour (a name such as red or darkgray, 0-255, #rrggbb, or default)"
    ))
}

impl StyleSpec {
    fn to_style(&self) -> Result<Style, String> {
        let mut st = Style::default();
        if let Some(fg) = &self.fg {
            st = st.fg(parse_color(fg)?);
        }
        if let Some(bg) = &self.bg {
            st = st.bg(parse_color(bg)?);
        }
        for (on, m) in [
            (self.bold, Modifier::BOLD),
            (self.italic, Modifier::ITALIC),
            (self.underlined, Modifier::UNDERLINED),
            (self.reversed, Modifier::REVERSED),
            (self.dim, Modifier::DIM),
        ] {
            if on {
                st = st.add_modifier(m);
            }
        }
        Ok(st)
    }
}

macro_rules! slots {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// A resolved theme: one style per meaning.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            pub name: String,
            $($(#[$doc])* pub $name: Style,)*
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Styles {
            $($name: Option<StyleSpec>,)*
        }

        impl Theme {
            /// The theme as the terminal can show it (see `term::fit`).
            pub fn fitted(mut self, colors: super::term::Colors) -> Theme {
                $(self.$name = super::term::fit_style(self.$name, colors);)*
                self
            }
        }

        impl Styles {
            /// Fill the slots this file leaves out from `base`.
            fn resolve(&self, name: &str, base: Option<&Theme>) -> Result<Theme, String> {
                Ok(Theme {
                    name: name.to_string(),
                    $($name: match (&self.$name, base) {
                        (Some(s), _) => s.to_style().map_err(|e| format!("styles.{}: {e}", stringify!($name)))?,
                        (None, Some(b)) => b.$name,
                        (None, None) => return Err(format!("styles.{}: missing (a theme without `extends` must set every slot)", stringify!($name))),
                    },)*
                })
            }
        }
    };
}

slots! {
    /// Plain table text.
    text,
    /// Secondary text (namespaces, ages, counts).
    muted,
    accent,
    ok,
    notready,
    warn,
    degraded,
    fail,
    /// Rows of a cluster that stopped answering.
    stale,
    /// The header bar.
    header,
    /// Table and dialog titles.
    title,
    border,
    /// Table column headings.
    column,
    /// The column the table is sorted by.
    sorted,
    /// The selected row.
    selection,
    /// Keys in the hint bar and help.
    key,
    /// Hint text.
    hint,
    /// The READ-ONLY badge.
    readonly,
    flash_info,
    flash_error,
    /// Command and filter input.
    input,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    extends: Option<String>,
    #[serde(default)]
    styles: Styles,
}

/// Where a theme's text came from, for error messages.
fn origin(name: &str, dir: Option<&Path>) -> Option<(String, String)> {
    if let Some(dir) = dir {
        let p = dir.join(format!("{name}.yaml"));
        if let Ok(text) = std::fs::read_to_string(&p) {
            return Some((p.display().to_string(), text));
        }
    }
    SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, t)| (format!("themes/{n}.yaml (shipped)"), t.to_string()))
}

/// Load a theme by name: the user's themes directory first, then the shipped themes.
/// Errors name the file, line and column, or the slot.
pub fn load(name: &str, dir: Option<&Path>) -> Result<Theme, String> {
    load_depth(name, dir, 0)
}

fn load_depth(name: &str, dir: Option<&Path>, depth: usize) -> Result<Theme, String> {
    if depth > 8 {
        return Err(format!("theme `{name}`: `extends` goes round in a circle"));
    }
    let (file, text) = origin(name, dir).ok_or_else(|| {
        let mut known: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
        if let Some(d) = dir
            && let Ok(rd) = std::fs::read_dir(d)
        {
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_suffix(".yaml")) {
                    known.push(n.to_string());
                }
            }
        }
        known.sort();
        known.dedup();
        format!("no theme named `{name}` (known: {})", known.join(", "))
    })?;
    parse(&file, &text, |base| load_depth(base, dir, depth + 1))
}

/// Parse one theme file's text; `base` loads the theme it extends.
pub fn parse(
    file: &str,
    text: &str,
    base: impl Fn(&str) -> Result<Theme, String>,
) -> Result<Theme, String> {
    let f: ThemeFile = crate::yaml::from_str(text).map_err(|e| match (e.line, e.column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}: {}", e.message),
        _ => format!("{file}: {}", e.message),
    })?;
    let _ = &f.description;
    let name = f.name.clone().unwrap_or_else(|| {
        Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("theme")
            .to_string()
    });
    let parent = match f.extends.as_deref() {
        Some(b) if b == name => {
            return Err(format!("{file}: extends: a theme cannot extend itself"));
        }
        Some(b) => Some(base(b).map_err(|e| format!("{file}: extends: {e}"))?),
        None => None,
    };
    f.styles
        .resolve(&name, parent.as_ref())
        .map_err(|e| format!("{file}: {e}"))
}

/// Which theme to use: `NO_COLOR` (set and non-empty) always wins with `mono`, then the
/// command line, then a per-context theme, then the settings file's theme, then `default`.
pub fn choose<'a>(
    no_color: bool,
    flag: Option<&'a str>,
    context: Option<&'a str>,
    settings: Option<&'a str>,
) -> &'a str {
    if no_color {
        return "mono";
    }
    flag.or(context).or(settings).unwrap_or("default")
}

/// Every shipped theme, loaded (used by `--list-themes` style listings and tests).
pub fn shipped() -> BTreeMap<String, Result<Theme, String>> {
    SHIPPED
        .iter()
        .map(|(n, _)| (n.to_string(), load(n, None)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_theme_loads_and_mono_has_no_colour() {
        for (name, t) in shipped() {
            let t = t.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.name, name);
        }
        let mono = load("mono", None).expect("mono");
        let all = [
            mono.text,
            mono.muted,
            mono.ok,
            mono.fail,
            mono.selection,
            mono.readonly,
            mono.header,
        ];
        for s in all {
            assert!(s.fg.is_none() && s.bg.is_none(), "{s:?}");
        }
        assert!(mono.selection.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn sixteen_colour_theme_uses_only_ansi_colours() {
        let t = load("16color", None).expect("16color");
        let styles = [
            t.text,
            t.muted,
            t.accent,
            t.ok,
            t.warn,
            t.degraded,
            t.fail,
            t.header,
            t.selection,
            t.readonly,
            t.flash_error,
        ];
        for s in styles {
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Indexed(_) | Color::Rgb(..)),
                    "{c:?} is not one of the 16 colours"
                );
            }
        }
    }

    #[test]
    fn partial_theme_extends_and_bad_values_name_the_place() {
        let t = parse(
            "my.yaml",
            "extends: default\nstyles:\n  ok: {fg: blue}\n",
            |b| load(b, None),
        )
        .expect("partial");
        assert_eq!(t.ok.fg, Some(Color::Blue));
        assert_eq!(t.fail, load("default", None).expect("default").fail);

        let e = parse(
            "my.yaml",
            "extends: default\nstyles:\n  ok: {fg: bleu}\n",
            |b| load(b, None),
        )
        .expect_err("bad colour");
        assert!(
            e.contains("my.yaml") && e.contains("styles.ok") && e.contains("bleu"),
            "{e}"
        );

        let e = parse("my.yaml", "styles:\n  ok: {fg: blue}\n  okay: {}\n", |b| {
            load(b, None)
        })
        .expect_err("unknown slot");
        assert!(e.starts_with("my.yaml:3:"), "{e}");

        let e = parse("my.yaml", "styles:\n  ok: {fg: blue}\n", |b| load(b, None))
            .expect_err("incomplete");
        assert!(e.contains("missing"), "{e}");
        assert!(
            load("nope", None)
                .expect_err("unknown")
                .contains("known: 16color")
        );
    }

    #[test]
    fn no_color_forces_mono() {
        assert_eq!(choose(true, Some("light"), None, None), "mono");
        assert_eq!(
            choose(false, None, Some("production"), Some("light")),
            "production"
        );
        assert_eq!(choose(false, None, None, None), "default");
        assert_eq!(parse_color("#ff0080"), Ok(Color::Rgb(255, 0, 128)));
        assert_eq!(parse_color("238"), Ok(Color::Indexed(238)));
    }
}
