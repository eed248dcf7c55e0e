//! Keeping the store's files to the gateway's user: the data directory is `0700`, the SQLite
//! database and its `-wal`/`-shm` files (and the generated encryption key) are `0600`. Files are
//! created with that mode before anything is written to them; an existing file or directory that
//! other users could read is narrowed, with a warning (it may have been copied meanwhile).

use std::path::Path;

/// Creates `dir` (and missing parents) as `0700`; narrows it to `0700` if it exists and other
/// users may read or enter it.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    narrow(dir, 0o700)
}

/// Creates `file` empty as `0600` if it does not exist; narrows it to `0600` if it does and
/// other users may read it.
pub fn private_file(file: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    drop(opts.open(file)?);
    narrow(file, 0o600)
}

/// Narrows the SQLite database `file` and its `-wal` and `-shm` files, those that exist, to
/// `0600`.
pub fn narrow_sqlite_files(file: &Path) -> std::io::Result<()> {
    let name = file.as_os_str();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = name.to_owned();
        path.push(suffix);
        match narrow(Path::new(&path), 0o600) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Sets `path`'s mode to `mode` when it grants anything to group or others.
#[cfg(unix)]
fn narrow(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            // Not the owner (a directory provided by the deployment): say so, and go on.
            if e.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(e);
            }
            tracing::warn!(
                path = %path.display(),
                was = format_args!("{current:o}"),
                "other local users could read this store path and the gateway cannot narrow \
                 it (not its owner): make it {mode:o}",
            );
            return Ok(());
        }
        tracing::warn!(
            path = %path.display(),
            was = format_args!("{current:o}"),
            now = format_args!("{mode:o}"),
            "other local users could read this store file; its mode is narrowed (if it held \
             secrets in clear, consider them seen: rotate signing keys and upstream keys)"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn narrow(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_private_and_wide_ones_are_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("x.db");
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::write(&db, b"kept").unwrap();
        for p in [&db, &dir.join("x.db-wal")] {
            std::fs::write(p, b"kept").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        private_file(&db).unwrap();
        narrow_sqlite_files(&db).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("x.db-wal")), 0o600);
        assert_eq!(std::fs::read(&db).unwrap(), b"kept", "not truncated");
    }
}
