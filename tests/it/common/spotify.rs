//! A local server that speaks the part of the Spotify Web API and accounts service that
//! SpotifySource reads, for tests: liked songs, playlists and their items (2026 `item` field, or
//! the older `track`), recently played, bearer tokens and the refresh-token grant — with the
//! faults a real Spotify shows (null items, local files, episodes, 403 playlists, 429 with
//! Retry-After, 5xx, expired tokens, revoked refresh tokens). Tests change its library between
//! reads and count the requests it served.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One liked item: the track (None: a track Spotify no longer has) and when it was liked.
#[derive(Clone)]
pub struct Liked {
    pub track: Option<Value>,
    pub added_at: String,
}

#[derive(Clone)]
pub struct FakePlaylist {
    pub id: String,
    pub name: String,
    pub owner: String,
    /// The entries' track/episode objects (None: an item without a track), in order.
    pub items: Vec<Option<Value>>,
    pub snapshot: u64,
    /// Spotify will not list its items for this app (403).
    pub forbidden: bool,
    /// Answer items under the pre-2026 field name `track`.
    pub legacy_field: bool,
}

#[derive(Default)]
pub struct Library {
    /// Newest first.
    pub liked: Vec<Liked>,
    pub playlists: Vec<FakePlaylist>,
    /// (track, played_at), newest first.
    pub played: Vec<(Value, String)>,
}

#[derive(Default)]
struct Auth {
    access: String,
    refresh: String,
    rotate: bool,
    issued: u32,
}

#[derive(Default)]
struct Inner {
    library: Library,
    auth: Auth,
    script: super::fake_http::Script,
}

#[derive(Clone)]
pub struct FakeSpotify {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
    _served: super::fake_http::Served,
}

impl FakeSpotify {
    /// Starts the server on a free loopback port, with access token `access` and refresh token
    /// `refresh` valid.
    pub fn start(access: &str, refresh: &str) -> FakeSpotify {
        let inner = Arc::new(Mutex::new(Inner {
            auth: Auth {
                access: access.into(),
                refresh: refresh.into(),
                ..Auth::default()
            },
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/me/tracks", get(liked))
            .route("/v1/me/playlists", get(playlists))
            .route("/v1/playlists/{id}", get(playlist))
            .route("/v1/playlists/{id}/items", get(items))
            .route("/v1/me/player/recently-played", get(recent))
            .route("/api/token", post(token))
            .with_state(Arc::clone(&inner));
        let served = super::fake_http::serve(app);
        let base = served.base.clone();
        FakeSpotify {
            inner,
            base,
            _served: served,
        }
    }

    pub fn api_base(&self) -> String {
        format!("{}/v1", self.base)
    }

    pub fn accounts_base(&self) -> String {
        self.base.clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the library.
    pub fn library<T>(&self, f: impl FnOnce(&mut Library) -> T) -> T {
        self.with(|i| f(&mut i.library))
    }

    /// The access token stops working (a 401 until the client refreshes).
    pub fn expire_access_token(&self) {
        self.with(|i| i.auth.access = format!("expired-{}", i.auth.access));
    }

    /// The refresh token is revoked: the grant answers `invalid_grant`.
    pub fn revoke_refresh_token(&self) {
        self.with(|i| i.auth.refresh = "revoked-by-spotify".into());
    }

    /// Each refresh issues a new refresh token and invalidates the old one.
    pub fn rotate_refresh_tokens(&self) {
        self.with(|i| i.auth.rotate = true);
    }

    /// The access token Spotify takes now.
    pub fn access_token(&self) -> String {
        self.with(|i| i.auth.access.clone())
    }

    pub fn refresh_token(&self) -> String {
        self.with(|i| i.auth.refresh.clone())
    }

    pub fn tokens_issued(&self) -> u32 {
        self.with(|i| i.auth.issued)
    }
}

impl super::fake_http::Scripted for FakeSpotify {
    fn script<T>(&self, f: impl FnOnce(&mut super::fake_http::Script) -> T) -> T {
        self.with(|i| f(&mut i.script))
    }
}

/// A track object as the Web API gives it.
pub fn track(id: &str) -> Value {
    json!({
        "id": id, "uri": format!("spotify:track:{id}"), "name": format!("Song {id}"), "type": "track",
        "is_local": false, "duration_ms": 200000,
        "artists": [{"id": "ar1", "name": "Artist"}],
        "album": {"id": "al1", "name": "Album", "release_date": "2001-05-01"},
        "external_ids": {"isrc": format!("ISRC{id}")}
    })
}

/// A local file as the Web API gives it: no id, a `spotify:local:` uri.
pub fn local_file(name: &str) -> Value {
    json!({
        "id": null, "uri": format!("spotify:local:Someone:Somewhere:{name}:180"), "name": name,
        "type": "track", "is_local": true, "duration_ms": 180000,
        "artists": [{"id": null, "name": "Someone"}], "album": {"id": null, "name": "Somewhere"}
    })
}

/// A podcast episode as the Web API gives it.
pub fn episode(id: &str) -> Value {
    json!({
        "id": id, "uri": format!("spotify:episode:{id}"), "name": format!("Episode {id}"),
        "type": "episode", "duration_ms": 1800000, "release_date": "2025-02-03", "show": {"name": "A Show"}
    })
}

type Shared = State<Arc<Mutex<Inner>>>;

fn page_args(q: &HashMap<String, String>, default: u64, max: u64) -> (usize, usize) {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(default)
        .clamp(1, max);
    let offset = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    (offset as usize, limit as usize)
}

fn paged(path: &str, all: Vec<Value>, offset: usize, limit: usize) -> Value {
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    let next = (offset + limit < total).then(|| format!("{path}?offset={}&limit={limit}", offset + limit));
    json!({"href": path, "items": items, "limit": limit, "offset": offset, "total": total, "next": next, "previous": null})
}

fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({"error": {"status": status, "message": message}}))).into_response()
}

/// Logs the request, then answers an injected fault or a bad token, if any.
fn gate(inner: &mut Inner, path: &str, query: &HashMap<String, String>, headers: &HeaderMap) -> Option<Response> {
    inner.script.record(path, query, "");
    let fault = inner.script.due(path, |status| {
        error(
            status,
            if status == 429 {
                "API rate limit exceeded"
            } else {
                "Server error"
            },
        )
    });
    if fault.is_some() {
        return fault;
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(inner.auth.access.as_str()) {
        return Some(error(401, "The access token expired"));
    }
    None
}

async fn liked(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/v1/me/tracks", &q, &h) {
        return r;
    }
    let (offset, limit) = page_args(&q, 20, 50);
    let all = inner
        .library
        .liked
        .iter()
        .map(|l| json!({"added_at": l.added_at, "track": l.track}))
        .collect();
    Json(paged("/v1/me/tracks", all, offset, limit)).into_response()
}

fn playlist_object(p: &FakePlaylist) -> Value {
    json!({
        "id": p.id, "name": p.name, "owner": {"id": p.owner, "display_name": p.owner},
        "public": true, "collaborative": false, "snapshot_id": format!("snap-{}-{}", p.id, p.snapshot),
        "uri": format!("spotify:playlist:{}", p.id), "type": "playlist",
        "items": {"href": format!("/v1/playlists/{}/items", p.id), "total": p.items.len()}
    })
}

async fn playlists(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/v1/me/playlists", &q, &h) {
        return r;
    }
    let (offset, limit) = page_args(&q, 20, 50);
    let all = inner.library.playlists.iter().map(playlist_object).collect();
    Json(paged("/v1/me/playlists", all, offset, limit)).into_response()
}

