//! Reading a JSON data file named on the command line: its bytes (counted on a progress bar when
//! one is given) and its parse into a typed value, with errors that name the file, the line and
//! column, and the field path (`playlists[2].items[7].track.trackUri`) where the parse stopped.
//!
//! A value of the wrong shape is placed where the value starts in the file (found by walking the
//! text along its field path): the parser itself reports where it stopped reading, which for a
//! value checked after it was read — a time, a URI — or a missing field is past the value, often
//! on the next line. A file that is empty, or a Git LFS pointer (what a repository holds in place
//! of a file kept in LFS), is said to be that, not "not valid JSON".

use indicatif::ProgressBar;
use serde::de::DeserializeOwned;
use std::io::Read;
use std::path::Path;

/// Why a JSON file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum JsonFileError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// Not JSON at all (a syntax error, or the file ends early).
    #[error("{path}:{line}:{column}: not valid JSON: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON, but not of the expected shape: `field` is where (`.` for the whole file).
    #[error("{path}:{line}:{column}: {}{message}", at(field))]
    Shape {
        path: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    /// Nothing in it (or only white space).
    #[error("{path}: the file is empty ({size} bytes{}): there is nothing to read", if *size > 0 { " of white space" } else { "" })]
    Empty { path: String, size: usize },
    /// The pointer Git LFS leaves in a repository in place of a file it keeps elsewhere.
    #[error("{path}: this is a Git LFS pointer (to {size} of content kept in Git LFS), not the file itself: fetch the file (git lfs pull) and read that")]
    LfsPointer { path: String, size: String },
}

fn at(field: &str) -> String {
    if field == "." || field.is_empty() {
        String::new()
    } else {
        format!("at {field}: ")
    }
}

/// The whole file; each chunk read advances `bar` by its size.
pub fn read_bytes(path: &Path, bar: Option<&ProgressBar>) -> Result<Vec<u8>, JsonFileError> {
    let read_err = |source| JsonFileError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let reader = std::io::BufReader::new(file);
    match bar {
        Some(bar) => bar.wrap_read(reader).read_to_end(&mut bytes),
        None => { reader }.read_to_end(&mut bytes),
    }
    .map_err(read_err)?;
    Ok(bytes)
}

/// A UTF-8 byte order mark (some editors write one; JSON parsers refuse it).
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How a Git LFS pointer file begins.
const LFS_POINTER: &[u8] = b"version https://git-lfs";

/// Parses `bytes` (the contents of `path`) as a `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, JsonFileError> {
    let shown = || path.display().to_string();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonFileError::Empty {
            path: shown(),
            size: bytes.len(),
        });
    }
    if bytes.starts_with(LFS_POINTER) {
        let text = String::from_utf8_lossy(bytes);
        let size = text
            .lines()
            .find_map(|l| l.strip_prefix("size "))
            .map(|n| format!("{} bytes", n.trim()))
            .unwrap_or_else(|| "some bytes".into());
        return Err(JsonFileError::LfsPointer { path: shown(), size });
    }
    let text = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let start = locate::value(text, e.path());
        positioned(path, text, field, start, e.into_inner())
    })?;
    de.end().map_err(|e| positioned(path, text, String::new(), None, e))?;
    Ok(value)
}

/// Line and column (1-based; the column in characters, as an editor counts them) of byte
/// `offset` of `text`.
fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    (line, chars(&before[line_start..]) + 1)
}

/// The parser's place — `column` bytes of `line` read (0: none yet) — as line and column of the
/// last byte read (1-based, in characters; column 1 when nothing of the line was read).
fn parser_place(text: &[u8], line: usize, column: usize) -> (usize, usize) {
    let line_start = match line {
        0 | 1 => 0,
        n => text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(n - 2)
            .map_or(text.len(), |(i, _)| i + 1),
    };
    let end = (line_start + column).min(text.len());
    (line.max(1), chars(&text[line_start..end]).max(1))
}

/// The number of characters in `bytes` (UTF-8; a byte that is not counts as one).
fn chars(bytes: &[u8]) -> usize {
    String::from_utf8_lossy(bytes).chars().count()
}

/// `e` as an error of `path`; a shape error at `start`, the offset where the value its field
/// path names begins (when the text could be walked there).
fn positioned(path: &Path, text: &[u8], field: String, start: Option<usize>, e: serde_json::Error) -> JsonFileError {
    let (line, column) = match (e.classify(), start) {
        (serde_json::error::Category::Data, Some(offset)) => line_column(text, offset),
        _ => parser_place(text, e.line(), e.column()),
    };
    let (parser_line, parser_column) = (e.line(), e.column());
    let full = e.to_string();
    let message = full
        .strip_suffix(&format!(" at line {parser_line} column {parser_column}"))
        .unwrap_or(&full)
        .to_string();
    let path = path.display().to_string();
    match e.classify() {
        serde_json::error::Category::Data => JsonFileError::Shape {
            path,
            line,
            column,
            field,
            message,
        },
        _ => JsonFileError::Syntax {
            path,
            line,
            column,
            message,
        },
    }
}

/// Walking JSON text along a field path to where the value it names begins. The text is what
/// the parser read up to the error, so it is JSON there; anything unexpected gives up (`None`).
mod locate {
    use serde_path_to_error::{Path, Segment};

    fn ws(text: &[u8], mut at: usize) -> usize {
        while text.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    }

