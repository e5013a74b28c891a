//! One read of a user's `Library.xml`, with the seed's watermark rule: the file's modification
//! time is captured *before* the file is read and becomes the cursor's watermark. A read asked
//! for incrementally (the watch, the scheduled refresh) whose file still shows the confirmed
//! watermark reads nothing and hands nothing on (`complete: false`, no items); any other read
//! reads the whole file and is complete. A change written while a read runs moves the
//! modification time past the captured one, so the next look reads the file again: nothing
//! written during a read is hidden behind its watermark.

use crate::file::{self, FileError};
use crate::library_xml::Library;
use crate::model::{Credentials, Cursor};
use concept_core::time::format_rfc3339;
use serde::Serialize;
use serde_json::{Map, Value};
use source_kit::{Failure, Mode, NoUpdate, Outcome, ReadJob, Reporter};
use std::path::Path;

/// What a look at the file found.
#[derive(Debug)]
pub enum Look {
    /// The modification time is the watermark's: nothing was read.
    Unchanged,
    /// The file was read; `watermark` is its modification time captured before the read.
    Read { library: Library, watermark: String },
}

/// Looks at the file and reads it unless `base` (an incremental read's confirmed cursor) holds
/// its modification time. `before_read` runs between the capture and the read (tests write to
/// the file there, as an application might while a read runs).
pub fn look(
    path: &Path,
    base: Option<&Cursor>,
    progress: crate::library_xml::Progress<'_>,
    before_read: &mut dyn FnMut(),
) -> Result<Look, FileError> {
    let watermark = file::modified(path)?;
    if base.and_then(|b| b.watermark.as_deref()) == Some(watermark.as_str()) {
        return Ok(Look::Unchanged);
    }
    before_read();
    let library = file::read(path, progress)?;
    Ok(Look::Read { library, watermark })
}

impl From<FileError> for Failure {
    fn from(e: FileError) -> Self {
        Failure::new(e.code(), e)
    }
}

/// Items as the JSON objects a source's outcome carries.
pub fn maps<T: Serialize>(items: Vec<T>) -> Vec<Map<String, Value>> {
    items
        .into_iter()
        .filter_map(|item| match serde_json::to_value(item) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect()
}

pub async fn run(job: ReadJob<Credentials, Cursor>, report: Reporter<NoUpdate>) -> Result<Outcome<Cursor>, Failure> {
    let path = std::path::PathBuf::from(&job.connection.credentials.path);
    let base = job.incremental_base().cloned();
    let total = file::size(&path).unwrap_or(0);
    let reporter = report.clone();
    let looked = tokio::task::spawn_blocking(move || {
        let mut progress = |bytes: u64, _tracks: u64| reporter.progress("file", bytes, total.max(bytes));
        look(&path, base.as_ref(), &mut progress, &mut || {})
    })
    .await
    .map_err(|e| Failure::new("INTERNAL", format!("the read of the file stopped: {e}")))??;
    Ok(match looked {
        Look::Unchanged => Outcome {
            complete: false,
            cursor: job.cursor.clone().unwrap_or_default(),
            ..empty()
        },
        Look::Read { library, watermark } => {
            report.progress("file", total, total);
            Outcome {
                mode: Mode::Full,
                complete: true,
                tracks: maps(library.tracks),
                likes: maps(library.likes),
                plays: maps(library.plays),
                playlists: maps(library.playlists),
                skipped: library.skipped.tracks_without_id,
                unreadable: 0,
                cursor: Cursor {
                    watermark: Some(watermark),
                    full_at: Some(format_rfc3339(&job.now)),
                },
            }
        }
    })
}

fn empty() -> Outcome<Cursor> {
    Outcome {
        // Nothing read (the file did not move): an incremental read of nothing.
        mode: Mode::Incremental,
        complete: false,
        tracks: Vec::new(),
        likes: Vec::new(),
        plays: Vec::new(),
        playlists: Vec::new(),
        skipped: 0,
        unreadable: 0,
        cursor: Cursor::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(tracks: &[(&str, &str)]) -> String {
        let mut s = String::from("<?xml version=\"1.0\"?>\n<plist version=\"1.0\"><dict><key>Tracks</key><dict>\n");
        for (i, (pid, name)) in tracks.iter().enumerate() {
            s += &format!(
                "<key>{i}</key><dict><key>Track ID</key><integer>{i}</integer><key>Name</key><string>{name}</string><key>Persistent ID</key><string>{pid}</string></dict>\n"
            );
        }
        s + "</dict></dict></plist>\n"
    }

    fn set_mtime(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn the_watermark_is_captured_before_the_read_so_a_change_during_it_is_read_next_time() {
        let dir = std::env::temp_dir().join(format!("apple-watermark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("Library.xml");
        std::fs::write(&path, library(&[("A1", "Alpha")])).unwrap();
        set_mtime(&path, 1_800_000_000);

        // The first read: while it runs (after the capture), the application writes a second
        // track and the modification time moves.
        let mut during = || {
            std::fs::write(&path, library(&[("A1", "Alpha"), ("B2", "Bravo")])).unwrap();
            set_mtime(&path, 1_800_000_060);
        };
        let Look::Read {
            library: first,
            watermark,
        } = look(&path, None, &mut |_, _| {}, &mut during).unwrap()
        else {
            panic!("a first read reads the file");
        };
        assert_eq!(watermark, "2027-01-15T08:00:00.000000000Z", "the time before the read");
        let cursor = Cursor {
            watermark: Some(watermark),
            full_at: None,
        };
        let _ = first;

        // The next look sees a modification time past the watermark and reads the change.
        let Look::Read {
            library: second,
            watermark,
        } = look(&path, Some(&cursor), &mut |_, _| {}, &mut || {}).unwrap()
        else {
            panic!("the change made during the first read is read");
        };
        assert_eq!(second.tracks.len(), 2);
        assert_eq!(watermark, "2027-01-15T08:01:00.000000000Z");

        // With that watermark confirmed, the file is not read again until it changes.
        let cursor = Cursor {
            watermark: Some(watermark),
            full_at: None,
        };
        assert!(matches!(
            look(&path, Some(&cursor), &mut |_, _| {}, &mut || panic!("not read")).unwrap(),
            Look::Unchanged
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_missing_file_is_unreadable_and_names_the_file() {
        let e = look(Path::new("/nonexistent/Library.xml"), None, &mut |_, _| {}, &mut || {}).unwrap_err();
        assert_eq!(e.code(), "FILE_UNREADABLE");
        assert!(
            e.to_string().starts_with("/nonexistent/Library.xml: cannot be read"),
            "{e}"
        );
    }
}
