//! Tracks known only by artist and title (a Spotify `StreamingHistory` row, a Last.fm scrobble
//! without an MBID): the normalised name two sources compare, and the stable track id derived
//! from it. The rule: each part is trimmed, its inner runs of white space become one space, it is
//! lower-cased and cut to [`MAX_PART`] characters; `%`, `:` and control characters are written
//! `%XX` (UTF-8 bytes); the id is `{prefix}{artist}:{title}`. So the same artist and title always
//! give the same id, whatever their case or spacing, and the id is a valid id (no control
//! characters, at most about 2 × 3 × [`MAX_PART`] bytes plus the prefix).

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
    fn separators_and_control_characters_are_escaped_so_ids_do_not_collide() {
        assert_ne!(derived_id("x:", "a:b", "c"), derived_id("x:", "a", "b:c"));
        assert_eq!(derived_id("x:", "a:b", "100%"), "x:a%3Ab:100%25");
        assert!(!derived_id("x:", "a\u{7}", "b").chars().any(char::is_control));
        let long = "é".repeat(1000);
        assert!(derived_id("x:", &long, &long).len() <= 2 + 2 * 2 * MAX_PART + 1);
    }
}
