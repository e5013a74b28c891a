//! The projection layout: which rows hold what, and how the queries' orders become key orders.
//!
//! Per user `U` (ids never contain NUL, so `U\0` ends the user part of a key):
//! - `m\0U`: [`UserMeta`] (JSON) — exists exactly while the user has a cached library;
//! - `uU\0T`: chunked map trackId → metadata hash (the user's tracks, in id order);
//! - `uU\0L`: chunked map like key → trackId, JSON-escaped (liked songs, newest first, ready to
//!   be written into an answer as they are);
//! - `uU\0l`: chunked map trackId → like key (to find a like by track);
//! - `uU\0P`: chunked map play key → () (plays, newest first);
//! - `uU\0Y`: chunked map playlistId → [`PlaylistMark`] (the user's playlists);
//! - `uU\0N`: chunked map [`name_key`] → () (the user's playlists by lower-case name and by
//!   uri, for `_resolvePlaylist`; kept while [`UserMeta::playlist_index`] is set).
//!
//! Shared by every user, each a chunked map (a few hundred rows for 100,000 tracks, not one row
//! per track):
//! - `t\0`: trackId → the track's metadata as JSON text (what queries answer, as it is);
//! - `p\0`: playlistId → the playlist as JSON text (what `_getPlaylist` answers, as it is);
//! - `h\0`: playlistId → the users whose libraries hold it (postcard).
//!
//! Every chunked map is laid out by `concept_core::chunked`.

use crate::model::{Playlist, Track};
use chrono::{DateTime, Utc};
use concept_core::chunked::ChunkedMap;
use concept_core::{ProjectionRead, StoreFault};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserMeta {
    pub ingested_at: String,
    pub synced_at: String,
    /// The next `ord` to give a like (ties among equal likedAt keep source order).
    pub next_ord: u64,
    pub tracks: u64,
    pub likes: u64,
    pub plays: u64,
    pub playlists: u64,
    /// True once every track and playlist hash of the library is a [`track_hash`] /
    /// [`playlist_hash`] (libraries ingested before them hold hashes of the JSON text, see
    /// [`legacy_hash`], until a complete read renews them).
    #[serde(default)]
    pub hashes_v2: bool,
    /// True for libraries ingested since the playlist name index (`uU\0N`) exists: it then
    /// holds every playlist of the library. A library ingested before it answers
    /// `_resolvePlaylist` by reading each of its playlists, until a rebuild (or a new ingest)
    /// fills the index.
    #[serde(default)]
    pub playlist_index: bool,
}

/// What a user's library remembers of one of its playlists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistMark {
    pub hash: u64,
    pub snapshot_id: Option<String>,
}

pub fn meta_key(user: &str) -> Vec<u8> {
    let mut k = b"m\0".to_vec();
    k.extend_from_slice(user.as_bytes());
    k
}

pub const META_PREFIX: &[u8] = b"m\0";

/// The user's library meta, if the user has a cached library.
pub fn load_meta(view: &dyn ProjectionRead, user: &str) -> Result<Option<UserMeta>, StoreFault> {
    match view.get(&meta_key(user))? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(StoreFault::new),
        None => Ok(None),
    }
}

fn user_base(user: &str, tag: u8) -> Vec<u8> {
    let mut k = b"u".to_vec();
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.push(tag);
    k
}

fn user_map(user: &str, tag: u8) -> ChunkedMap {
    ChunkedMap::new(user_base(user, tag))
}

/// The region size of the maps a merge changes entry by entry (indexes): small rows, so a
/// merge of k likes rewrites k rows of about this size.
const INDEX_REGION: usize = 512;

pub fn tracks(user: &str) -> ChunkedMap {
    user_map(user, b'T')
}
pub fn liked(user: &str) -> ChunkedMap {
    user_map(user, b'L')
}
pub fn like_index(user: &str) -> ChunkedMap {
    ChunkedMap::with_region(user_base(user, b'l'), INDEX_REGION)
}
pub fn plays(user: &str) -> ChunkedMap {
    user_map(user, b'P')
}
pub fn playlists(user: &str) -> ChunkedMap {
    user_map(user, b'Y')
}

/// The user's playlists by lower-case name and by uri: keys from [`name_key`], no values.
pub fn playlist_names(user: &str) -> ChunkedMap {
    ChunkedMap::with_region(user_base(user, b'N'), INDEX_REGION)
}

