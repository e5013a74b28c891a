//! Stand-ins for Apple's side, for tests: `Library.xml` files as Music.app / iTunes export
//! them (written here, as small as a test needs or as large as a 100k-track library, with the
//! keys a real export carries besides those read), and a local server speaking the part of the
//! Apple Music API that AppleMusicSource reads: `/v1/me/library/songs` and
//! `/v1/me/library/playlists` paged by `limit`/`offset` with `next` and `meta.total`,
//! `/v1/me/library/playlists/{id}/tracks` (404 for a playlist without tracks, as Apple answers),
//! `/v1/me/ratings/library-songs?ids=…` (404 when none of the songs is rated); the developer token
//! checked as an ES256 JWT against the public key, the Music-User-Token against the one issued
//! (403 once it expired or was revoked); 429 with Retry-After on demand.

#![allow(dead_code)]
// The XML is written line by line with explicit tabs and newlines, as Music.app writes it.
#![allow(clippy::write_with_newline)]

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

// ---- Library.xml --------------------------------------------------------------------------

/// A track of a generated library.
#[derive(Clone, Debug, Default)]
pub struct FileTrack {
    pub track_id: u64,
    /// None: the track has no Persistent ID (it is skipped).
    pub persistent_id: Option<String>,
    pub name: String,
    pub artist: String,
    pub album: String,
    pub loved: bool,
    pub favorited: bool,
    pub disliked: bool,
    pub date_modified: String,
    pub play_count: Option<u64>,
    pub play_date_utc: Option<String>,
    pub apple_music: bool,
    pub catalog_id: Option<u64>,
}

/// What a playlist of a generated library is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Normal,
    Smart,
    Master,
    Distinguished(u32),
    Folder,
}

#[derive(Clone, Debug)]
pub struct FilePlaylist {
    pub persistent_id: String,
    pub name: String,
    pub kind: Kind,
    /// Track IDs, in order.
    pub items: Vec<u64>,
}

