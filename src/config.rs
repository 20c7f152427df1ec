//! Where meshdeck keeps things (XDG base directories on every platform, as k9s does).
//!
//! - config: `$MESHDECK_CONFIG_DIR`, else `$XDG_CONFIG_HOME/meshdeck` (`~/.config/meshdeck`)
//! - state:  `$MESHDECK_STATE_DIR`, else `$XDG_STATE_HOME/meshdeck` (`~/.local/state/meshdeck`)
//! - cache:  `$XDG_CACHE_HOME/meshdeck` (`~/.cache/meshdeck`)

use anyhow::Context;
use etcetera::BaseStrategy;
pub use meshdeck_kube::files::{private_append, private_dir, write_private};
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

/// Per-context settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContextSettings {
    /// Never send a mutating request to this context.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Theme for this context (e.g. a loud one for production).
    #[serde(default)]
    pub theme: Option<String>,
    /// Namespaces to watch one by one when this context may not list a kind in all
    /// namespaces (its own namespace is always watched).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// This cluster's own Prometheus (`http://prometheus.example:9090`): its answers are
    /// this cluster's signals.
    #[serde(default)]
    pub prometheus: Option<String>,
}

/// How golden signals are read (`signals:` in the settings).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignalSettings {
    /// Seconds between refreshes.
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// Seconds each request may take.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// At most this many sidecars scraped per refresh when no Prometheus answers.
    #[serde(default = "default_max_pods")]
    pub max_pods: usize,
    /// Look for a `prometheus` Service in `istio-system` through the API server.
    #[serde(default = "yes")]
    pub discover: bool,
    /// Without Prometheus, read the sidecars' own metrics through the pod proxy.
    #[serde(default = "yes")]
    pub sidecars: bool,
    /// The rate window of the queries (`1m`; Prometheus duration syntax).
    #[serde(default = "default_window")]
    pub window: String,
    /// Traffic health tolerances (Kiali's `health_config.rate`); default: Kiali's.
    #[serde(default)]
    pub rate: Vec<meshdeck_core::signals::health::RuleSpec>,
}

fn default_interval() -> u64 {
    15
}
fn default_window() -> String {
    meshdeck_core::signals::WINDOW.to_string()
}
fn default_timeout() -> u64 {
    5
}
fn default_max_pods() -> usize {
    200
}
fn yes() -> bool {
    true
}

impl Default for SignalSettings {
    fn default() -> Self {
        SignalSettings {
            interval: default_interval(),
            timeout: default_timeout(),
            max_pods: default_max_pods(),
            discover: true,
            sidecars: true,
            window: default_window(),
            rate: Vec::new(),
        }
    }
}

/// The settings file (`config.yaml`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Contexts to connect to when no --context/--all-contexts is given.
    #[serde(default)]
    pub fleet: Vec<String>,
    /// Read-only for every context (a context's `readOnly` overrides it).
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub contexts: std::collections::BTreeMap<String, ContextSettings>,
    /// What meshdeck calls each cluster: a kubeconfig cluster entry's name (or a server URL)
    /// mapped to the name used in the CLUSTER column, policies' `clusterName` and the
    /// `meshdeck.io/cluster` annotation. Unnamed clusters keep their entry's name.
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, String>,
    /// The console's theme (a name in the themes directory or a shipped one).
    #[serde(default)]
    pub theme: Option<String>,
    /// The console's keymap (`default`, `vim`, or a name in the keymaps directory).
    #[serde(default)]
    pub keymap: Option<String>,
    /// One Prometheus for every cluster (`http://prometheus.example:9090`); its series carry
    /// Istio's `source_cluster`/`destination_cluster` labels with meshdeck's cluster names.
    #[serde(default)]
    pub prometheus: Option<String>,
    #[serde(default)]
    pub signals: SignalSettings,
}

