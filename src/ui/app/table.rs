//! The table component's scan: scope, fault filter, label selector, fuzzy text, sort keys.

use super::*;

pub(super) fn new_matcher() -> Matcher {
    let mut c = nucleo_matcher::Config::DEFAULT;
    c.ignore_case = true;
    Matcher::new(c)
}

/// The text the fuzzy filter matches for every row of one cluster in one view
/// (`cluster/namespace/name`), in one buffer: built once per cluster view and kept while the
/// snapshot shares it, so a keystroke matches contiguous text instead of chasing each row.
pub(crate) struct MatchKeys {
    text: String,
    ends: Vec<u32>,
}

impl MatchKeys {
    pub(super) fn build(kind: ViewKind, c: &crate::model::ClusterView) -> MatchKeys {
        let n = kind.len(c);
        let mut k = MatchKeys {
            text: String::with_capacity(n * 48),
            ends: Vec::with_capacity(n),
        };
        for i in 0..n {
            if let Some(item) = kind.item(c, i) {
                k.text.push_str(&c.name);
                k.text.push('/');
                k.text.push_str(item.namespace());
                k.text.push('/');
                k.text.push_str(item.name());
            }
            k.ends.push(k.text.len() as u32);
        }
        k
    }

    pub(super) fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }
}

/// What a refresh keeps: scope, faults-only, label selector and text filter of one page.
pub(super) struct Scan<'a> {
    pub(super) page: &'a Page,
    /// What the configuration findings say of the rows (faults-only keeps a row they fail).
    pub(super) notes: &'a std::collections::HashMap<(String, String), crate::author::FindingNote>,
    pub(super) selector: Option<LabelSelector>,
    pub(super) filter: TextFilter,
    pub(super) sig: crate::ui::view::SignalCtx<'a>,
}

impl Scan<'_> {
    /// The rows of one cluster that pass, and how many it has before filters.
    pub(super) fn cluster(
        &self,
        ci: usize,
        c: &crate::model::ClusterView,
        matcher: &mut Matcher,
        keys: Option<&MatchKeys>,
    ) -> (Vec<RowRef>, usize) {
        let page = self.page;
        let kind = page.kind;
        let mut rows = Vec::new();
        let mut total = 0usize;
        let mut buf = String::new();
        for i in 0..kind.len(c) {
            let Some(item) = kind.item(c, i) else {
                continue;
            };
            if let Some(ns) = &page.scope.namespace
                && item.namespace() != ns
            {
                continue;
            }
            if let Some(o) = &page.scope.only
                && (item.namespace() != o.namespace || !o.names.iter().any(|n| n == item.name()))
            {
                continue;
            }
            total += 1;
            if page.faults_only
                && item.level_noted(Some(&self.sig), note_of(self.notes, c, &item)) == Level::Ok
                && !c.state.is_stale()
            {
                continue;
            }
            if let Some(sel) = &self.selector {
                match item.labels() {
                    Some(l) if sel.matches(l) => {}
                    _ => continue,
                }
            }
            if !self.filter.is_empty() {
                let hit = match keys.and_then(|k| k.get(i)) {
                    Some(text) => self.filter.hits(matcher, text),
                    None => App::filter_hit(matcher, &self.filter, &c.name, &item, &mut buf),
                };
                if !hit {
                    continue;
                }
            }
            rows.push((ci as u32, i as u32));
        }
        (rows, total)
    }
}

/// A fuzzy filter: every whitespace-separated word must match as a subsequence, ignoring
/// case. Rows are kept or dropped, not ranked, so nucleo's greedy (linear) matcher is enough.
pub(super) struct Fuzzy {
    atoms: Vec<String>,
}

impl Fuzzy {
    pub(super) fn new(text: &str) -> Fuzzy {
        Fuzzy {
            atoms: text.split_whitespace().map(str::to_lowercase).collect(),
        }
    }

    pub(super) fn matches(&self, m: &mut Matcher, haystack: &str) -> bool {
        let (mut hb, mut nb) = (Vec::new(), Vec::new());
        self.atoms.iter().all(|a| {
            m.fuzzy_match_greedy(Utf32Str::new(haystack, &mut hb), Utf32Str::new(a, &mut nb))
                .is_some()
        })
    }
}

/// A page's text filter as typed: fuzzy words, or after `!` the rows that do not contain the
/// text (ignoring case).
pub(super) struct TextFilter {
    pattern: Fuzzy,
    invert: bool,
    lc: String,
}

impl TextFilter {
    pub(super) fn new(text: &str, invert: bool) -> TextFilter {
        TextFilter {
            pattern: Fuzzy::new(text),
            invert,
            lc: text.to_lowercase(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lc.is_empty()
    }

    /// The filter's text is in `haystack` as it is (case aside): an exact hit, listed before
    /// the fuzzy ones.
    pub(super) fn exact(&self, haystack: &str) -> bool {
        !self.invert && !self.lc.is_empty() && haystack.to_lowercase().contains(&self.lc)
    }

    pub(super) fn hits(&self, m: &mut Matcher, haystack: &str) -> bool {
        if self.invert {
            !haystack.to_lowercase().contains(&self.lc)
        } else {
            self.pattern.matches(m, haystack)
        }
    }
}

/// A sort key for a cell: numbers (`12`, `3/4`, `40ms`) before text, numerically.
#[derive(Debug, PartialEq, PartialOrd)]
pub(super) enum CellKey {
    Num(f64, String),
    Text(String),
}

impl CellKey {
    pub(super) fn of(s: String) -> CellKey {
        let lead: String = s
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        match lead.parse::<f64>() {
            Ok(n) => CellKey::Num(n, s),
            Err(_) => CellKey::Text(s.to_lowercase()),
        }
    }
    pub(super) fn cmp(&self, o: &CellKey) -> std::cmp::Ordering {
        self.partial_cmp(o).unwrap_or(std::cmp::Ordering::Equal)
    }
}

/// Split a filter: `!x` (inverted substring), `-l app=x` (label selector), else fuzzy text.
pub fn parse_filter(f: &str) -> (&str, bool, Option<&str>) {
    let t = f.trim();
    if let Some(sel) = t.strip_prefix("-l") {
        return ("", false, Some(sel.trim()));
    }
    if let Some(rest) = t.strip_prefix('!') {
        return (rest, true, None);
    }
    if let Some(rest) = t.strip_prefix("-f") {
        return (rest.trim(), false, None);
    }
    (t, false, None)
}
