//! Keymaps: named actions bound to keys, loaded from `keymaps/*.yaml`. One table drives key
//! handling, the hint bar and the help screen. A keymap file may be partial and `extends`
//! another; unknown action names and keys bound twice in one context are errors that name the
//! file. YAML is read with strict booleans, so `n` and `y` stay keys.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../keymaps/default.yaml")),
    ("vim", include_str!("../../keymaps/vim.yaml")),
];

/// Where an action applies: the tables, the text views (describe, YAML, logs), or both; the
/// policies view (on top of the table keys, which its own keys override); the policy editor
/// (where printable keys type, so its actions are control and function keys); a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Table,
    Text,
    Both,
    Policies,
    Editor,
    Dialog,
}

/// The context a key is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    Table,
    Text,
    Policies,
    Editor,
    Dialog,
}

macro_rules! actions {
    ($($variant:ident $name:literal $scope:ident $help:literal),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }
            pub fn help(self) -> &'static str {
                match self { $(Action::$variant => $help),* }
            }
            pub fn scope(self) -> Scope {
                match self { $(Action::$variant => Scope::$scope),* }
            }
            pub fn from_name(s: &str) -> Option<Action> {
                match s { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    Quit "quit" Both "quit meshdeck",
    Help "help" Both "this help",
    Command "command" Table "command mode (:svc, :po @cluster, :wl namespace, :q)",
    Filter "filter" Both "filter rows (fuzzy; /!x inverts, /-l app=x by label)",
    Back "back" Both "back: close, clear the filter, or previous view",
    HistoryBack "history_back" Table "previous view in history",
    HistoryForward "history_forward" Table "next view in history",
    Drill "drill" Table "open: cluster → services → workloads → pods → logs",
    Describe "describe" Table "describe the selected row",
    Yaml "yaml" Table "YAML of the selected object",
    Logs "logs" Table "logs of the selected pod",
    Traffic "traffic" Table "traffic of the selected service or workload: who calls it, whom it calls",
    Up "up" Both "move up",
    Down "down" Both "move down",
    PageUp "page_up" Both "page up",
    PageDown "page_down" Both "page down",
    Top "top" Both "first row",
    Bottom "bottom" Both "last row",
    SortName "sort_name" Table "sort by name (again: reverse)",
    SortAge "sort_age" Table "sort by age",
    SortStatus "sort_status" Table "sort by health",
    SortColumn "sort_column" Table "sort by the selected column",
    ColumnLeft "column_left" Table "select the column to the left",
    ColumnRight "column_right" Table "select the column to the right",
    FaultsOnly "faults_only" Table "show only rows that are not ok",
    Wrap "wrap" Text "wrap long lines",
    Copy "copy" Both "copy the row's name, or the whole text, to the clipboard (OSC 52)",
    NewPolicy "new_policy" Policies "new policy from a template",
    EditPolicy "edit_policy" Policies "edit the selected policy",
    EditExternal "edit_external" Policies "edit the selected policy in $VISUAL/$EDITOR (as kubectl edit); back in the editor, validated, nothing saved yet",
    DeletePolicy "delete_policy" Policies "delete the selected policy (asks first)",
    EditorSave "editor_save" Editor "save the policy file",
    EditorApply "editor_apply" Editor "apply: plan, role checks, confirmation",
    PreviewTab "preview_tab" Editor "preview tab: objects → diff → problems",
    PreviewDown "preview_down" Editor "scroll the preview down",
    PreviewUp "preview_up" Editor "scroll the preview up",
    EditorSearch "editor_search" Editor "search (regular expression)",
    SearchNext "search_next" Editor "next search match",
    NextError "next_error" Editor "jump to the next error",
    Undo "undo" Editor "undo",
    Redo "redo" Editor "redo",
    EditorClose "editor_close" Editor "close the editor (asks to keep or discard changes)",
    EditorHelp "editor_help" Editor "the editor's keys",
    Confirm "confirm" Dialog "yes: go ahead",
    Cancel "cancel" Dialog "no: close the dialog",
    KeepDraft "keep_draft" Dialog "close the editor, keep the unsaved draft",
    DiscardDraft "discard_draft" Dialog "close the editor, throw the changes away",
}

/// A key as meshdeck matches it: shift is folded into the character for printable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCodeOrd,
    pub mods: u8,
}