/// Track `n` of a generated library: `Song n` by `Artist n % 50`, persistent id
/// `{n:016X}`.
pub fn file_track(n: u64) -> FileTrack {
    FileTrack {
        track_id: 1000 + n,
        persistent_id: Some(format!("{n:016X}")),
        name: format!("Song {n}"),
        artist: format!("Artist {}", n % 50),
        album: format!("Album {}", n % 400),
        date_modified: format!("2026-0{}-1{}T10:00:00Z", 1 + n % 9, n % 10),
        play_count: (n % 3 != 0).then_some(n % 40),
        play_date_utc: (n % 3 != 0).then(|| format!("2026-10-{:02}T{:02}:00:00Z", 1 + n % 28, n % 24)),
        apple_music: n % 4 == 0,
        catalog_id: (n % 4 == 0).then_some(1_440_000_000 + n),
        loved: n % 10 == 1,
        favorited: n % 10 == 2,
        disliked: n % 10 == 3,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn write_track(out: &mut impl Write, t: &FileTrack) -> std::io::Result<()> {
    let id = t.track_id;
    write!(
        out,
        "\t\t<key>{id}</key>\n\t\t<dict>\n\t\t\t<key>Track ID</key><integer>{id}</integer>\n"
    )?;
    write!(out, "\t\t\t<key>Name</key><string>{}</string>\n", esc(&t.name))?;
    write!(out, "\t\t\t<key>Artist</key><string>{}</string>\n", esc(&t.artist))?;
    write!(
        out,
        "\t\t\t<key>Album Artist</key><string>{}</string>\n",
        esc(&t.artist)
    )?;
    write!(
        out,
        "\t\t\t<key>Composer</key><string>{} and friends</string>\n",
        esc(&t.artist)
    )?;
    write!(out, "\t\t\t<key>Album</key><string>{}</string>\n", esc(&t.album))?;
    out.write_all(b"\t\t\t<key>Genre</key><string>Alternative</string>\n\t\t\t<key>Kind</key><string>AAC audio file</string>\n\t\t\t<key>Size</key><integer>8571234</integer>\n\t\t\t<key>Total Time</key><integer>215000</integer>\n\t\t\t<key>Disc Number</key><integer>1</integer>\n\t\t\t<key>Disc Count</key><integer>1</integer>\n\t\t\t<key>Track Number</key><integer>3</integer>\n\t\t\t<key>Track Count</key><integer>12</integer>\n\t\t\t<key>Year</key><integer>2019</integer>\n")?;
    write!(
        out,
        "\t\t\t<key>Date Modified</key><date>{}</date>\n\t\t\t<key>Date Added</key><date>2025-01-01T00:00:00Z</date>\n",
        t.date_modified
    )?;
    out.write_all(
        b"\t\t\t<key>Bit Rate</key><integer>256</integer>\n\t\t\t<key>Sample Rate</key><integer>44100</integer>\n",
    )?;
    if let Some(n) = t.play_count {
        write!(out, "\t\t\t<key>Play Count</key><integer>{n}</integer>\n\t\t\t<key>Play Date</key><integer>3868000000</integer>\n")?;
    }
    if let Some(d) = &t.play_date_utc {
        write!(out, "\t\t\t<key>Play Date UTC</key><date>{d}</date>\n")?;
    }
    for (flag, key) in [
        (t.loved, "Loved"),
        (t.favorited, "Favorited"),
        (t.disliked, "Disliked"),
        (t.apple_music, "Apple Music"),
    ] {
        if flag {
            write!(out, "\t\t\t<key>{key}</key><true/>\n")?;
        }
    }
    if let Some(c) = t.catalog_id {
        write!(out, "\t\t\t<key>Catalog ID</key><integer>{c}</integer>\n")?;
    }
    out.write_all(b"\t\t\t<key>Artwork Count</key><integer>1</integer>\n\t\t\t<key>Sort Album</key><string>Album</string>\n\t\t\t<key>Sort Artist</key><string>Artist</string>\n")?;
    if let Some(p) = &t.persistent_id {
        write!(out, "\t\t\t<key>Persistent ID</key><string>{p}</string>\n")?;
    }
    write!(
        out,
        "\t\t\t<key>Track Type</key><string>{}</string>\n",
        if t.apple_music { "Remote" } else { "File" }
    )?;
    if !t.apple_music {
        write!(
            out,
            "\t\t\t<key>Location</key><string>file:///Users/carol/Music/Media/Music/{}/{}.m4a</string>\n",
            esc(&t.artist).replace(' ', "%20"),
            esc(&t.name).replace(' ', "%20")
        )?;
    }
    out.write_all(b"\t\t\t<key>File Folder Count</key><integer>5</integer>\n\t\t\t<key>Library Folder Count</key><integer>1</integer>\n\t\t</dict>\n")
}

fn write_playlist(out: &mut impl Write, p: &FilePlaylist) -> std::io::Result<()> {
    write!(
        out,
        "\t\t<dict>\n\t\t\t<key>Name</key><string>{}</string>\n\t\t\t<key>Description</key><string></string>\n",
        esc(&p.name)
    )?;
    match p.kind {
        Kind::Master => out.write_all(b"\t\t\t<key>Master</key><true/>\n\t\t\t<key>Visible</key><false/>\n")?,
        Kind::Distinguished(k) => write!(out, "\t\t\t<key>Distinguished Kind</key><integer>{k}</integer>\n")?,
        Kind::Folder => out.write_all(b"\t\t\t<key>Folder</key><true/>\n")?,
        Kind::Smart => out.write_all(b"\t\t\t<key>Smart Info</key>\n\t\t\t<data>\n\t\t\tAQEAAwAAAAIAAAAZAAAAAAAAAAcAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\t\t\t</data>\n\t\t\t<key>Smart Criteria</key>\n\t\t\t<data>\n\t\t\tU0xzdAABAAEAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\t\t\t</data>\n")?,
        Kind::Normal => {}
    }
    write!(out, "\t\t\t<key>Playlist ID</key><integer>9{}</integer>\n\t\t\t<key>Playlist Persistent ID</key><string>{}</string>\n\t\t\t<key>All Items</key><true/>\n", p.items.len(), p.persistent_id)?;
    if !p.items.is_empty() {
        out.write_all(b"\t\t\t<key>Playlist Items</key>\n\t\t\t<array>\n")?;
        for id in &p.items {
            write!(
                out,
                "\t\t\t\t<dict>\n\t\t\t\t\t<key>Track ID</key><integer>{id}</integer>\n\t\t\t\t</dict>\n"
            )?;
        }
        out.write_all(b"\t\t\t</array>\n")?;
    }
    out.write_all(b"\t\t</dict>\n")
}

/// Writes a `Library.xml` of `tracks` (an iterator, so a large one is never held) and
/// `playlists` to `path`.
pub fn write_library(path: &Path, tracks: impl IntoIterator<Item = FileTrack>, playlists: &[FilePlaylist]) {
    let file = std::fs::File::create(path).expect("create the library file");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    (|| -> std::io::Result<()> {
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n")?;
        out.write_all(b"\t<key>Major Version</key><integer>1</integer>\n\t<key>Minor Version</key><integer>1</integer>\n\t<key>Application Version</key><string>1.5.0.73</string>\n\t<key>Date</key><date>2026-11-20T09:00:00Z</date>\n\t<key>Features</key><integer>5</integer>\n\t<key>Show Content Ratings</key><true/>\n\t<key>Library Persistent ID</key><string>0123456789ABCDEF</string>\n")?;
        out.write_all(b"\t<key>Tracks</key>\n\t<dict>\n")?;
        for t in tracks {
            write_track(&mut out, &t)?;
        }
        out.write_all(b"\t</dict>\n\t<key>Playlists</key>\n\t<array>\n")?;
        for p in playlists {
            write_playlist(&mut out, p)?;
        }
        out.write_all(b"\t</array>\n\t<key>Music Folder</key><string>file:///Users/carol/Music/Media/</string>\n</dict>\n</plist>\n")?;
        out.flush()
    })()
    .expect("write the library file");
}

/// A library of `n` tracks ([`file_track`]) with a master library, a distinguished kind, a
/// folder, a smart playlist and `lists` playlists of 50 tracks each.
pub fn write_big_library(path: &Path, n: u64, lists: u64) {
    let mut playlists = vec![
        FilePlaylist {
            persistent_id: "MASTER0000000000".into(),
            name: "Library".into(),
            kind: Kind::Master,
            items: (0..n.min(1000)).map(|i| 1000 + i).collect(),
        },
        FilePlaylist {
            persistent_id: "MUSIC00000000000".into(),
            name: "Music".into(),
            kind: Kind::Distinguished(4),
            items: vec![1000],
        },
        FilePlaylist {
            persistent_id: "FOLDER0000000000".into(),
            name: "Mixes".into(),
            kind: Kind::Folder,
            items: vec![],
        },
        FilePlaylist {
            persistent_id: "SMART00000000000".into(),
            name: "Top 25 Most Played".into(),
            kind: Kind::Smart,
            items: (0..25.min(n)).map(|i| 1000 + i).collect(),
        },
    ];
    for p in 0..lists {
        playlists.push(FilePlaylist {
            persistent_id: format!("PL{p:014X}"),
            name: format!("Playlist {p}"),
            kind: Kind::Normal,
            items: (0..50).map(|i| 1000 + (p * 97 + i * 13) % n.max(1)).collect(),
        });
    }
    write_library(path, (0..n).map(file_track), &playlists);
}

// ---- The Apple Music API ---------------------------------------------------------------------

/// A library song of the fake: `i.{n}`, with a catalog id unless `uploaded`.
#[derive(Clone, Debug)]
pub struct Song {
    pub id: String,
    pub name: String,
    pub artist: String,
    pub catalog_id: Option<String>,
}

/// Library song `n` (`i.S{n}`), matched to the catalog (`14400{n}`) unless `uploaded`.
pub fn song(n: u32, uploaded: bool) -> Song {
    Song {
        id: format!("i.S{n}"),
        name: format!("Song {n}"),
        artist: format!("Artist {}", n % 7),
        catalog_id: (!uploaded).then(|| format!("14400{n:05}")),
    }
}

#[derive(Default)]
struct Library {
    songs: Vec<Song>,
    /// song id → rating (1 love, -1 dislike).
    ratings: BTreeMap<String, i64>,
    /// (id, name, song ids in order)
    playlists: Vec<(String, String, Vec<String>)>,
}

#[derive(Default)]
struct Inner {
    library: Library,
    /// The Music-User-Token issued (requests with another get 403).
    user_token: String,
    /// The developer key's public key (SEC1 uncompressed point), to check the JWT with.
    public_key: Vec<u8>,
    key_id: String,
    team_id: String,
    /// 429s still to give, with their Retry-After.
    throttles: Vec<u64>,
    /// Every request, as `path?query`.
    log: Vec<String>,
}

/// The fake Apple Music API.
#[derive(Clone)]
pub struct FakeAppleMusic {
    inner: Arc<Mutex<Inner>>,
    served: super::fake_http::Served,
}

/// A MusicKit private key made for a test: the PEM (`.p8` text) and the public key.
pub fn musickit_key() -> (String, Vec<u8>) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("the key");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (pem, pair.public_key().as_ref().to_vec())
}

impl FakeAppleMusic {
    /// A fake whose developer tokens must be signed by `public_key` with `key_id` / `team_id`,
    /// and whose user is `user_token`.
    pub fn start(public_key: Vec<u8>, key_id: &str, team_id: &str, user_token: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            user_token: user_token.into(),
            public_key,
            key_id: key_id.into(),
            team_id: team_id.into(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/me/library/songs", get(songs))
            .route("/v1/me/library/playlists", get(playlists))
            .route("/v1/me/library/playlists/{id}/tracks", get(playlist_tracks))
            .route("/v1/me/ratings/library-songs", get(ratings))
            .with_state(Arc::clone(&inner));
        FakeAppleMusic {
            inner,
            served: super::fake_http::serve(app),
        }
    }

    /// `--apple-music-api-base`.
    pub fn api_base(&self) -> String {
        format!("{}/v1", self.served.base)
    }

    pub fn set_songs(&self, songs: Vec<Song>) {
        self.inner.lock().unwrap().library.songs = songs;
    }

    /// Rates a song: 1 love, -1 dislike, 0 removes the rating.
    pub fn rate(&self, id: &str, value: i64) {
        let mut inner = self.inner.lock().unwrap();
        if value == 0 {
            inner.library.ratings.remove(id);
        } else {
            inner.library.ratings.insert(id.into(), value);
        }
    }

    pub fn add_playlist(&self, id: &str, name: &str, songs: &[&str]) {
        self.inner.lock().unwrap().library.playlists.push((
            id.into(),
            name.into(),
            songs.iter().map(|s| s.to_string()).collect(),
        ));
    }

    /// The user's token expires: requests with it get 403.
    pub fn expire_user_token(&self) {
        self.inner.lock().unwrap().user_token = "a token issued since".into();
    }

    /// The next requests answer 429 with these Retry-After values, one each.
    pub fn throttle(&self, retry_after: &[u64]) {
        self.inner.lock().unwrap().throttles.extend_from_slice(retry_after);
    }

    pub fn log(&self) -> Vec<String> {
        self.inner.lock().unwrap().log.clone()
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"status": status.as_u16().to_string(), "code": code, "title": code}]})),
    )
        .into_response()
}

