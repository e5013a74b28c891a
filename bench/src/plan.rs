//! A workload as the worker processes see it: the request bodies written to files once by the
//! orchestrating process (so that no worker holds the generated library in its memory), the
//! queries to time with their bodies, and how many times to run each step. [`Plan::write`] makes
//! one from a [`Workload`]; [`Expected`] is what its answers must be, which only the orchestrator
//! keeps.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::answers::{self, Form};
use crate::cache::Query;
use crate::error::BenchError;
use crate::stats::Digest;
use crate::workload::{FreshLikes, Workload};

/// The user every benchmark library belongs to.
pub const USER: &str = "user:bench";
/// The user whose reads are timed while another user's large write commits.
pub const READER: &str = "user:reader";
/// How many tracks `_getTracks` answers per page (the service's default page).
pub const TRACKS_PAGE: usize = 1_000;
/// The page of `_getPlays` timed besides the whole history.
pub const PLAYS_PAGE: usize = 200;

/// One query to time: its name in the report, what it asks, the bodies it cycles through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryStep {
    pub name: String,
    pub query: Query,
    pub bodies: Vec<String>,
    pub reps: usize,
    pub form: Form,
}

/// A series of merges to time, one body per line of `file`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeStep {
    pub name: String,
    pub file: PathBuf,
    /// The [`FreshLikes`] the merges add, in order (the expected liked list follows from them).
    pub first_like: usize,
    pub likes_each: usize,
    pub count: usize,
}

/// How many times to run each kind of step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Reps {
    /// Cheap queries and merges (p99 needs about 100).
    pub reps: usize,
    /// Queries that answer a whole collection (`_getPlays` of everything, a page of tracks).
    pub heavy_reps: usize,
    /// Each full-snapshot sync (each run is two syncs: to the changed snapshot and back).
    pub sync_reps: usize,
    pub rebuild_runs: usize,
    /// Cold starts (each in a fresh process).
    pub cold_reps: usize,
}

/// The bodies and steps of one workload, as files under `dir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// `small`, `large`, or a scaling label.
    pub label: String,
    pub dir: PathBuf,
    pub user: String,
    /// Likes changed per sync and added per merge.
    pub k: usize,
    pub reps: Reps,
    pub queries: Vec<QueryStep>,
    pub merges: Vec<MergeStep>,
    /// Merges of one like for the growth measurement (none when it is not run on this workload).
    pub growth: Option<MergeStep>,
    /// `/api/like {userId, trackId}` bodies (over HTTP), one per line.
    pub like_requests: Option<MergeStep>,
    /// The bytes of the ingest body.
    pub ingest_bytes: u64,
}

/// The plan's body files.
impl Plan {
    pub fn ingest(&self) -> PathBuf {
        self.dir.join("ingest.json")
    }
    pub fn sync_changed(&self) -> PathBuf {
        self.dir.join("sync-changed.json")
    }
    pub fn likes_only(&self) -> PathBuf {
        self.dir.join("likes-only.json")
    }
    pub fn likes_only_changed(&self) -> PathBuf {
        self.dir.join("likes-only-changed.json")
    }
    /// The reader user's library (the small workload of another seed).
    pub fn reader_ingest(&self) -> PathBuf {
        self.dir.join("reader-ingest.json")
    }
    /// The plan itself.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("plan.json")
    }

    /// Reads the plan file `path` ([`Plan::file`] of the plan's directory).
    pub fn read(path: &Path) -> Result<Plan, BenchError> {
        let text = std::fs::read(path).map_err(BenchError::io("read", path))?;
        Ok(serde_json::from_slice(&text)?)
    }
}

/// What the plan's settings are.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub label: String,
    pub k: usize,
    pub reps: Reps,
    /// Single-like merges of the growth measurement (0: none).
    pub growth_merges: usize,
    /// `/api/like` requests over HTTP (0: none).
    pub like_requests: usize,
    /// Seed of the reader user's library.
    pub seed: u64,
}

/// A file of bodies, one per line.
fn write_lines(path: &Path, bodies: impl Iterator<Item = Result<Vec<u8>, BenchError>>) -> Result<(), BenchError> {
    let file = std::fs::File::create(path).map_err(BenchError::io("create", path))?;
    let mut out = std::io::BufWriter::new(file);
    for body in bodies {
        out.write_all(&body?).map_err(BenchError::io("write", path))?;
        out.write_all(b"\n").map_err(BenchError::io("write", path))?;
    }
    out.flush().map_err(BenchError::io("write", path))
}

