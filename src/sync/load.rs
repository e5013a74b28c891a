//! Reads every `*.sync` file of a directory (in name order) and parses it, collecting the errors of
//! all files, including sync names defined in more than one file; optionally checks them too.

use std::path::Path;

use concept_core::ConceptSpec;

use super::ast::SyncFile;
use super::check::check;
use super::error::SyncError;
use super::names::duplicate_sync_names;
use super::parse::parse_sync_file;

/// Parses every `*.sync` file directly inside `dir`, sorted by file name. Files are named in
/// positions as `dir` joined with the file name (e.g. `syncs/liked.sync`).
///
/// Fails with every error found: unreadable directory or files, files that are not UTF-8 (located
/// at the first bad byte), syntax errors, and a sync name used twice (naming both places).
pub fn load_dir(dir: &Path) -> Result<Vec<SyncFile>, Vec<SyncError>> {
    let dir_name = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![SyncError::whole_file(
            &dir_name,
            format!("cannot read the sync directory: {e}"),
        )]
    })?;
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "sync") && path.is_file() {
                    paths.push(path);
                }
            }
            Err(e) => errors.push(SyncError::whole_file(
                &dir_name,
                format!("cannot list the sync directory: {e}"),
            )),
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut files = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                errors.push(SyncError::whole_file(&name, format!("cannot read the file: {e}")));
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                errors.push(not_utf8(&name, e.as_bytes(), e.utf8_error()));
                continue;
            }
        };
        match parse_sync_file(&name, &text) {
            Ok(file) => files.push(file),
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    errors.extend(duplicate_sync_names(&files));
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// [`load_dir`] followed by [`check`] against `concepts`: the syncs the engine can run, or every
/// problem found (the checker runs only when every file parsed).
pub fn load_checked(dir: &Path, concepts: &[ConceptSpec]) -> Result<Vec<SyncFile>, Vec<SyncError>> {
    let files = load_dir(dir)?;
    let errors = check(&files, concepts);
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// "not valid UTF-8", located at the first invalid byte.
fn not_utf8(name: &str, bytes: &[u8], error: std::str::Utf8Error) -> SyncError {
    let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
    // The prefix is valid UTF-8 by definition of `valid_up_to`.
    let prefix = std::str::from_utf8(valid).unwrap_or_default();
    let line = prefix.matches('\n').count() + 1;
    let col = prefix.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    let byte = bytes
        .get(error.valid_up_to())
        .map(|b| format!(" (byte 0x{b:02x})"))
        .unwrap_or_default();
    SyncError::new(
        name,
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
        format!("the file is not valid UTF-8{byte}"),
    )
}
