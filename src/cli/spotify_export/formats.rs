//! The shapes of the export's files and what each holds, read into one [`Export`]:
//!
//! - `YourLibrary.json`: `{tracks: [{artist, album, track, uri}], playlists?: [...]}` (liked songs,
//!   without the time they were liked);
//! - `Playlist1.json`: `{playlists: [{name, lastModifiedDate, items: [{track: {trackName,
//!   artistName, albumName, trackUri} | null, episode: {episodeName, showName, episodeUri} | null,
//!   localTrack: {uri} | null, addedDate}]}]}`;
//! - `StreamingHistory*.json`: `[{endTime: "YYYY-MM-DD HH:MM" (UTC), artistName, trackName,
//!   msPlayed}]`, podcast rows with `podcastName`/`episodeName` instead, audiobook rows (2024
//!   exports' `StreamingHistory_audiobook_*.json`) with `audiobookName`, `chapterName`,
//!   `authorName`;
//! - `Streaming_History_Audio_*.json`, `endsong_*.json`: `[{ts (RFC 3339), ms_played,
//!   master_metadata_track_name, master_metadata_album_artist_name,
//!   master_metadata_album_album_name, spotify_track_uri, episode_name, spotify_episode_uri, …}]`.
//!
//! Items are identified by their Spotify URI (`spotify:track:…`, `spotify:episode:…`,
//! `spotify:local:…`): the id SpotifySource gives the same item, so an export and a Web API read
//! agree. Fields not listed are ignored. A history row that is not music (a podcast, an
//! audiobook chapter, a row that names no track) is skipped and counted, never an error; a listed
//! field of the wrong type, a time that does not parse or a URI that is not `spotify:…` stops the
//! import with the file, line:column and field.

use super::files::{ExportFile, Kind};
use crate::cli::json_file::{self, JsonFileError};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A play counts from this many milliseconds played (Spotify's own rule for a stream).
pub const MIN_PLAYED_MS: u64 = 30_000;

/// A track, episode or local file the export names.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its Spotify URI.
    pub id: String,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    /// `episode` or `local`, as SpotifySource marks them; `None` for a track.
    pub kind: Option<&'static str>,
}

/// A playlist as the export gives it (the export has no playlist ids).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPlaylist {
    pub name: String,
    pub last_modified: Option<String>,
    /// Item URIs in order, repeats kept.
    pub entries: Vec<String>,
}

/// What a play was of.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// A URI (the extended history).
    Uri(String),
    /// Only names (the account data's `StreamingHistory`).
    Name { artist: String, title: String },
}

/// A play of at least [`MIN_PLAYED_MS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Play {
    pub heard: Heard,
    /// When playback ended (UTC).
    pub at: DateTime<Utc>,
    /// `at` is only to the minute (`StreamingHistory`'s `endTime`).
    pub minute: bool,
}

/// Everything read from the export's files.
#[derive(Debug, Default)]
pub struct Export {
    /// Files read, by kind.
    pub files: BTreeMap<Kind, u64>,
    /// Every item named, in the order read (liked songs, playlists, extended history).
    pub items: Vec<Item>,
    /// Liked songs' URIs, in the file's order.
    pub likes: Vec<String>,
    pub playlists: Vec<ExportPlaylist>,
    pub plays: Vec<Play>,
    /// Streaming history rows read.
    pub rows: u64,
    /// Rows played under [`MIN_PLAYED_MS`].
    pub under_30s: u64,
    /// Podcast rows (no track).
    pub podcasts: u64,
    /// Audiobook rows (chapters, no track).
    pub audiobooks: u64,
    /// Other rows with no track (videos, items Spotify no longer names).
    pub without_track: u64,
    /// Playlist items with no track, episode or local file.
    pub empty_items: u64,
}

/// Why a file could not be read into the export.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(transparent)]
    File(#[from] JsonFileError),
}