/// `KeyCode` with an order, so keys can sit in sorted maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeOrd {
    Char(char),
    F(u8),
    Named(u8),
}

const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pgup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("delete", KeyCode::Delete),
    ("insert", KeyCode::Insert),
];

const SHIFT: u8 = 1;
const CTRL: u8 = 2;
const ALT: u8 = 4;

impl Key {
    /// The key of a terminal event, or None for keys meshdeck never binds.
    pub fn from_event(e: &KeyEvent) -> Option<Key> {
        let mut mods = 0;
        if e.modifiers.contains(KeyModifiers::SHIFT) {
            mods |= SHIFT;
        }
        if e.modifiers.contains(KeyModifiers::CONTROL) {
            mods |= CTRL;
        }
        if e.modifiers.contains(KeyModifiers::ALT) {
            mods |= ALT;
        }
        let code = match e.code {
            KeyCode::Char(c) => {
                // the character already carries shift ('N', '?')
                mods &= !SHIFT;
                let c = if mods & CTRL != 0 {
                    c.to_ascii_lowercase()
                } else {
                    c
                };
                KeyCodeOrd::Char(c)
            }
            KeyCode::F(n) => KeyCodeOrd::F(n),
            other => {
                let i = NAMED.iter().position(|(_, k)| *k == other)?;
                KeyCodeOrd::Named(i as u8)
            }
        };
        Some(Key { code, mods })
    }

    /// Parse `d`, `N`, `?`, `ctrl-d`, `shift-left`, `alt-x`, `space`, `f5`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut mods = 0;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-").or(lower.strip_prefix("c-")) {
                mods |= CTRL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-").or(lower.strip_prefix("m-")) {
                mods |= ALT;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("shift-").or(lower.strip_prefix("s-")) {
                mods |= SHIFT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let bad = || {
            format!(
                "`{s}` is not a key (a character, or ctrl-/alt-/shift- plus a character or one of \
                 space, {}, f1-f12)",
                NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        };
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                let c = if mods & SHIFT != 0 {
                    mods &= !SHIFT;
                    c.to_ascii_uppercase()
                } else if mods & CTRL != 0 {
                    c.to_ascii_lowercase()
                } else {
                    c
                };
                KeyCodeOrd::Char(c)
            }
            (None, _) => return Err(bad()),
            _ => {
                let l = rest.to_ascii_lowercase();
                if l == "space" {
                    KeyCodeOrd::Char(' ')
                } else if let Some(n) = l.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    if !(1..=12).contains(&n) {
                        return Err(bad());
                    }
                    KeyCodeOrd::F(n)
                } else {
                    let alias = match l.as_str() {
                        "return" => "enter",
                        "escape" => "esc",
                        "pageup" => "pgup",
                        "pagedown" => "pgdn",
                        "del" => "delete",
                        x => x,
                    };
                    let i = NAMED
                        .iter()
                        .position(|(n, _)| *n == alias)
                        .ok_or_else(bad)?;
                    KeyCodeOrd::Named(i as u8)
                }
            }
        };
        Ok(Key { code, mods })
    }

    /// How the key is shown in hints and help: `d`, `N`, `ctrl-z`, `enter`.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if self.mods & CTRL != 0 {
            s.push_str("ctrl-");
        }
        if self.mods & ALT != 0 {
            s.push_str("alt-");
        }
        if self.mods & SHIFT != 0 {
            s.push_str("shift-");
        }
        match self.code {
            KeyCodeOrd::Char(' ') => s.push_str("space"),
            KeyCodeOrd::Char(c) => s.push(c),
            KeyCodeOrd::F(n) => s.push_str(&format!("f{n}")),
            KeyCodeOrd::Named(i) => s.push_str(NAMED.get(i as usize).map(|n| n.0).unwrap_or("?")),
        }
        s
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    name: Option<String>,
    extends: Option<String>,
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

