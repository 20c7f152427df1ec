//! Which clusters to talk to: kubeconfig files (`--kubeconfig`, `$KUBECONFIG` path lists,
//! `~/.kube/config`), merged as kubectl merges them, and the chosen contexts. Errors name the
//! file and the context.

use anyhow::{Context, bail};
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

/// Read and merge kubeconfig files (the first file that sets a value wins, as in kubectl).
pub fn read(files: &[PathBuf]) -> anyhow::Result<Kubeconfig> {
    let mut merged: Option<Kubeconfig> = None;
    for f in files {
        if !f.exists() {
            // kubectl ignores missing files in $KUBECONFIG; only an explicit single file must exist
            if files.len() == 1 {
                bail!("kubeconfig {} does not exist", f.display());
            }
            continue;
        }
        let kc = Kubeconfig::read_from(f)
            .map_err(|e| anyhow::anyhow!("{}: {}", f.display(), e))
            .with_context(|| format!("reading kubeconfig {}", f.display()))?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .with_context(|| format!("merging kubeconfig {}", f.display()))?,
        });
    }
    merged.with_context(|| {
        format!(
            "no kubeconfig found (looked in {})",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
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

/// Resolve the chosen contexts into client configurations.
pub async fn targets(files: &[PathBuf], selection: &Selection) -> anyhow::Result<Vec<Target>> {
    let mut kc = read(files)?;
    let where_ = describe(files);
    let names: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    let chosen: Vec<String> = match selection {
        Selection::All => names.clone(),
        Selection::Current => match kc.current_context.clone().filter(|c| !c.is_empty()) {
            Some(c) => vec![c],
            None => bail!(
                "kubeconfig {where_} has no current context; pass --context NAME or --all-contexts (contexts: {})",
                names.join(", ")
            ),
        },
        Selection::Named(list) => list.clone(),
    };
    if chosen.is_empty() {
        bail!("kubeconfig {where_} has no contexts");
    }
    for c in &chosen {
        if !names.contains(c) {
            bail!(
                "context {c:?} not found in kubeconfig {where_} (contexts: {})",
                names.join(", ")
            );
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
    for ctx in chosen {
        let named = kc.contexts.iter().find(|c| c.name == ctx);
        let user = named
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .unwrap_or_default();
        let config = kube::Config::from_custom_kubeconfig(
            kc.clone(),
            &KubeConfigOptions {
                context: Some(ctx.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("context {ctx:?} in kubeconfig {where_}"))?;
        out.push(Target {
            server: config.cluster_url.to_string(),
            context: ctx,
            identity: user.clone(),
            user,
            readonly: true,
            config,
        });
    }
    Ok(out)
}

/// The kubeconfig files to read: the flag, else the defaults.
pub fn files(flag: Option<&Path>, defaults: &[PathBuf]) -> Vec<PathBuf> {
    match flag {
        Some(p) => vec![p.to_path_buf()],
        None => defaults.to_vec(),
    }
}
