//! Which files of a Spotify export directory are read, by name: `YourLibrary.json`, the
//! playlists (`Playlist1.json`, `Playlists1.json`, …), the account data's `StreamingHistory*.json`
//! and the extended history's `Streaming_History_Audio_*.json` and older `endsong_*.json`. The
//! directory is searched a few levels down (the unpacked archive holds `Spotify Account Data/`,
//! `Spotify Extended Streaming History/`, `MyData/`); every other file is ignored.

use std::path::{Path, PathBuf};

/// The kinds of file read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `YourLibrary.json`: liked songs (and playlists in some exports).
    Library,
    /// `Playlist1.json`, `Playlists1.json`, …
    Playlists,
    /// `StreamingHistory*.json` (account data): minute-precision times, no URIs.
    AccountHistory,
    /// `Streaming_History_Audio_*.json`, `endsong_*.json` (extended streaming history).
    ExtendedHistory,
}

impl Kind {
    /// The file's kind, from its name; `None` for a file the import ignores.
    pub fn of(name: &str) -> Option<Kind> {
        let stem = name.strip_suffix(".json")?;
        if stem == "YourLibrary" {
            return Some(Kind::Library);
        }
        let numbered = stem
            .strip_prefix("Playlists")
            .or_else(|| stem.strip_prefix("Playlist"))
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            return Some(Kind::Playlists);
        }
        if stem.starts_with("StreamingHistory") {
            return Some(Kind::AccountHistory);
        }
        if stem.starts_with("Streaming_History_Audio_") || stem.starts_with("endsong_") {
            return Some(Kind::ExtendedHistory);
        }
        None
    }

    /// How the summary names this kind of file.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Library => "YourLibrary.json",
            Kind::Playlists => "playlist files",
            Kind::AccountHistory => "StreamingHistory files",
            Kind::ExtendedHistory => "extended history files",
        }
    }
}

/// What the import looks for, as an error message says it.
pub const LOOKED_FOR: &str = "YourLibrary.json, Playlist1.json (or Playlists1.json, …), StreamingHistory*.json, \
     Streaming_History_Audio_*.json or endsong_*.json";

/// How many directory levels below the one given are searched.
const DEPTH: usize = 3;

/// A file to read.
#[derive(Debug, Clone)]
pub struct ExportFile {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
}

/// Why the directory gave nothing to read.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("cannot read the directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
    #[error("{path}: no Spotify export files in it (looked for {LOOKED_FOR}, also a few folders down)")]
    Nothing { path: String },
}

/// The export's files under `dir`, by kind and then path.
pub fn find(dir: &Path) -> Result<Vec<ExportFile>, FindError> {
    let mut found = Vec::new();
    walk(dir, 0, &mut found)?;
    if found.is_empty() {
        return Err(FindError::Nothing {
            path: dir.display().to_string(),
        });
    }
    found.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok(found)
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<ExportFile>) -> Result<(), FindError> {
    let dir_err = |source| FindError::Dir {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        // Not followed through symbolic links: a link cannot make the walk loop.
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if file_type.is_dir() {
            if depth < DEPTH {
                walk(&path, depth + 1, found)?;
            }
            continue;
        }
        let kind = entry.file_name().to_str().and_then(Kind::of);
        if let (Some(kind), true) = (kind, file_type.is_file()) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            found.push(ExportFile { path, kind, size });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_known_by_their_names() {
        for (name, kind) in [
            ("YourLibrary.json", Some(Kind::Library)),
            ("Playlist1.json", Some(Kind::Playlists)),
            ("Playlists12.json", Some(Kind::Playlists)),
            ("StreamingHistory0.json", Some(Kind::AccountHistory)),
            ("StreamingHistory_music_0.json", Some(Kind::AccountHistory)),
            ("Streaming_History_Audio_2019-2020_3.json", Some(Kind::ExtendedHistory)),
            ("endsong_0.json", Some(Kind::ExtendedHistory)),
            ("Streaming_History_Video_2020.json", None),
            ("PlaylistNotes.json", None),
            ("Userdata.json", None),
            ("YourLibrary.json.bak", None),
        ] {
            assert_eq!(Kind::of(name), kind, "{name}");
        }
    }
}
