//! The command line's completion (`:se` → `:services`).

/// Complete the view name at the start of a command (`:se` → `:services`).
pub(super) fn complete_view(text: &str) -> Option<String> {
    if text.contains(' ') || text.is_empty() {
        return None;
    }
    let hits: Vec<&str> = crate::ui::view::view_names()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(text))
        .collect();
    match hits.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}
