//! What meshdeck reads from and writes to the local disk besides the kubeconfig: policy files
//! and directories, and the private state files (audit log, drafts).

use crate::policy::{Diagnostic, Loaded, Policy, PolicyId, Severity, check_duplicates, load_str};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Load files and directories (every `*.yaml` / `*.yml` below a directory, in name order).
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded::default();
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files, &mut out);
    }
    for f in files {
        let name = f.display().to_string();
        match std::fs::read_to_string(&f) {
            Ok(text) => {
                let mut one = load_str(&text, &name);
                // Duplicates are checked once over everything below.
                one.diagnostics
                    .retain(|d| !d.message.starts_with("duplicate "));
                out.extend(one);
            }
            Err(e) => out.diagnostics.push(Diagnostic {
                severity: Severity::Error,
                origin: name,
                pos: None,
                path: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    check_duplicates(&mut out);
    out
}

fn collect_files(p: &Path, files: &mut Vec<PathBuf>, out: &mut Loaded) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                out.diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    origin: p.display().to_string(),
                    pos: None,
                    path: String::new(),
                    message: format!("cannot read directory: {e}"),
                });
                return;
            }
        };
        entries.sort();
        for e in entries {
            let is_yaml = e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x == "yaml" || x == "yml");
            if e.is_dir() || is_yaml {
                collect_files(&e, files, out);
            }
        }
    } else {
        files.push(p.to_path_buf());
    }
}

/// Files first, then what the fleet stores; a file's policy replaces the stored one of the same
/// identity (the file is the edit about to be applied).
pub fn load_all(files: &[PathBuf], snap: &crate::model::Snapshot) -> Loaded {
    let mut out = if files.is_empty() {
        Loaded::default()
    } else {
        load_paths(files)
    };
    let stored = crate::policy::load_snapshot(snap);
    let ids: std::collections::HashSet<PolicyId> = out.policies.iter().map(Policy::id).collect();
    out.policies.extend(
        stored
            .policies
            .into_iter()
            .filter(|p| !ids.contains(&p.id())),
    );
    out.roles.extend(stored.roles);
    out.bindings.extend(stored.bindings);
    out.diagnostics.extend(stored.diagnostics);
    out.invalid.extend(stored.invalid);
    out
}

/// Create `dir` (and its parents) private to the user (0700 on unix): the state directory
/// holds policy drafts and the audit log.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", dir.display()))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
    }
}

/// Open `path` for appending, created private to the user (0600 on unix).
pub fn private_append(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600);
        let f = o
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    {
        o.open(path)
            .with_context(|| format!("opening {}", path.display()))
    }
}

/// Write `text` to `path` atomically (a temporary file, then a rename), private to the user.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let tmp = path.with_extension("meshdeck-tmp");
    let mut o = std::fs::OpenOptions::new();
    o.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(&tmp).with_context(|| format!("{}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("{}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))
}
