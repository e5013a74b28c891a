//! The baseline LibraryCache is measured against: the SQLite cache a competent developer would write
//! by hand for the same API (rusqlite with bundled SQLite, WAL, one transaction per operation,
//! prepared statements, an index for every query, diffs computed in Rust so that a sync writes only
//! what changed, and answers written as the service's JSON).
//!
//! - **Syncs write only what changed.** A track row carries a content hash of its fields; a
//!   sync reads the user's track ids with their hashes in one query and writes only tracks that
//!   are new to the user or whose hash differs. Plays: the cached plays in the time range of
//!   those given are read in one query, and only new ones are inserted. Likes and playlists:
//!   the user's rows are read once and diffed in Rust (playlists by snapshot id).
//! - **Durability.** [`Durability::Full`] (`synchronous=FULL`: the WAL is fsynced at every commit,
//!   as LibraryCache fsyncs before it answers) is the baseline; [`Durability::Normal`] (the WAL is
//!   fsynced only at checkpoints) is reported beside it.
//! - **Likes order**: `liked_at` (microseconds) newest first, then `ord`, the like's rank among the
//!   likes with the same `liked_at` in the body that recorded it (ranks of later merges continue
//!   after the existing ones). Ranking within a tie group, rather than by position in the body,
//!   means a sync that prepends new likes does not rewrite every other like's row.
//! - **`_getChanges`** needs a history: every write appends its changes to a `changes` table
//!   (user, version, sequence), in the transaction that makes them, as LibraryCache's events are
//!   its history. The user's row keeps its counts, times and version for `_getStatus`.
//! - **`/api/liked`**: a hand-written service answers it with the same read as `_getLiked` (it
//!   records nothing), so that is its counterpart here; LibraryCache's flow also records the
//!   request and its answer and flushes them (see BENCHMARKS.md).
//! - Playlists belong to the user who last wrote them (LibraryCache shares them between users;
//!   the bench gives each user playlists of their own). A playlist with the snapshot id cached is
//!   not rewritten; one without a snapshot id is rewritten by every sync that names it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use library_cache::model::{
    Change, ChangeOutput, ChangesOutput, GetChangesInput, GetLikedInput, GetPlaylistInput, GetPlaysInput,
    GetStatusInput, GetTracksInput, PlaylistSummary, PlaylistsOutput, ResolvePlaylistInput, StatusOutput,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, Query, Reader};
use crate::error::BenchError;
use crate::model::{format_time, parse_time, Body, Like, MergeInput, Play, Playlist, Track};
use crate::stats::Digest;

const DB_FILE: &str = "cache.db";
/// The page of `_getTracks` and `_getPlays` when no `limit` is given (as the service's).
const DEFAULT_PAGE: i64 = 1_000;
/// The most changes `_getChanges` answers at once (as the service's).
const MAX_CHANGES: i64 = 10_000;