/// A resolved keymap.
#[derive(Debug, Clone)]
pub struct Keymap {
    pub name: String,
    bindings: BTreeMap<Action, Vec<Key>>,
    table: BTreeMap<Key, Action>,
    text: BTreeMap<Key, Action>,
    policies: BTreeMap<Key, Action>,
    editor: BTreeMap<Key, Action>,
    dialog: BTreeMap<Key, Action>,
}

impl Keymap {
    /// The action a key triggers in a table view or a text view (the tests' shorthand).
    #[cfg(test)]
    fn action(&self, key: Key, in_text: bool) -> Option<Action> {
        self.action_in(key, if in_text { Ctx::Text } else { Ctx::Table })
    }

    /// The action a key triggers in a context; the policies view falls back to table keys.
    pub fn action_in(&self, key: Key, ctx: Ctx) -> Option<Action> {
        match ctx {
            Ctx::Table => self.table.get(&key),
            Ctx::Text => self.text.get(&key),
            Ctx::Policies => self.policies.get(&key).or_else(|| self.table.get(&key)),
            Ctx::Editor => self.editor.get(&key),
            Ctx::Dialog => self.dialog.get(&key),
        }
        .copied()
    }

    pub fn keys(&self, a: Action) -> &[Key] {
        self.bindings.get(&a).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first key of an action, as shown in hints (`?` when the action is unbound).
    pub fn first(&self, a: Action) -> String {
        self.keys(a)
            .first()
            .map(Key::display)
            .unwrap_or_else(|| "unbound".into())
    }

    fn build(
        file: &str,
        name: String,
        bindings: BTreeMap<Action, Vec<Key>>,
    ) -> Result<Keymap, String> {
        let mut table: BTreeMap<Key, Action> = BTreeMap::new();
        let mut text: BTreeMap<Key, Action> = BTreeMap::new();
        let mut policies: BTreeMap<Key, Action> = BTreeMap::new();
        let mut editor: BTreeMap<Key, Action> = BTreeMap::new();
        let mut dialog: BTreeMap<Key, Action> = BTreeMap::new();
        for (a, keys) in &bindings {
            for k in keys {
                let targets: &mut [&mut BTreeMap<Key, Action>] = match a.scope() {
                    Scope::Table => &mut [&mut table],
                    Scope::Text => &mut [&mut text],
                    Scope::Both => &mut [&mut table, &mut text],
                    Scope::Policies => &mut [&mut policies],
                    Scope::Editor => &mut [&mut editor],
                    Scope::Dialog => &mut [&mut dialog],
                };
                for map in targets.iter_mut() {
                    if let Some(other) = map.insert(*k, *a)
                        && other != *a
                    {
                        return Err(format!(
                            "{file}: key `{}` is bound to both `{}` and `{}`",
                            k.display(),
                            other.name(),
                            a.name()
                        ));
                    }
                }
            }
        }
        // The editor types printable keys: its actions must not take one.
        if let Some((k, a)) = editor
            .iter()
            .find(|(k, _)| k.mods & (CTRL | ALT) == 0 && matches!(k.code, KeyCodeOrd::Char(_)))
        {
            return Err(format!(
                "{file}: keys.{}: `{}` types a character in the editor; use a ctrl-, alt- or \
                 function key",
                a.name(),
                k.display()
            ));
        }
        Ok(Keymap {
            name,
            bindings,
            table,
            text,
            policies,
            editor,
            dialog,
        })
    }
}

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
        .map(|(n, t)| (format!("keymaps/{n}.yaml (shipped)"), t.to_string()))
}

