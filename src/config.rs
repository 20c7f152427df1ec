//! Where meshdeck keeps things (XDG base directories on every platform, as k9s does).
//!
//! - config: `$MESHDECK_CONFIG_DIR`, else `$XDG_CONFIG_HOME/meshdeck` (`~/.config/meshdeck`)
//! - state:  `$MESHDECK_STATE_DIR`, else `$XDG_STATE_HOME/meshdeck` (`~/.local/state/meshdeck`)
//! - cache:  `$XDG_CACHE_HOME/meshdeck` (`~/.cache/meshdeck`)

use anyhow::Context;
use etcetera::BaseStrategy;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub settings_file: PathBuf,
    pub themes_dir: PathBuf,
    pub keymaps_dir: PathBuf,
    pub state_dir: PathBuf,
    pub log_file: PathBuf,
    pub audit_log: PathBuf,
    pub drafts_dir: PathBuf,
    pub demo_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// The kubeconfig files meshdeck reads by default, in order.
    pub kubeconfigs: Vec<PathBuf>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The default kubeconfig files: `$KUBECONFIG` (path-list) or `~/.kube/config`.
pub fn default_kubeconfigs(home: &Path) -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => vec![home.join(".kube").join("config")],
    }
}

impl Paths {
    pub fn resolve(log_override: Option<&Path>) -> anyhow::Result<Paths> {
        let base = etcetera::choose_base_strategy()
            .context("cannot find the home directory (set HOME)")?;
        let config_dir =
            env_path("MESHDECK_CONFIG_DIR").unwrap_or_else(|| base.config_dir().join("meshdeck"));
        let state_dir = env_path("MESHDECK_STATE_DIR").unwrap_or_else(|| {
            base.state_dir()
                .unwrap_or_else(|| base.data_dir())
                .join("meshdeck")
        });
        Ok(Paths {
            settings_file: config_dir.join("config.yaml"),
            themes_dir: config_dir.join("themes"),
            keymaps_dir: config_dir.join("keymaps"),
            log_file: log_override
                .map(Path::to_path_buf)
                .unwrap_or_else(|| state_dir.join("meshdeck.log")),
            audit_log: state_dir.join("audit.log"),
            drafts_dir: state_dir.join("drafts"),
            demo_dir: state_dir.join("demo"),
            cache_dir: base.cache_dir().join("meshdeck"),
            kubeconfigs: default_kubeconfigs(base.home_dir()),
            config_dir,
            state_dir,
        })
    }

    /// `key: value` lines, as `meshdeck info` prints them.
    pub fn to_text(&self) -> String {
        let kc: Vec<String> = self
            .kubeconfigs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let rows = [
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("config dir", self.config_dir.display().to_string()),
            ("settings", self.settings_file.display().to_string()),
            ("themes", self.themes_dir.display().to_string()),
            ("keymaps", self.keymaps_dir.display().to_string()),
            ("state dir", self.state_dir.display().to_string()),
            ("log", self.log_file.display().to_string()),
            ("audit log", self.audit_log.display().to_string()),
            ("drafts", self.drafts_dir.display().to_string()),
            ("demo fleet", self.demo_dir.display().to_string()),
            ("cache", self.cache_dir.display().to_string()),
            ("kubeconfig", kc.join(":")),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}