/// Checks the tokens and the throttle, and logs the request; the answer to give instead, if any.
fn gate(inner: &mut Inner, headers: &HeaderMap, line: String) -> Option<Response> {
    inner.log.push(line);
    if !inner.throttles.is_empty() {
        let wait = inner.throttles.remove(0);
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS");
        r.headers_mut()
            .insert("retry-after", wait.to_string().parse().expect("header"));
        return Some(r);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let header = jsonwebtoken::decode_header(bearer).ok();
    let key = jsonwebtoken::DecodingKey::from_ec_der(&inner.public_key);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[inner.team_id.as_str()]);
    validation.validate_exp = false; // the service's clock decides the times, not this machine's
    validation.required_spec_claims.clear();
    let valid = header.is_some_and(|h| h.kid.as_deref() == Some(inner.key_id.as_str()))
        && jsonwebtoken::decode::<Value>(bearer, &key, &validation).is_ok();
    if !valid {
        return Some(error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    }
    let user = headers
        .get("music-user-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if user != inner.user_token {
        return Some(error(StatusCode::FORBIDDEN, "FORBIDDEN"));
    }
    None
}

fn line(path: &str, q: &HashMap<String, String>) -> String {
    let mut q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    q.sort();
    format!("{path}?{}", q.join("&"))
}

fn song_json(s: &Song) -> Value {
    let mut play = json!({"id": s.id, "kind": "song", "isLibrary": true, "reporting": true});
    if let Some(c) = &s.catalog_id {
        play["catalogId"] = json!(c);
    }
    json!({"id": s.id, "type": "library-songs", "href": format!("/v1/me/library/songs/{}", s.id), "attributes": {
        "name": s.name, "artistName": s.artist, "albumName": "An Album", "durationInMillis": 200000,
        "releaseDate": "2020-02-02", "genreNames": ["Pop"], "trackNumber": 1, "hasLyrics": false,
        "playParams": play, "artwork": {"width": 1200, "height": 1200, "url": "https://example.invalid/{w}x{h}.jpg"}}})
}

/// A page of `items` at `path` as Apple pages: `limit` (at most 100), `offset`, `next`, `meta.total`.
fn paged(path: &str, q: &HashMap<String, String>, items: Vec<Value>) -> Response {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let offset = q.get("offset").and_then(|o| o.parse::<usize>().ok()).unwrap_or(0);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let mut body = json!({"data": page, "meta": {"total": total}});
    if offset + limit < total {
        body["next"] = json!(format!("{path}?offset={}", offset + limit));
    }
    Json(body).into_response()
}

async fn songs(
    State(s): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().unwrap();
    let path = "/v1/me/library/songs";
    if let Some(r) = gate(&mut inner, &headers, line(path, &q)) {
        return r;
    }
    let items = inner.library.songs.iter().map(song_json).collect();
    paged(path, &q, items)
}

async fn playlists(
    State(s): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().unwrap();
    let path = "/v1/me/library/playlists";
    if let Some(r) = gate(&mut inner, &headers, line(path, &q)) {
        return r;
    }
    let items = inner
        .library
        .playlists
        .iter()
        .map(|(id, name, _)| json!({"id": id, "type": "library-playlists", "attributes": {"name": name, "canEdit": true, "isPublic": false, "hasCatalog": false, "playParams": {"id": id, "kind": "playlist", "isLibrary": true}}}))
        .collect();
    paged(path, &q, items)
}

async fn playlist_tracks(
    State(s): State<Arc<Mutex<Inner>>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().unwrap();
    let path = format!("/v1/me/library/playlists/{id}/tracks");
    if let Some(r) = gate(&mut inner, &headers, line(&path, &q)) {
        return r;
    }
    let Some((_, _, ids)) = inner.library.playlists.iter().find(|(p, _, _)| *p == id) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    if ids.is_empty() {
        // Apple answers an empty playlist's tracks with 404.
        return error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let items = ids
        .iter()
        .filter_map(|sid| inner.library.songs.iter().find(|s| s.id == *sid))
        .map(song_json)
        .collect();
    paged(&path, &q, items)
}

async fn ratings(
    State(s): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().unwrap();
    if let Some(r) = gate(&mut inner, &headers, line("/v1/me/ratings/library-songs", &q)) {
        return r;
    }
    let ids: Vec<&str> = q.get("ids").map(|i| i.split(',').collect()).unwrap_or_default();
    let data: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            inner
                .library
                .ratings
                .get(*id)
                .map(|v| json!({"id": id, "type": "ratings", "attributes": {"value": v}}))
        })
        .collect();
    if data.is_empty() {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    Json(json!({"data": data})).into_response()
}
