//! What meshdeck reads from and writes to the local disk besides the kubeconfig: policy files
//! and directories, and the private state files (audit log, drafts).

use crate::policy::{
    Diagnostic, Loaded, Policy, PolicyId, Severity, check_duplicates, load_documents,
};
use std::path::{Path, PathBuf};

/// A local file or directory meshdeck could not create, open or write, named with what it
/// was doing.
#[derive(Debug, thiserror::Error)]
#[error("{doing} {}: {source}", path.display())]
pub struct FileError {
    pub doing: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn err<'a>(doing: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError {
        doing,
        path: path.to_path_buf(),
        source,
    }
}

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
                // duplicates are checked once over everything below
                out.extend(load_documents(&text, &name));
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
    out.invalid_documents += stored.invalid_documents;
    out
}

/// Create `dir` (and its parents) private to the user (0700 on unix): the state directory
/// holds policy drafts and the audit log.
pub fn private_dir(dir: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err("creating", dir))?;
        }
        let meta = std::fs::metadata(dir).map_err(err("reading", dir))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(err("making private", dir))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(err("creating", dir))
    }
}

/// Open `path` for appending, created private to the user (0600 on unix).
pub fn private_append(path: &Path) -> Result<std::fs::File, FileError> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600);
        let f = o.open(path).map_err(err("opening", path))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err("making private", path))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    {
        o.open(path).map_err(err("opening", path))
    }
}

/// Write `text` to `path` atomically (a temporary file, then a rename), private to the user.
pub fn write_private(path: &Path, text: &str) -> Result<(), FileError> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(err("creating", d))?;
    }
    let tmp = path.with_extension("meshdeck-tmp");
    let mut o = std::fs::OpenOptions::new();
    o.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(&tmp).map_err(err("opening", &tmp))?;
    f.write_all(text.as_bytes()).map_err(err("writing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err("renaming into", path))
}
