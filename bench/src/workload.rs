//! The deterministic benchmark workload: a user's library generated from a seed (tracks, likes, plays,
//! playlists), the JSON bodies an app would POST for it, and the derived bodies the benchmark replays
//! (a snapshot with k changed likes for `sync`, a delta of k new likes for `merge`).

use std::cmp::Reverse;
use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use serde_json::Map;

use crate::model::{format_time, parse_time, Body, BodyRef, Like, Play, Playlist, Track};
use crate::words;

/// How many of each fact a workload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub tracks: usize,
    pub likes: usize,
    pub plays: usize,
    pub playlists: usize,
    pub entries_per_playlist: usize,
}

impl Sizes {
    /// The large library: 100,000 tracks, 25,000 likes, 50,000 plays, 1,000 playlists of 50 entries.
    pub const LARGE: Sizes = Sizes {
        tracks: 100_000,
        likes: 25_000,
        plays: 50_000,
        playlists: 1_000,
        entries_per_playlist: 50,
    };
    /// These sizes times `factor` (each count rounded, at least 1; the entries per playlist stay).
    pub fn scaled(self, factor: f64) -> Sizes {
        let times = |n: usize| ((n as f64 * factor).round() as usize).max(1);
        Sizes {
            tracks: times(self.tracks),
            likes: times(self.likes),
            plays: times(self.plays),
            playlists: times(self.playlists),
            entries_per_playlist: self.entries_per_playlist,
        }
    }

    /// The small library: 2,000 tracks, 500 likes, 1,000 plays, 20 playlists of 50 entries.
    pub const SMALL: Sizes = Sizes {
        tracks: 2_000,
        likes: 500,
        plays: 1_000,
        playlists: 20,
        entries_per_playlist: 50,
    };
}

/// One user's library. `likes` are listed newest first (as music services list them); equal `likedAt`
/// values occur on purpose, and their order in `likes` is the order the cache must keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub tracks: Vec<Track>,
    pub likes: Vec<Like>,
    pub plays: Vec<Play>,
    pub playlists: Vec<Playlist>,
}

/// A delta for `merge`: likes that are not in the workload yet, newer than every like in it, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LikesDelta {
    pub likes: Vec<Like>,
}

impl LikesDelta {
    /// The merge body `{userId, likes: [...]}`.
    pub fn merge_body<'a>(&'a self, user: &'a str) -> BodyRef<'a> {
        BodyRef {
            user_id: user,
            tracks: None,
            likes: Some(&self.likes),
            plays: None,
            playlists: None,
        }
    }

    /// The merge body as a JSON value.
    pub fn merge_json(&self, user: &str) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self.merge_body(user))
    }

    /// The merge body as the bytes an app would POST.
    pub fn merge_bytes(&self, user: &str) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&self.merge_body(user))
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Likes are spread over the eight years before this instant, plays over the last three.
const EPOCH_END_SECS: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const YEAR_SECS: i64 = 365 * 24 * 3600;
/// How often each optional track field is present.
struct OptionalRate {
    album: f64,
    year: f64,
    genres: f64,
    isrc: f64,
    uri: f64,
}
const OPTIONAL_RATE: OptionalRate = OptionalRate {
    album: 0.5,
    year: 0.5,
    genres: 0.25,
    isrc: 0.25,
    uri: 0.1,
};
/// The chance that a like shares the previous like's `likedAt` (a bulk add in the source app).
const LIKE_TIE_CHANCE: f64 = 0.02;
/// The chance that a playlist entry repeats an earlier entry of the same playlist.
const ENTRY_REPEAT_CHANCE: f64 = 0.04;
/// The chance that a playlist takes one of the common names (so several playlists share a name).
const COMMON_NAME_CHANCE: f64 = 0.3;

impl Workload {
    /// The large library (about 20 MB of JSON) for `seed`.
    pub fn large(seed: u64) -> Workload {
        Workload::generate(Sizes::LARGE, seed)
    }

    /// The small library for `seed`.
    pub fn small(seed: u64) -> Workload {
        Workload::generate(Sizes::SMALL, seed)
    }

