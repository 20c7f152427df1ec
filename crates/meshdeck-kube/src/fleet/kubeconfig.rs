//! Which clusters to talk to: kubeconfig files (`--kubeconfig`, `$KUBECONFIG` path lists,
//! `~/.kube/config`), merged as kubectl merges them, and the chosen contexts. Errors name the
//! file and the context.

use kube::config::{ExecInteractiveMode, KubeConfigOptions, Kubeconfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One cluster to connect to: one API server (URL and CA), however many contexts reach it.
#[derive(Clone)]
pub struct Target {
    /// The cluster's name, independent of context names: the settings' `clusters:` name for
    /// its kubeconfig cluster entry (or server URL), else the entry's own name. The
    /// `meshdeck.io/cluster` annotation, policies' `clusterName`, the CLUSTER column and the
    /// plan all use it.
    pub cluster: String,
    /// The context whose credentials are used (the first selected one reaching this server).
    pub context: String,
    /// The other selected contexts that reach the same API server: not a second cluster.
    pub aliases: Vec<String>,
    pub server: String,
    /// The kubeconfig user entry of the context.
    pub user: String,
    /// Who the session acts as on this cluster: the impersonated user (`--as`), else the
    /// kubeconfig user (the writer asks the server who that is before it writes).
    pub identity: String,
    /// Nothing may be written here: its clients refuse every request that is not a read.
    pub readonly: bool,
    /// Namespaces to watch one by one where a kind may not be listed in all namespaces (the
    /// settings' `namespaces:` for the context); the context's own namespace always counts.
    pub namespaces: Vec<String>,
    /// The user's credential plugin, run by meshdeck off the runtime's threads (it is taken
    /// out of `config`, so kube-rs never runs it).
    pub credentials: Option<Arc<crate::credentials::ExecCredentials>>,
    pub config: kube::Config,
    /// How fast this cluster is asked: every client of the target shares it.
    pub pace: Arc<crate::pace::Pace>,
    /// What the cluster's answers hold while they arrive: every client of the target shares
    /// the budget (`session::MAX_IN_FLIGHT`).
    pub in_flight: Arc<crate::session::InFlight>,
}

impl Target {
    /// The namespaces a kind forbidden cluster-wide is watched in: the context's, then the
    /// configured ones.
    pub fn watch_namespaces(&self) -> Vec<String> {
        let mut v = vec![self.config.default_namespace.clone()];
        for n in &self.namespaces {
            if !v.contains(n) {
                v.push(n.clone());
            }
        }
        v.retain(|n| !n.is_empty());
        v
    }

    /// Who the session is in this cluster, as the header, `status` and the audit say it: the
    /// name the server gave (`said: Some(Ok)`), else the impersonated user (the server was
    /// asked to act as it), else the kubeconfig user entry's name marked as such, never as if
    /// the server had said it (`Some(Err)`: the server cannot say; None: not asked or not
    /// answered yet).
    pub fn shown_identity(&self, said: Option<Result<&str, ()>>) -> String {
        match said {
            Some(Ok(u)) => u.to_string(),
            _ if self.config.auth_info.impersonate.is_some() => self.identity.clone(),
            Some(Err(())) => format!("{} (kubeconfig user; the server cannot say)", self.identity),
            None => format!("{} (kubeconfig user)", self.identity),
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("cluster", &self.cluster)
            .field("context", &self.context)
            .field("aliases", &self.aliases)
            .field("server", &self.server)
            .field("user", &self.user)
            .field("identity", &self.identity)
            .field("readonly", &self.readonly)
            .finish()
    }
}

/// Which contexts to use.
#[derive(Debug, Clone, Default)]
pub enum Selection {
    /// The kubeconfig's current context.
    #[default]
    Current,
    All,
    Named(Vec<String>),
}

/// What is wrong with the kubeconfig or the chosen contexts; each names the file and context.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("kubeconfig {0} does not exist")]
    Missing(PathBuf),
    #[error("reading kubeconfig {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("merging kubeconfig {}: {message}", path.display())]
    Merge { path: PathBuf, message: String },
    #[error("no kubeconfig found (looked in {0})")]
    NotFound(String),
    #[error("kubeconfig {file} has no current context; pass --context NAME or --all-contexts (contexts: {})", contexts.join(", "))]
    NoCurrentContext { file: String, contexts: Vec<String> },
    #[error("kubeconfig {0} has no contexts")]
    NoContexts(String),
    #[error("context {context:?} not found in kubeconfig {file} (contexts: {})", contexts.join(", "))]
    UnknownContext {
        context: String,
        file: String,
        contexts: Vec<String>,
    },
    #[error(
        "context {context:?} in kubeconfig {file}: cluster name {name:?} already names {other} (context {other_context:?}); give one of them another name in the settings' `clusters:` map"
    )]
    NameTaken {
        context: String,
        file: String,
        name: String,
        other: String,
        other_context: String,
    },
    #[error("context {context:?} in kubeconfig {file}: {message}")]
    Context {
        context: String,
        file: String,
        message: String,
    },
}

impl KubeconfigError {
    /// The context this error is about, when it is about one.
    pub fn context(&self) -> Option<&str> {
        match self {
            KubeconfigError::UnknownContext { context, .. }
            | KubeconfigError::NameTaken { context, .. }
            | KubeconfigError::Context { context, .. } => Some(context),
            _ => None,
        }
    }
}