    /// The offset just past the string starting at `at`, and the string.
    fn string(text: &[u8], at: usize) -> Option<(usize, String)> {
        if text.get(at) != Some(&b'"') {
            return None;
        }
        let mut i = at + 1;
        loop {
            match text.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        let decoded = serde_json::from_slice(&text[at..=i]).ok()?;
        Some((i + 1, decoded))
    }

    /// The offset just past the value starting at `at`.
    fn skip(text: &[u8], at: usize) -> Option<usize> {
        match text.get(at)? {
            b'"' => string(text, at).map(|(end, _)| end),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut i = at;
                loop {
                    match text.get(i)? {
                        b'"' => {
                            i = string(text, i)?.0;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {
                let mut i = at;
                while text
                    .get(i)
                    .is_some_and(|b| !b",]}".contains(b) && !b.is_ascii_whitespace())
                {
                    i += 1;
                }
                Some(i)
            }
        }
    }

    /// Past the separator `sep` (after white space), and the white space after it.
    fn past(text: &[u8], at: usize, sep: u8) -> Option<usize> {
        let at = ws(text, at);
        (text.get(at) == Some(&sep)).then(|| ws(text, at + 1))
    }

    /// Where the value `path` names begins.
    pub fn value(text: &[u8], path: &Path) -> Option<usize> {
        let mut at = ws(text, 0);
        for segment in path.iter() {
            match segment {
                Segment::Seq { index } => {
                    at = past(text, at, b'[')?;
                    for _ in 0..*index {
                        at = past(text, skip(text, at)?, b',')?;
                    }
                }
                Segment::Map { key } => {
                    at = past(text, at, b'{')?;
                    loop {
                        let (end, name) = string(text, at)?;
                        at = past(text, end, b':')?;
                        if name == *key {
                            break;
                        }
                        at = past(text, skip(text, at)?, b',')?;
                    }
                }
                Segment::Enum { .. } | Segment::Unknown => return Some(at),
            }
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Row {
        #[allow(dead_code)]
        ms: u64,
    }

    #[test]
    fn errors_name_the_file_the_position_and_the_field() {
        let p = Path::new("h.json");
        let e = parse::<Vec<Row>>(p, b"[{\"ms\": 1},\n {\"ms\": \"x\"}]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "h.json:2:9: at [1].ms: invalid type: string \"x\", expected u64"
        );
        let e = parse::<Vec<Row>>(p, b"[{\"ms\": 1},\n {\"ms\" 2}]").unwrap_err();
        assert!(
            e.to_string().starts_with("h.json:2:8: not valid JSON: expected `:`"),
            "{e}"
        );
        let e = parse::<Vec<Row>>(p, b"[] x").unwrap_err();
        assert!(e.to_string().starts_with("h.json:1:4: not valid JSON: trailing"), "{e}");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let p = Path::new("h.json");
        let e = parse::<Vec<Row>>(p, "[{\"n\": \"Beyoncé\", \"ms\": \"x\"}]".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("h.json:1:25: at [0].ms: invalid type"), "{e}");
        let e = parse::<Vec<Row>>(p, "[{\"n\": \"é\" x}]".as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("h.json:1:12: not valid JSON: expected `,` or `}`"),
            "{e}"
        );
        let e = parse::<Vec<Row>>(p, b"[{\"ms\": 1},\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("h.json:2:1: not valid JSON: EOF while parsing"),
            "{e}"
        );
    }

    /// A row checked after it is read (a time), the last field of its object.
    #[derive(Debug, serde::Deserialize)]
    struct Timed {
        #[allow(dead_code)]
        ms: u64,
        #[allow(dead_code)]
        #[serde(deserialize_with = "a_time")]
        at: String,
    }

    fn a_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        if s.len() == 16 {
            Ok(s)
        } else {
            Err(serde::de::Error::custom(format!("expected a time, found {s:?}")))
        }
    }

    #[test]
    fn a_bad_value_is_placed_where_it_starts_not_where_the_parser_stopped() {
        let p = Path::new("h.json");
        // Pretty-printed as exports are: the bad time is the last field, on line 7; the parser
        // would stop past the closing brace on line 8.
        let text = "[\n  {\n    \"ms\": 1,\n    \"at\": \"2021-03-01 10:00\"\n  },\n  {\n    \"ms\": 2, \"at\": \"yesterday\"\n  }\n]";
        let e = parse::<Vec<Timed>>(p, text.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "h.json:7:20: at [1].at: expected a time, found \"yesterday\""
        );
        // A missing field: the row that lacks it.
        let e = parse::<Vec<Timed>>(p, b"[\n {\"ms\": 1, \"at\": \"2021-03-01 10:00\"},\n {\"ms\": 2}\n]").unwrap_err();
        assert!(
            e.to_string().starts_with("h.json:3:2: at [1]: missing field `at`"),
            "{e}"
        );
        // Keys with escapes and values with brackets in strings are walked past.
        let e = parse::<Vec<Timed>>(p, br#"[{"ms": 1, "x\"]": "[{", "at": 7}]"#).unwrap_err();
        assert!(e.to_string().starts_with("h.json:1:32: at [0].at: invalid type"), "{e}");
    }

    #[test]
    fn empty_files_and_git_lfs_pointers_are_named_for_what_they_are() {
        let p = Path::new("h.json");
        assert_eq!(
            parse::<Vec<Row>>(p, b"").unwrap_err().to_string(),
            "h.json: the file is empty (0 bytes): there is nothing to read"
        );
        assert_eq!(
            parse::<Vec<Row>>(p, b" \n").unwrap_err().to_string(),
            "h.json: the file is empty (2 bytes of white space): there is nothing to read"
        );
        let pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
        assert_eq!(
            parse::<Vec<Row>>(p, pointer).unwrap_err().to_string(),
            "h.json: this is a Git LFS pointer (to 12345 bytes of content kept in Git LFS), not the file itself: fetch the file (git lfs pull) and read that"
        );
        // A byte order mark is no reason to refuse a file.
        assert_eq!(parse::<Vec<u64>>(p, b"\xEF\xBB\xBF[1, 2]").unwrap(), [1, 2]);
    }
}
