//! A read's HTTP session: what every call of one read shares.
//!
//! - **Rate limits are waited out inside the read** when the service asks for a wait of at most
//!   [`Session::max_wait`] (a 429's `Retry-After`, Last.fm's error 29): the read reports
//!   `waiting` until the time, waits on the engine's clock ([`concept_core::Clock::sleep_until`]:
//!   an async timer, no thread held; a test's manual clock ends it by moving) and asks again.
//!   A longer wait (or a service that keeps refusing, [`MAX_THROTTLED`] times in a row) ends
//!   the read as `failed` with its `retryAt`.
//! - **The pages read are kept** ([`Session::checkpoint`]): when the read ends for a rate limit,
//!   they are stored with `failed` as the read's checkpoint. The read resumed from it at
//!   `retryAt` runs again from its start with the checkpoint's pages *replayed*: a call the
//!   read made before is answered from the checkpoint, in order, without asking the service; the
//!   first call it had not made goes to the service. A source's read is a function of its job
//!   (mode, cursor, credentials, start time — which a resumed read keeps) and of the answers it
//!   gets, so it makes the same calls again and goes on where it stopped.
//!
//! Calls are told apart by [`call_key`]: method, path and query, and the headers a source names
//! (paging headers) — never the credentials (no `Authorization` or other header unless named,
//! no query parameter named like a key, token, secret or password), so no secret is stored in a
//! checkpoint and a renewed token does not make a call another.

use crate::model::{Checkpoint, CheckpointPage};
use chrono::{DateTime, Utc};
use concept_core::SharedClock;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest rate-limit wait a read waits out by default; a longer one ends the read with
/// `retryAt`.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// How many times in a row one call may be throttled (and waited out) before the read gives up
/// and ends with `retryAt`: a service that keeps answering 429 is not asked forever.
pub const MAX_THROTTLED: u32 = 10;

/// Where a session says that it waits (the read's progress).
type WaitNotes = Box<dyn Fn(Option<DateTime<Utc>>) + Send + Sync>;

struct Inner {
    clock: SharedClock,
    max_wait: Duration,
    notes: WaitNotes,
    pages: Mutex<Pages>,
}

#[derive(Default)]
struct Pages {
    /// The checkpoint's answers not replayed yet, by call, in order.
    replay: HashMap<String, VecDeque<Value>>,
    /// Every answer this read used, in order (replayed ones too): the next checkpoint.
    read: Vec<CheckpointPage>,
    replayed: u64,
}

/// One read's HTTP session (cheap to clone: clones share it).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pages = self.lock();
        f.debug_struct("Session")
            .field("max_wait", &self.inner.max_wait)
            .field("pages_read", &pages.read.len())
            .field("to_replay", &pages.replay.values().map(VecDeque::len).sum::<usize>())
            .finish()
    }
}

impl Session {
    /// A session on `clock` that waits out rate limits of at most `max_wait`, telling `notes`
    /// when it starts waiting (`Some(until)`) and when it goes on (`None`), and replays the
    /// pages of `checkpoint` (a resumed read).
    pub fn new(
        clock: SharedClock,
        max_wait: Duration,
        checkpoint: Option<Checkpoint>,
        notes: impl Fn(Option<DateTime<Utc>>) + Send + Sync + 'static,
    ) -> Self {
        let mut pages = Pages::default();
        for page in checkpoint.map(|c| c.pages).unwrap_or_default() {
            pages.replay.entry(page.call).or_default().push_back(page.answer);
        }
        Session {
            inner: Arc::new(Inner {
                clock,
                max_wait,
                notes: Box::new(notes),
                pages: Mutex::new(pages),
            }),
        }
    }

    /// A session that waits out nothing and replays nothing, for a read outside the worker
    /// (tests, a one-shot command): every rate limit ends the read.
    pub fn plain(clock: SharedClock) -> Self {
        Session::new(clock, Duration::ZERO, None, |_| {})
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pages> {
        self.inner.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The longest wait this session waits out.
    pub fn max_wait(&self) -> Duration {
        self.inner.max_wait
    }

    /// The checkpoint's answer to `call`, if it holds one not replayed yet (kept for the next
    /// checkpoint too).
    pub fn replayed(&self, call: &str) -> Option<Value> {
        let mut pages = self.lock();
        let answer = pages.replay.get_mut(call)?.pop_front()?;
        pages.replayed += 1;
        pages.read.push(CheckpointPage {
            call: call.to_string(),
            answer: answer.clone(),
        });
        Some(answer)
    }

    /// Keeps the service's answer to `call`.
    pub fn record(&self, call: &str, answer: &Value) {
        self.lock().read.push(CheckpointPage {
            call: call.to_string(),
            answer: answer.clone(),
        });
    }

    /// How many answers came from the checkpoint.
    pub fn replayed_count(&self) -> u64 {
        self.lock().replayed
    }

    /// Every answer the read used so far, in order: what a resumed read replays.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            pages: self.lock().read.clone(),
        }
    }

