//! Name bookkeeping shared by the parser, the loader and the checker: sync names defined twice,
//! and "did you mean ...?" suggestions for misspelt names.

use std::collections::HashMap;

use super::ast::{Pos, SyncFile};
use super::error::SyncError;

/// One error for every sync whose name was already used by an earlier sync (in file order, then
/// source order), naming both places.
pub(crate) fn duplicate_sync_names(files: &[SyncFile]) -> Vec<SyncError> {
    let mut first: HashMap<&str, &Pos> = HashMap::new();
    let mut errors = Vec::new();
    for sync in files.iter().flat_map(|f| &f.syncs) {
        match first.get(sync.name.as_str()) {
            Some(earlier) => errors.push(sync.pos.error(format!(
                "sync `{}` is defined twice: here and at {}:{}:{}",
                sync.name, earlier.file, earlier.line, earlier.col
            ))),
            None => {
                first.insert(&sync.name, &sync.pos);
            }
        }
    }
    errors
}

/// The candidate closest to `name`, if one is close enough to be a likely misspelling.
pub(crate) fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// " (did you mean `x`?)" or nothing.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance between two strings, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("_getLiked", "_getLike"), 1);
    }

    #[test]
    fn closest_suggests_only_near_names() {
        let names = ["_getLiked", "_getPlaylist", "ingest"];
        assert_eq!(closest("_getLike", names), Some("_getLiked"));
        assert_eq!(closest("getLiked", names), Some("_getLiked"));
        assert_eq!(closest("frobnicate", names), None);
    }
}
