//! One read of a user's Apple Music cloud library, always whole (`complete: true`: loves
//! removed, songs deleted and playlists gone are seen): the library songs (`/me/library/songs`,
//! [`PAGE`] to a page, following `next`), their ratings (`/me/ratings/library-songs?ids=…`, a
//! rating of 1 — love — is a like; -1, dislike, is not), the library playlists
//! (`/me/library/playlists`) and each one's tracks in order (`…/{id}/tracks`; Apple answers 404
//! for a playlist without tracks: its entries are empty).
//!
//! Ids: a song is `apple:library-song:{id}` (its library id, `i.…`), with the catalog id kept
//! as `catalogId` when `playParams.catalogId` is present (a song uploaded or matched from the
//! user's own files has none); a playlist is `apple:library-playlist:{id}`. The ratings carry no
//! time, so likes have no `likedAt` (the cache stamps a new like with the time it first saw it).

use crate::api::{ApiError, AppleMusicApi, Tokens};
use crate::model::{Credentials, Cursor};
use crate::token;
use concept_core::time::format_rfc3339;
use serde_json::{json, Map, Value};
use source_kit::{Mode, NoUpdate, Outcome, ReadJob, Reporter, Session};
use std::collections::HashSet;

/// Items asked for per page (the most the library endpoints give).
pub const PAGE: u64 = 100;
/// Song ids per ratings call.
pub const RATINGS_BATCH: usize = 100;

pub const SONG_PREFIX: &str = "apple:library-song:";
pub const PLAYLIST_PREFIX: &str = "apple:library-playlist:";

/// An id Apple gives (`i.AbC123`, `p.XyZ`): letters, digits, `.`, `-`, `_` only (it goes into
/// paths and query strings as it is).
fn plain_id(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| {
        !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
    })
}

/// The developer token of this read: signed now with the stored key, or the one given.
fn developer_token(creds: &Credentials, now: chrono::DateTime<chrono::Utc>) -> Result<String, ApiError> {
    match (&creds.private_key, &creds.key_id, &creds.team_id) {
        (Some(key), Some(kid), Some(team)) => Ok(token::sign(key, kid, team, now)?),
        _ => Ok(creds.developer_token.clone().unwrap_or_default()),
    }
}

/// A library song as the cache's track; `None` without a usable id.
pub fn song(item: &Value) -> Option<Map<String, Value>> {
    let id = plain_id(&item["id"])?;
    let a = &item["attributes"];
    let mut t = Map::new();
    t.insert("id".into(), json!(format!("{SONG_PREFIX}{id}")));
    for (from, to) in [("name", "title"), ("artistName", "artist"), ("albumName", "album")] {
        if let Some(s) = a[from].as_str() {
            t.insert(to.into(), json!(s));
        }
    }
    if let Some(ms) = a["durationInMillis"].as_u64() {
        t.insert("durationMs".into(), json!(ms));
    }
    if let Some(year) = a["releaseDate"]
        .as_str()
        .and_then(|d| d.get(..4))
        .and_then(|y| y.parse::<i32>().ok())
    {
        t.insert("year".into(), json!(year));
    }
    if let Some(genres) = a["genreNames"].as_array() {
        let genres: Vec<&str> = genres.iter().filter_map(Value::as_str).collect();
        if !genres.is_empty() {
            t.insert("genres".into(), json!(genres));
        }
    }
    if let Some(catalog) = a["playParams"]["catalogId"].as_str() {
        t.insert("catalogId".into(), json!(catalog));
    }
    t.insert("appleMusicId".into(), json!(id));
    Some(t)
}

/// Every item of a collection, page after page; `phase` names the progress.
async fn all(
    api: &AppleMusicApi,
    session: &Session,
    tokens: &Tokens,
    first: String,
    mut each_page: impl FnMut(&[Value], Option<u64>),
) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut path = Some(first);
    let mut seen = HashSet::new();
    while let Some(p) = path.take() {
        if !seen.insert(p.clone()) {
            return Err(ApiError::unexpected(&p, "`next` names a page already read"));
        }
        let Some(page) = api.page(session, tokens, &p).await? else {
            break;
        };
        each_page(&page.data, page.total);
        let empty = page.data.is_empty();
        items.extend(page.data);
        if !empty {
            path = page.next.map(|n| with_limit(&n));
        }
    }
    Ok(items)
}

/// A `next` path with the page size asked for again (Apple's `next` carries only the offset).
fn with_limit(next: &str) -> String {
    if next.contains("limit=") {
        next.to_string()
    } else if next.contains('?') {
        format!("{next}&limit={PAGE}")
    } else {
        format!("{next}?limit={PAGE}")
    }
}