    /// Whether a wait of `wait` is waited out inside the read.
    pub fn may_wait(&self, wait: Duration) -> bool {
        wait <= self.inner.max_wait
    }

    /// Waits `wait` on the engine's clock, saying so in the read's progress.
    pub async fn wait(&self, wait: Duration) {
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let until = self
            .inner
            .clock
            .now()
            .checked_add_signed(wait)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        (self.inner.notes)(Some(until));
        self.inner.clock.sleep_until(until).await;
        (self.inner.notes)(None);
    }
}

/// The query parameters never part of a call's key (nor stored): named like a credential.
fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["token", "secret", "password", "key", "signature"]
        .iter()
        .any(|s| name.contains(s))
}

/// How a call is told apart: `GET /path?query` (parameters named like a credential left out)
/// and the values of the headers `headers` names, lower-cased (e.g. paging headers). The host
/// is left out too: the same read against the same service.
pub fn call_key(request: &reqwest::Request, headers: &[&str]) -> String {
    let url = request.url();
    let mut key = format!("{} {}", request.method(), url.path());
    let query: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| !secret_param(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !query.is_empty() {
        key.push('?');
        key.push_str(&query.join("&"));
    }
    for name in headers {
        if let Some(value) = request.headers().get(*name).and_then(|v| v.to_str().ok()) {
            key.push_str(&format!(" {}={value}", name.to_ascii_lowercase()));
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use concept_core::time::parse_rfc3339;
    use concept_core::{Clock, ManualClock};
    use serde_json::json;

    #[test]
    fn a_call_is_keyed_by_path_query_and_named_headers_never_by_a_credential() {
        let client = reqwest::Client::new();
        let request = client
            .get("http://h:1/2.0/?method=user.getrecenttracks&user=rj&api_key=SECRET&page=2")
            .header("X-Plex-Token", "SECRET")
            .header("Authorization", "Bearer SECRET")
            .header("X-Plex-Container-Start", "100")
            .build()
            .unwrap();
        let key = call_key(&request, &["X-Plex-Container-Start"]);
        assert_eq!(
            key,
            "GET /2.0/?method=user.getrecenttracks&user=rj&page=2 x-plex-container-start=100"
        );
        assert!(!key.contains("SECRET"));
    }

    #[test]
    fn a_checkpoint_is_replayed_in_order_then_the_service_is_asked() {
        let clock: SharedClock = Arc::new(ManualClock::at(parse_rfc3339("2026-01-01T00:00:00Z").unwrap()));
        let first = Session::new(Arc::clone(&clock), DEFAULT_MAX_WAIT, None, |_| {});
        first.record("GET /a", &json!(1));
        first.record("GET /b", &json!(2));
        first.record("GET /a", &json!(3));
        let resumed = Session::new(clock, DEFAULT_MAX_WAIT, Some(first.checkpoint()), |_| {});
        assert_eq!(resumed.replayed("GET /a"), Some(json!(1)));
        assert_eq!(resumed.replayed("GET /a"), Some(json!(3)));
        assert_eq!(
            resumed.replayed("GET /a"),
            None,
            "asked more often than before: the service"
        );
        assert_eq!(resumed.replayed("GET /c"), None);
        resumed.record("GET /c", &json!(4));
        assert_eq!(resumed.replayed_count(), 2);
        let calls: Vec<String> = resumed.checkpoint().pages.into_iter().map(|p| p.call).collect();
        assert_eq!(calls, ["GET /a", "GET /a", "GET /c"]);
    }

    #[tokio::test]
    async fn a_wait_ends_when_the_engine_clock_passes_it_and_is_reported() {
        let manual = Arc::new(ManualClock::at(parse_rfc3339("2026-01-01T00:00:00Z").unwrap()));
        let notes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&notes);
        let session = Session::new(Arc::clone(&manual) as SharedClock, DEFAULT_MAX_WAIT, None, move |n| {
            seen.lock().unwrap().push(n)
        });
        assert!(session.may_wait(Duration::from_secs(60)) && !session.may_wait(Duration::from_secs(61)));
        let waiting = tokio::spawn({
            let session = session.clone();
            async move { session.wait(Duration::from_secs(30)).await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        let until = parse_rfc3339("2026-01-01T00:00:30Z").unwrap();
        assert_eq!(*notes.lock().unwrap(), [Some(until)]);
        manual.set(until);
        waiting.await.unwrap();
        assert_eq!(*notes.lock().unwrap(), [Some(until), None]);
        assert_eq!(manual.now(), until);
    }
}
