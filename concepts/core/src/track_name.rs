//! Tracks known only by artist and title (a Spotify `StreamingHistory` row, a Last.fm scrobble
//! without an MBID): the normalised name two sources compare, and the stable track id derived
//! from it. The rule: each part is trimmed, its inner runs of white space become one space, it is
//! lower-cased and cut to [`MAX_PART`] characters; `%`, `:` and control characters are written
//! `%XX` (UTF-8 bytes); the id is `{prefix}{artist}:{title}`. So the same artist and title always
//! give the same id, whatever their case or spacing, and the id is a valid id (no control
//! characters, at most about 2 × 3 × [`MAX_PART`] bytes plus the prefix).
//!
//! Two tracks are namesakes when they share a [`name_keys`] key: the same normalised title, and
//! the same normalised artist or the same first artist of a comma-separated list ("A, B" — how
//! SpotifySource joins a track's artists — is also known as "A"). This is how a track known only
//! by name finds the track with a real id it stands for.

/// The most characters of each part kept in a derived id.
pub const MAX_PART: usize = 150;

/// A name as compared: trimmed, inner white space collapsed, lower case.
pub fn normalise(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The id of the track `title` by `artist`, under a source's `prefix` (e.g. `lastfm:track:`).
pub fn derived_id(prefix: &str, artist: &str, title: &str) -> String {
    format!("{prefix}{}:{}", escape(&normalise(artist)), escape(&normalise(title)))
}

/// The keys under which `title` by `artist` is known (see the module's namesake rule): the
/// whole artist's, and the first listed artist's when the artist is a list "A, B".
pub fn name_keys(artist: &str, title: &str) -> Vec<String> {
    let title = normalise(title);
    let whole = normalise(artist);
    let mut out = vec![format!("{whole}\u{0}{title}")];
    if let Some((first, _)) = whole.split_once(", ") {
        out.push(format!("{first}\u{0}{title}"));
    }
    out
}

fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars().take(MAX_PART) {
        if c == '%' || c == ':' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_in_another_case_or_spacing_gives_the_same_id() {
        assert_eq!(
            derived_id("x:", "The  Beatles ", "Let It Be"),
            derived_id("x:", "the beatles", "let it  be")
        );
        assert_eq!(derived_id("x:", "AC/DC", "T.N.T."), "x:ac/dc:t.n.t.");
    }

    #[test]
    fn namesakes_share_a_key_under_the_whole_or_the_first_artist() {
        let shared = |a: (&str, &str), b: (&str, &str)| {
            let b = name_keys(b.0, b.1);
            name_keys(a.0, a.1).iter().any(|k| b.contains(k))
        };
        assert!(shared(("Queen", "Bohemian  Rhapsody"), ("queen ", "bohemian rhapsody")));
        assert!(shared(("Old Band, Guest", "Song"), ("Old Band", "Song")));
        assert!(!shared(("Old Band", "Song"), ("Guest", "Song")));
        assert!(!shared(("A", "B C"), ("A B", "C")));
    }

    #[test]
    fn separators_and_control_characters_are_escaped_so_ids_do_not_collide() {
        assert_ne!(derived_id("x:", "a:b", "c"), derived_id("x:", "a", "b:c"));
        assert_eq!(derived_id("x:", "a:b", "100%"), "x:a%3Ab:100%25");
        assert!(!derived_id("x:", "a\u{7}", "b").chars().any(char::is_control));
        let long = "é".repeat(1000);
        assert!(derived_id("x:", &long, &long).len() <= 2 + 2 * 2 * MAX_PART + 1);
    }
}