/// Read and merge kubeconfig files (the first file that sets a value wins, as in kubectl).
pub fn read(files: &[PathBuf]) -> Result<Kubeconfig, KubeconfigError> {
    let mut merged: Option<Kubeconfig> = None;
    for f in files {
        if !f.exists() {
            // kubectl ignores missing files in $KUBECONFIG; only an explicit single file must exist
            if files.len() == 1 {
                return Err(KubeconfigError::Missing(f.clone()));
            }
            continue;
        }
        let kc = Kubeconfig::read_from(f).map_err(|e| KubeconfigError::Read {
            path: f.clone(),
            message: e.to_string(),
        })?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).map_err(|e| KubeconfigError::Merge {
                path: f.clone(),
                message: e.to_string(),
            })?,
        });
    }
    merged.ok_or_else(|| {
        KubeconfigError::NotFound(
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })
}

fn describe(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Resolve the chosen contexts into client configurations; any broken context is an error.
pub async fn targets(
    files: &[PathBuf],
    selection: &Selection,
) -> Result<Vec<Target>, KubeconfigError> {
    let (targets, mut broken) = resolve(files, selection, &BTreeMap::new()).await?;
    match broken.drain(..).next() {
        Some(e) => Err(e),
        None => Ok(targets),
    }
}

/// Resolve the chosen contexts: the ones that work, and the ones that do not (a context whose
/// cluster or user entry is missing or unreadable), so one broken context fails only itself.
/// An error in the files, or a context that does not exist, still fails the whole.
///
/// Contexts that reach the same API server (server URL and CA) are one target: the first
/// selected one's credentials are used, the others are its `aliases`. `cluster_names` maps a
/// kubeconfig cluster entry's name, or a server URL, to the name meshdeck calls it.
pub async fn resolve(
    files: &[PathBuf],
    selection: &Selection,
    cluster_names: &BTreeMap<String, String>,
) -> Result<(Vec<Target>, Vec<KubeconfigError>), KubeconfigError> {
    let mut kc = read(files)?;
    let where_ = describe(files);
    let names: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    let chosen: Vec<String> = match selection {
        Selection::All => names.clone(),
        Selection::Current => match kc.current_context.clone().filter(|c| !c.is_empty()) {
            Some(c) => vec![c],
            None => {
                return Err(KubeconfigError::NoCurrentContext {
                    file: where_,
                    contexts: names,
                });
            }
        },
        Selection::Named(list) => list.clone(),
    };
    if chosen.is_empty() {
        return Err(KubeconfigError::NoContexts(where_));
    }
    for c in &chosen {
        if !names.contains(c) {
            return Err(KubeconfigError::UnknownContext {
                context: c.clone(),
                file: where_,
                contexts: names,
            });
        }
    }
    // Credential plugins never ask the terminal anything: non-interactive.
    for ai in &mut kc.auth_infos {
        if let Some(auth) = ai.auth_info.as_mut()
            && let Some(exec) = auth.exec.as_mut()
        {
            exec.interactive_mode = Some(ExecInteractiveMode::Never);
        }
    }
    // one plugin per kubeconfig user, shared by the contexts that use it
    let mut plugins: BTreeMap<String, Arc<crate::credentials::ExecCredentials>> = BTreeMap::new();
    let mut out: Vec<Target> = Vec::new();
    let mut broken = Vec::new();
    for ctx in chosen {
        let named = kc.contexts.iter().find(|c| c.name == ctx);
        let user = named
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .unwrap_or_default();
        let entry = named
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .unwrap_or_default();
        let mut config = match kube::Config::from_custom_kubeconfig(
            kc.clone(),
            &KubeConfigOptions {
                context: Some(ctx.clone()),
                ..Default::default()
            },
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                broken.push(KubeconfigError::Context {
                    context: ctx.clone(),
                    file: where_.clone(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let credentials = config.auth_info.exec.take().map(|exec| {
            plugins
                .entry(user.clone())
                .or_insert_with(|| Arc::new(crate::credentials::ExecCredentials::new(exec)))
                .clone()
        });
        let server = config.cluster_url.to_string();
        if let Some(same) = out.iter_mut().find(|t| same_server(&t.config, &config)) {
            same.aliases.push(ctx);
            continue;
        }
        let cluster = cluster_names
            .get(&entry)
            .or_else(|| cluster_names.get(&server))
            .or_else(|| cluster_names.get(server.trim_end_matches('/')))
            .cloned()
            .unwrap_or_else(|| if entry.is_empty() { ctx.clone() } else { entry });
        if let Some(other) = out.iter().find(|t| t.cluster == cluster) {
            broken.push(KubeconfigError::NameTaken {
                context: ctx,
                file: where_.clone(),
                name: cluster,
                other: other.server.clone(),
                other_context: other.context.clone(),
            });
            continue;
        }
        out.push(Target {
            cluster,
            server,
            context: ctx,
            aliases: vec![],
            identity: user.clone(),
            user,
            readonly: true,
            namespaces: vec![],
            credentials,
            config,
            pace: Default::default(),
            in_flight: Default::default(),
        });
    }
    Ok((out, broken))
}

/// Whether two client configurations reach the same API server: the same URL (scheme, host,
/// port, path) and the same certificate authority.
fn same_server(a: &kube::Config, b: &kube::Config) -> bool {
    let url = |c: &kube::Config| {
        let u = &c.cluster_url;
        format!(
            "{}://{}{}",
            u.scheme_str().unwrap_or("https"),
            u.authority()
                .map(|a| a.as_str().to_ascii_lowercase())
                .unwrap_or_default(),
            u.path().trim_end_matches('/')
        )
    };
    url(a) == url(b) && a.root_cert == b.root_cert
}

/// The kubeconfig files to read: the flag, else the defaults.
pub fn files(flag: Option<&Path>, defaults: &[PathBuf]) -> Vec<PathBuf> {
    match flag {
        Some(p) => vec![p.to_path_buf()],
        None => defaults.to_vec(),
    }
}
