//! The projection layout: which rows hold what, and how the queries' orders become key orders.
//!
//! Per user `U` (ids never contain NUL, so `U\0` ends the user part of a key):
//! - `m\0U`: [`UserMeta`] (JSON) — exists exactly while the user has a cached library;
//! - `uU\0T`: chunked map trackId → metadata hash (the user's tracks, in id order);
//! - `uU\0L`: chunked map like key → trackId (liked songs, newest first);
//! - `uU\0l`: chunked map trackId → like key (to find a like by track);
//! - `uU\0P`: chunked map play key → () (plays, newest first);
//! - `uU\0Y`: chunked map playlistId → [`PlaylistMark`] (the user's playlists).
//!
//! Shared by every user: `t\0ID` → track metadata (JSON), `p\0ID` → [`SharedPlaylist`] (JSON).

use crate::model::Playlist;
use chrono::{DateTime, Utc};
use concept_core::chunked::ChunkedMap;
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
}

/// What a user's library remembers of one of its playlists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistMark {
    pub hash: u64,
    pub snapshot_id: Option<String>,
}

/// A playlist's content and the users whose libraries hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedPlaylist {
    pub playlist: Playlist,
    pub holders: Vec<String>,
}

pub fn meta_key(user: &str) -> Vec<u8> {
    let mut k = b"m\0".to_vec();
    k.extend_from_slice(user.as_bytes());
    k
}

pub const META_PREFIX: &[u8] = b"m\0";

fn user_map(user: &str, tag: u8) -> ChunkedMap {
    let mut k = b"u".to_vec();
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.push(tag);
    ChunkedMap::new(k)
}

pub fn tracks(user: &str) -> ChunkedMap {
    user_map(user, b'T')
}
pub fn liked(user: &str) -> ChunkedMap {
    user_map(user, b'L')
}
pub fn like_index(user: &str) -> ChunkedMap {
    user_map(user, b'l')
}
pub fn plays(user: &str) -> ChunkedMap {
    user_map(user, b'P')
}
pub fn playlists(user: &str) -> ChunkedMap {
    user_map(user, b'Y')
}

pub fn track_key(id: &str) -> Vec<u8> {
    let mut k = b"t\0".to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn playlist_key(id: &str) -> Vec<u8> {
    let mut k = b"p\0".to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// A time as 8 bytes that sort newest first.
pub fn newest_first(t: &DateTime<Utc>) -> [u8; 8] {
    let us = concept_core::time::micros(t);
    (!((us as u64) ^ (1 << 63))).to_be_bytes()
}

/// The inverse of [`newest_first`].
pub fn time_of(bytes: &[u8]) -> DateTime<Utc> {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
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

/// A stable 64-bit hash (FNV-1a) of bytes, to tell whether metadata changed.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn encode_compact<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}