    /// A library of the given sizes; the same sizes and seed always give the same library.
    /// `likes` and `plays` are capped by the number of tracks (each like is of a distinct track).
    pub fn generate(sizes: Sizes, seed: u64) -> Workload {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tracks = gen_tracks(&mut rng, sizes.tracks);
        let likes = gen_likes(&mut rng, &tracks, sizes.likes);
        let plays = gen_plays(&mut rng, &tracks, sizes.plays);
        let playlists = gen_playlists(&mut rng, &tracks, sizes.playlists, sizes.entries_per_playlist);
        Workload {
            tracks,
            likes,
            plays,
            playlists,
        }
    }

    /// The full library as a borrowed body (an ingest, or a sync from a complete read).
    pub fn ingest_body<'a>(&'a self, user: &'a str) -> BodyRef<'a> {
        BodyRef {
            user_id: user,
            tracks: Some(&self.tracks),
            likes: Some(&self.likes),
            plays: Some(&self.plays),
            playlists: Some(&self.playlists),
        }
    }

    /// The full library as an owned, typed body.
    pub fn to_body(&self, user: &str) -> Body {
        Body {
            user_id: user.to_owned(),
            tracks: Some(self.tracks.iter().cloned().map(std::sync::Arc::new).collect()),
            likes: Some(self.likes.clone()),
            plays: Some(self.plays.clone()),
            playlists: Some(self.playlists.iter().cloned().map(std::sync::Arc::new).collect()),
        }
    }

    /// The ingest (or full sync) body as a JSON value.
    pub fn ingest_json(&self, user: &str) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self.ingest_body(user))
    }

    /// The ingest (or full sync) body as the bytes an app would POST.
    pub fn ingest_bytes(&self, user: &str) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&self.ingest_body(user))
    }

    /// The newest `likedAt` in the library (the epoch end when there are no likes).
    pub fn newest_liked_at(&self) -> DateTime<Utc> {
        self.likes
            .iter()
            .filter_map(|l| l.liked_at.as_deref().and_then(parse_time))
            .max()
            .unwrap_or_else(|| at_secs(EPOCH_END_SECS))
    }

    /// The track ids in the order `_getLiked` must answer: `likedAt` newest first, ties in list order.
    /// (Likes without `likedAt` are not ordered by this function; the generator makes none.)
    pub fn expected_liked(&self) -> Vec<String> {
        let mut likes: Vec<&Like> = self.likes.iter().collect();
        likes.sort_by_key(|l| Reverse(l.liked_at.as_deref().and_then(parse_time))); // stable: ties keep list order
        likes.into_iter().map(|l| l.track_id.clone()).collect()
    }

    /// A full snapshot of this library in which `k` likes changed: `k / 2` likes removed (unliked) and
    /// `k - k / 2` tracks newly liked, newer than every other like and listed first.
    pub fn with_changed_likes(&self, k: usize, seed: u64) -> Workload {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c4a9_0000_0001);
        let removed = k / 2;
        let added = k - removed;
        let mut next = self.clone();

        let mut drop: Vec<usize> = (0..next.likes.len()).collect();
        drop.shuffle(&mut rng);
        let drop: HashSet<usize> = drop.into_iter().take(removed).collect();
        let kept = next
            .likes
            .iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, l)| l.clone());
        let mut kept: Vec<Like> = kept.collect();

        let liked: HashSet<&str> = self.likes.iter().map(|l| l.track_id.as_str()).collect();
        let mut candidates: Vec<&Track> = self.tracks.iter().filter(|t| !liked.contains(t.id.as_str())).collect();
        candidates.shuffle(&mut rng);
        let base = self.newest_liked_at() + Duration::days(1);
        let mut fresh: Vec<Like> = candidates
            .into_iter()
            .take(added)
            .enumerate()
            .map(|(i, t)| Like {
                track_id: t.id.clone(),
                liked_at: Some(format_time(&(base + secs(to_i64(added - i))))),
            })
            .collect();
        fresh.append(&mut kept);
        next.likes = fresh;
        next
    }

    /// `k` new likes for a merge (`new_likes_batch(k, 0)`).
    pub fn new_likes(&self, k: usize) -> LikesDelta {
        self.new_likes_batch(k, 0)
    }

    /// The `batch`-th of a series of disjoint deltas of `k` new likes each: tracks not liked in this
    /// library, newer than every like in it and than every earlier batch, newest first.
    pub fn new_likes_batch(&self, k: usize, batch: usize) -> LikesDelta {
        let liked: HashSet<&str> = self.likes.iter().map(|l| l.track_id.as_str()).collect();
        let base = self.newest_liked_at() + Duration::hours(to_i64(batch) + 1);
        let likes = self
            .tracks
            .iter()
            .rev() // the tracks least likely to be picked by `with_changed_likes` come first
            .filter(|t| !liked.contains(t.id.as_str()))
            .skip(batch * k)
            .take(k)
            .enumerate()
            .map(|(i, t)| Like {
                track_id: t.id.clone(),
                liked_at: Some(format_time(&(base + secs(to_i64(k - i))))),
            })
            .collect();
        LikesDelta { likes }
    }
}