async fn playlist(
    State(s): Shared,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    let path = format!("/v1/playlists/{id}");
    if let Some(r) = gate(&mut inner, &path, &q, &h) {
        return r;
    }
    match inner.library.playlists.iter().find(|p| p.id == id) {
        Some(p) => Json(playlist_object(p)).into_response(),
        None => error(404, "Resource not found"),
    }
}

async fn items(
    State(s): Shared,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    let path = format!("/v1/playlists/{id}/items");
    if let Some(r) = gate(&mut inner, &path, &q, &h) {
        return r;
    }
    let Some(p) = inner.library.playlists.iter().find(|p| p.id == id) else {
        return error(404, "Resource not found");
    };
    if p.forbidden {
        return error(403, "Forbidden");
    }
    let field = if p.legacy_field { "track" } else { "item" };
    let all = p
        .items
        .iter()
        .map(|t| {
            let local = t.as_ref().is_some_and(|t| t["is_local"] == true);
            let mut entry = json!({"added_at": "2025-01-01T00:00:00Z", "is_local": local});
            entry[field] = t.clone().unwrap_or(Value::Null);
            entry
        })
        .collect();
    let (offset, limit) = page_args(&q, 100, 100);
    Json(paged(&path, all, offset, limit)).into_response()
}

async fn recent(State(s): Shared, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = gate(&mut inner, "/v1/me/player/recently-played", &q, &h) {
        return r;
    }
    let items: Vec<Value> = inner
        .library
        .played
        .iter()
        .take(50)
        .map(|(t, at)| json!({"track": t, "played_at": at, "context": null}))
        .collect();
    Json(json!({"items": items, "limit": 50, "next": null, "cursors": null})).into_response()
}

async fn token(State(s): Shared, h: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    inner.script.record_line("/api/token");
    let has_client = h.contains_key("authorization") || form.contains_key("client_id");
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") || !has_client {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request"}))).into_response();
    }
    if form.get("refresh_token") != Some(&inner.auth.refresh) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Refresh token revoked"})),
        )
            .into_response();
    }
    inner.auth.issued += 1;
    inner.auth.access = format!("access-{}", inner.auth.issued);
    let mut answer = json!({"access_token": inner.auth.access, "token_type": "Bearer", "expires_in": 3600, "scope": "user-library-read"});
    if inner.auth.rotate {
        inner.auth.refresh = format!("refresh-{}", inner.auth.issued);
        answer["refresh_token"] = json!(inner.auth.refresh);
    }
    Json(answer).into_response()
}
