//! Reading a JSON data file named on the command line: its bytes (counted on a progress bar when
//! one is given) and its parse into a typed value, with errors that name the file, the line and
//! column, and the field path (`playlists[2].items[7].track.trackUri`) where the parse stopped.

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

/// Parses `bytes` (the contents of `path`) as a `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, JsonFileError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        positioned(path, field, e.into_inner())
    })?;
    de.end().map_err(|e| positioned(path, String::new(), e))?;
    Ok(value)
}

fn positioned(path: &Path, field: String, e: serde_json::Error) -> JsonFileError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
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
            "h.json:2:11: at [1].ms: invalid type: string \"x\", expected u64"
        );
        let e = parse::<Vec<Row>>(p, b"[{\"ms\": 1},\n {\"ms\" 2}]").unwrap_err();
        assert!(
            e.to_string().starts_with("h.json:2:8: not valid JSON: expected `:`"),
            "{e}"
        );
        let e = parse::<Vec<Row>>(p, b"[] x").unwrap_err();
        assert!(e.to_string().starts_with("h.json:1:4: not valid JSON: trailing"), "{e}");
    }
}