impl Export {
    /// Reads one file's `bytes` into the export; nothing is added when it fails.
    pub fn read(&mut self, file: &ExportFile, bytes: &[u8]) -> Result<(), FormatError> {
        let path = file.path.as_path();
        match file.kind {
            Kind::Library => {
                let lib: YourLibrary = json_file::parse(path, bytes)?;
                for t in lib.tracks {
                    self.likes.push(t.uri.0.clone());
                    self.items.push(Item {
                        id: t.uri.0,
                        title: t.track,
                        artist: t.artist,
                        album: t.album,
                        kind: None,
                    });
                }
                self.add_playlists(lib.playlists);
            }
            Kind::Playlists => {
                let file: PlaylistsFile = json_file::parse(path, bytes)?;
                self.add_playlists(file.playlists);
            }
            Kind::AccountHistory => {
                let rows: Vec<AccountRow> = json_file::parse(path, bytes)?;
                self.rows += rows.len() as u64;
                for row in rows {
                    let named = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
                    match (&row.artist_name, &row.track_name) {
                        (Some(artist), Some(title)) if named(&row.artist_name) && named(&row.track_name) => {
                            if row.ms_played < MIN_PLAYED_MS {
                                self.under_30s += 1;
                                continue;
                            }
                            self.plays.push(Play {
                                heard: Heard::Name {
                                    artist: artist.clone(),
                                    title: title.clone(),
                                },
                                at: row.end_time.0,
                                minute: true,
                            })
                        }
                        _ if named(&row.audiobook_name) || named(&row.chapter_name) || named(&row.author_name) => {
                            self.audiobooks += 1
                        }
                        _ if named(&row.podcast_name) || named(&row.episode_name) => self.podcasts += 1,
                        _ => self.without_track += 1,
                    }
                }
            }
            Kind::ExtendedHistory => {
                let rows: Vec<ExtendedRow> = json_file::parse(path, bytes)?;
                self.rows += rows.len() as u64;
                for row in rows {
                    let Some(uri) = row.spotify_track_uri else {
                        if row.audiobook_uri.is_some() || row.audiobook_title.is_some() {
                            self.audiobooks += 1;
                        } else if row.spotify_episode_uri.is_some() || row.episode_name.is_some() {
                            self.podcasts += 1;
                        } else {
                            self.without_track += 1;
                        }
                        continue;
                    };
                    if row.ms_played < MIN_PLAYED_MS {
                        self.under_30s += 1;
                        continue;
                    }
                    self.items.push(Item {
                        id: uri.0.clone(),
                        title: row.master_metadata_track_name,
                        artist: row.master_metadata_album_artist_name,
                        album: row.master_metadata_album_album_name,
                        kind: kind_of_uri(&uri.0),
                    });
                    self.plays.push(Play {
                        heard: Heard::Uri(uri.0),
                        at: row.ts.0,
                        minute: false,
                    });
                }
            }
        }
        *self.files.entry(file.kind).or_default() += 1;
        Ok(())
    }

    fn add_playlists(&mut self, playlists: Vec<PlaylistShape>) {
        for p in playlists {
            let mut entries = Vec::with_capacity(p.items.len());
            for item in p.items {
                let named = if let Some(t) = item.track {
                    Item {
                        kind: kind_of_uri(&t.track_uri.0),
                        id: t.track_uri.0,
                        title: t.track_name,
                        artist: t.artist_name,
                        album: t.album_name,
                    }
                } else if let Some(e) = item.episode {
                    Item {
                        id: e.episode_uri.0,
                        title: e.episode_name,
                        artist: e.show_name,
                        album: None,
                        kind: Some("episode"),
                    }
                } else if let Some(l) = item.local_track {
                    Item {
                        id: l.uri.0,
                        title: l.track_name,
                        artist: l.artist_name,
                        album: l.album_name,
                        kind: Some("local"),
                    }
                } else {
                    self.empty_items += 1;
                    continue;
                };
                entries.push(named.id.clone());
                self.items.push(named);
            }
            self.playlists.push(ExportPlaylist {
                name: p.name,
                last_modified: p.last_modified_date,
                entries,
            });
        }
    }

    /// The first and last play time, if there are plays.
    pub fn play_window(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = self.plays.iter().map(|p| p.at).min()?;
        let last = self.plays.iter().map(|p| p.at).max()?;
        Some((first, last))
    }
}

/// SpotifySource's mark for an item that is not a track, from its URI.
fn kind_of_uri(uri: &str) -> Option<&'static str> {
    if uri.starts_with("spotify:episode:") {
        Some("episode")
    } else if uri.starts_with("spotify:local:") {
        Some("local")
    } else {
        None
    }
}

