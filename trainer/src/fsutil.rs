//! Crash-safe file writes: write a temporary file beside the target, fsync it, rename it over
//! the target, fsync the directory. A crash leaves either the old file or the new one, never a
//! half-written one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name used while writing `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_as(path, bytes, None)
}

/// [`write_atomic`], passing the fault points `kill-in-KIND-write`, `kill-before-KIND-rename` and
/// `kill-after-KIND-rename` of [`crate::faults`] when `kind` is given.
pub fn write_atomic_as(path: &Path, bytes: &[u8], kind: Option<&str>) -> Result<()> {
    let point = |at: &str| {
        if let Some(kind) = kind {
            crate::faults::kill_point(&at.replace("KIND", kind));
        }
    };
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        f.write_all(head)?;
        point("kill-in-KIND-write");
        f.write_all(tail)?;
        f.sync_all()?;
        drop(f);
        point("kill-before-KIND-rename");
        std::fs::rename(&tmp, path)?;
        point("kill-after-KIND-rename");
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Persist the rename; not every platform can open a directory, so this is best effort.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Removes temporary files left in `dir` by a crashed writer.
pub fn remove_stale_temps(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().contains(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