pub async fn run(
    api: &AppleMusicApi,
    job: ReadJob<Credentials, Cursor>,
    report: Reporter<NoUpdate>,
) -> Result<Outcome<Cursor>, ApiError> {
    let creds = &job.connection.credentials;
    let tokens = Tokens {
        developer: developer_token(creds, job.now)?,
        user: creds.music_user_token.clone(),
    };

    // Library songs.
    let mut read = 0u64;
    let songs = all(
        api,
        &job.session,
        &tokens,
        format!("/me/library/songs?limit={PAGE}"),
        |page, total| {
            read += page.len() as u64;
            report.progress("songs", read, total.unwrap_or(read).max(read));
        },
    )
    .await?;
    let mut tracks = Vec::with_capacity(songs.len());
    let mut ids: Vec<String> = Vec::with_capacity(songs.len());
    let mut known: HashSet<String> = HashSet::new();
    let mut skipped = 0u64;
    for item in &songs {
        match (song(item), plain_id(&item["id"])) {
            (Some(track), Some(id)) if known.insert(id.to_string()) => {
                ids.push(id.to_string());
                tracks.push(track);
            }
            _ => skipped += 1,
        }
    }
    drop(songs);

    // Ratings: a love is a like.
    let mut likes = Vec::new();
    let mut rated = 0u64;
    for batch in ids.chunks(RATINGS_BATCH) {
        let path = format!("/me/ratings/library-songs?ids={}", batch.join(","));
        if let Some(page) = api.page(&job.session, &tokens, &path).await? {
            let loved: HashSet<&str> = page
                .data
                .iter()
                .filter(|r| r["attributes"]["value"].as_i64() == Some(1))
                .filter_map(|r| plain_id(&r["id"]))
                .collect();
            // In the library's order.
            for id in batch.iter().filter(|id| loved.contains(id.as_str())) {
                let mut like = Map::new();
                like.insert("trackId".into(), json!(format!("{SONG_PREFIX}{id}")));
                likes.push(like);
            }
        }
        rated += batch.len() as u64;
        report.progress("ratings", rated, ids.len() as u64);
    }

    // Playlists and their tracks.
    let mut listed = 0u64;
    let lists = all(
        api,
        &job.session,
        &tokens,
        format!("/me/library/playlists?limit={PAGE}"),
        |page, total| {
            listed += page.len() as u64;
            report.progress("playlists", listed, total.unwrap_or(listed).max(listed));
        },
    )
    .await?;
    let mut playlists = Vec::with_capacity(lists.len());
    for (n, list) in lists.iter().enumerate() {
        let Some(id) = plain_id(&list["id"]) else {
            skipped += 1;
            continue;
        };
        let items = all(
            api,
            &job.session,
            &tokens,
            format!("/me/library/playlists/{id}/tracks?limit={PAGE}"),
            |_, _| {},
        )
        .await?;
        let mut entries = Vec::with_capacity(items.len());
        for item in &items {
            let Some(track) = song(item) else {
                skipped += 1;
                continue;
            };
            let song_id = track["id"].as_str().unwrap_or_default().to_string();
            if let Some(plain) = plain_id(&item["id"]) {
                if known.insert(plain.to_string()) {
                    tracks.push(track);
                }
            }
            entries.push(json!(song_id));
        }
        let a = &list["attributes"];
        let mut p = Map::new();
        p.insert("id".into(), json!(format!("{PLAYLIST_PREFIX}{id}")));
        p.insert("name".into(), json!(a["name"].as_str().unwrap_or_default()));
        if let Some(description) = a["description"]["standard"].as_str() {
            p.insert("description".into(), json!(description));
        }
        if let Some(public) = a["isPublic"].as_bool() {
            p.insert("public".into(), json!(public));
        }
        p.insert("smart".into(), json!(false));
        p.insert("entries".into(), Value::Array(entries));
        playlists.push(p);
        report.progress("playlist tracks", n as u64 + 1, lists.len() as u64);
    }

    Ok(Outcome {
        mode: Mode::Full,
        complete: true,
        tracks,
        likes,
        plays: Vec::new(),
        playlists,
        skipped,
        unreadable: 0,
        cursor: Cursor {
            full_at: Some(format_rfc3339(&job.now)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_song_keeps_its_catalog_id_when_it_has_one() {
        let with = json!({"id": "i.ABC", "type": "library-songs", "attributes": {
            "name": "Alpha", "artistName": "A", "albumName": "First", "durationInMillis": 215000,
            "releaseDate": "1999-05-01", "genreNames": ["Pop"],
            "playParams": {"id": "i.ABC", "kind": "song", "isLibrary": true, "catalogId": "1440000001"}}});
        let t = song(&with).unwrap();
        assert_eq!(t["id"], "apple:library-song:i.ABC");
        assert_eq!(t["catalogId"], "1440000001");
        assert_eq!(
            (t["year"].clone(), t["durationMs"].clone()),
            (json!(1999), json!(215000))
        );
        let without = json!({"id": "i.UP", "attributes": {"name": "Demo", "playParams": {"id": "i.UP", "kind": "song", "isLibrary": true}}});
        assert!(song(&without).unwrap().get("catalogId").is_none());
        assert!(song(&json!({"id": "i/../x"})).is_none());
    }

    #[test]
    fn next_pages_ask_for_the_page_size_again() {
        assert_eq!(
            with_limit("/v1/me/library/songs?offset=100"),
            "/v1/me/library/songs?offset=100&limit=100"
        );
        assert_eq!(with_limit("/v1/x?offset=1&limit=5"), "/v1/x?offset=1&limit=5");
    }
}
