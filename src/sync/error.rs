//! The one error type of the sync front end: a message tied to a place in a sync file, printed as
//! `file:line:col: message` so editors and terminals can jump to it.

use std::fmt;

/// A problem found while reading, parsing or checking sync files.
///
/// `line` and `col` are 1-based (columns count characters, not bytes). A `line` of 0 means the
/// problem concerns the whole file (it could not be read, say); such an error prints as
/// `file: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl SyncError {
    pub fn new(file: impl Into<String>, line: u32, col: u32, message: impl Into<String>) -> Self {
        SyncError {
            file: file.into(),
            line,
            col,
            message: message.into(),
        }
    }

    /// An error about a whole file (or directory) rather than a place in it.
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        SyncError::new(file, 0, 0, message)
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
        }
    }
}

impl std::error::Error for SyncError {}

/// Several [`SyncError`]s as one error value (one per line when displayed), for callers that want
/// to propagate the whole list with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncErrors(pub Vec<SyncError>);

impl fmt::Display for SyncErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SyncErrors {}

impl From<Vec<SyncError>> for SyncErrors {
    fn from(errors: Vec<SyncError>) -> Self {
        SyncErrors(errors)
    }
}
