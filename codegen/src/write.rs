//! Writes generated files into a directory: only files whose content changed are touched,
//! and, when asked, generated files no longer produced are removed (never a file without
//! our header).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::HEADER_MARK;

/// What [`write`](fn@write) did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files created or rewritten.
    pub written: Vec<PathBuf>,
    /// Files left alone because they were already up to date.
    pub unchanged: Vec<PathBuf>,
    /// Stale generated files removed.
    pub removed: Vec<PathBuf>,
}

/// Writes `files` (name → content) into `dir`; with `remove_stale`, also removes the
/// generated files there that are not among them.
pub fn write(dir: &Path, files: &BTreeMap<String, String>, remove_stale: bool) -> io::Result<WriteReport> {
    std::fs::create_dir_all(dir)?;
    let mut report = WriteReport::default();
    for (name, content) in files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == *content) {
            report.unchanged.push(path);
        } else {
            std::fs::write(&path, content)?;
            report.written.push(path);
        }
    }
    if !remove_stale {
        return Ok(report);
    }
    for stale in stale_files(dir, files)? {
        std::fs::remove_file(&stale)?;
        report.removed.push(stale);
    }
    Ok(report)
}

/// Generated `.rs` files in `dir` that are not among `files`.
pub fn stale_files(dir: &Path, files: &BTreeMap<String, String>) -> io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(stale);
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if path.extension().is_some_and(|ext| ext == "rs")
            && !files.contains_key(&name)
            && std::fs::read_to_string(&path).is_ok_and(|text| text.starts_with(HEADER_MARK))
        {
            stale.push(path);
        }
    }
    stale.sort();
    Ok(stale)
}
