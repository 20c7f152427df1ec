//! Hot reload of the console's theme and keymap: their files (and the settings file, which
//! may name others) are looked at once a second; a change is applied at once, and an invalid
//! edit keeps what is running and flashes the error with its place.

use super::keymap::Keymap;
use super::term::Colors;
use super::theme::Theme;
use std::path::PathBuf;
use std::time::SystemTime;

/// What the console was started with, to load again.
pub struct Reloader {
    pub settings_file: PathBuf,
    pub themes_dir: PathBuf,
    pub keymaps_dir: PathBuf,
    /// The --theme / --keymap flags (they win over the settings).
    pub theme_flag: Option<String>,
    pub keymap_flag: Option<String>,
    pub no_color: bool,
    pub colors: Colors,
    pub theme: String,
    pub keymap: String,
    seen: Vec<(PathBuf, Option<SystemTime>)>,
}

/// What changed.
pub enum Reloaded {
    Theme(Theme),
    Keymap(Keymap),
    Failed(String),
}

fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Reloader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings_file: PathBuf,
        themes_dir: PathBuf,
        keymaps_dir: PathBuf,
        theme_flag: Option<String>,
        keymap_flag: Option<String>,
        no_color: bool,
        colors: Colors,
        theme: String,
        keymap: String,
    ) -> Reloader {
        let mut r = Reloader {
            settings_file,
            themes_dir,
            keymaps_dir,
            theme_flag,
            keymap_flag,
            no_color,
            colors,
            theme,
            keymap,
            seen: vec![],
        };
        r.seen = r
            .watched()
            .into_iter()
            .map(|p| (p.clone(), mtime(&p)))
            .collect();
        r
    }

    fn watched(&self) -> Vec<PathBuf> {
        vec![
            self.settings_file.clone(),
            self.themes_dir.join(format!("{}.yaml", self.theme)),
            self.keymaps_dir.join(format!("{}.yaml", self.keymap)),
        ]
    }

    /// Look at the files; what changed, loaded (or why it could not be).
    pub fn poll(&mut self) -> Vec<Reloaded> {
        let now: Vec<(PathBuf, Option<SystemTime>)> = self
            .watched()
            .into_iter()
            .map(|p| (p.clone(), mtime(&p)))
            .collect();
        if now == self.seen {
            return vec![];
        }
        let changed = |i: usize| now.get(i).map(|x| &x.1) != self.seen.get(i).map(|x| &x.1);
        let mut out = Vec::new();
        let (mut theme_changed, mut keymap_changed) = (changed(1), changed(2));
        if changed(0) {
            match crate::config::Settings::load(&self.settings_file) {
                Ok(s) => {
                    let t = super::theme::choose(
                        self.no_color,
                        self.theme_flag.as_deref(),
                        None,
                        s.theme.as_deref(),
                    )
                    .to_string();
                    let k = self
                        .keymap_flag
                        .clone()
                        .or(s.keymap.clone())
                        .unwrap_or_else(|| "default".into());
                    theme_changed |= t != self.theme;
                    keymap_changed |= k != self.keymap;
                    self.theme = t;
                    self.keymap = k;
                }
                Err(e) => out.push(Reloaded::Failed(format!(
                    "settings not reloaded, keeping the running ones: {e:#}"
                ))),
            }
        }
        if theme_changed {
            match super::theme::load(&self.theme, Some(&self.themes_dir)) {
                Ok(t) => out.push(Reloaded::Theme(t.fitted(self.colors))),
                Err(e) => out.push(Reloaded::Failed(format!(
                    "theme {} not reloaded, keeping the running one: {e}",
                    self.theme
                ))),
            }
        }
        if keymap_changed {
            match super::keymap::load(&self.keymap, Some(&self.keymaps_dir)) {
                Ok(k) => out.push(Reloaded::Keymap(k)),
                Err(e) => out.push(Reloaded::Failed(format!(
                    "keymap {} not reloaded, keeping the running one: {e}",
                    self.keymap
                ))),
            }
        }
        // the names may have changed: look at their files from now on
        self.seen = self
            .watched()
            .into_iter()
            .map(|p| (p.clone(), mtime(&p)))
            .collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_is_loaded_and_a_broken_one_is_refused_with_its_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let themes = dir.path().join("themes");
        std::fs::create_dir_all(&themes).expect("mkdir");
        let file = themes.join("mine.yaml");
        std::fs::write(&file, "name: mine\nextends: default\n").expect("write");
        let mut r = Reloader::new(
            dir.path().join("config.yaml"),
            themes.clone(),
            dir.path().join("keymaps"),
            Some("mine".into()),
            None,
            false,
            Colors::Indexed256,
            "mine".into(),
            "default".into(),
        );
        assert!(r.poll().is_empty(), "nothing changed");
        let bump = |text: &str| {
            std::fs::write(&file, text).expect("write");
            let f = std::fs::File::options()
                .write(true)
                .open(&file)
                .expect("open");
            let later = SystemTime::now() + std::time::Duration::from_secs(5);
            f.set_modified(later).expect("mtime");
        };
        bump("name: mine\nextends: default\nstyles:\n  header: {bg: red}\n");
        assert!(matches!(r.poll().as_slice(), [Reloaded::Theme(_)]));
        bump("name: mine\nstyles: [\n");
        match r.poll().as_slice() {
            [Reloaded::Failed(e)] => {
                assert!(
                    e.starts_with("theme mine not reloaded, keeping the running one: ")
                        && e.contains("mine.yaml:2:"),
                    "{e}"
                )
            }
            other => panic!("{}", other.len()),
        }
    }
}