/// The tag of a name entry of [`playlist_names`].
pub const BY_NAME: u8 = b'n';
/// The tag of a uri entry of [`playlist_names`].
pub const BY_URI: u8 = b'u';

/// The part of a [`playlist_names`] key before the playlist id: the tag, the text's length
/// (so a text cannot run into the id) and the text.
pub fn name_prefix(tag: u8, text: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + text.len());
    k.push(tag);
    k.extend_from_slice(&(text.len() as u32).to_be_bytes());
    k.extend_from_slice(text.as_bytes());
    k
}

/// A [`playlist_names`] key: [`name_prefix`] and the playlist id.
pub fn name_key(tag: u8, text: &str, id: &str) -> Vec<u8> {
    let mut k = name_prefix(tag, text);
    k.extend_from_slice(id.as_bytes());
    k
}

/// What [`playlist_names`] knows a playlist by, read from its stored JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlaylistNames {
    pub name: String,
    #[serde(default)]
    pub uri: Option<String>,
}

impl PlaylistNames {
    pub fn of(p: &Playlist) -> Self {
        PlaylistNames {
            name: p.name.clone(),
            uri: p.uri.clone(),
        }
    }

    /// Read from a stored playlist's JSON.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreFault> {
        serde_json::from_slice(bytes).map_err(|e| StoreFault::new(format!("a stored playlist does not decode: {e}")))
    }

    /// The [`playlist_names`] keys of playlist `id` known by these names.
    pub fn keys(&self, id: &str) -> Vec<Vec<u8>> {
        let mut keys = vec![name_key(BY_NAME, &self.name.to_lowercase(), id)];
        if let Some(uri) = &self.uri {
            keys.push(name_key(BY_URI, uri, id));
        }
        keys
    }
}

/// Every user map, for clearing a library.
pub fn user_maps(user: &str) -> [ChunkedMap; 6] {
    [
        tracks(user),
        liked(user),
        like_index(user),
        plays(user),
        playlists(user),
        playlist_names(user),
    ]
}

/// Shared track metadata: trackId → the track's JSON.
pub fn shared_tracks() -> ChunkedMap {
    ChunkedMap::new(b"t\0".to_vec())
}

/// Shared playlist content: playlistId → the playlist's JSON.
pub fn shared_playlists() -> ChunkedMap {
    ChunkedMap::new(b"p\0".to_vec())
}

/// Who holds each shared playlist: playlistId → user ids (postcard).
pub fn playlist_holders() -> ChunkedMap {
    ChunkedMap::with_region(b"h\0".to_vec(), INDEX_REGION)
}

/// A time as 8 bytes that sort newest first.
pub fn newest_first(t: &DateTime<Utc>) -> [u8; 8] {
    let us = concept_core::time::micros(t);
    (!((us as u64) ^ (1 << 63))).to_be_bytes()
}

/// The inverse of [`newest_first`] (of the first 8 bytes of a key).
pub fn time_of(bytes: &[u8]) -> DateTime<Utc> {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    let us = (!u64::from_be_bytes(b) ^ (1 << 63)) as i64;
    concept_core::time::from_micros(us)
}

/// The key of a like in the liked list: newest first, then by `ord`.
pub fn like_key(liked_at: &DateTime<Utc>, ord: u64) -> Vec<u8> {
    let mut k = newest_first(liked_at).to_vec();
    k.extend_from_slice(&ord.to_be_bytes());
    k
}

/// The key of a play: newest first, then by track id.
pub fn play_key(played_at: &DateTime<Utc>, track_id: &str) -> Vec<u8> {
    let mut k = newest_first(played_at).to_vec();
    k.extend_from_slice(track_id.as_bytes());
    k
}

/// A string as it stands between the quotes of a JSON string.
pub fn json_escaped(s: &str) -> Vec<u8> {
    let quoted = serde_json::to_vec(s).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_vec()
}

