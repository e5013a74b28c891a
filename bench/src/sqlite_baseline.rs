//! The baseline LibraryCache is measured against: the SQLite cache a competent developer would write by
//! hand (rusqlite with bundled SQLite, WAL, `synchronous=FULL`, one transaction per operation, prepared
//! statements, diffs computed in Rust so that a sync writes only what changed in likes and playlists).
//!
//! Likes order: `liked_at` (microseconds) newest first, then `ord`, the like's rank among the likes with the
//! same `liked_at` in the body that recorded it (ranks of later merges continue after the existing ones).
//! Ranking within a tie group, rather than by position in the body, means a sync that prepends new likes
//! does not rewrite every other like's row.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::cache::{Backend, Cache};
use crate::error::BenchError;
use crate::model::{parse_time, Body, Like, MergeInput, Play, Playlist, Track};

const DB_FILE: &str = "cache.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    user_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracks(
    id TEXT PRIMARY KEY,
    title TEXT, artist TEXT, album TEXT, duration_ms INTEGER, year INTEGER, genres TEXT, isrc TEXT, uri TEXT,
    extra TEXT
);
CREATE TABLE IF NOT EXISTS user_tracks(
    user_id TEXT NOT NULL, track_id TEXT NOT NULL,
    PRIMARY KEY(user_id, track_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS likes(
    user_id TEXT NOT NULL, track_id TEXT NOT NULL, liked_at INTEGER NOT NULL, ord INTEGER NOT NULL,
    PRIMARY KEY(user_id, track_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS likes_newest_first ON likes(user_id, liked_at DESC, ord);
CREATE TABLE IF NOT EXISTS plays(
    user_id TEXT NOT NULL, track_id TEXT NOT NULL, played_at INTEGER NOT NULL,
    PRIMARY KEY(user_id, track_id, played_at)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS playlists(
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, owner TEXT, public INTEGER,
    collaborative INTEGER, snapshot_id TEXT, uri TEXT, extra TEXT
);
CREATE INDEX IF NOT EXISTS playlists_by_user ON playlists(user_id);
CREATE TABLE IF NOT EXISTS playlist_entries(
    playlist_id TEXT NOT NULL, pos INTEGER NOT NULL, track_id TEXT NOT NULL,
    PRIMARY KEY(playlist_id, pos)
) WITHOUT ROWID;
";

const UPSERT_TRACK: &str = "INSERT INTO tracks(id, title, artist, album, duration_ms, year, genres, isrc, uri, extra)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT(id) DO UPDATE SET title = excluded.title, artist = excluded.artist, album = excluded.album,
        duration_ms = excluded.duration_ms, year = excluded.year, genres = excluded.genres,
        isrc = excluded.isrc, uri = excluded.uri, extra = excluded.extra
    WHERE title IS NOT excluded.title OR artist IS NOT excluded.artist OR album IS NOT excluded.album
        OR duration_ms IS NOT excluded.duration_ms OR year IS NOT excluded.year
        OR genres IS NOT excluded.genres OR isrc IS NOT excluded.isrc OR uri IS NOT excluded.uri
        OR extra IS NOT excluded.extra";
const UPSERT_PLAYLIST: &str =
    "INSERT INTO playlists(id, user_id, name, owner, public, collaborative, snapshot_id, uri, extra)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, owner = excluded.owner,
        public = excluded.public, collaborative = excluded.collaborative, snapshot_id = excluded.snapshot_id,
        uri = excluded.uri, extra = excluded.extra";

/// Opens [`SqliteCache`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteBackend;

impl Backend for SqliteBackend {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn open(&self, dir: &Path) -> Result<Box<dyn Cache>, BenchError> {
        Ok(Box::new(SqliteCache::open(dir)?))
    }
}

/// The SQLite baseline cache, kept in `cache.db` (plus its `-wal`) inside one directory.
#[derive(Debug)]
pub struct SqliteCache {
    conn: Connection,
    path: PathBuf,
}

impl SqliteCache {
    /// Opens the cache in `dir`, creating the directory and the schema if needed.
    pub fn open(dir: &Path) -> Result<SqliteCache, BenchError> {
        std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -32_768)?; // 32 MiB of page cache
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteCache { conn, path })
    }

    /// A cold start: open the cache in `dir` and answer the first `_getLiked` for `user`.
    pub fn open_and_first_get_liked(dir: &Path, user: &str) -> Result<(SqliteCache, Vec<String>), BenchError> {
        let mut cache = SqliteCache::open(dir)?;
        let liked = cache.liked(user)?;
        Ok((cache, liked))
    }

    /// The database file's path (its WAL is beside it, with `-wal` appended).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn liked(&mut self, user: &str) -> Result<Vec<String>, BenchError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT track_id FROM likes WHERE user_id = ?1 ORDER BY liked_at DESC, ord")?;
        let ids = stmt
            .query_map([user], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        if ids.is_empty() && !user_exists(&self.conn, user)? {
            return Err(BenchError::UnknownUser(user.to_owned()));
        }
        Ok(ids)
    }
}

impl Cache for SqliteCache {
    fn ingest(&mut self, body: &[u8]) -> Result<(), BenchError> {
        let body: Body = serde_json::from_slice(body)?;
        let now = now_micros();
        let tx = self.conn.transaction()?;
        if user_exists(&tx, &body.user_id)? {
            return Err(BenchError::AlreadyIngested(body.user_id));
        }
        tx.prepare_cached("INSERT INTO users(user_id, created_at) VALUES (?1, ?2)")?
            .execute(params![body.user_id, now])?;
        let user = body.user_id.as_str();
        if let Some(tracks) = &body.tracks {
            upsert_tracks(&tx, tracks)?;
            let mut add = tx.prepare_cached("INSERT OR IGNORE INTO user_tracks(user_id, track_id) VALUES (?1, ?2)")?;
            for t in tracks {
                add.execute(params![user, t.id])?;
            }
        }
        if let Some(likes) = &body.likes {
            let mut insert = tx.prepare_cached(INSERT_LIKE)?;
            for like in ranked_likes(likes, now, |_| None)? {
                insert.execute(params![user, like.track_id, like.liked_at, like.ord])?;
            }
        }
        if let Some(plays) = &body.plays {
            add_plays(&tx, user, plays)?;
        }
        if let Some(playlists) = &body.playlists {
            for p in playlists {
                write_playlist(&tx, user, p)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn sync(&mut self, body: &[u8]) -> Result<(), BenchError> {
        let body: Body = serde_json::from_slice(body)?;
        let now = now_micros();
        let tx = self.conn.transaction()?;
        let user = body.user_id.as_str();
        if !user_exists(&tx, user)? {
            return Err(BenchError::UnknownUser(body.user_id));
        }
        if let Some(tracks) = &body.tracks {
            upsert_tracks(&tx, tracks)?;
            replace_user_tracks(&tx, user, tracks)?;
        }
        if let Some(likes) = &body.likes {
            replace_likes(&tx, user, likes, now)?;
        }
        if let Some(plays) = &body.plays {
            add_plays(&tx, user, plays)?;
        }
        if let Some(playlists) = &body.playlists {
            replace_playlists(&tx, user, playlists)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn merge(&mut self, body: &[u8]) -> Result<(), BenchError> {
        let body: MergeInput = serde_json::from_slice(body)?;
        let now = now_micros();
        let tx = self.conn.transaction()?;
        let user = body.user_id.as_str();
        if !user_exists(&tx, user)? {
            return Err(BenchError::UnknownUser(body.user_id));
        }
        if let Some(tracks) = &body.tracks {
            upsert_tracks(&tx, tracks)?;
            let mut add = tx.prepare_cached("INSERT OR IGNORE INTO user_tracks(user_id, track_id) VALUES (?1, ?2)")?;
            for t in tracks {
                add.execute(params![user, t.id])?;
            }
        }
        if let Some(likes) = &body.likes {
            merge_likes(&tx, user, likes, now)?;
        }
        if let Some(unlikes) = &body.unlikes {
            let mut remove = tx.prepare_cached("DELETE FROM likes WHERE user_id = ?1 AND track_id = ?2")?;
            for id in unlikes {
                remove.execute(params![user, id])?;
            }
        }
        if let Some(plays) = &body.plays {
            add_plays(&tx, user, plays)?;
        }
        if let Some(playlists) = &body.playlists {
            let cached = user_playlist_snapshots(&tx, user)?;
            for p in playlists {
                if !unchanged(&cached, p) {
                    write_playlist(&tx, user, p)?;
                }
            }
        }
        if let Some(removed) = &body.removed_playlists {
            let cached = user_playlist_snapshots(&tx, user)?;
            for id in removed.iter().filter(|id| cached.contains_key(id.as_str())) {
                delete_playlist(&tx, id)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn get_liked(&mut self, user: &str) -> Result<Vec<String>, BenchError> {
        self.liked(user)
    }

    fn get_playlist(&mut self, playlist: &str) -> Result<Vec<String>, BenchError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT track_id FROM playlist_entries WHERE playlist_id = ?1 ORDER BY pos")?;
        let entries = stmt
            .query_map([playlist], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        if entries.is_empty() {
            let known = self
                .conn
                .prepare_cached("SELECT 1 FROM playlists WHERE id = ?1")?
                .query_row([playlist], |_| Ok(()))
                .optional()?;
            if known.is_none() {
                return Err(BenchError::UnknownPlaylist(playlist.to_owned()));
            }
        }
        Ok(entries)
    }

    fn bytes_on_disk(&self) -> Result<u64, BenchError> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let mut total = 0;
        for file in [self.path.clone(), PathBuf::from(wal)] {
            match std::fs::metadata(&file) {
                Ok(meta) => total += meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BenchError::io("stat", file)(e)),
            }
        }
        Ok(total)
    }
}

const INSERT_LIKE: &str = "INSERT INTO likes(user_id, track_id, liked_at, ord) VALUES (?1, ?2, ?3, ?4)";

/// A like as stored: its time in microseconds and its rank among likes of the same time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredLike<'a> {
    track_id: &'a str,
    liked_at: i64,
    ord: i64,
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An RFC 3339 time as microseconds since the epoch.
fn micros(t: &str) -> Result<i64, BenchError> {
    parse_time(t)
        .and_then(|t| t.timestamp_nanos_opt())
        .map(|n| n.div_euclid(1_000))
        .ok_or_else(|| BenchError::BadTime(t.to_owned()))
}

/// Unknown fields of a track or playlist as JSON text (`NULL` when there are none).
fn extra_json(extra: &serde_json::Map<String, serde_json::Value>) -> Result<Option<String>, BenchError> {
    if extra.is_empty() {
        Ok(None)
    } else {
        Ok(Some(serde_json::to_string(extra)?))
    }
}

fn user_exists(conn: &Connection, user: &str) -> Result<bool, BenchError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM users WHERE user_id = ?1")?
        .query_row([user], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

/// The likes of a body as they will be stored: the first like of each track wins; a like without `likedAt`
/// keeps the time it was first recorded (`known`) or gets `now`; `ord` counts earlier likes of the same time.
fn ranked_likes<'a>(
    likes: &'a [Like],
    now: i64,
    known: impl Fn(&str) -> Option<i64>,
) -> Result<Vec<StoredLike<'a>>, BenchError> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(likes.len());
    let mut ranks: HashMap<i64, i64> = HashMap::new();
    let mut out = Vec::with_capacity(likes.len());
    for like in likes {
        if !seen.insert(like.track_id.as_str()) {
            continue;
        }
        let liked_at = match &like.liked_at {
            Some(t) => micros(t)?,
            None => known(&like.track_id).unwrap_or(now),
        };
        let rank = ranks.entry(liked_at).or_insert(0);
        out.push(StoredLike {
            track_id: &like.track_id,
            liked_at,
            ord: *rank,
        });
        *rank += 1;
    }
    Ok(out)
}

fn upsert_tracks(tx: &Transaction<'_>, tracks: &[Arc<Track>]) -> Result<(), BenchError> {
    let mut upsert = tx.prepare_cached(UPSERT_TRACK)?;
    for t in tracks {
        let genres = t.genres.as_ref().map(serde_json::to_string).transpose()?;
        upsert.execute(params![
            t.id,
            t.title,
            t.artist,
            t.album,
            t.duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
            t.year,
            genres,
            t.isrc,
            t.uri,
            extra_json(&t.extra)?
        ])?;
    }
    Ok(())
}

fn replace_user_tracks(tx: &Transaction<'_>, user: &str, tracks: &[Arc<Track>]) -> Result<(), BenchError> {
    let cached: HashSet<String> = tx
        .prepare_cached("SELECT track_id FROM user_tracks WHERE user_id = ?1")?
        .query_map([user], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let given: HashSet<&str> = tracks.iter().map(|t| t.id.as_str()).collect();
    let mut remove = tx.prepare_cached("DELETE FROM user_tracks WHERE user_id = ?1 AND track_id = ?2")?;
    for id in cached.iter().filter(|id| !given.contains(id.as_str())) {
        remove.execute(params![user, id])?;
    }
    let mut add = tx.prepare_cached("INSERT INTO user_tracks(user_id, track_id) VALUES (?1, ?2)")?;
    for id in given.iter().filter(|id| !cached.contains(**id)) {
        add.execute(params![user, id])?;
    }
    Ok(())
}

fn replace_likes(tx: &Transaction<'_>, user: &str, likes: &[Like], now: i64) -> Result<(), BenchError> {
    let cached: HashMap<String, (i64, i64)> = tx
        .prepare_cached("SELECT track_id, liked_at, ord FROM likes WHERE user_id = ?1")?
        .query_map([user], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let wanted = ranked_likes(likes, now, |id| cached.get(id).map(|&(at, _)| at))?;
    let given: HashSet<&str> = wanted.iter().map(|l| l.track_id).collect();
    let mut remove = tx.prepare_cached("DELETE FROM likes WHERE user_id = ?1 AND track_id = ?2")?;
    for id in cached.keys().filter(|id| !given.contains(id.as_str())) {
        remove.execute(params![user, id])?;
    }
    let mut insert = tx.prepare_cached(INSERT_LIKE)?;
    let mut update =
        tx.prepare_cached("UPDATE likes SET liked_at = ?3, ord = ?4 WHERE user_id = ?1 AND track_id = ?2")?;
    for like in &wanted {
        match cached.get(like.track_id) {
            None => insert.execute(params![user, like.track_id, like.liked_at, like.ord])?,
            Some(&(at, ord)) if (at, ord) != (like.liked_at, like.ord) => {
                update.execute(params![user, like.track_id, like.liked_at, like.ord])?
            }
            Some(_) => 0,
        };
    }
    Ok(())
}

/// Adds likes not yet cached; a like already cached keeps its time and place. New likes rank after the
/// cached likes of the same time.
fn merge_likes(tx: &Transaction<'_>, user: &str, likes: &[Like], now: i64) -> Result<(), BenchError> {
    let mut exists = tx.prepare_cached("SELECT 1 FROM likes WHERE user_id = ?1 AND track_id = ?2")?;
    let mut next_rank =
        tx.prepare_cached("SELECT COALESCE(MAX(ord) + 1, 0) FROM likes WHERE user_id = ?1 AND liked_at = ?2")?;
    let mut insert = tx.prepare_cached(INSERT_LIKE)?;
    for like in likes {
        if exists
            .query_row(params![user, like.track_id], |_| Ok(()))
            .optional()?
            .is_some()
        {
            continue;
        }
        let liked_at = match &like.liked_at {
            Some(t) => micros(t)?,
            None => now,
        };
        let ord: i64 = next_rank.query_row(params![user, liked_at], |row| row.get(0))?;
        insert.execute(params![user, like.track_id, liked_at, ord])?;
    }
    Ok(())
}

fn add_plays(tx: &Transaction<'_>, user: &str, plays: &[Play]) -> Result<(), BenchError> {
    let mut add = tx.prepare_cached("INSERT OR IGNORE INTO plays(user_id, track_id, played_at) VALUES (?1, ?2, ?3)")?;
    for p in plays {
        add.execute(params![user, p.track_id, micros(&p.played_at)?])?;
    }
    Ok(())
}

/// The user's cached playlists and their snapshot ids.
fn user_playlist_snapshots(tx: &Transaction<'_>, user: &str) -> Result<HashMap<String, Option<String>>, BenchError> {
    let cached = tx
        .prepare_cached("SELECT id, snapshot_id FROM playlists WHERE user_id = ?1")?
        .query_map([user], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(cached)
}

/// Whether `p` is cached with the same (present) snapshot id, so that nothing in it changed.
fn unchanged(cached: &HashMap<String, Option<String>>, p: &Playlist) -> bool {
    matches!((cached.get(&p.id), &p.snapshot_id), (Some(Some(old)), Some(new)) if old == new)
}

fn replace_playlists(tx: &Transaction<'_>, user: &str, playlists: &[Arc<Playlist>]) -> Result<(), BenchError> {
    let cached = user_playlist_snapshots(tx, user)?;
    let given: HashSet<&str> = playlists.iter().map(|p| p.id.as_str()).collect();
    for id in cached.keys().filter(|id| !given.contains(id.as_str())) {
        delete_playlist(tx, id)?;
    }
    for p in playlists {
        if !unchanged(&cached, p) {
            write_playlist(tx, user, p)?;
        }
    }
    Ok(())
}

/// Removes a playlist and its entries.
fn delete_playlist(tx: &Transaction<'_>, id: &str) -> Result<(), BenchError> {
    tx.prepare_cached("DELETE FROM playlist_entries WHERE playlist_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM playlists WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Writes a playlist's row and replaces its entries.
fn write_playlist(tx: &Transaction<'_>, user: &str, p: &Playlist) -> Result<(), BenchError> {
    tx.prepare_cached(UPSERT_PLAYLIST)?.execute(params![
        p.id,
        user,
        p.name,
        p.owner,
        p.public,
        p.collaborative,
        p.snapshot_id,
        p.uri,
        extra_json(&p.extra)?
    ])?;
    tx.prepare_cached("DELETE FROM playlist_entries WHERE playlist_id = ?1")?
        .execute([&p.id])?;
    let mut add = tx.prepare_cached("INSERT INTO playlist_entries(playlist_id, pos, track_id) VALUES (?1, ?2, ?3)")?;
    for (pos, track) in p.entries.iter().enumerate() {
        add.execute(params![p.id, i64::try_from(pos).unwrap_or(i64::MAX), track])?;
    }
    Ok(())
}
