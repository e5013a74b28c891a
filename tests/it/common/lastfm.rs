//! A local server that speaks the part of the Last.fm API 2.0 that LastfmSource reads, for
//! tests: `user.getrecenttracks` (newest first, `limit`/`page` paging with `@attr.totalPages`,
//! `from`/`to` in UNIX seconds, both inclusive here — the worst case for a client — and the
//! now-playing item, `@attr.nowplaying`, without a `date`, at the head of page 1) and
//! `user.getlovedtracks`; JSON error bodies `{error, message}` as Last.fm sends them (29 rate
//! limit, 10 bad key, 6 unknown user). Numbers are strings, as Last.fm writes them. Tests can
//! make scrobbles arrive while a read pages (each page served adds one, timestamped now), which
//! shifts the pages of any read that does not pin `to`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One scrobble: a play of `title` by `artist` at `uts` (UNIX seconds).
#[derive(Clone, Debug)]
pub struct Scrobble {
    pub artist: String,
    pub title: String,
    pub album: String,
    /// The track's MusicBrainz id, or "" (Last.fm's way of saying none).
    pub mbid: String,
    pub uts: i64,
}

/// A scrobble of song `n` ("Song n" by "Artist n % 3"), with an MBID for even `n`.
pub fn scrobble(n: u32, uts: i64) -> Scrobble {
    Scrobble {
        artist: format!("Artist {}", n % 3),
        title: format!("Song {n}"),
        album: format!("Album {}", n % 5),
        mbid: if n % 2 == 0 {
            format!("00000000-0000-4000-8000-{n:012}")
        } else {
            String::new()
        },
        uts,
    }
}

#[derive(Default)]
struct Account {
    scrobbles: Vec<Scrobble>,
    /// Loved tracks and when they were loved.
    loved: Vec<Scrobble>,
    now_playing: Option<Scrobble>,
    /// Scrobbles still to arrive, one per page of recent tracks served.
    arriving: Vec<Scrobble>,
}

/// An injected error: the next `times` calls of `method` (after `skip` more that go through)
/// answer Last.fm error `code`.
struct Fault {
    method: String,
    code: u32,
    times: u32,
    skip: u32,
}

#[derive(Default)]
struct Inner {
    api_key: String,
    accounts: HashMap<String, Account>,
    faults: Vec<Fault>,
    log: Vec<String>,
}

#[derive(Clone)]
pub struct FakeLastfm {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
    _served: super::fake_http::Served,
}

