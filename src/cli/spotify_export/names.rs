//! Tracks by name: which track id a `StreamingHistory` row (artist and title, no URI) is, and
//! which ids are one song for deduplicating plays.
//!
//! A track's names are its (artist, title) as `concept_core::track_name::name_keys` gives them
//! (case and spacing ignored; under its whole artist and under the first of a comma-separated
//! list: "A, B" — SpotifySource joins a track's artists so — is also "A"). A row resolves to the
//! smallest id with its names among the export's tracks and those the cache already holds, a
//! Spotify URI before any derived id; a row no URI has gets the derived id
//! `spotify-export:track:{artist}:{title}`. The rule is LibraryCache's `rekeyNamed`'s, which
//! re-keys a derived id once a URI with its names is in the library — so a row resolves to the
//! same track whether the URI came in the same import or a later one. Ids that share a name are
//! one song: a play of either is a play of both.

use concept_core::track_name::{derived_id, name_keys};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// The prefix of the ids given to tracks only known by name.
pub const DERIVED_PREFIX: &str = "spotify-export:track:";

/// The names of tracks and which ids are one song (a union-find over ids and names).
#[derive(Debug, Default)]
pub struct Names {
    /// A name → the id it resolves to: the smallest URI with it, else the smallest derived id.
    first: HashMap<String, String>,
    /// Node numbers of ids (`i` + id) and names (`n` + name).
    nodes: HashMap<String, usize>,
    parent: Vec<usize>,
}

impl Names {
    /// Records that `id` is `title` by `artist` (when both are known), and `id` itself.
    pub fn add(&mut self, id: &str, artist: Option<&str>, title: Option<&str>) {
        let node = self.node(format!("i{id}"));
        let (Some(artist), Some(title)) = (artist, title) else {
            return;
        };
        for key in name_keys(artist, title) {
            match self.first.entry(key.clone()) {
                Entry::Vacant(v) => {
                    v.insert(id.to_string());
                }
                Entry::Occupied(mut o) if (is_derived(id), id) < (is_derived(o.get()), o.get().as_str()) => {
                    o.insert(id.to_string());
                }
                Entry::Occupied(_) => {}
            }
            let name = self.node(format!("n{key}"));
            self.union(node, name);
        }
    }

    /// The id of `title` by `artist` (its whole artist's name first), or `None`.
    pub fn resolve(&self, artist: &str, title: &str) -> Option<&str> {
        name_keys(artist, title)
            .iter()
            .find_map(|k| self.first.get(k))
            .map(String::as_str)
    }

    /// The song `id` belongs to (equal for ids that share a name). Adds `id` if it is new.
    pub fn song(&mut self, id: &str) -> usize {
        let node = self.node(format!("i{id}"));
        self.find(node)
    }

    fn node(&mut self, key: String) -> usize {
        let next = self.parent.len();
        let n = *self.nodes.entry(key).or_insert(next);
        if n == next {
            self.parent.push(n);
        }
        n
    }

    fn find(&mut self, mut n: usize) -> usize {
        while self.parent[n] != n {
            self.parent[n] = self.parent[self.parent[n]];
            n = self.parent[n];
        }
        n
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[rb] = ra;
        }
    }
}

/// The id of a track known only by name.
pub fn derived(artist: &str, title: &str) -> String {
    derived_id(DERIVED_PREFIX, artist, title)
}

/// Whether `id` is one [`derived`] gave (a track known only by name).
pub fn is_derived(id: &str) -> bool {
    id.starts_with(DERIVED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_resolve_to_the_smallest_id_with_their_name_whatever_the_case() {
        let mut n = Names::default();
        n.add("spotify:track:1", Some("Queen"), Some("Bohemian Rhapsody"));
        n.add("spotify:track:2", Some("queen"), Some("bohemian rhapsody"));
        n.add("spotify:track:0", Some("Queen"), Some("Bohemian Rhapsody (Live)"));
        n.add("spotify:track:3", Some("David Bowie, Queen"), Some("Under Pressure"));
        assert_eq!(n.resolve("QUEEN", "Bohemian  Rhapsody"), Some("spotify:track:1"));
        assert_eq!(n.resolve("David Bowie", "Under Pressure"), Some("spotify:track:3"));
        assert_eq!(n.resolve("Queen", "Under Pressure"), None);
        assert_eq!(n.song("spotify:track:1"), n.song("spotify:track:2"));
        assert_ne!(n.song("spotify:track:1"), n.song("spotify:track:3"));
        let d = derived("Queen", "Bohemian Rhapsody");
        assert_eq!(d, "spotify-export:track:queen:bohemian rhapsody");
        n.add(&d, Some("Queen"), Some("Bohemian Rhapsody"));
        assert_eq!(n.song(&d), n.song("spotify:track:1"));
        // A derived id added first gives way to a URI with its name, and a URI to a smaller one:
        // the order names are added in does not matter.
        let mut m = Names::default();
        let rare = derived("Band", "Rare");
        m.add(&rare, Some("Band"), Some("Rare"));
        assert_eq!(m.resolve("band", "rare"), Some(rare.as_str()));
        m.add("spotify:track:9", Some("Band"), Some("Rare"));
        assert_eq!(m.resolve("band", "rare"), Some("spotify:track:9"));
        m.add("spotify:track:10", Some("Band"), Some("Rare"));
        m.add(&rare, Some("Band"), Some("Rare"));
        assert_eq!(m.resolve("band", "rare"), Some("spotify:track:10"));
        assert_ne!(n.song("spotify:track:unnamed"), n.song("spotify:track:1"));
    }
}
