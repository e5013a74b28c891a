//! A local server that speaks the part of the Plex Media Server API that PlexSource reads, for
//! tests: `/identity`, `/library/sections`, a section's tracks (`/library/sections/{id}/all?
//! type=10`), `/playlists` and their items, and the play history — JSON `MediaContainer`s for
//! `Accept: application/json` (XML otherwise, as Plex does), the token in `X-Plex-Token` (401
//! without the right one), listings paged by the `X-Plex-Container-Start` / `-Size` headers
//! with `totalSize`. Tests change its library (ratings, ratingKeys, the server itself) between
//! reads, inject faults and count the requests it served.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct FakeTrack {
    pub rating_key: u64,
    pub guid: String,
    pub section: String,
    pub title: String,
    /// The album artist (`grandparentTitle`): "Various Artists" on a compilation.
    pub artist: String,
    /// The track's own artist when it differs from the album's (`originalTitle`).
    pub original_title: Option<String>,
    pub album: String,
    pub year: i64,
    pub genres: Vec<String>,
    /// Plex's 0–10 scale.
    pub user_rating: Option<f64>,
    pub last_rated_at: Option<i64>,
    pub added_at: i64,
    pub updated_at: i64,
}

/// Track `n` of `section`: ratingKey 1000 + n, guid `plex://track/t{n}`.
pub fn track(n: u64, section: &str) -> FakeTrack {
    FakeTrack {
        rating_key: 1000 + n,
        guid: format!("plex://track/t{n}"),
        section: section.to_string(),
        title: format!("Song {n}"),
        artist: format!("Artist {}", n % 7),
        original_title: None,
        album: format!("Album {}", n % 13),
        year: 1990 + (n % 30) as i64,
        genres: vec!["Rock".into()],
        user_rating: None,
        last_rated_at: None,
        added_at: 1_600_000_000 + n as i64,
        updated_at: 1_600_000_000 + n as i64,
    }
}

#[derive(Clone, Debug)]
pub struct FakePlaylist {
    pub rating_key: u64,
    pub guid: String,
    pub title: String,
    pub smart: bool,
    /// `audio`, or another type the read must leave out.
    pub kind: String,
    /// (playlistItemID, the track's ratingKey), in order.
    pub items: Vec<(u64, u64)>,
}

/// One play in the history.
#[derive(Clone, Debug)]
pub struct Viewed {
    /// The item's ratingKey.
    pub rating_key: u64,
    /// `track`, or `movie`/`episode` (not music).
    pub kind: String,
    /// Epoch seconds.
    pub viewed_at: i64,
    pub account_id: u64,
}

pub struct Library {
    pub machine: String,
    /// (key, type, title).
    pub sections: Vec<(String, String, String)>,
    pub tracks: Vec<FakeTrack>,
    pub playlists: Vec<FakePlaylist>,
    /// Newest first.
    pub history: Vec<Viewed>,
}