/// Reads a file of bodies, one per line.
pub fn read_lines(path: &Path) -> Result<Vec<Bytes>, BenchError> {
    let all = std::fs::read(path).map_err(BenchError::io("read", path))?;
    let all = Bytes::from(all);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in all.iter().enumerate() {
        if *b == b'\n' {
            if i > start {
                out.push(all.slice(start..i));
            }
            start = i + 1;
        }
    }
    if start < all.len() {
        out.push(all.slice(start..));
    }
    Ok(out)
}

/// Reads a body file.
pub fn read_body(path: &Path) -> Result<Bytes, BenchError> {
    Ok(Bytes::from(std::fs::read(path).map_err(BenchError::io("read", path))?))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(BenchError::io("write", path))
}

/// A sync body carrying only the likes of `w` (tracks, plays and playlists are left as they are).
pub fn likes_only(w: &Workload, user: &str) -> Result<Vec<u8>, BenchError> {
    let mut body = w.ingest_body(user);
    body.tracks = None;
    body.plays = None;
    body.playlists = None;
    Ok(serde_json::to_vec(&body)?)
}

impl Plan {
    /// Writes the bodies of `w` under `dir` and the plan beside them.
    pub fn write(w: &Workload, dir: &Path, s: &PlanSettings) -> Result<Plan, BenchError> {
        std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
        let user = USER;
        let ingest = w.ingest_bytes(user)?;
        let ingest_bytes = ingest.len() as u64;
        let mut plan = Plan {
            label: s.label.clone(),
            dir: dir.to_path_buf(),
            user: user.to_owned(),
            k: s.k,
            reps: s.reps,
            queries: Vec::new(),
            merges: Vec::new(),
            growth: None,
            like_requests: None,
            ingest_bytes,
        };
        write(&plan.ingest(), &ingest)?;
        drop(ingest);
        let changed = w.with_changed_likes(s.k, 1);
        write(&plan.sync_changed(), &changed.ingest_bytes(user)?)?;
        write(&plan.likes_only(), &likes_only(w, user)?)?;
        write(&plan.likes_only_changed(), &likes_only(&changed, user)?)?;
        drop(changed);
        write(
            &plan.reader_ingest(),
            &Workload::small(s.seed.wrapping_add(1)).ingest_bytes(READER)?,
        )?;

        let body = |v: serde_json::Value| v.to_string();
        let r = s.reps;
        let mut queries = vec![
            QueryStep {
                name: "get_liked".into(),
                query: Query::GetLiked,
                bodies: vec![body(json!({ "userId": user }))],
                reps: r.reps,
                form: Form::Exact,
            },
            QueryStep {
                name: "get_playlist".into(),
                query: Query::GetPlaylist,
                bodies: w
                    .playlists
                    .iter()
                    .map(|p| body(json!({ "playlistId": p.id })))
                    .collect(),
                reps: r.reps,
                form: Form::Exact,
            },
            QueryStep {
                name: format!("get_plays_{PLAYS_PAGE}"),
                query: Query::GetPlays,
                bodies: vec![body(json!({ "userId": user, "limit": PLAYS_PAGE }))],
                reps: r.reps,
                form: Form::Exact,
            },
            QueryStep {
                name: "get_plays_all".into(),
                query: Query::GetPlays,
                bodies: vec![body(json!({ "userId": user, "limit": w.plays.len().max(1) }))],
                reps: r.heavy_reps,
                form: Form::Exact,
            },
            QueryStep {
                name: "get_tracks".into(),
                query: Query::GetTracks,
                bodies: vec![body(json!({ "userId": user, "limit": TRACKS_PAGE }))],
                reps: r.heavy_reps,
                form: Form::Exact,
            },
            QueryStep {
                name: "get_status".into(),
                query: Query::GetStatus,
                bodies: vec![body(json!({ "userId": user }))],
                reps: r.reps,
                form: Form::Status,
            },
        ];
        // Playlist names that several playlists share (the generator repeats every seventh name),
        // and exact ids: `_resolvePlaylist` answers both.
        let names: Vec<String> = w
            .playlists
            .iter()
            .skip(3)
            .step_by(7)
            .take(8)
            .map(|p| p.name.clone())
            .collect();
        queries.push(QueryStep {
            name: "resolve_playlist".into(),
            query: Query::ResolvePlaylist,
            bodies: names
                .iter()
                .map(|n| body(json!({ "userId": user, "nameOrUri": n })))
                .collect(),
            reps: r.reps,
            form: Form::Exact,
        });
        queries.push(QueryStep {
            name: "liked_request".into(),
            query: Query::LikedRequest,
            bodies: vec![body(json!({ "userId": user }))],
            reps: r.reps,
            form: Form::Exact,
        });
        plan.queries = queries;

        let fresh = FreshLikes::of(w);
        let mut next = 0;
        let mut series = |name: &str, k: usize, count: usize, file: &str| -> Result<MergeStep, BenchError> {
            let step = MergeStep {
                name: name.to_owned(),
                file: dir.join(file),
                first_like: next,
                likes_each: k,
                count,
            };
            let first = next;
            write_lines(
                &step.file,
                (0..count).map(|i| Ok(fresh.delta(first + i * k, k).merge_bytes(user)?)),
            )?;
            next += k * count;
            Ok(step)
        };
        plan.merges = vec![
            series("merge_1_like", 1, r.reps, "merge-1.jsonl")?,
            series(&format!("merge_{}_likes", s.k), s.k, r.reps, "merge-k.jsonl")?,
        ];
        if s.growth_merges > 0 {
            plan.growth = Some(series("growth_merge_1_like", 1, s.growth_merges, "growth.jsonl")?);
        }
        if s.like_requests > 0 {
            let step = MergeStep {
                name: "like_request".into(),
                file: dir.join("like-requests.jsonl"),
                first_like: next,
                likes_each: 1,
                count: s.like_requests,
            };
            write_lines(
                &step.file,
                (0..s.like_requests).map(|i| {
                    Ok(json!({"userId": user, "trackId": fresh.track(next + i)})
                        .to_string()
                        .into_bytes())
                }),
            )?;
            plan.like_requests = Some(step);
        }
        let text = serde_json::to_vec_pretty(&plan)?;
        write(&Plan::file(dir), &text)?;
        Ok(plan)
    }
}