/// The inverse of [`json_escaped`].
pub fn json_unescaped(bytes: &[u8]) -> String {
    if !bytes.contains(&b'\\') {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut quoted = Vec::with_capacity(bytes.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(bytes);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
}

/// FNV-1a, 64 bits: a stable hash to tell whether metadata changed.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// A field: its tag, then its bytes and their length (so fields cannot run into each other).
    pub fn field(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        self.bytes(&[tag])
            .bytes(bytes)
            .bytes(&(bytes.len() as u64).to_le_bytes())
    }

    fn opt_str(&mut self, tag: u8, s: &Option<String>) -> &mut Self {
        match s {
            Some(s) => self.field(tag, s.as_bytes()),
            None => self,
        }
    }

    fn extra(&mut self, extra: &serde_json::Map<String, serde_json::Value>) -> &mut Self {
        let mut keys: Vec<&String> = extra.keys().collect();
        keys.sort();
        for k in keys {
            self.field(b'x', k.as_bytes());
            let value = serde_json::to_vec(&extra[k]).unwrap_or_default();
            self.field(b'v', &value);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// A stable 64-bit hash of bytes (FNV-1a).
pub fn content_hash(bytes: &[u8]) -> u64 {
    Fnv::default().bytes(bytes).finish()
}

/// The hash of a track's decoded fields (unknown fields in key order), to tell whether its
/// metadata changed without serialising it.
pub fn track_hash(t: &Track) -> u64 {
    let mut h = Fnv::default();
    h.field(b'i', t.id.as_bytes())
        .opt_str(b't', &t.title)
        .opt_str(b'a', &t.artist)
        .opt_str(b'l', &t.album);
    if let Some(d) = t.duration_ms {
        h.field(b'd', &d.to_le_bytes());
    }
    if let Some(y) = t.year {
        h.field(b'y', &y.to_le_bytes());
    }
    if let Some(genres) = &t.genres {
        h.field(b'g', &(genres.len() as u64).to_le_bytes());
        for g in genres {
            h.field(b'G', g.as_bytes());
        }
    }
    h.opt_str(b's', &t.isrc).opt_str(b'u', &t.uri).extra(&t.extra);
    h.finish()
}

/// The hash of a playlist's decoded fields, entries in order.
pub fn playlist_hash(p: &Playlist) -> u64 {
    let mut h = Fnv::default();
    h.field(b'i', p.id.as_bytes())
        .field(b'n', p.name.as_bytes())
        .opt_str(b'o', &p.owner);
    if let Some(b) = p.public {
        h.field(b'p', &[b as u8]);
    }
    if let Some(b) = p.collaborative {
        h.field(b'c', &[b as u8]);
    }
    h.opt_str(b's', &p.snapshot_id).opt_str(b'u', &p.uri);
    h.field(b'e', &(p.entries.len() as u64).to_le_bytes());
    for e in &p.entries {
        h.field(b'E', e.as_bytes());
    }
    h.extra(&p.extra);
    h.finish()
}

/// The hash libraries ingested before [`track_hash`] hold: of the value's JSON text.
pub fn legacy_hash<T: Serialize>(value: &T) -> u64 {
    content_hash(&serde_json::to_vec(value).unwrap_or_default())
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn encode_compact<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_ids_round_trip_and_plain_ids_are_unchanged() {
        for id in ["spotify:track:abc", "a\"b\\c", "tab\there", "é✓"] {
            let e = json_escaped(id);
            assert_eq!(json_unescaped(&e), id);
        }
        assert_eq!(json_escaped("spotify:track:abc"), b"spotify:track:abc");
        assert_eq!(json_escaped(""), b"");
    }

    #[test]
    fn a_track_hash_sees_every_field_and_not_the_order_of_unknown_ones() {
        let t: Track = serde_json::from_str(r#"{"id": "a", "title": "T", "x": 1, "y": [2]}"#).expect("track");
        let same: Track = serde_json::from_str(r#"{"y": [2], "title": "T", "id": "a", "x": 1}"#).expect("track");
        assert_eq!(track_hash(&t), track_hash(&same));
        for other in [
            r#"{"id": "a", "title": "U", "x": 1, "y": [2]}"#,
            r#"{"id": "a", "title": "T", "x": 2, "y": [2]}"#,
            r#"{"id": "a", "artist": "T", "x": 1, "y": [2]}"#,
            r#"{"id": "a", "title": "T", "x": 1, "y": [2], "year": 1999}"#,
        ] {
            let o: Track = serde_json::from_str(other).expect("track");
            assert_ne!(track_hash(&t), track_hash(&o), "{other}");
        }
    }
}