impl Default for Library {
    fn default() -> Self {
        Library {
            machine: "machine-a".into(),
            sections: vec![
                ("1".into(), "artist".into(), "Music".into()),
                ("2".into(), "movie".into(), "Movies".into()),
            ],
            tracks: Vec::new(),
            playlists: Vec::new(),
            history: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Inner {
    library: Library,
    token: String,
    script: super::fake_http::Script,
}

#[derive(Clone)]
pub struct FakePlex {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
    _served: super::fake_http::Served,
}

impl FakePlex {
    /// Starts the server on a free loopback port, taking `token`.
    pub fn start(token: &str) -> FakePlex {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.into(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/identity", get(identity))
            .route("/library/sections", get(sections))
            .route("/library/sections/{id}/all", get(section_all))
            .route("/playlists", get(playlists))
            .route("/playlists/{key}/items", get(playlist_items))
            .route("/status/sessions/history/all", get(history))
            .with_state(Arc::clone(&inner));
        let served = super::fake_http::serve(app);
        let base = served.base.clone();
        FakePlex {
            inner,
            base,
            _served: served,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the library.
    pub fn library<T>(&self, f: impl FnOnce(&mut Library) -> T) -> T {
        self.with(|i| f(&mut i.library))
    }

    /// The token the server takes from now on.
    pub fn set_token(&self, token: &str) {
        self.with(|i| i.token = token.into());
    }
}

impl super::fake_http::Scripted for FakePlex {
    fn script<T>(&self, f: impl FnOnce(&mut super::fake_http::Script) -> T) -> T {
        self.with(|i| f(&mut i.script))
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Logs the request; answers an injected fault, a missing or wrong token, or a client that did
/// not ask for JSON, if any.
fn gate(inner: &mut Inner, path: &str, query: &HashMap<String, String>, headers: &HeaderMap) -> Option<Response> {
    let paging = match (
        header_u64(headers, "x-plex-container-start"),
        header_u64(headers, "x-plex-container-size"),
    ) {
        (Some(start), Some(size)) => format!(" {start}/{size}"),
        _ => String::new(),
    };
    inner.script.record(path, query, &paging);
    let fault = inner.script.due(path, |status| {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, "<html><body>error</body></html>").into_response()
    });
    if fault.is_some() {
        return fault;
    }
    let token = headers.get("x-plex-token").and_then(|v| v.to_str().ok());
    if token != Some(inner.token.as_str()) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                "<html><head><title>Unauthorized</title></head></html>",
            )
                .into_response(),
        );
    }
    let json = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if !json {
        // Plex answers XML unless asked for JSON.
        return Some((StatusCode::OK, "<?xml version=\"1.0\"?><MediaContainer size=\"0\"/>").into_response());
    }
    None
}

/// A MediaContainer of `all` under `field`, paged by the request's headers (the whole list
/// without them, as Plex does), with `totalSize` when paged; only the page's items are
/// rendered (`render`).
fn container<T>(field: &str, all: Vec<T>, render: impl Fn(T) -> Value, headers: &HeaderMap, extra: Value) -> Response {
    let mut c = match extra {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let total = all.len();
    let items: Vec<Value> = match (
        header_u64(headers, "x-plex-container-start"),
        header_u64(headers, "x-plex-container-size"),
    ) {
        (Some(start), Some(size)) => {
            c.insert("offset".into(), json!(start));
            c.insert("totalSize".into(), json!(total));
            all.into_iter()
                .skip(start as usize)
                .take(size as usize)
                .map(render)
                .collect()
        }
        _ => all.into_iter().map(render).collect(),
    };
    c.insert("size".into(), json!(items.len()));
    if !items.is_empty() {
        c.insert(field.into(), Value::Array(items));
    }
    Json(json!({ "MediaContainer": c })).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "<html><body>404 Not Found</body></html>").into_response()
}

fn track_object(t: &FakeTrack) -> Value {
    let mut v = json!({
        "ratingKey": t.rating_key.to_string(),
        "key": format!("/library/metadata/{}", t.rating_key),
        "parentRatingKey": "77", "grandparentRatingKey": "66",
        "guid": t.guid, "type": "track", "title": t.title,
        "grandparentTitle": t.artist, "parentTitle": t.album,
        "librarySectionID": t.section.parse::<u64>().unwrap_or(0),
        "index": 1, "parentIndex": 1, "parentYear": t.year, "duration": 200_000,
        "addedAt": t.added_at, "updatedAt": t.updated_at,
        "Genre": t.genres.iter().map(|g| json!({"tag": g})).collect::<Vec<_>>(),
        "Media": [{"id": t.rating_key, "duration": 200_000, "audioCodec": "flac"}]
    });
    if let Some(r) = t.user_rating {
        v["userRating"] = json!(r);
    }
    if let Some(artist) = &t.original_title {
        v["originalTitle"] = json!(artist);
    }
    if let Some(at) = t.last_rated_at {
        v["lastRatedAt"] = json!(at);
    }
    v
}

async fn identity(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/identity", &q, &h) {
        return r;
    }
    Json(json!({"MediaContainer": {"size": 0, "claimed": true, "machineIdentifier": inner.library.machine, "version": "1.41.0"}}))
        .into_response()
}

async fn sections(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/library/sections", &q, &h) {
        return r;
    }
    let all = inner
        .library
        .sections
        .iter()
        .map(|(key, kind, title)| json!({"key": key, "type": kind, "title": title, "agent": "tv.plex.agents.music"}))
        .collect();
    container(
        "Directory",
        all,
        |v| v,
        &HeaderMap::new(),
        json!({"title1": "Plex Library"}),
    )
}

async fn section_all(
    State(s): Shared,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    let path = format!("/library/sections/{id}/all");
    if let Some(r) = gate(&mut inner, &path, &q, &h) {
        return r;
    }
    let Some((_, kind, title)) = inner.library.sections.iter().find(|(k, _, _)| *k == id).cloned() else {
        return not_found();
    };
    if q.get("type").map(String::as_str) != Some("10") || kind != "artist" {
        // Only tracks of music sections are served here.
        return container("Metadata", Vec::<Value>::new(), |v| v, &h, json!({}));
    }
    let all: Vec<&FakeTrack> = inner.library.tracks.iter().filter(|t| t.section == id).collect();
    container(
        "Metadata",
        all,
        track_object,
        &h,
        json!({"librarySectionID": id, "librarySectionTitle": title}),
    )
}

async fn playlists(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/playlists", &q, &h) {
        return r;
    }
    let wanted = q.get("playlistType").cloned();
    let all = inner
        .library
        .playlists
        .iter()
        .filter(|p| wanted.as_ref().map_or(true, |w| *w == p.kind))
        .map(|p| {
            json!({
                "ratingKey": p.rating_key.to_string(), "key": format!("/playlists/{}/items", p.rating_key),
                "guid": p.guid, "type": "playlist", "title": p.title, "summary": "",
                "smart": p.smart, "playlistType": p.kind, "leafCount": p.items.len(),
                "addedAt": 1_700_000_000, "updatedAt": 1_700_000_000
            })
        })
        .collect();
    container("Metadata", all, |v| v, &h, json!({}))
}

async fn playlist_items(
    State(s): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    let path = format!("/playlists/{key}/items");
    if let Some(r) = gate(&mut inner, &path, &q, &h) {
        return r;
    }
    let Some(p) = inner.library.playlists.iter().find(|p| p.rating_key.to_string() == key) else {
        return not_found();
    };
    let all = p
        .items
        .iter()
        .filter_map(|(item_id, rk)| {
            let t = inner.library.tracks.iter().find(|t| t.rating_key == *rk)?;
            let mut v = track_object(t);
            v["playlistItemID"] = json!(item_id);
            Some(v)
        })
        .collect();
    container(
        "Metadata",
        all,
        |v| v,
        &h,
        json!({"smart": p.smart, "playlistType": p.kind}),
    )
}

async fn history(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/status/sessions/history/all", &q, &h) {
        return r;
    }
    let account: Option<u64> = q.get("accountID").and_then(|a| a.parse().ok());
    let mut entries: Vec<Viewed> = inner
        .library
        .history
        .iter()
        .filter(|v| account.map_or(true, |a| a == v.account_id))
        .cloned()
        .collect();
    if q.get("sort").map(String::as_str) == Some("viewedAt:desc") {
        entries.sort_by_key(|v| std::cmp::Reverse(v.viewed_at));
    } else {
        entries.sort_by_key(|v| v.viewed_at);
    }
    let all = entries
        .iter()
        .enumerate()
        .map(|(n, v)| {
            json!({
                "historyKey": format!("/status/sessions/history/{}", n + 1),
                "key": format!("/library/metadata/{}", v.rating_key),
                "ratingKey": v.rating_key.to_string(), "type": v.kind,
                "title": "a title", "viewedAt": v.viewed_at, "accountID": v.account_id, "deviceID": 3
            })
        })
        .collect();
    container("Metadata", all, |v| v, &h, json!({}))
}
