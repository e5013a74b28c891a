//! Applying events to the projections. This is the only code that writes projection rows, live
//! (inside the action's commit) and in a rebuild (replaying the log) alike.

use crate::events::LibraryEvent;
use crate::rows::{self, PlaylistMark, SharedPlaylist, UserMeta};
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{EventMeta, ProjectionRead, ProjectionTxn, StoreFault};

pub fn load_meta(view: &dyn ProjectionRead, user: &str) -> Result<Option<UserMeta>, StoreFault> {
    match view.get(&rows::meta_key(user))? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(StoreFault::new),
        None => Ok(None),
    }
}

pub fn load_playlist(view: &dyn ProjectionRead, id: &str) -> Result<Option<SharedPlaylist>, StoreFault> {
    match view.get(&rows::playlist_key(id))? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(StoreFault::new),
        None => Ok(None),
    }
}

fn time(s: &str, meta: &EventMeta) -> Result<chrono::DateTime<chrono::Utc>, StoreFault> {
    parse_rfc3339(s).ok_or_else(|| StoreFault::new(format!("event {} holds an invalid time {s:?}", meta.seq)))
}

pub fn apply(meta: &EventMeta, event: &LibraryEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
    let user = meta.stream.as_str();
    if let LibraryEvent::Ingested {} = event {
        let now = format_rfc3339(&meta.at);
        let fresh = UserMeta {
            ingested_at: now.clone(),
            synced_at: now,
            ..UserMeta::default()
        };
        txn.put(&rows::meta_key(user), rows::encode(&fresh));
        return Ok(());
    }
    let mut m = load_meta(txn, user)?
        .ok_or_else(|| StoreFault::new(format!("event {} changes user {user:?}, who has no library", meta.seq)))?;
    match event {
        LibraryEvent::Ingested {} => {}
        LibraryEvent::TracksSaved { tracks } => {
            for track in tracks {
                txn.put(&rows::track_key(&track.id), rows::encode(track));
            }
        }
        LibraryEvent::TracksAdded { tracks } | LibraryEvent::TracksUpdated { tracks } => {
            let map = rows::tracks(user);
            let keys: Vec<&[u8]> = tracks.iter().map(|t| t.id.as_bytes()).collect();
            let new = map.get_many(txn, &keys)?.iter().filter(|v| v.is_none()).count() as u64;
            map.update(
                txn,
                tracks
                    .iter()
                    .map(|t| (t.id.clone().into_bytes(), t.hash.to_be_bytes().to_vec())),
                [],
            )?;
            m.tracks += new;
        }
        LibraryEvent::TracksRemoved { track_ids } => {
            let map = rows::tracks(user);
            let before = map.len(txn)?;
            map.update(txn, [], track_ids.iter().map(|id| id.clone().into_bytes()))?;
            m.tracks -= (before - map.len(txn)?) as u64;
        }
        LibraryEvent::Liked { likes } => {
            let (list, index) = (rows::liked(user), rows::like_index(user));
            let mut stale = Vec::new();
            let mut upserts = Vec::with_capacity(likes.len());
            let mut index_upserts = Vec::with_capacity(likes.len());
            let keys: Vec<&[u8]> = likes.iter().map(|l| l.track_id.as_bytes()).collect();
            for (like, old) in likes.iter().zip(index.get_many(txn, &keys)?) {
                match old {
                    Some(old) => stale.push(old),
                    None => m.likes += 1,
                }
                let key = rows::like_key(&time(&like.liked_at, meta)?, like.ord);
                upserts.push((key.clone(), like.track_id.clone().into_bytes()));
                index_upserts.push((like.track_id.clone().into_bytes(), key));
                m.next_ord = m.next_ord.max(like.ord + 1);
            }
            list.update(txn, upserts, stale)?;
            index.update(txn, index_upserts, [])?;
        }
        LibraryEvent::Unliked { track_ids } => {
            let (list, index) = (rows::liked(user), rows::like_index(user));
            let mut keys = Vec::new();
            let mut ids = Vec::new();
            let wanted: Vec<&[u8]> = track_ids.iter().map(|id| id.as_bytes()).collect();
            for (id, key) in track_ids.iter().zip(index.get_many(txn, &wanted)?) {
                if let Some(key) = key {
                    keys.push(key);
                    ids.push(id.clone().into_bytes());
                }
            }
            m.likes -= keys.len() as u64;
            list.update(txn, [], keys)?;
            index.update(txn, [], ids)?;
        }
        LibraryEvent::PlaysAdded { plays } => {
            let map = rows::plays(user);
            let mut keys = Vec::with_capacity(plays.len());
            for p in plays {
                keys.push(rows::play_key(&time(&p.played_at, meta)?, &p.track_id));
            }
            let wanted: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
            m.plays += map.get_many(txn, &wanted)?.iter().filter(|v| v.is_none()).count() as u64;
            let upserts: Vec<(Vec<u8>, Vec<u8>)> = keys.into_iter().map(|k| (k, Vec::new())).collect();
            map.update(txn, upserts, [])?;
        }
        LibraryEvent::PlaylistsSaved { playlists } => {
            for p in playlists {
                let holders = load_playlist(txn, &p.id)?.map(|s| s.holders).unwrap_or_default();
                let shared = SharedPlaylist {
                    playlist: p.clone(),
                    holders,
                };
                txn.put(&rows::playlist_key(&p.id), rows::encode(&shared));
            }
        }
        LibraryEvent::PlaylistsAdded { playlists } | LibraryEvent::PlaylistsUpdated { playlists } => {
            let map = rows::playlists(user);
            let mut upserts = Vec::with_capacity(playlists.len());
            let keys: Vec<&[u8]> = playlists.iter().map(|p| p.id.as_bytes()).collect();
            m.playlists += map.get_many(txn, &keys)?.iter().filter(|v| v.is_none()).count() as u64;
            for p in playlists {
                let mark = PlaylistMark {
                    hash: p.hash,
                    snapshot_id: p.snapshot_id.clone(),
                };
                upserts.push((p.id.clone().into_bytes(), rows::encode_compact(&mark)));
                let mut shared = load_playlist(txn, &p.id)?.ok_or_else(|| {
                    StoreFault::new(format!(
                        "event {} adds playlist {:?}, which was never saved",
                        meta.seq, p.id
                    ))
                })?;
                if !shared.holders.iter().any(|h| h == user) {
                    shared.holders.push(user.to_string());
                    txn.put(&rows::playlist_key(&p.id), rows::encode(&shared));
                }
            }
            map.update(txn, upserts, [])?;
        }
        LibraryEvent::PlaylistsRemoved { playlist_ids } => {
            let map = rows::playlists(user);
            let keys: Vec<&[u8]> = playlist_ids.iter().map(|id| id.as_bytes()).collect();
            for (id, held) in playlist_ids.iter().zip(map.get_many(txn, &keys)?) {
                if held.is_some() {
                    m.playlists -= 1;
                    release_playlist(txn, id, user)?;
                }
            }
            map.update(txn, [], playlist_ids.iter().map(|id| id.clone().into_bytes()))?;
        }
        LibraryEvent::Refreshed { .. } => {
            m.synced_at = format_rfc3339(&meta.at);
        }
        LibraryEvent::Cleared {} => {
            for (id, _) in rows::playlists(user).entries(txn)? {
                release_playlist(txn, &String::from_utf8_lossy(&id), user)?;
            }
            for map in [
                rows::tracks(user),
                rows::liked(user),
                rows::like_index(user),
                rows::plays(user),
                rows::playlists(user),
            ] {
                map.clear(txn)?;
            }
            txn.delete(&rows::meta_key(user));
            return Ok(());
        }
    }
    txn.put(&rows::meta_key(user), rows::encode(&m));
    Ok(())
}

/// Drops `user` from the holders of a shared playlist, deleting the playlist with its last
/// holder.
fn release_playlist(txn: &mut dyn ProjectionTxn, id: &str, user: &str) -> Result<(), StoreFault> {
    if let Some(mut shared) = load_playlist(txn, id)? {
        shared.holders.retain(|h| h != user);
        if shared.holders.is_empty() {
            txn.delete(&rows::playlist_key(id));
        } else {
            txn.put(&rows::playlist_key(id), rows::encode(&shared));
        }
    }
    Ok(())
}