impl FakeLastfm {
    /// Starts the server on a free loopback port; `api_key` is the one key it takes.
    pub fn start(api_key: &str) -> FakeLastfm {
        let inner = Arc::new(Mutex::new(Inner {
            api_key: api_key.into(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/2.0/", get(api))
            .route("/2.0", get(api))
            .with_state(Arc::clone(&inner));
        let served = super::fake_http::serve(app);
        let base = served.base.clone();
        FakeLastfm {
            inner,
            base,
            _served: served,
        }
    }

    /// What `--lastfm-api-base` is given.
    pub fn api_base(&self) -> String {
        format!("{}/2.0", self.base)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds scrobbles to `user`'s history (the user exists from then on).
    pub fn scrobble(&self, user: &str, scrobbles: impl IntoIterator<Item = Scrobble>) {
        self.with(|i| i.accounts.entry(user.into()).or_default().scrobbles.extend(scrobbles));
    }

    /// `user` loves `track` at `track.uts`.
    pub fn love(&self, user: &str, track: Scrobble) {
        self.with(|i| i.accounts.entry(user.into()).or_default().loved.push(track));
    }

    /// What `user` is listening to now (shown at the head of page 1), or nothing.
    pub fn now_playing(&self, user: &str, track: Option<Scrobble>) {
        self.with(|i| i.accounts.entry(user.into()).or_default().now_playing = track);
    }

    /// Scrobbles that arrive while a read pages: each page of recent tracks served adds the next
    /// one, timestamped the second it arrives (so at or after the start of the read).
    pub fn arriving(&self, user: &str, scrobbles: Vec<Scrobble>) {
        self.with(|i| i.accounts.entry(user.into()).or_default().arriving = scrobbles);
    }

    /// The next `times` calls of `method` (e.g. `user.getrecenttracks`) answer error `code`.
    pub fn error(&self, method: &str, code: u32, times: u32) {
        self.error_after(method, 0, code, times);
    }

    /// After `skip` calls of `method` that go through, the next `times` answer error `code`.
    pub fn error_after(&self, method: &str, skip: u32, code: u32, times: u32) {
        self.with(|i| {
            i.faults.push(Fault {
                method: method.into(),
                code,
                times,
                skip,
            })
        });
    }

    /// `user`'s scrobbles so far (those that arrived included).
    pub fn scrobbles(&self, user: &str) -> Vec<Scrobble> {
        self.with(|i| i.accounts.get(user).map(|a| a.scrobbles.clone()).unwrap_or_default())
    }

    /// The requests served so far, each as its sorted query parameters (`api_key` left out).
    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.with(|i| {
            i.log
                .iter()
                .map(|line| {
                    line.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .collect()
        })
    }

    pub fn clear_log(&self) {
        self.with(|i| i.log.clear());
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

/// A Last.fm error body, with the HTTP status Last.fm sends it with.
fn error(code: u32, message: &str) -> Response {
    let status = match code {
        29 => StatusCode::TOO_MANY_REQUESTS,
        10 | 26 => StatusCode::FORBIDDEN,
        6 => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

fn number(q: &HashMap<String, String>, key: &str) -> Option<i64> {
    q.get(key).and_then(|v| v.parse().ok())
}

async fn api(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    let mut logged: Vec<String> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "api_key")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    logged.sort();
    inner.log.push(logged.join("&"));
    let method = q.get("method").cloned().unwrap_or_default().to_lowercase();
    let due = inner
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method)
        .and_then(|f| {
            if f.skip > 0 {
                f.skip -= 1;
                None
            } else {
                Some(f)
            }
        });
    if let Some(f) = due {
        f.times -= 1;
        let message = match f.code {
            29 => "Rate Limit Exceeded - Your IP has made too many requests in a short period",
            10 => "Invalid API key - You must be granted a valid key by last.fm",
            6 => "User not found",
            _ => "Operation failed - Most likely the backend service failed. Please try again.",
        };
        return error(f.code, message);
    }
    if q.get("api_key") != Some(&inner.api_key) {
        return error(10, "Invalid API key - You must be granted a valid key by last.fm");
    }
    if q.get("format").map(String::as_str) != Some("json") {
        return error(6, "Invalid parameters - this fake answers format=json only");
    }
    let user = q.get("user").cloned().unwrap_or_default();
    let Some(account) = inner.accounts.get_mut(&user) else {
        return error(6, "User not found");
    };
    let limit = number(&q, "limit").unwrap_or(50).clamp(1, 1000) as usize;
    let page = number(&q, "page").unwrap_or(1).max(1) as usize;
    match method.as_str() {
        "user.getrecenttracks" => {
            let limit = limit.min(200);
            let from = number(&q, "from").unwrap_or(i64::MIN);
            let to = number(&q, "to").unwrap_or(i64::MAX);
            let mut chosen: Vec<&Scrobble> = account
                .scrobbles
                .iter()
                .filter(|s| from <= s.uts && s.uts <= to)
                .collect();
            chosen.sort_by_key(|s| std::cmp::Reverse(s.uts));
            let total = chosen.len();
            let mut tracks: Vec<Value> = chosen
                .iter()
                .skip((page - 1) * limit)
                .take(limit)
                .map(|s| recent_track(s))
                .collect();
            if page == 1 {
                if let Some(now) = &account.now_playing {
                    let mut item = recent_track(now);
                    if let Some(o) = item.as_object_mut() {
                        o.remove("date");
                        o.insert("@attr".into(), json!({"nowplaying": "true"}));
                    }
                    tracks.insert(0, item);
                }
            }
            let answer = json!({"recenttracks": {"track": tracks, "@attr": attr(&user, page, limit, total)}});
            // A scrobble arrives while the read goes on.
            if !account.arriving.is_empty() {
                let mut next = account.arriving.remove(0);
                next.uts = now_unix();
                account.scrobbles.push(next);
            }
            Json(answer).into_response()
        }
        "user.getlovedtracks" => {
            let mut loved: Vec<&Scrobble> = account.loved.iter().collect();
            loved.sort_by_key(|s| std::cmp::Reverse(s.uts));
            let total = loved.len();
            let tracks: Vec<Value> = loved
                .iter()
                .skip((page - 1) * limit)
                .take(limit)
                .map(|s| {
                    json!({
                        "name": s.title, "mbid": s.mbid, "url": url(s),
                        "date": {"uts": s.uts.to_string(), "#text": "01 Jan 2024, 00:00"},
                        "artist": {"name": s.artist, "mbid": "", "url": format!("https://www.last.fm/music/{}", s.artist)},
                        "image": [], "streamable": {"fulltrack": "0", "#text": "0"}
                    })
                })
                .collect();
            Json(json!({"lovedtracks": {"track": tracks, "@attr": attr(&user, page, limit, total)}})).into_response()
        }
        _ => error(3, "Invalid Method - No method with that name in this package"),
    }
}

fn url(s: &Scrobble) -> String {
    format!(
        "https://www.last.fm/music/{}/_/{}",
        s.artist.replace(' ', "+"),
        s.title.replace(' ', "+")
    )
}

fn recent_track(s: &Scrobble) -> Value {
    json!({
        "artist": {"mbid": "", "#text": s.artist},
        "streamable": "0",
        "image": [{"size": "small", "#text": ""}],
        "mbid": s.mbid,
        "album": {"mbid": "", "#text": s.album},
        "name": s.title,
        "url": url(s),
        "date": {"uts": s.uts.to_string(), "#text": "01 Jan 2024, 00:00"}
    })
}

fn attr(user: &str, page: usize, limit: usize, total: usize) -> Value {
    json!({
        "user": user, "page": page.to_string(), "perPage": limit.to_string(),
        "totalPages": total.div_ceil(limit).to_string(), "total": total.to_string()
    })
}

/// Now by the clock the service under test runs on (a scrobble arriving now is stamped as the
/// real Last.fm would, in the service's present, even when CI sets its clock years ahead).
fn now_unix() -> i64 {
    super::now().timestamp()
}