/// A series of likes that are not in a workload, each newer than every like in it and than every
/// like before it in the series: like `n` is of the `n`-th track the library does not like (then,
/// past those, of a made-up track id) at `newest + 1 h + n s`. Disjoint ranges of the series are
/// disjoint deltas, so every merge of a run adds new likes, and the expected liked list after any
/// of them is known ([`FreshLikes::expected_after`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FreshLikes {
    unliked: Vec<String>,
    base: DateTime<Utc>,
}

impl FreshLikes {
    /// The series of `workload` (tracks taken from the end of its track list first, the ones
    /// [`Workload::with_changed_likes`] is least likely to pick).
    pub fn of(workload: &Workload) -> FreshLikes {
        let liked: HashSet<&str> = workload.likes.iter().map(|l| l.track_id.as_str()).collect();
        let unliked = workload
            .tracks
            .iter()
            .rev()
            .filter(|t| !liked.contains(t.id.as_str()))
            .map(|t| t.id.clone())
            .collect();
        FreshLikes {
            unliked,
            base: workload.newest_liked_at() + Duration::hours(1),
        }
    }

    /// The track id of like `n`.
    pub fn track(&self, n: usize) -> String {
        match self.unliked.get(n) {
            Some(id) => id.clone(),
            None => format!("spotify:track:fresh{n:016}"),
        }
    }

    /// Like `n` with its time.
    pub fn like(&self, n: usize) -> Like {
        Like {
            track_id: self.track(n),
            liked_at: Some(format_time(&(self.base + secs(to_i64(n))))),
        }
    }

    /// Likes `start..start + k` as one delta, newest first (as a source lists them).
    pub fn delta(&self, start: usize, k: usize) -> LikesDelta {
        LikesDelta {
            likes: (start..start + k).rev().map(|n| self.like(n)).collect(),
        }
    }

