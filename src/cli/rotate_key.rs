//! `librarycache rotate-key`: seals every source's stored credentials again with a new key, by
//! appending a `Resealed` event per connection (the system action `rekey` of each source, run
//! through the engine: recorded and durable like any action), then puts the new key in the old
//! one's place.
//!
//! Crash safety: the new key is written first (to `--new-key-file`, or `{key file}.next`), the
//! connections are resealed, and only then is the key file replaced (a rename). A run cut short
//! is run again: it finds the new key where it left it, opens what it had resealed with it and
//! what it had not with the old key, and finishes. Old events keep their old ciphertext (they
//! are history; a rebuild replays them and then the `Resealed` events), so after a rotation the
//! old key is no longer needed to read any source.

use super::secrets_key::{self, KeyFileError, KeySource};
use crate::app::Sources;
use crate::cli::args::{SecretsArgs, StoreArgs};
use crate::cli::setup;
use crate::engine::{Engine, Registry};
use crate::store::Store;
use serde_json::json;
use source_kit::{SecretKey, Secrets};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error(
        "the current key comes from {}: give --new-key-file FILE for the new one (and set the variable to it \
         afterwards)",
        secrets_key::KEY_ENV
    )]
    NoKeyFile,
    #[error("the new key {0} is the current key: nothing to rotate")]
    SameKey(String),
    #[error("{source_concept} of {user}: {error}")]
    Rekey {
        source_concept: String,
        user: String,
        error: String,
    },
    #[error("cannot list {0}'s connections: {1}")]
    List(String, String),
}

/// What a rotation did.
#[derive(Debug, Default)]
pub struct Report {
    pub old_key: String,
    pub new_key: String,
    /// Connections sealed again with the new key.
    pub resealed: u64,
    /// Connections already sealed with it (a run cut short, run again).
    pub current: u64,
    /// Connections no key opens (sealed with a key neither old nor new): left as they were;
    /// those users must connect again.
    pub unreadable: Vec<String>,
    /// Where the new key is now.
    pub key_file: PathBuf,
    /// Whether the new key replaced the old key's file.
    pub replaced: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "rotated the secrets key {} -> {}: {} connection(s) sealed again, {} already were",
            self.old_key, self.new_key, self.resealed, self.current
        )?;
        for u in &self.unreadable {
            writeln!(f, "  left as it was (no key opens it; connect again): {u}")?;
        }
        if self.replaced {
            write!(f, "the new key is in {}", self.key_file.display())
        } else {
            write!(
                f,
                "the new key is in {}: start serve with --secrets-key-file {} (or {} set to it)",
                self.key_file.display(),
                self.key_file.display(),
                secrets_key::KEY_ENV
            )
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// Write the new key here (or use the key already there) and leave the old key file
    /// alone; default: KEYFILE.next, which then replaces the key file.
    #[arg(long)]
    pub new_key_file: Option<PathBuf>,
}

/// Rotates the key the arguments name and prints the report.
pub fn exec(args: Args) -> Result<std::process::ExitCode, String> {
    let (current, source) = args.secrets.load(&args.store.key_dir())?;
    let store = setup::open(&args.store.spec())?;
    eprintln!("rotating the secrets key {} (from {source})", current.id());
    let report = run(store, current, &source, args.new_key_file.as_deref()).map_err(|e| e.to_string())?;
    println!("{report}");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Rotates from the key `current` (found at `source`) to the key in `new_file` (generated when
/// missing), or in `{key file}.next` which then replaces the key file.
pub fn run(
    store: Arc<dyn Store>,
    current: SecretKey,
    source: &KeySource,
    new_file: Option<&Path>,
) -> Result<Report, RotateError> {
    let (next_path, replace) = match (new_file, source.file()) {
        (Some(p), _) => (p.to_path_buf(), None),
        (None, Some(file)) => (with_suffix(file, ".next"), Some(file.to_path_buf())),
        (None, None) => return Err(RotateError::NoKeyFile),
    };
    let new = if next_path.exists() {
        secrets_key::read(&next_path)?
    } else {
        let key = SecretKey::generate();
        secrets_key::write_new(&next_path, &key)?;
        key
    };
    if new.id() == current.id() {
        return Err(RotateError::SameKey(new.id().to_string()));
    }
    let mut report = Report {
        old_key: current.id().to_string(),
        new_key: new.id().to_string(),
        ..Report::default()
    };
    let registry = Registry::configured(Sources {
        secrets: Secrets::new(new).with_previous(current),
        ..Sources::default()
    });
    let engine = Engine::new(store, registry);
    for concept in engine.registry().sources() {
        let users = engine
            .query(&concept, "_getConnections", json!({}))
            .map_err(|e| RotateError::List(concept.clone(), e.message))?;
        let users: Vec<String> = serde_json::from_value(users["userIds"].clone()).unwrap_or_default();
        for user in users {
            let answer = engine.raise(&concept, "rekey", json!({ "userId": user }), None);
            match answer.result {
                Ok(out) if out["resealed"] == true => report.resealed += 1,
                Ok(_) => report.current += 1,
                Err(e) if matches!(e.code.as_str(), "SECRETS_KEY_MISMATCH" | "SECRETS_UNREADABLE") => {
                    report.unreadable.push(format!("{concept} {user}: {}", e.message))
                }
                Err(e) => {
                    return Err(RotateError::Rekey {
                        source_concept: concept,
                        user,
                        error: format!("{}: {}", e.code, e.message),
                    })
                }
            }
        }
    }
    match replace {
        Some(file) => {
            secrets_key::replace(&next_path, &file)?;
            report.key_file = file;
            report.replaced = true;
        }
        None => report.key_file = next_path,
    }
    Ok(report)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
