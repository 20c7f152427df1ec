//! Which clusters to talk to: kubeconfig files (`--kubeconfig`, `$KUBECONFIG` path lists,
//! `~/.kube/config`), merged as kubectl merges them, and the chosen contexts. Errors name the
//! file and the context.

use kube::config::{ExecInteractiveMode, KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};

/// One cluster to connect to.
#[derive(Clone)]
pub struct Target {
    /// The context's name; meshdeck calls the cluster by it.
    pub context: String,
    pub server: String,
    /// The kubeconfig user entry of the context.
    pub user: String,
    /// Who the session acts as on this cluster: the impersonated user (`--as`), else the
    /// kubeconfig user (the writer asks the server who that is before it writes).
    pub identity: String,
    /// Nothing may be written here: its clients refuse every request that is not a read.
    pub readonly: bool,
    pub config: kube::Config,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("context", &self.context)
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
    #[error("context {context:?} in kubeconfig {file}: {message}")]
    Context {
        context: String,
        file: String,
        message: String,
    },
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
    let (targets, mut broken) = resolve(files, selection).await?;
    match broken.drain(..).next() {
        Some(e) => Err(e),
        None => Ok(targets),
    }
}

/// Resolve the chosen contexts: the ones that work, and the ones that do not (a context whose
/// cluster or user entry is missing or unreadable), so one broken context fails only itself.
/// An error in the files, or a context that does not exist, still fails the whole.
pub async fn resolve(
    files: &[PathBuf],
    selection: &Selection,
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
    // Token refreshes must never write to the terminal: exec plugins run non-interactively,
    // with stderr captured (kube-rs captures it when the mode is Never).
    for ai in &mut kc.auth_infos {
        if let Some(auth) = ai.auth_info.as_mut()
            && let Some(exec) = auth.exec.as_mut()
        {
            exec.interactive_mode = Some(ExecInteractiveMode::Never);
        }
    }
    let mut out = Vec::new();
    let mut broken = Vec::new();
    for ctx in chosen {
        let named = kc.contexts.iter().find(|c| c.name == ctx);
        let user = named
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .unwrap_or_default();
        let config = match kube::Config::from_custom_kubeconfig(
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
        out.push(Target {
            server: config.cluster_url.to_string(),
            context: ctx,
            identity: user.clone(),
            user,
            readonly: true,
            config,
        });
    }
    Ok((out, broken))
}

/// The kubeconfig files to read: the flag, else the defaults.
pub fn files(flag: Option<&Path>, defaults: &[PathBuf]) -> Vec<PathBuf> {
    match flag {
        Some(p) => vec![p.to_path_buf()],
        None => defaults.to_vec(),
    }
}
