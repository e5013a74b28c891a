//! What a source's read gets and gives back: the job ([`ReadJob`]), the progress reporter
//! ([`Reporter`]), the read in LibraryCache's shapes ([`Outcome`]) or why it failed
//! ([`Failure`]).

use crate::model::Mode;
use crate::rows::Connection;
use crate::session::Session;
use chrono::{DateTime, Utc};
use concept_core::SharedClock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// A read to run.
#[derive(Debug, Clone)]
pub struct ReadJob<C, K> {
    pub user: String,
    pub fetch_id: String,
    /// `incremental` only as asked; a read without a cursor is full whatever the mode says.
    pub mode: Mode,
    pub connection: Connection<C>,
    /// The cursor of the last read the consumer confirmed.
    pub cursor: Option<K>,
    /// When the read started: for a read resumed from a checkpoint, the start of the read it
    /// continues (so a read pinned to its start asks what it asked before).
    pub now: DateTime<Utc>,
    /// The engine's clock, for any later time the read needs (a renewed token's expiry) and
    /// for waits: never the system clock.
    pub clock: SharedClock,
    /// The read's HTTP session: every call of the read goes through it (the kit's [`crate::http::Http`]
    /// takes it), so a rate limit is waited out on [`ReadJob::clock`] and the pages read are
    /// kept for a checkpoint — and a resumed read gets its pages back from it, not from the
    /// service.
    pub session: Session,
}

impl<C, K> ReadJob<C, K> {
    /// The cursor an incremental read goes on: the confirmed one, when the mode is incremental.
    pub fn incremental_base(&self) -> Option<&K> {
        match self.mode {
            Mode::Incremental => self.cursor.as_ref(),
            Mode::Full => None,
        }
    }
}

/// What a read reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Note<U> {
    Progress {
        phase: String,
        current: u64,
        total: u64,
    },
    /// The read waits out a rate limit until this time (progress shows `phase: "waiting"`).
    Waiting {
        until: DateTime<Utc>,
    },
    /// The wait is over: progress shows the phase it was in again.
    Resumed,
    Update(U),
}

/// Where a read reports progress and credential updates; each is raised as a system action in
/// the read's flow, in order (of several progress notes waiting, only the newest).
#[derive(Debug, Clone)]
pub struct Reporter<U> {
    notes: tokio::sync::mpsc::UnboundedSender<Note<U>>,
}

impl<U> Reporter<U> {
    /// A reporter and the receiving end of its notes.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<Note<U>>) {
        let (notes, rx) = tokio::sync::mpsc::unbounded_channel();
        (Reporter { notes }, rx)
    }

    /// `current` of `total` done in `phase` (e.g. `tracks`).
    pub fn progress(&self, phase: &str, current: u64, total: u64) {
        self.send(Note::Progress {
            phase: phase.to_string(),
            current,
            total,
        });
    }

    /// The stored credentials changed (raised as the source's update action).
    pub fn update(&self, update: U) {
        self.send(Note::Update(update));
    }

    /// The read waits out a rate limit until `until`.
    pub fn waiting(&self, until: DateTime<Utc>) {
        self.send(Note::Waiting { until });
    }

    /// The read goes on after a wait.
    pub fn resumed(&self) {
        self.send(Note::Resumed);
    }

    fn send(&self, note: Note<U>) {
        // The receiver only goes away when the read is abandoned.
        let _ = self.notes.send(note);
    }
}

/// The update type of a source whose reads never change the stored credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoUpdate {}

/// A finished read, in LibraryCache's shapes.
#[derive(Debug, Clone)]
pub struct Outcome<K> {
    /// The read holds the whole library (the consumer may replace its copy with it).
    pub complete: bool,
    /// What the read did: `full` when it read everything it reads (also when it was asked for an
    /// increment and found it could not make one), `incremental` when it read from the cursor.
    /// `_getFetch.mode` shows it once the read is done.
    pub mode: Mode,
    pub tracks: Vec<Map<String, Value>>,
    pub likes: Vec<Map<String, Value>>,
    pub plays: Vec<Map<String, Value>>,
    pub playlists: Vec<Map<String, Value>>,
    pub skipped: u64,
    pub unreadable: u64,
    pub cursor: K,
}

/// Why a read ended without a result: becomes `failed (code, error, retryAt, needsReauth)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A stable SCREAMING_SNAKE_CASE code, e.g. `UPSTREAM_ERROR`.
    pub code: String,
    /// One sentence naming the problem.
    pub error: String,
    /// The service asked us to wait this long (a 429): `fetch` is refused until then.
    pub retry_after: Option<Duration>,
    /// The service refused the credentials: `fetch` is refused until the user connects again.
    pub needs_reauth: bool,
}

impl Failure {
    pub fn new(code: &str, error: impl ToString) -> Self {
        Failure {
            code: code.to_string(),
            error: error.to_string(),
            retry_after: None,
            needs_reauth: false,
        }
    }

    /// A failure that needs the user to connect again (`NEEDS_REAUTH`).
    pub fn needs_reauth(error: impl ToString) -> Self {
        Failure {
            needs_reauth: true,
            ..Failure::new("NEEDS_REAUTH", error)
        }
    }
}
