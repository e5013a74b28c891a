//! When two plays are one: the import's deduplication rule.
//!
//! Every source gives the time playback *ended* (the extended history's `ts`, the account data's
//! `endTime`, the Web API's `played_at`), so two records of one play differ only by precision and
//! clock noise. Two plays of one song (see `names`) are the same play when:
//!
//! - both times are to the second or finer: they are less than [`NEAR`] (15 s) apart;
//! - one is to the minute (`StreamingHistory`, or a cached time on a whole minute, which may have
//!   come from one): the other lies from 45 s before to 75 s after the start of that minute (the
//!   minute may be truncated or rounded; then give or take [`NEAR`]);
//! - both are to the minute: they are the same minute.
//!
//! A play counts only at 30 s played, so two real plays of one song end at least 30 s apart and
//! the first rule never joins them. The second can, for a song under about two minutes heard
//! twice in a row when one of the records is to the minute; that is the price of matching
//! minute-precision records at all.

use chrono::{DateTime, Duration, Timelike, Utc};
use std::collections::{BTreeMap, HashMap};

/// How far apart two precise records of one play may be.
pub const NEAR: Duration = Duration::seconds(15);
/// The window of a minute-precision time `m`: `[m - BEFORE, m + AFTER)`.
const BEFORE: Duration = Duration::seconds(45);
const AFTER: Duration = Duration::seconds(75);

/// A play's time and whether it is only to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub at: DateTime<Utc>,
    pub minute: bool,
}

impl When {
    /// A time read back from the cache: to the minute if it falls on a whole minute.
    pub fn cached(at: DateTime<Utc>) -> When {
        When {
            at,
            minute: at.second() == 0 && at.nanosecond() == 0,
        }
    }
}

/// Whether `a` and `b` (plays of one song) are one play.
pub fn same(a: When, b: When) -> bool {
    match (a.minute, b.minute) {
        (false, false) => (a.at - b.at).abs() < NEAR,
        (true, true) => a.at == b.at,
        (true, false) => in_minute(b.at, a.at),
        (false, true) => in_minute(a.at, b.at),
    }
}

fn in_minute(t: DateTime<Utc>, minute: DateTime<Utc>) -> bool {
    minute - BEFORE <= t && t < minute + AFTER
}

/// Where a known play came from: the cache (the `n`-th cached play) or the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Cache(usize),
    Export,
}

/// The plays known of one song: end time → (to the minute?, where from) for each.
type Times = BTreeMap<DateTime<Utc>, Vec<(bool, Origin)>>;

/// The plays known so far, by song.
#[derive(Debug, Default)]
pub struct Seen {
    songs: HashMap<usize, Times>,
}

impl Seen {
    /// Where the play of `song` at `when` is already known from, if it is: a precise record
    /// before one to the minute.
    pub fn find(&self, song: usize, when: When) -> Option<Origin> {
        let times = self.songs.get(&song)?;
        let reach = AFTER.max(NEAR);
        let mut found: Vec<(bool, Origin)> = times
            .range(when.at - reach..=when.at + reach)
            .flat_map(|(at, marks)| marks.iter().map(move |&(minute, origin)| (*at, minute, origin)))
            .filter(|&(at, minute, _)| same(when, When { at, minute }))
            .map(|(_, minute, origin)| (minute, origin))
            .collect();
        found.sort_by_key(|(minute, _)| *minute);
        found.first().map(|(_, origin)| *origin)
    }

    /// Whether the play known from `origin` is to the minute only.
    pub fn is_minute(&self, song: usize, origin: Origin) -> bool {
        self.songs
            .get(&song)
            .is_some_and(|times| times.values().flatten().any(|&(minute, o)| o == origin && minute))
    }

    pub fn insert(&mut self, song: usize, when: When, origin: Origin) {
        self.songs
            .entry(song)
            .or_default()
            .entry(when.at)
            .or_default()
            .push((when.minute, origin));
    }

    /// Forgets the play known from `origin` (a cached play replaced by a precise record).
    pub fn remove(&mut self, song: usize, origin: Origin) {
        if let Some(times) = self.songs.get_mut(&song) {
            for marks in times.values_mut() {
                marks.retain(|&(_, o)| o != origin);
            }
            times.retain(|_, marks| !marks.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        concept_core::time::parse_rfc3339(s).unwrap()
    }
    fn precise(s: &str) -> When {
        When {
            at: at(s),
            minute: false,
        }
    }
    fn minute(s: &str) -> When {
        When {
            at: at(s),
            minute: true,
        }
    }

    #[test]
    fn precise_records_within_15_seconds_are_one_play() {
        assert!(same(
            precise("2021-03-04T12:34:56Z"),
            precise("2021-03-04T12:34:56.789Z")
        ));
        assert!(same(precise("2021-03-04T12:34:56Z"), precise("2021-03-04T12:35:10Z")));
        assert!(!same(precise("2021-03-04T12:34:56Z"), precise("2021-03-04T12:35:26Z")));
    }

    #[test]
    fn a_minute_stands_for_its_minute_truncated_or_rounded() {
        let m = minute("2021-03-04T12:34:00Z");
        assert!(same(m, precise("2021-03-04T12:34:59Z")));
        assert!(same(m, precise("2021-03-04T12:33:31Z")), "rounded up");
        assert!(same(precise("2021-03-04T12:35:14Z"), m));
        assert!(!same(m, precise("2021-03-04T12:35:15Z")));
        assert!(!same(m, precise("2021-03-04T12:33:14Z")));
        assert!(same(m, minute("2021-03-04T12:34:00Z")));
        assert!(!same(m, minute("2021-03-04T12:35:00Z")), "a short song heard twice");
    }

    #[test]
    fn seen_plays_are_found_by_song_and_time() {
        let mut seen = Seen::default();
        seen.insert(1, When::cached(at("2021-03-04T12:34:00Z")), Origin::Cache(0));
        seen.insert(1, precise("2021-03-04T13:00:00.5Z"), Origin::Export);
        assert_eq!(seen.find(1, precise("2021-03-04T12:34:40Z")), Some(Origin::Cache(0)));
        assert!(seen.is_minute(1, Origin::Cache(0)));
        assert_eq!(seen.find(1, precise("2021-03-04T13:00:10Z")), Some(Origin::Export));
        assert_eq!(seen.find(2, precise("2021-03-04T12:34:40Z")), None);
        assert_eq!(seen.find(1, precise("2021-03-04T14:00:00Z")), None);
        // A precise record is found before a minute one; a removed play is found no more.
        seen.insert(1, precise("2021-03-04T12:34:45Z"), Origin::Cache(1));
        assert_eq!(seen.find(1, precise("2021-03-04T12:34:40Z")), Some(Origin::Cache(1)));
        seen.remove(1, Origin::Cache(1));
        seen.remove(1, Origin::Cache(0));
        assert_eq!(seen.find(1, precise("2021-03-04T12:34:40Z")), None);
    }
}
