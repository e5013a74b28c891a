//! A user's library as a JSON file: what `import` reads and `export` writes (the same shape,
//! so an export imports back to the same library): `{userId?, tracks?, likes?, plays?,
//! playlists?}` as LibraryCache's `ingest` takes it.

use super::json_file::{self, JsonFileError};
use crate::engine::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use std::path::Path;

/// What can go wrong reading, writing or applying a library file.
#[derive(Debug, thiserror::Error)]
pub enum LibraryFileError {
    #[error(transparent)]
    File(#[from] JsonFileError),
    #[error("{path}: a library file is a JSON object with tracks, likes, plays and/or playlists, not {found}")]
    NotALibrary { path: String, found: &'static str },
    #[error("{path}: its userId is {in_file:?}, but --user is {given:?}")]
    OtherUser {
        path: String,
        in_file: String,
        given: String,
    },
    #[error("{action} refused: {code}: {message}")]
    Refused {
        action: String,
        code: String,
        message: String,
    },
}

/// Reads a library file, with a progress bar on stderr for files over 8 MiB.
pub fn read(path: &Path, user: &str) -> Result<Value, LibraryFileError> {
    let shown = path.display().to_string();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bytes = if size > 8 * 1024 * 1024 {
        let bar = ProgressBar::new(size).with_style(
            ProgressStyle::with_template("reading {msg} {bar:40} {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(shown.clone());
        let bytes = json_file::read_bytes(path, Some(&bar))?;
        bar.finish_and_clear();
        bytes
    } else {
        json_file::read_bytes(path, None)?
    };
    let mut value: Value = json_file::parse(path, &bytes)?;
    let Some(object) = value.as_object_mut() else {
        return Err(LibraryFileError::NotALibrary {
            path: shown,
            found: kind_of(&value),
        });
    };
    match object.get("userId").and_then(Value::as_str) {
        Some(in_file) if in_file != user => {
            return Err(LibraryFileError::OtherUser {
                path: shown,
                in_file: in_file.to_string(),
                given: user.to_string(),
            })
        }
        _ => {
            object.insert("userId".into(), json!(user));
        }
    }
    Ok(value)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Ingests the library, or syncs it when the user already has one; returns the action and its
/// output.
pub fn import(engine: &Engine, library: Value) -> Result<(&'static str, Value), LibraryFileError> {
    let user = library["userId"].clone();
    let exists = engine
        .query("LibraryCache", "_getStatus", json!({ "userId": user }))
        .is_ok();
    let action = if exists { "sync" } else { "ingest" };
    let answer = engine.invoke("LibraryCache", action, library);
    match answer.result {
        Ok(out) => Ok((action, out)),
        Err(e) => Err(refused(&format!("LibraryCache.{action}"), e)),
    }
}

fn refused(action: &str, e: concept_core::ActionError) -> LibraryFileError {
    LibraryFileError::Refused {
        action: action.to_string(),
        code: e.code,
        message: e.message,
    }
}

/// The user's cached library in the shape `import` reads.
pub fn export(engine: &Engine, user: &str) -> Result<Value, LibraryFileError> {
    let q = |query: &str, input: Value| {
        engine
            .query("LibraryCache", query, input)
            .map_err(|e| refused(&format!("LibraryCache.{query}"), e))
    };
    let status = q("_getStatus", json!({ "userId": user }))?;
    let count = |k: &str| status[k].as_u64().unwrap_or(0);
    let tracks = q("_getTracks", json!({"userId": user, "limit": count("tracks")}))?["tracks"].take();
    let likes = q("_getLikes", json!({"userId": user, "limit": count("likes")}))?["likes"].take();
    let mut plays = q("_getPlays", json!({"userId": user, "limit": count("plays")}))?["plays"].take();
    // Oldest first reads more naturally in a file; order does not matter to import.
    if let Some(p) = plays.as_array_mut() {
        p.reverse();
    }
    let mut playlists = Vec::new();
    for summary in q("_getPlaylists", json!({ "userId": user }))?["playlists"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let mut p = q("_getPlaylist", json!({"playlistId": summary["id"]}))?;
        if let Some(o) = p.as_object_mut() {
            o.remove("playlistId");
        }
        playlists.push(p);
    }
    let mut out = Map::new();
    out.insert("userId".into(), json!(user));
    out.insert("tracks".into(), tracks);
    out.insert("likes".into(), likes);
    out.insert("plays".into(), plays);
    out.insert("playlists".into(), Value::Array(playlists));
    Ok(Value::Object(out))
}
