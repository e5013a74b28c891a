//! A `Library.xml` on disk: its modification time (the watermark), and the whole file read with
//! [`crate::library_xml`] through a buffered reader (memory holds the read, not the file), with
//! errors that name the file and the line:column of the problem.

use crate::library_xml::{self, Library};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Why a file gave no library.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{file}: cannot be read: {error}")]
    Unreadable { file: String, error: std::io::Error },
    #[error("{file}:{line}:{column}: {problem}")]
    Malformed {
        file: String,
        line: u64,
        column: u64,
        /// The parser's message (the keys leading to the place, and what is wrong there).
        problem: String,
    },
}

impl FileError {
    /// The code a failed read reports.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Unreadable { .. } => "FILE_UNREADABLE",
            FileError::Malformed { .. } => "MALFORMED_LIBRARY",
        }
    }
}

fn unreadable(path: &Path, error: std::io::Error) -> FileError {
    FileError::Unreadable {
        file: path.display().to_string(),
        error,
    }
}

/// The file's modification time as the watermark's text (RFC 3339, nanoseconds, UTC).
pub fn modified(path: &Path) -> Result<String, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
    let time = meta.modified().map_err(|e| unreadable(path, e))?;
    Ok(DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// The file's size in bytes.
pub fn size(path: &Path) -> Result<u64, FileError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| unreadable(path, e))
}

/// Reads the whole file; `progress` gets the bytes read and the tracks read now and then.
pub fn read(path: &Path, progress: library_xml::Progress<'_>) -> Result<Library, FileError> {
    let file = File::open(path).map_err(|e| unreadable(path, e))?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    library_xml::parse(reader, progress).map_err(|e| {
        let (line, column) = match e.offset {
            Some(offset) => place(path, offset).unwrap_or((0, 0)),
            None => (0, 0),
        };
        FileError::Malformed {
            file: path.display().to_string(),
            line,
            column,
            problem: e.to_string(),
        }
    })
}

/// The line:column of a byte offset in the file (read again, in pieces, up to the offset).
fn place(path: &Path, offset: u64) -> std::io::Result<(u64, u64)> {
    let mut reader = BufReader::new(File::open(path)?).take(offset);
    let (mut line, mut current) = (1u64, Vec::new());
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        for &b in buf {
            if b == b'\n' {
                line += 1;
                current.clear();
            } else if current.len() < 1 << 20 {
                current.push(b);
            }
        }
        reader.consume(n);
    }
    let column = String::from_utf8_lossy(&current).chars().count() as u64 + 1;
    Ok((line, column))
}