#[derive(Deserialize)]
struct YourLibrary {
    #[serde(default)]
    tracks: Vec<LibraryTrack>,
    #[serde(default)]
    playlists: Vec<PlaylistShape>,
}

#[derive(Deserialize)]
struct LibraryTrack {
    artist: Option<String>,
    album: Option<String>,
    track: Option<String>,
    uri: Uri,
}

#[derive(Deserialize)]
struct PlaylistsFile {
    playlists: Vec<PlaylistShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistShape {
    name: String,
    last_modified_date: Option<String>,
    #[serde(default)]
    items: Vec<PlaylistItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItem {
    track: Option<ItemTrack>,
    episode: Option<ItemEpisode>,
    local_track: Option<ItemLocal>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemTrack {
    track_name: Option<String>,
    artist_name: Option<String>,
    album_name: Option<String>,
    track_uri: Uri,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemEpisode {
    episode_name: Option<String>,
    show_name: Option<String>,
    episode_uri: Uri,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemLocal {
    uri: Uri,
    track_name: Option<String>,
    artist_name: Option<String>,
    album_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountRow {
    end_time: MinuteTime,
    ms_played: u64,
    artist_name: Option<String>,
    track_name: Option<String>,
    podcast_name: Option<String>,
    episode_name: Option<String>,
    audiobook_name: Option<String>,
    chapter_name: Option<String>,
    author_name: Option<String>,
}

#[derive(Deserialize)]
struct ExtendedRow {
    ts: SecondTime,
    ms_played: u64,
    master_metadata_track_name: Option<String>,
    master_metadata_album_artist_name: Option<String>,
    master_metadata_album_album_name: Option<String>,
    #[serde(default, deserialize_with = "optional_uri")]
    spotify_track_uri: Option<Uri>,
    episode_name: Option<String>,
    spotify_episode_uri: Option<String>,
    #[serde(default)]
    audiobook_title: Option<String>,
    #[serde(default)]
    audiobook_uri: Option<String>,
}

/// A Spotify URI, usable as an id.
struct Uri(String);

impl<'de> Deserialize<'de> for Uri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_uri(&s).map_err(D::Error::custom)?;
        Ok(Uri(s))
    }
}

/// A URI that may be null or empty (a row without a track).
fn optional_uri<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uri>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => {
            check_uri(&s).map_err(D::Error::custom)?;
            Ok(Some(Uri(s)))
        }
    }
}

fn check_uri(s: &str) -> Result<(), String> {
    if !s.starts_with("spotify:") || s.len() <= "spotify:".len() {
        return Err(format!("expected a Spotify URI (spotify:…), found {s:?}"));
    }
    if s.len() > concept_core::fields::MAX_ID || s.chars().any(char::is_control) {
        return Err(format!(
            "a URI must be at most {} bytes without control characters",
            concept_core::fields::MAX_ID
        ));
    }
    Ok(())
}

/// `StreamingHistory`'s `endTime`: `YYYY-MM-DD HH:MM`, UTC.
struct MinuteTime(DateTime<Utc>);

impl<'de> Deserialize<'de> for MinuteTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M")
            .map(|t| MinuteTime(t.and_utc()))
            .map_err(|_| D::Error::custom(format!("expected a time as YYYY-MM-DD HH:MM, found {s:?}")))
    }
}

/// The extended history's `ts`: RFC 3339.
struct SecondTime(DateTime<Utc>);

