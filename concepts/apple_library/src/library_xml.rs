//! Reads a Music.app / iTunes `Library.xml` (an XML property list) as a stream of the `plist`
//! crate's events, one track or playlist at a time, so memory holds what the read gives (the
//! tracks, likes, plays and playlists) and never the document itself.
//!
//! What is taken:
//! - **tracks** (`Tracks`, a dictionary by Track ID): `Persistent ID` → `apple:track:{id}`,
//!   `Name`, `Artist`, `Album Artist`, `Album`, `Total Time` (ms), `Year`, `Track Type`,
//!   `Apple Music`, `Catalog ID` when present, `Play Count`. A track without a Persistent ID is
//!   skipped and counted (so is a second track with a Persistent ID already met);
//! - **likes**: tracks marked `Loved` or `Favorited`, liked at their `Date Modified`
//!   (`Disliked` is not a like);
//! - **plays**: a track's `Play Date UTC`, the only play the file keeps (it has no history);
//! - **playlists** (`Playlists`, an array): `Playlist Persistent ID` → `apple:playlist:{id}`,
//!   `Name`, the `Playlist Items` in order (by Track ID), `smart` when the playlist has
//!   `Smart Info` or `Smart Criteria`. The master library (`Master`), the distinguished kinds
//!   (`Distinguished Kind`: Music, Movies, Podcasts…) and folders (`Folder`) are skipped.
//!
//! A document that is not a well-formed property list, or whose values have other types than
//! these keys have, is refused with the place: the byte offset of the problem (the caller turns
//! it into line:column) and the path of keys leading to it.

use plist::stream::{Event, XmlReader};
use serde::Serialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The id prefix of a track read from the file.
pub const TRACK_PREFIX: &str = "apple:track:";
/// The id prefix of a playlist read from the file.
pub const PLAYLIST_PREFIX: &str = "apple:playlist:";

/// A track, in LibraryCache's track shape (camelCase; unknown fields kept by the cache).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album_artist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_type: Option<String>,
    /// The track is an Apple Music (streaming) track.
    pub apple_music: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub play_count: Option<u64>,
}

/// A like, in LibraryCache's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Like {
    pub track_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liked_at: Option<String>,
}

/// A play, in LibraryCache's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Play {
    pub track_id: String,
    pub played_at: String,
}

/// A playlist, in LibraryCache's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Playlist {
    pub id: String,
    pub name: String,
    pub smart: bool,
    pub entries: Vec<String>,
}

/// What was left out, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Tracks without a Persistent ID (or with one already met).
    pub tracks_without_id: u64,
    /// Playlists left out: the master library, distinguished kinds, folders, and playlists
    /// without a persistent id.
    pub playlists: u64,
    /// Playlist items naming a track the file does not hold (or one that was skipped).
    pub entries: u64,
}

/// The whole file, in LibraryCache's shapes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Library {
    pub tracks: Vec<Track>,
    pub likes: Vec<Like>,
    pub plays: Vec<Play>,
    pub playlists: Vec<Playlist>,
    #[serde(skip)]
    pub skipped: Skipped,
}

/// Why the document could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", if path.is_empty() { String::new() } else { format!("at {path}: ") })]
pub struct ParseError {
    /// The byte offset of the problem (or just past it), when known.
    pub offset: Option<u64>,
    /// The keys leading to the problem, e.g. `Tracks › 1234 › Total Time`.
    pub path: String,
    pub problem: String,
}

/// A reader that counts the bytes the XML parser took: the position of the event just read,
/// and the progress of the read.
pub struct Counting<R> {
    inner: R,
    taken: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    pub fn new(inner: R, taken: Arc<AtomicU64>) -> Self {
        Counting { inner, taken }
    }
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.taken.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt)
    }
}

/// Called now and then while the document is read: the bytes taken so far and the tracks read.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// How often (in tracks) progress is told.
const PROGRESS_EVERY: u64 = 500;

/// Reads a whole `Library.xml` from `reader`.
pub fn parse<R: BufRead>(reader: R, progress: Progress<'_>) -> Result<Library, ParseError> {
    let taken = Arc::new(AtomicU64::new(0));
    let mut events = Events {
        inner: XmlReader::new(Counting::new(reader, Arc::clone(&taken))),
        taken,
        path: Vec::new(),
    };
    let mut state = State::default();
    match events.next()? {
        Some(Event::StartDictionary(_)) => {}
        Some(other) => return Err(events.error(format!("the document is {}, not a dictionary", kind(&other)))),
        None => return Err(events.error("the document is empty".to_string())),
    }
    while let Some(key) = events.key()? {
        events.path.push(key.clone());
        match key.as_str() {
            "Tracks" => state.tracks(&mut events, progress)?,
            "Playlists" => state.playlists(&mut events)?,
            _ => events.skip_value()?,
        }
        events.path.pop();
    }
    if let Some(extra) = events.next()? {
        return Err(events.error(format!("{} after the end of the document", kind(&extra))));
    }
    progress(events.offset(), state.library.tracks.len() as u64);
    Ok(state.finish())
}

