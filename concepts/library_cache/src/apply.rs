//! Applying events to the projections. This is the only code that writes projection rows, live
//! (inside the action's commit) and in a rebuild (replaying the log) alike. The chunked maps are
//! changed through the commit's decoded cache (`ChunkedMap::edit`), so a commit of many events
//! decodes and encodes each chunk it touches once.

use crate::events::{LibraryEvent, RefreshKind, HASH_VERSION};
use crate::rows::{self, PlaylistMark, PlaylistNames, UserMeta};
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{EventMeta, ProjectionTxn, StoreFault};

fn time(s: &str, meta: &EventMeta) -> Result<chrono::DateTime<chrono::Utc>, StoreFault> {
    parse_rfc3339(s).ok_or_else(|| StoreFault::new(format!("event {} holds an invalid time {s:?}", meta.seq)))
}

pub fn apply(meta: &EventMeta, event: &LibraryEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
    let user = meta.stream.as_str();
    if let LibraryEvent::Ingested { hash_version } = event {
        let now = format_rfc3339(&meta.at);
        let fresh = UserMeta {
            ingested_at: now.clone(),
            synced_at: now,
            hashes_v2: *hash_version >= HASH_VERSION,
            playlist_index: true,
            ..UserMeta::default()
        };
        txn.put(&rows::meta_key(user), rows::encode(&fresh));
        return Ok(());
    }
    let mut m = rows::load_meta(txn, user)?
        .ok_or_else(|| StoreFault::new(format!("event {} changes user {user:?}, who has no library", meta.seq)))?;
    match event {
        LibraryEvent::Ingested { .. } => {}
        LibraryEvent::TracksSaved { tracks } => {
            let map = rows::shared_tracks();
            let mut shared = map.edit(txn);
            for track in tracks {
                shared.insert(track.id.clone().into_bytes(), rows::encode(track))?;
            }
        }
        LibraryEvent::TracksAdded { tracks } | LibraryEvent::TracksUpdated { tracks } => {
            let map = rows::tracks(user);
            let mut mine = map.edit(txn);
            for t in tracks {
                if mine
                    .insert(t.id.clone().into_bytes(), t.hash.to_be_bytes().to_vec())?
                    .is_none()
                {
                    m.tracks += 1;
                }
            }
        }
        LibraryEvent::TracksRemoved { track_ids } => {
            let map = rows::tracks(user);
            let mut mine = map.edit(txn);
            for id in track_ids {
                if mine.remove(id.as_bytes())?.is_some() {
                    m.tracks -= 1;
                }
            }
        }
        LibraryEvent::Liked { likes } => {
            let mut keys = Vec::with_capacity(likes.len());
            let mut stale = Vec::new();
            let index = rows::like_index(user);
            let mut by_track = index.edit(txn);
            for like in likes {
                let key = rows::like_key(&time(&like.liked_at, meta)?, like.ord);
                match by_track.insert(like.track_id.clone().into_bytes(), key.clone())? {
                    Some(old) => stale.push(old),
                    None => m.likes += 1,
                }
                m.next_ord = m.next_ord.max(like.ord + 1);
                keys.push(key);
            }
            let list = rows::liked(user);
            let mut liked = list.edit(txn);
            for old in stale {
                liked.remove(&old)?;
            }
            for (like, key) in likes.iter().zip(keys) {
                liked.insert(key, rows::json_escaped(&like.track_id))?;
            }
        }
        LibraryEvent::Unliked { track_ids } => {
            let index = rows::like_index(user);
            let mut by_track = index.edit(txn);
            let mut keys = Vec::with_capacity(track_ids.len());
            for id in track_ids {
                if let Some(key) = by_track.remove(id.as_bytes())? {
                    keys.push(key);
                }
            }
            m.likes -= keys.len() as u64;
            let list = rows::liked(user);
            let mut liked = list.edit(txn);
            for key in keys {
                liked.remove(&key)?;
            }
        }
        LibraryEvent::PlaysAdded { plays } => {
            let map = rows::plays(user);
            let mut mine = map.edit(txn);
            for p in plays {
                let key = rows::play_key(&time(&p.played_at, meta)?, &p.track_id);
                if mine.insert(key, Vec::new())?.is_none() {
                    m.plays += 1;
                }
            }
        }
        LibraryEvent::PlaysRemoved { plays } => {
            let map = rows::plays(user);
            let mut mine = map.edit(txn);
            for p in plays {
                let key = rows::play_key(&time(&p.played_at, meta)?, &p.track_id);
                if mine.remove(&key)?.is_some() {
                    m.plays -= 1;
                }
            }
        }
        LibraryEvent::PlaylistsSaved { playlists } => {
            // A playlist renamed (or given another uri) is renamed in every holder's index.
            let mut renamed = Vec::new();
            {
                let map = rows::shared_playlists();
                let mut shared = map.edit(txn);
                for p in playlists {
                    if let Some(old) = shared.get(p.id.as_bytes())? {
                        let (old, new) = (PlaylistNames::decode(old)?, PlaylistNames::of(p));
                        if old != new {
                            renamed.push((p.id.as_str(), old, new));
                        }
                    }
                    shared.insert(p.id.clone().into_bytes(), rows::encode(p))?;
                }
            }
            for (id, old, new) in renamed {
                let holders = rows::playlist_holders();
                let users = decode_holders(holders.edit(txn).get(id.as_bytes())?)?;
                for holder in users {
                    let names = rows::playlist_names(&holder);
                    let mut names = names.edit(txn);
                    for key in old.keys(id) {
                        names.remove(&key)?;
                    }
                    for key in new.keys(id) {
                        names.insert(key, Vec::new())?;
                    }
                }
            }
        }
        LibraryEvent::PlaylistsAdded { playlists } | LibraryEvent::PlaylistsUpdated { playlists } => {
            let mut known = Vec::with_capacity(playlists.len());
            {
                let shared = rows::shared_playlists();
                let mut shared = shared.edit(txn);
                for p in playlists {
                    match shared.get(p.id.as_bytes())? {
                        Some(json) => known.push(PlaylistNames::decode(json)?),
                        None => {
                            return Err(StoreFault::new(format!(
                                "event {} adds playlist {:?}, which was never saved",
                                meta.seq, p.id
                            )))
                        }
                    }
                }
            }
            {
                let names = rows::playlist_names(user);
                let mut names = names.edit(txn);
                for (p, known) in playlists.iter().zip(&known) {
                    for key in known.keys(&p.id) {
                        names.insert(key, Vec::new())?;
                    }
                }
            }
            let map = rows::playlists(user);
            let mut mine = map.edit(txn);
            let mut new = Vec::new();
            for p in playlists {
                let mark = PlaylistMark {
                    hash: p.hash,
                    snapshot_id: p.snapshot_id.clone(),
                };
                if mine
                    .insert(p.id.clone().into_bytes(), rows::encode_compact(&mark))?
                    .is_none()
                {
                    m.playlists += 1;
                }
                new.push(p.id.as_str());
            }
            let holders = rows::playlist_holders();
            let mut holders = holders.edit(txn);
            for id in new {
                let mut users = decode_holders(holders.get(id.as_bytes())?)?;
                if !users.iter().any(|h| h == user) {
                    users.push(user.to_string());
                    holders.insert(id.as_bytes().to_vec(), rows::encode_compact(&users))?;
                }
            }
        }
        LibraryEvent::PlaylistsRemoved { playlist_ids } => {
            let map = rows::playlists(user);
            let mut mine = map.edit(txn);
            let mut released = Vec::new();
            for id in playlist_ids {
                if mine.remove(id.as_bytes())?.is_some() {
                    m.playlists -= 1;
                    released.push(id.as_str());
                }
            }
            for id in released {
                let known = {
                    let shared = rows::shared_playlists();
                    let mut shared = shared.edit(txn);
                    shared.get(id.as_bytes())?.map(PlaylistNames::decode).transpose()?
                };
                if let Some(known) = known {
                    let names = rows::playlist_names(user);
                    let mut names = names.edit(txn);
                    for key in known.keys(id) {
                        names.remove(&key)?;
                    }
                }
                release_playlist(txn, id, user)?;
            }
        }
        LibraryEvent::Rehashed {
            tracks,
            playlists,
            complete,
        } => {
            let map = rows::tracks(user);
            let mut mine = map.edit(txn);
            for t in tracks {
                if mine.contains(t.id.as_bytes())? {
                    mine.insert(t.id.clone().into_bytes(), t.hash.to_be_bytes().to_vec())?;
                }
            }
            let map = rows::playlists(user);
            let mut mine = map.edit(txn);
            for p in playlists {
                if mine.contains(p.id.as_bytes())? {
                    let mark = PlaylistMark {
                        hash: p.hash,
                        snapshot_id: p.snapshot_id.clone(),
                    };
                    mine.insert(p.id.clone().into_bytes(), rows::encode_compact(&mark))?;
                }
            }
            m.hashes_v2 |= complete;
        }
        LibraryEvent::Refreshed { kind } => {
            if *kind != RefreshKind::Rekey {
                m.synced_at = format_rfc3339(&meta.at);
            }
        }
        LibraryEvent::Cleared {} => {
            let map = rows::playlists(user);
            let held: Vec<Vec<u8>> = map.edit(txn).entries()?.into_iter().map(|(id, _)| id).collect();
            for id in held {
                release_playlist(txn, &String::from_utf8_lossy(&id), user)?;
            }
            for map in rows::user_maps(user) {
                map.clear(txn)?;
            }
            txn.delete(&rows::meta_key(user));
            return Ok(());
        }
    }
    txn.put(&rows::meta_key(user), rows::encode(&m));
    Ok(())
}

fn decode_holders(bytes: Option<&[u8]>) -> Result<Vec<String>, StoreFault> {
    match bytes {
        Some(b) => postcard::from_bytes(b).map_err(|e| StoreFault::new(format!("corrupt playlist holders: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Drops `user` from the holders of a shared playlist, deleting the playlist with its last
/// holder.
fn release_playlist(txn: &mut dyn ProjectionTxn, id: &str, user: &str) -> Result<(), StoreFault> {
    let holders = rows::playlist_holders();
    let mut holders = holders.edit(txn);
    let mut users = decode_holders(holders.get(id.as_bytes())?)?;
    users.retain(|h| h != user);
    if users.is_empty() {
        holders.remove(id.as_bytes())?;
        let shared = rows::shared_playlists();
        shared.edit(txn).remove(id.as_bytes())?;
    } else {
        holders.insert(id.as_bytes().to_vec(), rows::encode_compact(&users))?;
    }
    Ok(())
}