/// Load a keymap by name: the user's keymaps directory first, then the shipped ones.
pub fn load(name: &str, dir: Option<&Path>) -> Result<Keymap, String> {
    load_depth(name, dir, 0)
}

fn load_depth(name: &str, dir: Option<&Path>, depth: usize) -> Result<Keymap, String> {
    if depth > 8 {
        return Err(format!("keymap `{name}`: `extends` goes round in a circle"));
    }
    let (file, text) = origin(name, dir).ok_or_else(|| {
        format!(
            "no keymap named `{name}` (shipped: {})",
            SHIPPED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    parse(&file, &text, |b| load_depth(b, dir, depth + 1))
}

/// Parse one keymap file; `base` loads the keymap it extends. A file without `extends` must
/// bind every action.
pub fn parse(
    file: &str,
    text: &str,
    base: impl Fn(&str) -> Result<Keymap, String>,
) -> Result<Keymap, String> {
    let f: KeymapFile = crate::yaml::from_str(text).map_err(|e| match (e.line, e.column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}: {}", e.message),
        _ => format!("{file}: {}", e.message),
    })?;
    let name = f.name.clone().unwrap_or_else(|| {
        Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("keymap")
            .to_string()
    });
    let mut bindings = match f.extends.as_deref() {
        Some(b) if b == name => {
            return Err(format!("{file}: extends: a keymap cannot extend itself"));
        }
        Some(b) => {
            base(b)
                .map_err(|e| format!("{file}: extends: {e}"))?
                .bindings
        }
        None => BTreeMap::new(),
    };
    for (action, keys) in &f.keys {
        let a = Action::from_name(action).ok_or_else(|| {
            let near = Action::ALL
                .iter()
                .map(|a| a.name())
                .min_by_key(|n| strsim::levenshtein(n, action))
                .unwrap_or("");
            format!("{file}: keys.{action}: unknown action (did you mean `{near}`?)")
        })?;
        let parsed = keys
            .iter()
            .map(|k| Key::parse(k).map_err(|e| format!("{file}: keys.{action}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        bindings.insert(a, parsed);
    }
    if f.extends.is_none() {
        let missing: Vec<&str> = Action::ALL
            .iter()
            .filter(|a| !bindings.contains_key(a))
            .map(|a| a.name())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{file}: no keys for {} (add them, or `extends: default`)",
                missing.join(", ")
            ));
        }
    }
    Keymap::build(file, name, bindings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> Key {
        Key::from_event(&KeyEvent::new(code, m)).expect("key")
    }

    #[test]
    fn every_shipped_keymap_loads_with_k9s_keys() {
        for (name, _) in SHIPPED {
            let k = load(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            for a in Action::ALL {
                assert!(!k.keys(*a).is_empty(), "{name}: {} unbound", a.name());
            }
        }
        let d = load("default", None).expect("default");
        assert_eq!(
            d.action(ev(KeyCode::Char('y'), KeyModifiers::NONE), false),
            Some(Action::Yaml)
        );
        assert_eq!(
            d.action(ev(KeyCode::Char('N'), KeyModifiers::SHIFT), false),
            Some(Action::SortName)
        );
        assert_eq!(
            d.action(ev(KeyCode::Char('z'), KeyModifiers::CONTROL), false),
            Some(Action::FaultsOnly)
        );
        assert_eq!(
            d.action(ev(KeyCode::Left, KeyModifiers::SHIFT), false),
            Some(Action::ColumnLeft)
        );
        assert_eq!(
            d.action(ev(KeyCode::Char('w'), KeyModifiers::NONE), false),
            None
        );
        assert_eq!(
            d.action(ev(KeyCode::Char('w'), KeyModifiers::NONE), true),
            Some(Action::Wrap)
        );
        let v = load("vim", None).expect("vim");
        assert_eq!(
            v.action(ev(KeyCode::Char('q'), KeyModifiers::NONE), false),
            Some(Action::Quit)
        );
        assert_eq!(
            v.action(ev(KeyCode::Char('L'), KeyModifiers::SHIFT), false),
            Some(Action::Logs)
        );
        // inherited from default
        assert_eq!(
            v.action(ev(KeyCode::Char('y'), KeyModifiers::NONE), false),
            Some(Action::Yaml)
        );
    }

    #[test]
    fn n_and_y_stay_keys_not_booleans() {
        let k = parse(
            "mine.yaml",
            "extends: default\nkeys:\n  yaml: [n]\n  describe: [y]\n",
            |b| load(b, None),
        )
        .expect("n and y are strings");
        assert_eq!(k.first(Action::Yaml), "n");
        assert_eq!(k.first(Action::Describe), "y");
        // bare `y` without brackets is a string too, not `true`
        let e = parse("mine.yaml", "extends: default\nkeys:\n  yaml: y\n", |b| {
            load(b, None)
        })
        .expect_err("a list is required");
        assert!(e.starts_with("mine.yaml:3:"), "{e}");
    }

    #[test]
    fn unknown_actions_bad_keys_and_conflicts_are_errors() {
        let e = parse(
            "mine.yaml",
            "extends: default\nkeys:\n  yamll: [x]\n",
            |b| load(b, None),
        )
        .expect_err("unknown action");
        assert!(
            e.contains("keys.yamll") && e.contains("did you mean `yaml`"),
            "{e}"
        );
        let e = parse(
            "mine.yaml",
            "extends: default\nkeys:\n  yaml: [ctrl-]\n",
            |b| load(b, None),
        )
        .expect_err("bad key");
        assert!(e.contains("keys.yaml") && e.contains("not a key"), "{e}");
        let e = parse("mine.yaml", "extends: default\nkeys:\n  yaml: [d]\n", |b| {
            load(b, None)
        })
        .expect_err("conflict");
        assert!(
            e.contains("`d`") && e.contains("describe") && e.contains("yaml"),
            "{e}"
        );
        let e =
            parse("mine.yaml", "keys:\n  yaml: [y]\n", |b| load(b, None)).expect_err("incomplete");
        assert!(e.contains("no keys for quit"), "{e}");
    }

    #[test]
    fn editor_keys_must_not_type_and_policy_keys_override_table_keys() {
        let e = parse(
            "mine.yaml",
            "extends: default\nkeys:\n  editor_save: [s]\n",
            |b| load(b, None),
        )
        .expect_err("a printable editor key");
        assert!(
            e.contains("keys.editor_save") && e.contains("types a character"),
            "{e}"
        );
        // vim pages down with ctrl-d in tables; in the policies view ctrl-d deletes
        let v = load("vim", None).expect("vim");
        let ctrl_d = ev(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert_eq!(v.action_in(ctrl_d, Ctx::Table), Some(Action::PageDown));
        assert_eq!(
            v.action_in(ctrl_d, Ctx::Policies),
            Some(Action::DeletePolicy)
        );
        // table keys still work in the policies view; editor keys only in the editor
        let j = ev(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(v.action_in(j, Ctx::Policies), Some(Action::Down));
        assert_eq!(v.action_in(j, Ctx::Editor), None);
        let ctrl_g = ev(KeyCode::Char('g'), KeyModifiers::CONTROL);
        assert_eq!(v.action_in(ctrl_g, Ctx::Editor), Some(Action::EditorApply));
    }

    #[test]
    fn key_syntax_round_trips() {
        for s in [
            "d",
            "N",
            "?",
            "ctrl-z",
            "shift-left",
            "enter",
            "f5",
            "space",
            "alt-x",
        ] {
            assert_eq!(Key::parse(s).expect(s).display(), s);
        }
        assert_eq!(Key::parse("shift-n"), Key::parse("N"));
        assert_eq!(Key::parse("Ctrl-C"), Key::parse("ctrl-c"));
    }
}