/// What a plan's answers must be: digests of the expected answers, by check name (the names the
/// suite reports its checks under).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub checks: std::collections::BTreeMap<String, String>,
}

impl Expected {
    /// The expected answers of `plan`'s checks for the workload `w` it was written from.
    pub fn of(w: &Workload, plan: &Plan) -> Result<Expected, BenchError> {
        let mut checks = std::collections::BTreeMap::new();
        let original = w.expected_liked();
        let liked = Digest::of(&answers::liked_answer(&original)?);
        for point in [
            "liked/after_ingest",
            "liked/after_sync_unchanged",
            "liked/after_sync_full_back",
            "liked/after_sync_likes_only_back",
        ] {
            checks.insert(point.to_owned(), liked.clone());
        }
        let changed = Digest::of(&answers::liked_answer(
            &w.with_changed_likes(plan.k, 1).expected_liked(),
        )?);
        checks.insert("liked/after_sync_full_changed".into(), changed.clone());
        checks.insert("liked/after_sync_likes_only_changed".into(), changed);
        let fresh = FreshLikes::of(w);
        let merged: Vec<usize> = plan
            .merges
            .iter()
            .flat_map(|m| m.first_like..m.first_like + m.likes_each * m.count)
            .collect();
        let after_merges = fresh.expected_after(merged.iter().copied(), &original);
        let after = Digest::of(&answers::liked_answer(&after_merges)?);
        checks.insert("liked/after_merges".into(), after.clone());
        checks.insert("liked/after_rebuild".into(), after);
        if let Some(g) = &plan.growth {
            let grown = fresh.expected_after(
                merged.iter().copied().chain(g.first_like..g.first_like + g.count),
                &original,
            );
            checks.insert("liked/after_growth".into(), Digest::of(&answers::liked_answer(&grown)?));
        }
        let mut playlists = Digest::default();
        for p in &w.playlists {
            playlists.add(&answers::playlist_answer(p)?);
        }
        checks.insert("playlists".into(), playlists.hex());
        checks.insert(
            format!("plays/{PLAYS_PAGE}"),
            Digest::of(&answers::plays_answer(w, PLAYS_PAGE)?),
        );
        checks.insert(
            "plays/all".into(),
            Digest::of(&answers::plays_answer(w, w.plays.len().max(1))?),
        );
        checks.insert(
            "tracks/first_page".into(),
            Digest::of(&answers::tracks_answer(w, TRACKS_PAGE)?),
        );
        checks.insert(
            "liked_request/after_ingest".into(),
            Digest::of(&answers::liked_request_answer(&plan.user, &original)?),
        );
        Ok(Expected { checks })
    }
}