/// How SQLite makes a commit durable (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced before a commit returns.
    Full,
    /// `synchronous=NORMAL`: the WAL is fsynced only at checkpoints.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }

    /// What an acknowledged commit survives, in one line.
    pub fn survives(self) -> &'static str {
        match self {
            Durability::Full => {
                "WAL fsynced at every commit: an acknowledged commit survives a process kill, an OS crash and a power loss"
            }
            Durability::Normal => {
                "WAL fsynced only at checkpoints: an acknowledged commit survives a process kill; an OS crash or a power loss may lose the commits since the last checkpoint (the database stays consistent)"
            }
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    user_id TEXT PRIMARY KEY,
    ingested_at INTEGER NOT NULL, synced_at INTEGER NOT NULL, version INTEGER NOT NULL,
    tracks INTEGER NOT NULL, likes INTEGER NOT NULL, plays INTEGER NOT NULL, playlists INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracks(
    id TEXT PRIMARY KEY,
    title TEXT, artist TEXT, album TEXT, duration_ms INTEGER, year INTEGER, genres TEXT, isrc TEXT, uri TEXT,
    extra TEXT, hash INTEGER NOT NULL
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
    user_id TEXT NOT NULL, played_at INTEGER NOT NULL, track_id TEXT NOT NULL,
    PRIMARY KEY(user_id, played_at DESC, track_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS playlists(
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, name_lower TEXT NOT NULL, owner TEXT,
    public INTEGER, collaborative INTEGER, snapshot_id TEXT, uri TEXT, extra TEXT, entry_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS playlists_by_name ON playlists(user_id, name_lower, id);
CREATE INDEX IF NOT EXISTS playlists_by_uri ON playlists(user_id, uri);
CREATE TABLE IF NOT EXISTS playlist_entries(
    playlist_id TEXT NOT NULL, pos INTEGER NOT NULL, track_id TEXT NOT NULL,
    PRIMARY KEY(playlist_id, pos)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(
    user_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
    kind TEXT NOT NULL, track_id TEXT, playlist_id TEXT, time INTEGER,
    PRIMARY KEY(user_id, version, seq)
) WITHOUT ROWID;
";

const UPSERT_TRACK: &str =
    "INSERT INTO tracks(id, title, artist, album, duration_ms, year, genres, isrc, uri, extra, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
    ON CONFLICT(id) DO UPDATE SET title = excluded.title, artist = excluded.artist, album = excluded.album,
        duration_ms = excluded.duration_ms, year = excluded.year, genres = excluded.genres,
        isrc = excluded.isrc, uri = excluded.uri, extra = excluded.extra, hash = excluded.hash
    WHERE hash <> excluded.hash";
const UPSERT_PLAYLIST: &str =
    "INSERT INTO playlists(id, user_id, name, name_lower, owner, public, collaborative, snapshot_id, uri, extra, entry_count)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
    ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, name_lower = excluded.name_lower,
        owner = excluded.owner, public = excluded.public, collaborative = excluded.collaborative,
        snapshot_id = excluded.snapshot_id, uri = excluded.uri, extra = excluded.extra,
        entry_count = excluded.entry_count";
const INSERT_LIKE: &str = "INSERT INTO likes(user_id, track_id, liked_at, ord) VALUES (?1, ?2, ?3, ?4)";
const INSERT_CHANGE: &str = "INSERT INTO changes(user_id, version, seq, at, kind, track_id, playlist_id, time)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The SQLite baseline cache, kept in `cache.db` (plus its `-wal`) inside one directory.
#[derive(Debug)]
pub struct SqliteCache {
    conn: Connection,
    path: PathBuf,
    durability: Durability,
}

/// A second connection to a [`SqliteCache`]'s database, for reads on another thread (WAL lets
/// readers and the writer run at once).
#[derive(Debug)]
pub struct SqliteReader {
    conn: Connection,
}

fn connect(path: &Path, durability: Durability) -> Result<Connection, BenchError> {
    let conn = Connection::open(path)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", durability.pragma())?;
    conn.pragma_update(None, "cache_size", -32_768)?; // 32 MiB of page cache
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteCache {
    /// Opens the cache in `dir`, creating the directory and the schema if needed.
    pub fn open(dir: &Path, durability: Durability) -> Result<SqliteCache, BenchError> {
        std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
        let path = dir.join(DB_FILE);
        let conn = connect(&path, durability)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteCache { conn, path, durability })
    }

    /// The database file's path (its WAL is beside it, with `-wal` appended).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The liked track ids of `user` (a convenience for tests).
    pub fn get_liked(&mut self, user: &str) -> Result<Vec<String>, BenchError> {
        crate::cache::liked_ids(self, user)
    }

    /// A playlist's entries (a convenience for tests).
    pub fn get_playlist(&mut self, playlist: &str) -> Result<Vec<String>, BenchError> {
        crate::cache::playlist_entries(self, playlist)
    }
}

impl Reader for SqliteCache {
    fn query(&mut self, query: Query, body: &Bytes) -> Result<Bytes, BenchError> {
        answer(&self.conn, query, body)
    }
}

impl Reader for SqliteReader {
    fn query(&mut self, query: Query, body: &Bytes) -> Result<Bytes, BenchError> {
        answer(&self.conn, query, body)
    }
}

impl Cache for SqliteCache {
    fn ingest(&mut self, body: &Bytes) -> Result<Bytes, BenchError> {
        let body: Body = serde_json::from_slice(body)?;
        let now = now_micros();
        let tx = self.conn.transaction()?;
        let user = body.user_id.as_str();
        if load_user(&tx, user)?.is_some() {
            return Err(BenchError::AlreadyIngested(body.user_id));
        }
        let mut w = Write::new(user, 1, now);
        w.log.push("ingested", None, None, None);
        tx.prepare_cached(
            "INSERT INTO users(user_id, ingested_at, synced_at, version, tracks, likes, plays, playlists)
             VALUES (?1, ?2, ?2, 1, 0, 0, 0, 0)",
        )?
        .execute(params![user, now])?;
        if let Some(tracks) = &body.tracks {
            w.add_tracks(&tx, tracks)?;
        }
        if let Some(likes) = &body.likes {
            w.replace_likes(&tx, likes)?;
        }
        if let Some(plays) = &body.plays {
            w.add_plays(&tx, plays)?;
        }
        if let Some(playlists) = &body.playlists {
            w.replace_playlists(&tx, playlists)?;
        }
        let answer = w.finish(&tx, None)?;
        tx.commit()?;
        Ok(answer)
    }

    fn sync(&mut self, body: &Bytes) -> Result<Bytes, BenchError> {
        let body: Body = serde_json::from_slice(body)?;
        let now = now_micros();
        let tx = self.conn.transaction()?;
        let user = body.user_id.as_str();
        let Some(row) = load_user(&tx, user)? else {
            return Err(BenchError::UnknownUser(body.user_id));
        };
        let mut w = Write::new(user, row.version + 1, now);
        if let Some(tracks) = &body.tracks {
            w.replace_tracks(&tx, tracks)?;
        }
        if let Some(likes) = &body.likes {
            w.replace_likes(&tx, likes)?;
        }
        if let Some(plays) = &body.plays {
            w.add_plays(&tx, plays)?;
        }
        if let Some(playlists) = &body.playlists {
            w.replace_playlists(&tx, playlists)?;
        }
        if w.log.rows.is_empty() {
            // Nothing changed: as LibraryCache does, record nothing and answer the version as
            // it was (the transaction is dropped, so rolled back).
            return w.unchanged(row.version);
        }
        w.log.push("synced", None, None, None);
        let answer = w.finish(&tx, Some(&row))?;
        tx.commit()?;
        Ok(answer)
    }

    fn merge(&mut self, body: &Bytes) -> Result<Bytes, BenchError> {
        let body: MergeInput = serde_json::from_slice(body)?;
        let now = now_micros();
        let tx = self.conn.transaction()?;
        let user = body.user_id.as_str();
        let Some(row) = load_user(&tx, user)? else {
            return Err(BenchError::UnknownUser(body.user_id));
        };
        let mut w = Write::new(user, row.version + 1, now);
        if let Some(tracks) = &body.tracks {
            w.add_tracks(&tx, tracks)?;
        }
        w.merge_likes(
            &tx,
            body.likes.as_deref().unwrap_or_default(),
            body.unlikes.as_deref().unwrap_or_default(),
        )?;
        if let Some(plays) = &body.plays {
            w.add_plays(&tx, plays)?;
        }
        w.merge_playlists(
            &tx,
            body.playlists.as_deref().unwrap_or_default(),
            body.removed_playlists.as_deref().unwrap_or_default(),
        )?;
        if w.log.rows.is_empty() {
            // Nothing changed: as LibraryCache does, record nothing and answer the version as
            // it was (the transaction is dropped, so rolled back).
            return w.unchanged(row.version);
        }
        w.log.push("merged", None, None, None);
        let answer = w.finish(&tx, Some(&row))?;
        tx.commit()?;
        Ok(answer)
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

    fn reader(&self) -> Result<Box<dyn Reader>, BenchError> {
        Ok(Box::new(SqliteReader {
            conn: connect(&self.path, self.durability)?,
        }))
    }
}

/// A user's row.
#[derive(Debug, Clone)]
struct UserRow {
    ingested_at: i64,
    synced_at: i64,
    version: i64,
    tracks: i64,
    likes: i64,
    plays: i64,
    playlists: i64,
}

fn load_user(conn: &Connection, user: &str) -> Result<Option<UserRow>, BenchError> {
    let row = conn
        .prepare_cached(
            "SELECT ingested_at, synced_at, version, tracks, likes, plays, playlists FROM users WHERE user_id = ?1",
        )?
        .query_row([user], |r| {
            Ok(UserRow {
                ingested_at: r.get(0)?,
                synced_at: r.get(1)?,
                version: r.get(2)?,
                tracks: r.get(3)?,
                likes: r.get(4)?,
                plays: r.get(5)?,
                playlists: r.get(6)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// One row of the `changes` table: kind, track id, playlist id, time.
type ChangeRow = (&'static str, Option<String>, Option<String>, Option<i64>);

/// The changes of one write, appended to `changes` at its end.
struct ChangeLog {
    rows: Vec<ChangeRow>,
}

impl ChangeLog {
    fn push(&mut self, kind: &'static str, track: Option<&str>, playlist: Option<&str>, time: Option<i64>) {
        self.rows
            .push((kind, track.map(str::to_owned), playlist.map(str::to_owned), time));
    }
}

/// One write in progress: what it changed (the answer's counts and the change log).
struct Write<'a> {
    user: &'a str,
    version: i64,
    now: i64,
    out: ChangeOutput,
    log: ChangeLog,
}

impl<'a> Write<'a> {
    fn new(user: &'a str, version: i64, now: i64) -> Write<'a> {
        Write {
            user,
            version,
            now,
            out: ChangeOutput {
                user_id: user.to_owned(),
                version: u64::try_from(version).unwrap_or(0),
                ..ChangeOutput::default()
            },
            log: ChangeLog { rows: Vec::new() },
        }
    }

    /// Upserts the tracks' metadata and adds them to the user's set (merge and ingest).
    fn add_tracks(&mut self, tx: &Transaction<'_>, tracks: &[Arc<Track>]) -> Result<(), BenchError> {
        let mut upsert = tx.prepare_cached(UPSERT_TRACK)?;
        let mut add = tx.prepare_cached("INSERT OR IGNORE INTO user_tracks(user_id, track_id) VALUES (?1, ?2)")?;
        for t in last_of_each(tracks, |t| t.id.as_str()) {
            let changed = upsert_track(&mut upsert, t)?;
            if add.execute(params![self.user, t.id])? == 1 {
                self.out.added.tracks += 1;
                self.log.push("trackAdded", Some(&t.id), None, None);
            } else if changed {
                self.out.updated.tracks += 1;
                self.log.push("trackChanged", Some(&t.id), None, None);
            }
        }
        Ok(())
    }

    /// The user's set of tracks becomes `tracks` (sync). The user's tracks are read once with
    /// their content hashes; only tracks that are new to the user or whose hash differs are
    /// written.
    fn replace_tracks(&mut self, tx: &Transaction<'_>, tracks: &[Arc<Track>]) -> Result<(), BenchError> {
        let held: HashMap<String, Option<i64>> = tx
            .prepare_cached(
                "SELECT u.track_id, t.hash FROM user_tracks u LEFT JOIN tracks t ON t.id = u.track_id
                 WHERE u.user_id = ?1",
            )?
            .query_map([self.user], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let given: HashSet<&str> = tracks.iter().map(|t| t.id.as_str()).collect();
        let mut gone: Vec<&String> = held.keys().filter(|id| !given.contains(id.as_str())).collect();
        gone.sort();
        let mut remove = tx.prepare_cached("DELETE FROM user_tracks WHERE user_id = ?1 AND track_id = ?2")?;
        for id in gone {
            remove.execute(params![self.user, id])?;
            self.out.removed.tracks += 1;
            self.log.push("trackRemoved", Some(id), None, None);
        }
        drop(remove);
        let mut upsert = tx.prepare_cached(UPSERT_TRACK)?;
        let mut add = tx.prepare_cached("INSERT INTO user_tracks(user_id, track_id) VALUES (?1, ?2)")?;
        for t in last_of_each(tracks, |t| t.id.as_str()) {
            match held.get(&t.id) {
                Some(Some(hash)) if *hash == track_hash(t)? => {}
                Some(_) => {
                    if upsert_track(&mut upsert, t)? {
                        self.out.updated.tracks += 1;
                        self.log.push("trackChanged", Some(&t.id), None, None);
                    }
                }
                None => {
                    upsert_track(&mut upsert, t)?;
                    add.execute(params![self.user, t.id])?;
                    self.out.added.tracks += 1;
                    self.log.push("trackAdded", Some(&t.id), None, None);
                }
            }
        }
        Ok(())
    }

    /// The user's likes become `likes` (ingest, sync): likes not given are removed, new ones
    /// added, a like whose time changed moves.
    fn replace_likes(&mut self, tx: &Transaction<'_>, likes: &[Like]) -> Result<(), BenchError> {
        let cached: HashMap<String, (i64, i64)> = tx
            .prepare_cached("SELECT track_id, liked_at, ord FROM likes WHERE user_id = ?1")?
            .query_map([self.user], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
            .collect::<Result<_, _>>()?;
        let wanted = ranked_likes(likes, self.now, |id| cached.get(id).map(|&(at, _)| at))?;
        let given: HashSet<&str> = wanted.iter().map(|l| l.track_id).collect();
        let mut gone: Vec<&String> = cached.keys().filter(|id| !given.contains(id.as_str())).collect();
        gone.sort();
        let mut remove = tx.prepare_cached("DELETE FROM likes WHERE user_id = ?1 AND track_id = ?2")?;
        for id in gone {
            remove.execute(params![self.user, id])?;
            self.out.removed.likes += 1;
            self.log.push("unliked", Some(id), None, None);
        }
        let mut insert = tx.prepare_cached(INSERT_LIKE)?;
        let mut update =
            tx.prepare_cached("UPDATE likes SET liked_at = ?3, ord = ?4 WHERE user_id = ?1 AND track_id = ?2")?;
        for like in &wanted {
            match cached.get(like.track_id) {
                None => {
                    insert.execute(params![self.user, like.track_id, like.liked_at, like.ord])?;
                    self.out.added.likes += 1;
                    self.log.push("liked", Some(like.track_id), None, Some(like.liked_at));
                }
                Some(&(at, ord)) if (at, ord) != (like.liked_at, like.ord) => {
                    update.execute(params![self.user, like.track_id, like.liked_at, like.ord])?;
                    if at != like.liked_at {
                        self.log.push("liked", Some(like.track_id), None, Some(like.liked_at));
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Adds likes not yet cached and moves those whose time changed (a new like ranks after the
    /// cached likes of the same time); removes the likes in `unlikes` (merge).
    fn merge_likes(&mut self, tx: &Transaction<'_>, likes: &[Like], unlikes: &[String]) -> Result<(), BenchError> {
        let mut find = tx.prepare_cached("SELECT liked_at FROM likes WHERE user_id = ?1 AND track_id = ?2")?;
        let mut next_rank =
            tx.prepare_cached("SELECT COALESCE(MAX(ord) + 1, 0) FROM likes WHERE user_id = ?1 AND liked_at = ?2")?;
        let mut insert = tx.prepare_cached(INSERT_LIKE)?;
        let mut update =
            tx.prepare_cached("UPDATE likes SET liked_at = ?3, ord = ?4 WHERE user_id = ?1 AND track_id = ?2")?;
        let mut seen: HashSet<&str> = HashSet::with_capacity(likes.len());
        for like in likes {
            if !seen.insert(like.track_id.as_str()) {
                continue;
            }
            let cached: Option<i64> = find
                .query_row(params![self.user, like.track_id], |r| r.get(0))
                .optional()?;
            let liked_at = match (&like.liked_at, cached) {
                (Some(t), _) => micros(t)?,
                (None, Some(at)) => at,
                (None, None) => self.now,
            };
            if cached == Some(liked_at) {
                continue;
            }
            let ord: i64 = next_rank.query_row(params![self.user, liked_at], |row| row.get(0))?;
            if cached.is_some() {
                update.execute(params![self.user, like.track_id, liked_at, ord])?;
            } else {
                insert.execute(params![self.user, like.track_id, liked_at, ord])?;
                self.out.added.likes += 1;
            }
            self.log.push("liked", Some(&like.track_id), None, Some(liked_at));
        }
        let wanted = seen;
        let mut unlikes: Vec<&String> = unlikes.iter().filter(|u| !wanted.contains(u.as_str())).collect();
        unlikes.sort();
        unlikes.dedup();
        let mut remove = tx.prepare_cached("DELETE FROM likes WHERE user_id = ?1 AND track_id = ?2")?;
        for id in unlikes {
            if remove.execute(params![self.user, id])? == 1 {
                self.out.removed.likes += 1;
                self.log.push("unliked", Some(id), None, None);
            }
        }
        Ok(())
    }

    /// Adds the plays not cached yet (plays are never removed). The cached plays in the time
    /// range of those given are read once, so that only new plays are written.
    fn add_plays(&mut self, tx: &Transaction<'_>, plays: &[Play]) -> Result<(), BenchError> {
        let times = plays
            .iter()
            .map(|p| micros(&p.played_at))
            .collect::<Result<Vec<i64>, _>>()?;
        let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
            return Ok(());
        };
        let mut cached: HashSet<(i64, String)> = tx
            .prepare_cached("SELECT played_at, track_id FROM plays WHERE user_id = ?1 AND played_at BETWEEN ?2 AND ?3")?
            .query_map(params![self.user, first, last], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut add = tx.prepare_cached("INSERT INTO plays(user_id, played_at, track_id) VALUES (?1, ?2, ?3)")?;
        for (p, at) in plays.iter().zip(times) {
            if cached.insert((at, p.track_id.clone())) {
                add.execute(params![self.user, at, p.track_id])?;
                self.out.added.plays += 1;
                self.log.push("playAdded", Some(&p.track_id), None, Some(at));
            }
        }
        Ok(())
    }

    /// The user's playlists become `playlists` (ingest, sync).
    fn replace_playlists(&mut self, tx: &Transaction<'_>, playlists: &[Arc<Playlist>]) -> Result<(), BenchError> {
        let cached = user_playlist_snapshots(tx, self.user)?;
        let given: HashSet<&str> = playlists.iter().map(|p| p.id.as_str()).collect();
        let mut gone: Vec<&String> = cached.keys().filter(|id| !given.contains(id.as_str())).collect();
        gone.sort();
        for id in gone {
            delete_playlist(tx, id)?;
            self.out.removed.playlists += 1;
            self.log.push("playlistRemoved", None, Some(id), None);
        }
        self.write_playlists(tx, &cached, playlists)
    }

    /// Adds or rewrites the playlists given and removes those in `removed` (merge).
    fn merge_playlists(
        &mut self,
        tx: &Transaction<'_>,
        playlists: &[Arc<Playlist>],
        removed: &[String],
    ) -> Result<(), BenchError> {
        if playlists.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let cached = user_playlist_snapshots(tx, self.user)?;
        let given: HashSet<&str> = playlists.iter().map(|p| p.id.as_str()).collect();
        let mut gone: Vec<&String> = removed
            .iter()
            .filter(|id| cached.contains_key(id.as_str()) && !given.contains(id.as_str()))
            .collect();
        gone.sort();
        gone.dedup();
        for id in gone {
            delete_playlist(tx, id)?;
            self.out.removed.playlists += 1;
            self.log.push("playlistRemoved", None, Some(id), None);
        }
        self.write_playlists(tx, &cached, playlists)
    }

    fn write_playlists(
        &mut self,
        tx: &Transaction<'_>,
        cached: &HashMap<String, Option<String>>,
        playlists: &[Arc<Playlist>],
    ) -> Result<(), BenchError> {
        for p in last_of_each(playlists, |p| p.id.as_str()) {
            if unchanged(cached, p) {
                continue;
            }
            write_playlist(tx, self.user, p)?;
            if cached.contains_key(&p.id) {
                self.out.updated.playlists += 1;
                self.log.push("playlistChanged", None, Some(&p.id), None);
            } else {
                self.out.added.playlists += 1;
                self.log.push("playlistAdded", None, Some(&p.id), None);
            }
        }
        Ok(())
    }

    /// The answer of a write that changed nothing: the counts (all zero) at `version`.
    fn unchanged(mut self, version: i64) -> Result<Bytes, BenchError> {
        self.out.version = u64::try_from(version).unwrap_or(0);
        Ok(Bytes::from(serde_json::to_vec(&self.out)?))
    }

    /// Writes the change log and the user's row; answers `{userId, version, added, removed,
    /// updated}`. `before` is the user's row before this write (`None` for an ingest).
    fn finish(self, tx: &Transaction<'_>, before: Option<&UserRow>) -> Result<Bytes, BenchError> {
        let mut insert = tx.prepare_cached(INSERT_CHANGE)?;
        for (seq, (kind, track, playlist, time)) in self.log.rows.iter().enumerate() {
            insert.execute(params![
                self.user,
                self.version,
                i64::try_from(seq).unwrap_or(i64::MAX),
                self.now,
                kind,
                track,
                playlist,
                time
            ])?;
        }
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (a, r) = (&self.out.added, &self.out.removed);
        let base = before.cloned().unwrap_or(UserRow {
            ingested_at: self.now,
            synced_at: self.now,
            version: 0,
            tracks: 0,
            likes: 0,
            plays: 0,
            playlists: 0,
        });
        tx.prepare_cached(
            "UPDATE users SET synced_at = ?2, version = ?3, tracks = ?4, likes = ?5, plays = ?6, playlists = ?7
             WHERE user_id = ?1",
        )?
        .execute(params![
            self.user,
            self.now,
            self.version,
            base.tracks + count(a.tracks) - count(r.tracks),
            base.likes + count(a.likes) - count(r.likes),
            base.plays + count(a.plays),
            base.playlists + count(a.playlists) - count(r.playlists),
        ])?;
        Ok(Bytes::from(serde_json::to_vec(&self.out)?))
    }
}

/// The items of `items` with distinct keys, each the last copy of its key, in the order the
/// keys first appear.
fn last_of_each<T>(items: &[Arc<T>], key: impl Fn(&T) -> &str) -> impl Iterator<Item = &T> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    let mut emitted: HashSet<&str> = HashSet::with_capacity(items.len());
    let mut order = Vec::with_capacity(last.len());
    for item in items {
        let k = key(item);
        if emitted.insert(k) {
            order.push(last[k]);
        }
    }
    order.into_iter().map(move |i| &*items[i])
}

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

/// Microseconds since the epoch as the service writes times.
fn time_text(us: i64) -> String {
    format_time(&concept_core::time::from_micros(us))
}

/// Unknown fields of a track or playlist as JSON text (`NULL` when there are none).
fn extra_json(extra: &serde_json::Map<String, serde_json::Value>) -> Result<Option<String>, BenchError> {
    if extra.is_empty() {
        Ok(None)
    } else {
        Ok(Some(serde_json::to_string(extra)?))
    }
}

/// Stored unknown fields back as a map.
fn extra_map(text: Option<String>) -> Result<serde_json::Map<String, serde_json::Value>, BenchError> {
    match text {
        Some(t) => Ok(serde_json::from_str(&t)?),
        None => Ok(serde_json::Map::new()),
    }
}

/// The likes of a body as they will be stored: the first like of each track wins; a like without
/// `likedAt` keeps the time it was first recorded (`known`) or gets `now`; `ord` counts earlier
/// likes of the same time.
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

/// A track's content hash: every field, unknown ones included (as JSON text), hashed with
/// FNV-1a. A sync compares it with the stored one instead of comparing the fields.
fn track_hash(t: &Track) -> Result<i64, BenchError> {
    let mut d = Digest::default();
    d.add(t.id.as_bytes());
    for field in [&t.title, &t.artist, &t.album, &t.isrc, &t.uri] {
        d.add(field.as_deref().unwrap_or("\u{0}").as_bytes());
    }
    d.add(&t.duration_ms.map_or(u64::MAX, |v| v).to_le_bytes());
    d.add(&t.year.map_or(i64::MIN, i64::from).to_le_bytes());
    match &t.genres {
        Some(genres) => {
            for g in genres {
                d.add(g.as_bytes());
            }
            d.add(&genres.len().to_le_bytes());
        }
        None => {
            d.add(b"\x00none");
        }
    }
    if !t.extra.is_empty() {
        d.add(&serde_json::to_vec(&t.extra)?);
    }
    Ok(i64::from_le_bytes(d.value().to_le_bytes()))
}

/// Upserts a track's metadata; whether its row changed (inserted, or its hash differed).
fn upsert_track(upsert: &mut rusqlite::CachedStatement<'_>, t: &Track) -> Result<bool, BenchError> {
    let genres = t.genres.as_ref().map(serde_json::to_string).transpose()?;
    let n = upsert.execute(params![
        t.id,
        t.title,
        t.artist,
        t.album,
        t.duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
        t.year,
        genres,
        t.isrc,
        t.uri,
        extra_json(&t.extra)?,
        track_hash(t)?
    ])?;
    Ok(n > 0)
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
        p.name.to_lowercase(),
        p.owner,
        p.public,
        p.collaborative,
        p.snapshot_id,
        p.uri,
        extra_json(&p.extra)?,
        i64::try_from(p.entries.len()).unwrap_or(i64::MAX)
    ])?;
    tx.prepare_cached("DELETE FROM playlist_entries WHERE playlist_id = ?1")?
        .execute([&p.id])?;
    let mut add = tx.prepare_cached("INSERT INTO playlist_entries(playlist_id, pos, track_id) VALUES (?1, ?2, ?3)")?;
    for (pos, track) in p.entries.iter().enumerate() {
        add.execute(params![p.id, i64::try_from(pos).unwrap_or(i64::MAX), track])?;
    }
    Ok(())
}

// ---- Reads: each parses the request body and writes the answer's JSON text. ----

fn answer(conn: &Connection, query: Query, body: &[u8]) -> Result<Bytes, BenchError> {
    match query {
        Query::GetLiked => get_liked(conn, serde_json::from_slice(body)?),
        Query::GetPlaylist => get_playlist(conn, serde_json::from_slice(body)?),
        Query::GetPlays => get_plays(conn, serde_json::from_slice(body)?),
        Query::GetChanges => get_changes(conn, serde_json::from_slice(body)?),
        Query::GetTracks => get_tracks(conn, serde_json::from_slice(body)?),
        Query::GetStatus => get_status(conn, serde_json::from_slice(body)?),
        Query::ResolvePlaylist => resolve_playlist(conn, serde_json::from_slice(body)?),
        Query::LikedRequest => liked_request(conn, serde_json::from_slice(body)?),
    }
}

/// Column `i` of `row` as text, borrowed from the row.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, BenchError> {
    row.get_ref(i)?.as_str().map_err(|e| {
        BenchError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::new(e),
        ))
    })
}

/// Appends `s` as a JSON string.
fn push_str(out: &mut Vec<u8>, s: &str) -> Result<(), BenchError> {
    serde_json::to_writer(&mut *out, s)?;
    Ok(())
}

/// Writes the liked ids of `user` (newest first, from `since`, paged) as a JSON array; refuses an
/// unknown user.
fn write_liked(conn: &Connection, input: &GetLikedInput, out: &mut Vec<u8>) -> Result<(), BenchError> {
    let since = match &input.since {
        Some(t) => micros(t)?,
        None => i64::MIN,
    };
    let limit = input.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = input.offset.map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT track_id FROM likes WHERE user_id = ?1 AND liked_at >= ?2
         ORDER BY liked_at DESC, ord LIMIT ?3 OFFSET ?4",
    )?;
    let mut rows = stmt.query(params![input.user_id, since, limit, offset])?;
    out.push(b'[');
    let mut first = true;
    while let Some(row) = rows.next()? {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        push_str(out, text(row, 0)?)?;
    }
    out.push(b']');
    if first && load_user(conn, &input.user_id)?.is_none() {
        return Err(BenchError::UnknownUser(input.user_id.clone()));
    }
    Ok(())
}

fn get_liked(conn: &Connection, input: GetLikedInput) -> Result<Bytes, BenchError> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(b"{\"trackIds\":");
    write_liked(conn, &input, &mut out)?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The body of the hand-written `/liked` endpoint.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LikedRequest {
    user_id: String,
}

/// `/api/liked`: the same read as `_getLiked`, answered `{"userId", "trackIds"}`.
fn liked_request(conn: &Connection, input: LikedRequest) -> Result<Bytes, BenchError> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(b"{\"userId\":");
    push_str(&mut out, &input.user_id)?;
    out.extend_from_slice(b",\"trackIds\":");
    let liked = GetLikedInput {
        user_id: input.user_id,
        since: None,
        offset: None,
        limit: None,
        cursor: None,
    };
    write_liked(conn, &liked, &mut out)?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// `_getPlaylist`'s answer: the id asked for, then the playlist as given.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistAnswer<'a> {
    playlist_id: &'a str,
    #[serde(flatten)]
    playlist: &'a Playlist,
}

fn get_playlist(conn: &Connection, input: GetPlaylistInput) -> Result<Bytes, BenchError> {
    let id = input.playlist_id.as_str();
    let row = conn
        .prepare_cached(
            "SELECT name, owner, public, collaborative, snapshot_id, uri, extra FROM playlists WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<bool>>(2)?,
                r.get::<_, Option<bool>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .optional()?;
    let Some((name, owner, public, collaborative, snapshot_id, uri, extra)) = row else {
        return Err(BenchError::UnknownPlaylist(id.to_owned()));
    };
    let entries = conn
        .prepare_cached("SELECT track_id FROM playlist_entries WHERE playlist_id = ?1 ORDER BY pos")?
        .query_map([id], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let playlist = Playlist {
        id: id.to_owned(),
        name,
        owner,
        public,
        collaborative,
        snapshot_id,
        uri,
        entries,
        extra: extra_map(extra)?,
    };
    let answer = PlaylistAnswer {
        playlist_id: id,
        playlist: &playlist,
    };
    Ok(Bytes::from(serde_json::to_vec(&answer)?))
}

fn get_plays(conn: &Connection, input: GetPlaysInput) -> Result<Bytes, BenchError> {
    let since = match &input.since {
        Some(t) => micros(t)?,
        None => i64::MIN,
    };
    let until = match &input.until {
        Some(t) => micros(t)?,
        None => i64::MAX,
    };
    let limit = input
        .limit
        .map_or(DEFAULT_PAGE, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT played_at, track_id FROM plays WHERE user_id = ?1 AND played_at >= ?2 AND played_at < ?3
         ORDER BY played_at DESC, track_id LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![input.user_id, since, until, limit])?;
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(b"{\"plays\":[");
    let mut first = true;
    while let Some(row) = rows.next()? {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"trackId\":");
        push_str(&mut out, text(row, 1)?)?;
        out.extend_from_slice(b",\"playedAt\":\"");
        out.extend_from_slice(time_text(row.get(0)?).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    if first && load_user(conn, &input.user_id)?.is_none() {
        return Err(BenchError::UnknownUser(input.user_id.clone()));
    }
    Ok(Bytes::from(out))
}

fn get_tracks(conn: &Connection, input: GetTracksInput) -> Result<Bytes, BenchError> {
    let Some(user) = load_user(conn, &input.user_id)? else {
        return Err(BenchError::UnknownUser(input.user_id.clone()));
    };
    let limit = input
        .limit
        .map_or(DEFAULT_PAGE, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = input.offset.map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT u.track_id, t.title, t.artist, t.album, t.duration_ms, t.year, t.genres, t.isrc, t.uri, t.extra
         FROM user_tracks u LEFT JOIN tracks t ON t.id = u.track_id
         WHERE u.user_id = ?1 ORDER BY u.track_id LIMIT ?2 OFFSET ?3",
    )?;
    let mut rows = stmt.query(params![input.user_id, limit, offset])?;
    let mut out = Vec::with_capacity(256 * 1024);
    out.extend_from_slice(b"{\"tracks\":[");
    let mut first = true;
    while let Some(row) = rows.next()? {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let genres: Option<String> = row.get(6)?;
        let track = Track {
            id: row.get(0)?,
            title: row.get(1)?,
            artist: row.get(2)?,
            album: row.get(3)?,
            duration_ms: row.get::<_, Option<i64>>(4)?.and_then(|d| u64::try_from(d).ok()),
            year: row.get(5)?,
            genres: genres.map(|g| serde_json::from_str(&g)).transpose()?,
            isrc: row.get(7)?,
            uri: row.get(8)?,
            extra: extra_map(row.get(9)?)?,
        };
        serde_json::to_writer(&mut out, &track)?;
    }
    out.extend_from_slice(format!("],\"total\":{}}}", user.tracks).as_bytes());
    Ok(Bytes::from(out))
}

fn get_status(conn: &Connection, input: GetStatusInput) -> Result<Bytes, BenchError> {
    let max_age = match &input.max_age {
        Some(a) => library_cache::validate::max_age("maxAge", a).map_err(|e| BenchError::Backend {
            cache: "sqlite".to_owned(),
            source: Box::new(e),
        })?,
        None => chrono::Duration::hours(24),
    };
    let Some(user) = load_user(conn, &input.user_id)? else {
        return Err(BenchError::UnknownUser(input.user_id.clone()));
    };
    let synced = concept_core::time::from_micros(user.synced_at);
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let status = StatusOutput {
        user_id: input.user_id.clone(),
        tracks: count(user.tracks),
        likes: count(user.likes),
        plays: count(user.plays),
        playlists: count(user.playlists),
        ingested_at: time_text(user.ingested_at),
        synced_at: time_text(user.synced_at),
        version: count(user.version),
        stale: chrono::Utc::now() - synced > max_age,
    };
    Ok(Bytes::from(serde_json::to_vec(&status)?))
}

fn get_changes(conn: &Connection, input: GetChangesInput) -> Result<Bytes, BenchError> {
    let Some(user) = load_user(conn, &input.user_id)? else {
        return Err(BenchError::UnknownUser(input.user_id.clone()));
    };
    let limit = input
        .limit
        .map_or(DEFAULT_PAGE, |l| i64::try_from(l).unwrap_or(i64::MAX))
        .clamp(1, MAX_CHANGES);
    let since = input.since_version.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT version, at, kind, track_id, playlist_id, time FROM changes
         WHERE user_id = ?1 AND version > ?2 ORDER BY version, seq LIMIT ?3",
    )?;
    let read = |limit: i64, since: i64, stmt: &mut rusqlite::CachedStatement<'_>| {
        stmt.query_map(params![input.user_id, since, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()
    };
    // One row more than the page: if it is there, the page ends before the last action it holds
    // (an action is never cut), unless that action alone fills the page: then all of it.
    let mut rows = read(limit + 1, since, &mut stmt)?;
    if rows.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        let last = rows.last().map(|r| r.0).unwrap_or(since);
        rows.retain(|r| r.0 != last);
        if rows.is_empty() {
            rows = read(i64::MAX, last - 1, &mut stmt)?;
            rows.retain(|r| r.0 == last);
        }
    }
    let next = rows.last().map_or(since, |r| r.0);
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let changes = rows
        .into_iter()
        .map(|(version, at, kind, track_id, playlist_id, time)| Change {
            version: count(version),
            at: time_text(at),
            kind,
            track_id,
            playlist_id,
            time: time.map(time_text),
        })
        .collect();
    let output = ChangesOutput {
        changes,
        version: count(user.version),
        next_since_version: count(next),
        more: next < user.version,
        // Pages here end at an action; the bench pages by `nextSinceVersion`, never by cursor.
        next_cursor: None,
    };
    Ok(Bytes::from(serde_json::to_vec(&output)?))
}

fn resolve_playlist(conn: &Connection, input: ResolvePlaylistInput) -> Result<Bytes, BenchError> {
    if load_user(conn, &input.user_id)?.is_none() {
        return Err(BenchError::UnknownUser(input.user_id.clone()));
    }
    let wanted = input.name_or_uri.trim();
    const COLUMNS: &str = "id, name, owner, public, collaborative, snapshot_id, uri, entry_count";
    let summaries = |sql: &str, key: &str| -> Result<Vec<PlaylistSummary>, BenchError> {
        let rows = conn
            .prepare_cached(sql)?
            .query_map(params![input.user_id, key], |r| {
                Ok(PlaylistSummary {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    owner: r.get(2)?,
                    public: r.get(3)?,
                    collaborative: r.get(4)?,
                    snapshot_id: r.get(5)?,
                    uri: r.get(6)?,
                    track_count: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    // An exact id or uri names one playlist; otherwise every case-insensitive name match.
    let mut playlists = summaries(
        &format!("SELECT {COLUMNS} FROM playlists WHERE user_id = ?1 AND (id = ?2 OR uri = ?2) ORDER BY id"),
        wanted,
    )?;
    if playlists.is_empty() {
        playlists = summaries(
            &format!("SELECT {COLUMNS} FROM playlists WHERE user_id = ?1 AND name_lower = ?2 ORDER BY id"),
            &wanted.to_lowercase(),
        )?;
    }
    Ok(Bytes::from(serde_json::to_vec(&PlaylistsOutput { playlists })?))
}