impl<'de> Deserialize<'de> for SecondTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        concept_core::time::parse_rfc3339(&s)
            .map(SecondTime)
            .ok_or_else(|| D::Error::custom(format!("expected an RFC 3339 time, found {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn read(kind: Kind, text: &str) -> Result<Export, FormatError> {
        let mut export = Export::default();
        let file = ExportFile {
            path: PathBuf::from("f.json"),
            kind,
            size: 0,
        };
        export.read(&file, text.as_bytes())?;
        Ok(export)
    }

    #[test]
    fn account_history_counts_only_plays_of_30_seconds_and_skips_podcasts() {
        let e = read(
            Kind::AccountHistory,
            r#"[{"endTime": "2021-03-04 12:34", "artistName": "A", "trackName": "T", "msPlayed": 30000},
                {"endTime": "2021-03-04 12:40", "artistName": "A", "trackName": "T", "msPlayed": 29999},
                {"endTime": "2021-03-04 12:50", "podcastName": "P", "episodeName": "E", "msPlayed": 900000}]"#,
        )
        .unwrap();
        assert_eq!((e.rows, e.plays.len(), e.under_30s, e.podcasts), (3, 1, 1, 1));
        assert!(e.plays[0].minute);
        assert_eq!(e.plays[0].at.to_rfc3339(), "2021-03-04T12:34:00+00:00");
    }

    #[test]
    fn bad_rows_are_named_by_file_position_and_field() {
        let e = read(
            Kind::ExtendedHistory,
            "[\n{\"ts\": \"2021-03-04T12:34:56Z\", \"ms_played\": 1},\n{\"ts\": \"yesterday\", \"ms_played\": 1}]",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("f.json:3:") && e.contains("at [1].ts: expected an RFC 3339 time"),
            "{e}"
        );
        let e = read(
            Kind::AccountHistory,
            "[\n{\"endTime\": \"2021-03-04 12:34\", \"msPlayed\": 1},\n{\"endTime\": \"2021-03-04 12:40\"}\n]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("f.json:3:1: at [1]: missing field `msPlayed`"), "{e}");
        let e = read(
            Kind::Playlists,
            r#"{"playlists": [{"name": "P", "items": [{"track": {"trackUri": "http://x"}}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("at playlists[0].items[0].track.trackUri: expected a Spotify URI"),
            "{e}"
        );
    }

    #[test]
    fn rows_that_are_not_music_are_skipped_and_counted_never_refused() {
        // A 2024 account-data export's StreamingHistory_audiobook_0.json, and rows naming nothing.
        let e = read(
            Kind::AccountHistory,
            r#"[{"endTime": "2024-05-01 20:00", "audiobookName": "A Book", "chapterName": "Chapter 1",
                 "authorName": "An Author", "msPlayed": 1800000},
                {"endTime": "2024-05-01 21:00", "msPlayed": 50000},
                {"endTime": "2024-05-01 22:00", "artistName": "", "trackName": "", "msPlayed": 50000},
                {"endTime": "2024-05-01 23:00", "artistName": "A", "trackName": "T", "msPlayed": 50000}]"#,
        )
        .unwrap();
        assert_eq!((e.rows, e.audiobooks, e.without_track, e.plays.len()), (4, 1, 2, 1));
        let e = read(
            Kind::ExtendedHistory,
            r#"[{"ts": "2024-05-01T20:00:00Z", "ms_played": 1800000, "spotify_track_uri": null,
                 "audiobook_title": "A Book", "audiobook_uri": "spotify:audiobook:1",
                 "audiobook_chapter_uri": "spotify:chapter:1", "audiobook_chapter_title": "Chapter 1"}]"#,
        )
        .unwrap();
        assert_eq!((e.rows, e.audiobooks, e.plays.len()), (1, 1, 0));
    }

    #[test]
    fn playlists_keep_tracks_episodes_and_local_files_in_order() {
        let e = read(
            Kind::Playlists,
            r#"{"playlists": [{"name": "Road trip", "lastModifiedDate": "2024-01-01", "items": [
                {"track": {"trackName": "S", "artistName": "A", "albumName": "B", "trackUri": "spotify:track:1"}, "episode": null, "localTrack": null},
                {"track": null, "episode": {"episodeName": "E", "showName": "Show", "episodeUri": "spotify:episode:2"}},
                {"track": null, "episode": null, "localTrack": {"uri": "spotify:local:A:B:C:180"}},
                {"track": null, "episode": null, "localTrack": null},
                {"track": {"trackUri": "spotify:track:1"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            e.playlists[0].entries,
            [
                "spotify:track:1",
                "spotify:episode:2",
                "spotify:local:A:B:C:180",
                "spotify:track:1"
            ]
        );
        assert_eq!(e.empty_items, 1);
        assert_eq!(e.items[1].kind, Some("episode"));
        assert_eq!(e.items[2].kind, Some("local"));
    }
}