/// The event stream, with the path of keys to the value being read.
struct Events<R: BufRead> {
    inner: XmlReader<Counting<R>>,
    taken: Arc<AtomicU64>,
    path: Vec<String>,
}

impl<R: BufRead> Events<R> {
    fn offset(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    fn error(&self, problem: String) -> ParseError {
        ParseError {
            offset: Some(self.taken.load(Ordering::Relaxed)),
            path: self.path.join(" › "),
            problem,
        }
    }

    /// The next event; `None` at the end of the document.
    fn next(&mut self) -> Result<Option<Event<'static>>, ParseError> {
        match self.inner.next() {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(e)) => {
                let text = e.to_string();
                // The crate tells the place as "(offset N)"; the message is its error kind.
                let (problem, offset) = match text.rsplit_once(" (offset ") {
                    Some((problem, rest)) => (problem.to_string(), rest.trim_end_matches(')').parse::<u64>().ok()),
                    None => (text, None),
                };
                Err(ParseError {
                    offset: offset.or(Some(self.offset())),
                    path: self.path.join(" › "),
                    problem: format!("not a well-formed property list ({problem})"),
                })
            }
        }
    }

    /// The next event, which must exist.
    fn value(&mut self) -> Result<Event<'static>, ParseError> {
        self.next()?
            .ok_or_else(|| self.error("the document ends in the middle of a value".to_string()))
    }

    /// The next key of the dictionary being read; `None` at its end.
    fn key(&mut self) -> Result<Option<String>, ParseError> {
        match self.value()? {
            Event::EndCollection => Ok(None),
            Event::String(key) => Ok(Some(key.into_owned())),
            other => Err(self.error(format!("expected a key, found {}", kind(&other)))),
        }
    }

    /// Skips the value that comes next (a whole array or dictionary).
    fn skip_value(&mut self) -> Result<(), ParseError> {
        let first = self.value()?;
        self.skip(first)
    }

    /// Skips the rest of a value whose first event was `first`.
    fn skip(&mut self, first: Event<'static>) -> Result<(), ParseError> {
        let mut depth: u32 = match first {
            Event::StartArray(_) | Event::StartDictionary(_) => 1,
            Event::EndCollection => return Err(self.error("a value is missing".to_string())),
            _ => 0,
        };
        while depth > 0 {
            match self.value()? {
                Event::StartArray(_) | Event::StartDictionary(_) => depth += 1,
                Event::EndCollection => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// The next value, which must start a dictionary.
    fn start_dict(&mut self) -> Result<(), ParseError> {
        match self.value()? {
            Event::StartDictionary(_) => Ok(()),
            other => Err(self.error(format!("expected a dictionary, found {}", kind(&other)))),
        }
    }

    /// The next value, which must start an array.
    fn start_array(&mut self) -> Result<(), ParseError> {
        match self.value()? {
            Event::StartArray(_) => Ok(()),
            other => Err(self.error(format!("expected an array, found {}", kind(&other)))),
        }
    }
}

/// What an event is, for a message.
fn kind(event: &Event) -> &'static str {
    match event {
        Event::StartArray(_) => "an array",
        Event::StartDictionary(_) => "a dictionary",
        Event::EndCollection => "the end of a collection",
        Event::Boolean(_) => "a boolean",
        Event::Data(_) => "data",
        Event::Date(_) => "a date",
        Event::Integer(_) => "an integer",
        Event::Real(_) => "a real number",
        Event::String(_) => "a string",
        _ => "an unknown value",
    }
}

/// The typed value of a known key, or the error naming what it was instead.
fn string<R: BufRead>(events: &mut Events<R>, event: Event<'static>) -> Result<String, ParseError> {
    match event {
        Event::String(s) => Ok(s.into_owned()),
        other => Err(events.error(format!("expected a string, found {}", kind(&other)))),
    }
}

fn integer<R: BufRead>(events: &mut Events<R>, event: Event<'static>) -> Result<i64, ParseError> {
    match event {
        Event::Integer(i) => i
            .as_signed()
            .ok_or_else(|| events.error("the integer is out of range".to_string())),
        other => Err(events.error(format!("expected an integer, found {}", kind(&other)))),
    }
}

fn boolean<R: BufRead>(events: &mut Events<R>, event: Event<'static>) -> Result<bool, ParseError> {
    match event {
        Event::Boolean(b) => Ok(b),
        other => Err(events.error(format!("expected a boolean, found {}", kind(&other)))),
    }
}

/// A date as RFC 3339 (whole seconds, `Z`).
fn date<R: BufRead>(events: &mut Events<R>, event: Event<'static>) -> Result<String, ParseError> {
    match event {
        Event::Date(d) => Ok(d.to_xml_format()),
        other => Err(events.error(format!("expected a date, found {}", kind(&other)))),
    }
}

/// An id the file writes as an integer or a string.
fn integer_or_string<R: BufRead>(events: &mut Events<R>, event: Event<'static>) -> Result<String, ParseError> {
    match event {
        Event::Integer(i) => Ok(i.to_string()),
        Event::String(s) => Ok(s.into_owned()),
        other => Err(events.error(format!("expected an integer or a string, found {}", kind(&other)))),
    }
}

/// The fields of one track dictionary that are used.
#[derive(Default)]
struct TrackFields {
    track_id: Option<i64>,
    persistent_id: Option<String>,
    date_modified: Option<String>,
    play_date_utc: Option<String>,
    loved: bool,
    favorited: bool,
    track: Track,
}

/// A playlist as read, its items still Track IDs.
struct RawPlaylist {
    id: String,
    name: String,
    smart: bool,
    items: Vec<i64>,
}

#[derive(Default)]
struct State {
    library: Library,
    /// Track ID → index in `library.tracks`.
    by_track_id: HashMap<i64, usize>,
    /// Persistent IDs met.
    persistent: std::collections::HashSet<String>,
    playlists: Vec<RawPlaylist>,
}

impl State {
    fn tracks<R: BufRead>(&mut self, events: &mut Events<R>, progress: Progress<'_>) -> Result<(), ParseError> {
        events.start_dict()?;
        while let Some(key) = events.key()? {
            events.path.push(key);
            events.start_dict()?;
            let fields = track(events)?;
            events.path.pop();
            self.add_track(fields);
            let n = self.library.tracks.len() as u64;
            if n % PROGRESS_EVERY == 0 {
                progress(events.offset(), n);
            }
        }
        Ok(())
    }

    fn add_track(&mut self, mut f: TrackFields) {
        let Some(pid) = f.persistent_id.take().filter(|p| !p.trim().is_empty()) else {
            self.library.skipped.tracks_without_id += 1;
            return;
        };
        if !self.persistent.insert(pid.clone()) {
            self.library.skipped.tracks_without_id += 1;
            return;
        }
        let id = format!("{TRACK_PREFIX}{pid}");
        if f.loved || f.favorited {
            self.library.likes.push(Like {
                track_id: id.clone(),
                liked_at: f.date_modified.take(),
            });
        }
        if let Some(at) = f.play_date_utc.take() {
            self.library.plays.push(Play {
                track_id: id.clone(),
                played_at: at,
            });
        }
        f.track.id = id;
        if let Some(tid) = f.track_id {
            self.by_track_id.insert(tid, self.library.tracks.len());
        }
        self.library.tracks.push(f.track);
    }

    fn playlists<R: BufRead>(&mut self, events: &mut Events<R>) -> Result<(), ParseError> {
        events.start_array()?;
        let mut index = 0usize;
        loop {
            events.path.push(format!("[{index}]"));
            match events.value()? {
                Event::EndCollection => {
                    events.path.pop();
                    return Ok(());
                }
                Event::StartDictionary(_) => {}
                other => return Err(events.error(format!("expected a playlist dictionary, found {}", kind(&other)))),
            }
            if let Some(p) = playlist(events)? {
                self.playlists.push(p);
            } else {
                self.library.skipped.playlists += 1;
            }
            events.path.pop();
            index += 1;
        }
    }

    fn finish(mut self) -> Library {
        for raw in std::mem::take(&mut self.playlists) {
            let mut entries = Vec::with_capacity(raw.items.len());
            for item in raw.items {
                match self.by_track_id.get(&item) {
                    Some(&i) => entries.push(self.library.tracks[i].id.clone()),
                    None => self.library.skipped.entries += 1,
                }
            }
            self.library.playlists.push(Playlist {
                id: format!("{PLAYLIST_PREFIX}{}", raw.id),
                name: raw.name,
                smart: raw.smart,
                entries,
            });
        }
        self.library
    }
}

/// One track dictionary (its start already read).
fn track<R: BufRead>(events: &mut Events<R>) -> Result<TrackFields, ParseError> {
    let mut f = TrackFields::default();
    while let Some(key) = events.key()? {
        let v = events.value()?;
        events.path.push(key.clone());
        match key.as_str() {
            "Track ID" => f.track_id = Some(integer(events, v)?),
            "Persistent ID" => f.persistent_id = Some(string(events, v)?),
            "Name" => f.track.title = Some(string(events, v)?),
            "Artist" => f.track.artist = Some(string(events, v)?),
            "Album Artist" => f.track.album_artist = Some(string(events, v)?),
            "Album" => f.track.album = Some(string(events, v)?),
            "Total Time" => f.track.duration_ms = u64::try_from(integer(events, v)?).ok(),
            "Year" => f.track.year = i32::try_from(integer(events, v)?).ok(),
            "Track Type" => f.track.track_type = Some(string(events, v)?),
            "Apple Music" => f.track.apple_music = boolean(events, v)?,
            "Catalog ID" => f.track.catalog_id = Some(integer_or_string(events, v)?),
            "Play Count" => f.track.play_count = u64::try_from(integer(events, v)?).ok(),
            "Play Date UTC" => f.play_date_utc = Some(date(events, v)?),
            "Date Modified" => f.date_modified = Some(date(events, v)?),
            "Loved" => f.loved = boolean(events, v)?,
            "Favorited" => f.favorited = boolean(events, v)?,
            _ => events.skip(v)?,
        }
        events.path.pop();
    }
    Ok(f)
}

/// One playlist dictionary (its start already read); `None` for one that is left out.
fn playlist<R: BufRead>(events: &mut Events<R>) -> Result<Option<RawPlaylist>, ParseError> {
    let (mut id, mut name, mut smart, mut items) = (None, None, false, Vec::new());
    let mut left_out = false;
    while let Some(key) = events.key()? {
        events.path.push(key.clone());
        match key.as_str() {
            "Playlist Persistent ID" => {
                let v = events.value()?;
                id = Some(string(events, v)?);
            }
            "Name" => {
                let v = events.value()?;
                name = Some(string(events, v)?);
            }
            "Master" | "Folder" => {
                let v = events.value()?;
                left_out |= boolean(events, v)?;
            }
            "Distinguished Kind" => {
                let v = events.value()?;
                events.skip(v)?;
                left_out = true;
            }
            "Smart Info" | "Smart Criteria" => {
                let v = events.value()?;
                events.skip(v)?;
                smart = true;
            }
            "Playlist Items" => {
                events.start_array()?;
                loop {
                    match events.value()? {
                        Event::EndCollection => break,
                        Event::StartDictionary(_) => {}
                        other => {
                            return Err(events.error(format!("expected an item dictionary, found {}", kind(&other))))
                        }
                    }
                    while let Some(k) = events.key()? {
                        let v = events.value()?;
                        if k == "Track ID" {
                            events.path.push(k);
                            items.push(integer(events, v)?);
                            events.path.pop();
                        } else {
                            events.skip(v)?;
                        }
                    }
                }
            }
            _ => events.skip_value()?,
        }
        events.path.pop();
    }
    Ok(match (left_out, id) {
        (false, Some(id)) if !id.trim().is_empty() => Some(RawPlaylist {
            id,
            name: name.unwrap_or_default(),
            smart,
            items,
        }),
        _ => None,
    })
}

/// The line and column (both from 1) of a byte offset in `text`.
pub fn line_column(text: &[u8], offset: u64) -> (u64, u64) {
    let end = (offset as usize).min(text.len());
    let before = &text[..end];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map(|p| p + 1).unwrap_or(0);
    let column = std::str::from_utf8(&before[start..])
        .map(|s| s.chars().count())
        .unwrap_or(end - start) as u64
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Major Version</key><integer>1</integer>
	<key>Tracks</key>
	<dict>
		<key>101</key>
		<dict>
			<key>Track ID</key><integer>101</integer>
			<key>Name</key><string>Alpha &amp; Omega</string>
			<key>Artist</key><string>A</string>
			<key>Total Time</key><integer>215000</integer>
			<key>Year</key><integer>1999</integer>
			<key>Date Modified</key><date>2026-01-02T03:04:05Z</date>
			<key>Play Count</key><integer>7</integer>
			<key>Play Date UTC</key><date>2026-02-01T10:00:00Z</date>
			<key>Loved</key><true/>
			<key>Persistent ID</key><string>AAAA000000000001</string>
			<key>Track Type</key><string>File</string>
			<key>Artwork</key><dict><key>x</key><array><integer>1</integer></array></dict>
		</dict>
		<key>102</key>
		<dict>
			<key>Track ID</key><integer>102</integer>
			<key>Name</key><string>No id</string>
		</dict>
		<key>103</key>
		<dict>
			<key>Track ID</key><integer>103</integer>
			<key>Name</key><string>Bravo</string>
			<key>Disliked</key><true/>
			<key>Apple Music</key><true/>
			<key>Catalog ID</key><integer>1440000001</integer>
			<key>Persistent ID</key><string>AAAA000000000003</string>
			<key>Track Type</key><string>Remote</string>
		</dict>
	</dict>
	<key>Playlists</key>
	<array>
		<dict><key>Name</key><string>Library</string><key>Master</key><true/><key>Playlist Persistent ID</key><string>M</string>
			<key>Playlist Items</key><array><dict><key>Track ID</key><integer>101</integer></dict></array></dict>
		<dict><key>Name</key><string>Music</string><key>Distinguished Kind</key><integer>4</integer><key>Playlist Persistent ID</key><string>D</string></dict>
		<dict><key>Name</key><string>Folder</string><key>Folder</key><true/><key>Playlist Persistent ID</key><string>F</string></dict>
		<dict><key>Name</key><string>Mix</string><key>Playlist Persistent ID</key><string>P1</string>
			<key>Playlist Items</key><array>
				<dict><key>Track ID</key><integer>103</integer></dict>
				<dict><key>Track ID</key><integer>102</integer></dict>
				<dict><key>Track ID</key><integer>101</integer></dict>
				<dict><key>Track ID</key><integer>103</integer></dict>
			</array></dict>
		<dict><key>Name</key><string>Recent</string><key>Playlist Persistent ID</key><string>S1</string><key>Smart Info</key><data>AAEC</data></dict>
	</array>
</dict>
</plist>
"#;

    fn parse_str(text: &str) -> Result<Library, ParseError> {
        parse(text.as_bytes(), &mut |_, _| {})
    }

    #[test]
    fn a_library_gives_tracks_likes_plays_and_playlists() {
        let lib = parse_str(SMALL).unwrap();
        assert_eq!(lib.tracks.len(), 2);
        let a = &lib.tracks[0];
        assert_eq!(a.id, "apple:track:AAAA000000000001");
        assert_eq!(a.title.as_deref(), Some("Alpha & Omega"));
        assert_eq!(
            (a.duration_ms, a.year, a.play_count),
            (Some(215000), Some(1999), Some(7))
        );
        assert!(!a.apple_music);
        let b = &lib.tracks[1];
        assert!(b.apple_music);
        assert_eq!(b.catalog_id.as_deref(), Some("1440000001"));
        assert_eq!(
            lib.likes,
            vec![Like {
                track_id: a.id.clone(),
                liked_at: Some("2026-01-02T03:04:05Z".into())
            }]
        );
        assert_eq!(lib.plays.len(), 1);
        assert_eq!(lib.plays[0].played_at, "2026-02-01T10:00:00Z");
        assert_eq!(lib.playlists.len(), 2);
        assert_eq!(lib.playlists[0].id, "apple:playlist:P1");
        assert_eq!(lib.playlists[0].entries, vec![b.id.clone(), a.id.clone(), b.id.clone()]);
        assert!(!lib.playlists[0].smart);
        assert!(lib.playlists[1].smart && lib.playlists[1].entries.is_empty());
        assert_eq!(
            lib.skipped,
            Skipped {
                tracks_without_id: 1,
                playlists: 3,
                entries: 1
            }
        );
    }

    #[test]
    fn malformed_documents_name_the_place() {
        let broken = SMALL.replace("<integer>215000</integer>", "<integer>215000</integr>");
        let e = parse_str(&broken).unwrap_err();
        let (line, _) = line_column(broken.as_bytes(), e.offset.unwrap());
        assert_eq!(line, 13, "{e:?}");
        assert!(e.problem.contains("not a well-formed"), "{e}");

        let typed = SMALL.replace("<integer>1999</integer>", "<string>1999</string>");
        let e = parse_str(&typed).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at Tracks › 101 › Year: expected an integer, found a string"
        );
        let (line, _) = line_column(typed.as_bytes(), e.offset.unwrap());
        assert_eq!(line, 14);

        let cut = &SMALL[..SMALL.len() / 2];
        assert!(parse_str(cut).is_err());
        assert!(parse_str("").is_err());
        assert!(parse_str("<plist><array></array></plist>").is_err());
    }

    #[test]
    fn line_columns_count_characters() {
        assert_eq!(line_column(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx".as_bytes(), 2), (1, 2));
    }
}