impl Settings {
    /// The signal refresh's configuration for these targets (per-context Prometheus URLs
    /// are keyed by the context's cluster), and the tolerances; errors name the field.
    pub fn signal_config(
        &self,
        targets: &[crate::fleet::Target],
    ) -> anyhow::Result<(
        meshdeck_kube::signals::Config,
        meshdeck_core::signals::health::Tolerances,
    )> {
        let s = &self.signals;
        anyhow::ensure!(s.interval >= 1, "signals.interval: at least 1 second");
        anyhow::ensure!(s.timeout >= 1, "signals.timeout: at least 1 second");
        let w = s.window.trim_end_matches(['s', 'm', 'h']);
        anyhow::ensure!(
            !w.is_empty() && w.len() < s.window.len() && w.chars().all(|c| c.is_ascii_digit()),
            "signals.window: {:?} is not a duration like 30s, 1m or 5m",
            s.window
        );
        let tolerances = if s.rate.is_empty() {
            meshdeck_core::signals::health::Tolerances::default()
        } else {
            meshdeck_core::signals::health::Tolerances::new(&s.rate)
                .map_err(|e| anyhow::anyhow!("{e}"))?
        };
        let mut per_cluster = std::collections::BTreeMap::new();
        for t in targets {
            if let Some(url) = std::iter::once(&t.context)
                .chain(&t.aliases)
                .find_map(|c| self.contexts.get(c).and_then(|c| c.prometheus.clone()))
            {
                per_cluster.insert(t.cluster.clone(), url);
            }
        }
        Ok((
            meshdeck_kube::signals::Config {
                interval: std::time::Duration::from_secs(s.interval),
                timeout: std::time::Duration::from_secs(s.timeout),
                max_pods: s.max_pods,
                shared: self.prometheus.clone(),
                per_cluster,
                discover: s.discover,
                sidecars: s.sidecars,
                window: s.window.clone(),
            },
            tolerances,
        ))
    }

    /// Whether a context is read-only: its own `readOnly`, else the global one.
    pub fn context_read_only(&self, context: &str) -> bool {
        self.contexts
            .get(context)
            .and_then(|c| c.read_only)
            .unwrap_or(self.read_only)
    }

    /// The namespaces configured for a context.
    pub fn context_namespaces(&self, context: &str) -> Vec<String> {
        self.contexts
            .get(context)
            .map(|c| c.namespaces.clone())
            .unwrap_or_default()
    }

    /// The first per-context theme among these contexts.
    pub fn context_theme<'a>(
        &'a self,
        contexts: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        contexts
            .into_iter()
            .find_map(|c| self.contexts.get(c).and_then(|s| s.theme.as_deref()))
    }
}

impl Settings {
    /// Load the settings file; a missing file is the defaults. Errors name file:line:col.
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if text.trim().is_empty() {
            return Ok(Settings::default());
        }
        crate::yaml::from_str(&text).map_err(|e| match (e.line, e.column) {
            (Some(l), Some(c)) => anyhow::anyhow!("{}:{l}:{c}: {}", path.display(), e.message),
            _ => anyhow::anyhow!("{}: {}", path.display(), e.message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_load_and_bad_fields_name_the_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.yaml");
        assert_eq!(
            Settings::load(&p).expect("missing is default"),
            Settings::default()
        );
        std::fs::write(
            &p,
            "fleet: [eu-west, us-east]\ncontexts:\n  prod:\n    readOnly: true\nclusters:\n  gke_proj_europe-west1_prod: prod\n",
        )
        .expect("write");
        let s = Settings::load(&p).expect("load");
        assert_eq!(s.fleet, vec!["eu-west", "us-east"]);
        assert_eq!(s.contexts["prod"].read_only, Some(true));
        assert_eq!(s.clusters["gke_proj_europe-west1_prod"], "prod");
        std::fs::write(&p, "fleet: [a]\nflet: [b]\n").expect("write");
        let e = Settings::load(&p).expect_err("unknown field").to_string();
        assert!(e.starts_with(&format!("{}:2:", p.display())), "{e}");
        assert!(e.contains("flet"), "{e}");
    }
}