    /// The liked list after the likes `ns` of the series were added (in any order, each with its
    /// own time) to a library whose list was `before`: the new ones first, newest first.
    pub fn expected_after(&self, ns: impl IntoIterator<Item = usize>, before: &[String]) -> Vec<String> {
        let mut ns: Vec<usize> = ns.into_iter().collect();
        ns.sort_unstable_by(|a, b| b.cmp(a));
        ns.dedup();
        ns.into_iter()
            .map(|n| self.track(n))
            .chain(before.iter().cloned())
            .collect()
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

fn at_secs(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

fn base62(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
        .collect()
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// An index in `0..n` skewed towards 0: a few favourites get most of the picks.
fn skewed(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let u: f64 = rng.random();
    // n is at most a few hundred thousand, so the float round trip is exact enough.
    ((u * u * u) * n as f64) as usize % n.max(1)
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn title(rng: &mut ChaCha8Rng) -> String {
    // One word half the time, two a third of the time, else three.
    let n = match rng.random_range(0..6) {
        0..=2 => 1,
        3 | 4 => 2,
        _ => 3,
    };
    let words: Vec<String> = (0..n).map(|_| capitalize(pick(rng, words::TITLE_WORDS))).collect();
    words.join(" ")
}

fn artist_name(rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.35) {
        format!(
            "The {} {}",
            capitalize(pick(rng, words::TITLE_WORDS)),
            pick(rng, words::BAND_NOUNS)
        )
    } else {
        format!("{} {}", pick(rng, words::FIRST_NAMES), pick(rng, words::LAST_NAMES))
    }
}

fn gen_tracks(rng: &mut ChaCha8Rng, n: usize) -> Vec<Track> {
    let artists: Vec<String> = (0..(n / 8).max(1)).map(|_| artist_name(rng)).collect();
    let albums: Vec<String> = (0..(n / 12).max(1))
        .map(|_| {
            let head = title(rng);
            if rng.random_bool(0.2) {
                format!("{head} ({})", pick(rng, words::ALBUM_WORDS))
            } else {
                head
            }
        })
        .collect();
    let mut seen = HashSet::with_capacity(n);
    let mut tracks = Vec::with_capacity(n);
    while tracks.len() < n {
        let key = base62(rng, 22);
        if !seen.insert(key.clone()) {
            continue;
        }
        let id = format!("spotify:track:{key}");
        let year = rng.random_range(1960..=2024);
        let genres: Vec<String> = (0..rng.random_range(1..=3))
            .map(|_| pick(rng, words::GENRES).to_owned())
            .collect::<Vec<_>>();
        let mut genres_unique: Vec<String> = Vec::with_capacity(genres.len());
        for g in genres {
            if !genres_unique.contains(&g) {
                genres_unique.push(g);
            }
        }
        let isrc = format!(
            "{}{}{:02}{:05}",
            pick(rng, words::COUNTRIES),
            base62(rng, 3).to_uppercase(),
            year % 100,
            rng.random_range(0..100_000)
        );
        // Every track has a title, an artist and a duration; the other fields are present at the rates an
        // app that fetched full details for only part of the library would send (this also keeps the large
        // ingest body near 20 MB).
        tracks.push(Track {
            uri: rng.random_bool(OPTIONAL_RATE.uri).then(|| id.clone()),
            id,
            title: Some(title(rng)),
            artist: Some(artists[skewed(rng, artists.len())].clone()),
            album: rng
                .random_bool(OPTIONAL_RATE.album)
                .then(|| albums[rng.random_range(0..albums.len())].clone()),
            duration_ms: Some(u64::from(rng.random_range(60_000u32..=480_000))),
            year: rng.random_bool(OPTIONAL_RATE.year).then_some(year),
            genres: rng.random_bool(OPTIONAL_RATE.genres).then_some(genres_unique),
            isrc: rng.random_bool(OPTIONAL_RATE.isrc).then_some(isrc),
            extra: Map::new(),
        });
    }
    tracks
}

fn gen_likes(rng: &mut ChaCha8Rng, tracks: &[Track], n: usize) -> Vec<Like> {
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.shuffle(rng);
    let start = EPOCH_END_SECS - 8 * YEAR_SECS;
    let mut times: Vec<i64> = Vec::with_capacity(n);
    for _ in 0..n.min(tracks.len()) {
        let t = match times.last() {
            Some(&prev) if rng.random_bool(LIKE_TIE_CHANCE) => prev,
            _ => rng.random_range(start..EPOCH_END_SECS),
        };
        times.push(t);
    }
    // Newest first; ties stay in generation order (a stable sort), which is the order the cache must keep.
    let mut likes: Vec<(i64, usize)> = times.into_iter().zip(order).collect();
    likes.sort_by_key(|&(t, _)| Reverse(t));
    likes
        .into_iter()
        .map(|(t, i)| Like {
            track_id: tracks[i].id.clone(),
            liked_at: Some(format_time(&at_secs(t))),
        })
        .collect()
}

fn gen_plays(rng: &mut ChaCha8Rng, tracks: &[Track], n: usize) -> Vec<Play> {
    if tracks.is_empty() {
        return Vec::new();
    }
    let start_ms = (EPOCH_END_SECS - 3 * YEAR_SECS) * 1000;
    let end_ms = EPOCH_END_SECS * 1000;
    let mut seen = HashSet::with_capacity(n);
    let mut plays = Vec::with_capacity(n);
    while plays.len() < n {
        let track = skewed(rng, tracks.len());
        let ms = rng.random_range(start_ms..end_ms);
        if !seen.insert((track, ms)) {
            continue;
        }
        let played_at = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        plays.push((played_at, track));
    }
    plays.sort_by_key(|&(at, _)| Reverse(at));
    plays
        .into_iter()
        .map(|(at, track)| Play {
            track_id: tracks[track].id.clone(),
            played_at: format_time(&at),
        })
        .collect()
}

fn gen_playlists(rng: &mut ChaCha8Rng, tracks: &[Track], n: usize, entries: usize) -> Vec<Playlist> {
    if tracks.is_empty() {
        return Vec::new();
    }
    let mut playlists: Vec<Playlist> = Vec::with_capacity(n);
    for i in 0..n {
        let name = if i % 7 == 3 {
            // Every seventh playlist repeats an earlier one's name, so names are never unique keys.
            playlists[rng.random_range(0..i)].name.clone()
        } else if rng.random_bool(COMMON_NAME_CHANCE) {
            pick(rng, words::PLAYLIST_NAMES).to_owned()
        } else {
            format!("{} {}", title(rng), pick(rng, words::PLAYLIST_NAMES))
        };
        let mut list: Vec<String> = Vec::with_capacity(entries);
        while list.len() < entries {
            let entry = if !list.is_empty() && rng.random_bool(ENTRY_REPEAT_CHANCE) {
                list[rng.random_range(0..list.len())].clone()
            } else {
                tracks[skewed(rng, tracks.len())].id.clone()
            };
            list.push(entry);
        }
        let id = format!("spotify:playlist:{}", base62(rng, 22));
        playlists.push(Playlist {
            uri: Some(id.clone()),
            id,
            name,
            owner: Some(if i % 10 == 0 {
                "spotify".to_owned()
            } else {
                "user".to_owned()
            }),
            public: Some(rng.random_bool(0.6)),
            collaborative: Some(rng.random_bool(0.05)),
            snapshot_id: Some(base62(rng, 32)),
            entries: list,
            extra: Map::new(),
        });
    }
    playlists
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_library_other_seed_other_library() {
        let a = Workload::small(7);
        assert_eq!(a, Workload::small(7));
        assert_ne!(a.tracks, Workload::small(8).tracks);
    }

    /// The benchmark's figures are comparable only on the same workload: this pins the generator's output
    /// (with the locked `rand`/`rand_chacha` versions). Change it only when changing the workload on purpose.
    #[test]
    fn small_42_is_the_pinned_workload() -> Result<(), serde_json::Error> {
        let bytes = Workload::small(42).ingest_bytes("user:bench")?;
        let fnv1a = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((bytes.len(), fnv1a), (464_994, 0xf4bc_0391_140f_a8ab));
        Ok(())
    }

    #[test]
    fn small_has_the_requested_counts() {
        let w = Workload::small(1);
        assert_eq!(
            (w.tracks.len(), w.likes.len(), w.plays.len(), w.playlists.len()),
            (2_000, 500, 1_000, 20)
        );
        assert!(w.playlists.iter().all(|p| p.entries.len() == 50));
    }

    #[test]
    fn large_has_the_requested_counts_and_size() -> Result<(), serde_json::Error> {
        let w = Workload::large(1);
        assert_eq!(
            (w.tracks.len(), w.likes.len(), w.plays.len(), w.playlists.len()),
            (100_000, 25_000, 50_000, 1_000)
        );
        assert!(w.playlists.iter().all(|p| p.entries.len() == 50));
        let bytes = w.ingest_bytes("user:alice")?;
        assert!((18_000_000..26_000_000).contains(&bytes.len()), "{} bytes", bytes.len());
        Ok(())
    }

    #[test]
    fn ids_likes_and_playlists_look_real() {
        let w = Workload::small(3);
        let t = &w.tracks[0];
        let key = t.id.strip_prefix("spotify:track:").unwrap_or_default();
        assert_eq!(key.len(), 22);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        let ids: HashSet<&str> = w.tracks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), w.tracks.len());
        let liked: HashSet<&str> = w.likes.iter().map(|l| l.track_id.as_str()).collect();
        assert_eq!(liked.len(), w.likes.len(), "each like is of a distinct track");
        assert!(
            w.likes.windows(2).all(|p| {
                let at = |l: &Like| l.liked_at.as_deref().and_then(parse_time);
                at(&p[0]) >= at(&p[1])
            }),
            "likes are listed newest first"
        );
        let names: HashSet<&str> = w.playlists.iter().map(|p| p.name.as_str()).collect();
        assert!(names.len() < w.playlists.len(), "some playlist names repeat");
        assert!(w
            .playlists
            .iter()
            .any(|p| p.entries.len() > p.entries.iter().collect::<HashSet<_>>().len()));
    }

    #[test]
    fn large_likes_have_ties_but_are_mostly_distinct() {
        let w = Workload::large(5);
        let times: HashSet<_> = w.likes.iter().map(|l| l.liked_at.as_deref()).collect();
        assert!(times.len() < w.likes.len(), "some likedAt ties");
        assert!(times.len() > w.likes.len() * 9 / 10, "mostly distinct likedAt");
    }

    #[test]
    fn changed_likes_remove_half_and_add_half_newest_first() {
        let w = Workload::small(11);
        let next = w.with_changed_likes(10, 99);
        assert_eq!(next.likes.len(), w.likes.len());
        let before: HashSet<&str> = w.likes.iter().map(|l| l.track_id.as_str()).collect();
        let after: HashSet<&str> = next.likes.iter().map(|l| l.track_id.as_str()).collect();
        assert_eq!(before.difference(&after).count(), 5);
        assert_eq!(after.difference(&before).count(), 5);
        assert!(next.likes[..5].iter().all(|l| !before.contains(l.track_id.as_str())));
        assert_eq!(next, w.with_changed_likes(10, 99));
        assert_eq!(
            next.expected_liked(),
            next.likes.iter().map(|l| l.track_id.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn fresh_likes_are_new_newer_and_disjoint() {
        let w = Workload::small(2);
        let fresh = FreshLikes::of(&w);
        let liked: HashSet<&str> = w.likes.iter().map(|l| l.track_id.as_str()).collect();
        let (a, b) = (fresh.delta(0, 10), fresh.delta(10, 1));
        assert!(a
            .likes
            .iter()
            .chain(&b.likes)
            .all(|l| !liked.contains(l.track_id.as_str())));
        let at = |l: &Like| l.liked_at.as_deref().and_then(parse_time);
        assert!(at(&a.likes[0]) > at(&a.likes[9]) && at(&a.likes[9]) > Some(w.newest_liked_at()));
        assert!(at(&b.likes[0]) > at(&a.likes[0]));
        let expected = fresh.expected_after(0..11, &w.expected_liked());
        assert_eq!(expected[0], b.likes[0].track_id);
        assert_eq!(expected[1], a.likes[0].track_id);
        assert_eq!(expected.len(), w.likes.len() + 11);
        // Past the library's unliked tracks the series goes on with made-up ids.
        assert!(fresh.track(1_000_000).starts_with("spotify:track:fresh"));
    }

    #[test]
    fn new_likes_batches_are_disjoint_new_and_newer() -> Result<(), serde_json::Error> {
        let w = Workload::small(2);
        let (a, b) = (w.new_likes_batch(10, 0), w.new_likes_batch(10, 1));
        assert_eq!((a.likes.len(), b.likes.len()), (10, 10));
        let liked: HashSet<&str> = w.likes.iter().map(|l| l.track_id.as_str()).collect();
        assert!(a
            .likes
            .iter()
            .chain(&b.likes)
            .all(|l| !liked.contains(l.track_id.as_str())));
        assert!(a.likes.iter().all(|x| b.likes.iter().all(|y| x.track_id != y.track_id)));
        let at = |l: &Like| l.liked_at.as_deref().and_then(parse_time);
        assert!(at(&b.likes[9]) > at(&a.likes[0]) && at(&a.likes[9]) > Some(w.newest_liked_at()));
        let json = a.merge_json("user:bob")?;
        assert_eq!(json["userId"], "user:bob");
        assert!(json.get("tracks").is_none());
        assert_eq!(json["likes"].as_array().map(Vec::len), Some(10));
        Ok(())
    }
}
