//! The key the sources seal their credentials with, as `main` finds it (the concepts never read
//! files or the environment): `--secrets-key-file FILE` (64 hexadecimal digits), else the
//! environment variable `LIBRARYCACHE_SECRETS_KEY` (the digits themselves), else
//! `{data}/secrets.key`, generated on first start with mode 0600. Also `rotate-key`.

use source_kit::KeyError;
use source_kit::SecretKey;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file generated in the data directory when no key is given.
pub const KEY_FILE: &str = "secrets.key";
/// The environment variable that may hold the key itself.
pub const KEY_ENV: &str = "LIBRARYCACHE_SECRETS_KEY";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the secrets key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the secrets key file {path}: {error}")]
    Malformed { path: String, error: KeyError },
    #[error("{KEY_ENV}: {0}")]
    Env(KeyError),
    #[error("cannot write a new secrets key to {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Where the key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file (`--secrets-key-file`, or the one in the data directory).
    File(PathBuf),
    /// Generated now into this file (the data directory's, on first start).
    Generated(PathBuf),
    /// `LIBRARYCACHE_SECRETS_KEY`.
    Env,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "{}", p.display()),
            KeySource::Generated(p) => write!(f, "{} (generated now)", p.display()),
            KeySource::Env => f.write_str(KEY_ENV),
        }
    }
}

impl KeySource {
    /// The key's file, when it has one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            KeySource::File(p) | KeySource::Generated(p) => Some(p),
            KeySource::Env => None,
        }
    }
}

/// The key: from `file` when given (it must exist: a configured key that vanished is never
/// silently replaced), else from `env_key`, else `{data}/secrets.key` (generated when missing).
pub fn load(file: Option<&Path>, env_key: Option<&str>, data: &Path) -> Result<(SecretKey, KeySource), KeyFileError> {
    if let Some(file) = file {
        return Ok((read(file)?, KeySource::File(file.to_path_buf())));
    }
    if let Some(text) = env_key.filter(|t| !t.trim().is_empty()) {
        return Ok((SecretKey::parse(text).map_err(KeyFileError::Env)?, KeySource::Env));
    }
    let path = data.join(KEY_FILE);
    if path.exists() {
        return Ok((read(&path)?, KeySource::File(path)));
    }
    let key = SecretKey::generate();
    match write_new(&path, &key) {
        Ok(()) => Ok((key, KeySource::Generated(path))),
        // Another process starting beside this one (instances sharing a PostgreSQL store and
        // a data directory) wrote it first: use that one.
        Err(KeyFileError::Write { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((read(&path)?, KeySource::File(path)))
        }
        Err(e) => Err(e),
    }
}

/// Reads a key file (64 hexadecimal digits). Warns when others than its owner may read it.
pub fn read(path: &Path) -> Result<SecretKey, KeyFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: shown.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(file = %shown, mode = format!("{mode:o}"), "the secrets key file may be read by others than its owner: chmod 600 it");
            }
        }
    }
    SecretKey::parse(&text).map_err(|error| KeyFileError::Malformed { path: shown, error })
}

/// Writes `key` to a new file `path` (never over an existing one: `AlreadyExists` then),
/// readable by its owner only (mode 0600), synced to disk with its directory. The key is
/// written whole to a file of its own first and then linked in, so a process reading `path`
/// meanwhile finds either no file or the whole key.
pub fn write_new(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let shown = path.display().to_string();
    let fail = |source| KeyFileError::Write {
        path: shown.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    if path.exists() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a key file is already there",
        )));
    }
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let temporary = PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    written.map_err(fail)?;
    sync_dir(path).map_err(fail)?;
    Ok(())
}

/// Replaces `to` with `from` (a rename: either the old or the new file is there, whole).
pub fn replace(from: &Path, to: &Path) -> Result<(), KeyFileError> {
    std::fs::rename(from, to).map_err(|source| KeyFileError::Write {
        path: to.display().to_string(),
        source,
    })?;
    sync_dir(to).map_err(|source| KeyFileError::Write {
        path: to.display().to_string(),
        source,
    })
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_generated_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (key, source) = load(None, None, &data).expect("generated");
        assert_eq!(source, KeySource::Generated(data.join(KEY_FILE)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(KEY_FILE))
                .expect("file")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (again, source) = load(None, None, &data).expect("read");
        assert_eq!(again.id(), key.id());
        assert_eq!(source, KeySource::File(data.join(KEY_FILE)));
        // The environment's key wins over the data directory's; a file given wins over both.
        let other = SecretKey::generate();
        let (env, source) = load(None, Some(&other.to_hex()), &data).expect("env");
        assert_eq!((env.id(), source), (other.id(), KeySource::Env));
        let (file, _) = load(Some(&data.join(KEY_FILE)), Some(&other.to_hex()), &data).expect("file");
        assert_eq!(file.id(), key.id());
    }

    #[test]
    fn processes_starting_together_end_with_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("shared");
        let ids: Vec<String> = (0..8)
            .map(|_| {
                let data = data.clone();
                std::thread::spawn(move || load(None, None, &data).expect("a key").0.id().to_string())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
        let left: Vec<_> = std::fs::read_dir(&data)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(KEY_FILE)], "no temporary file left");
    }

    #[test]
    fn a_missing_or_malformed_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.key");
        let e = load(Some(&missing), None, dir.path()).expect_err("missing").to_string();
        assert!(e.contains("nope.key"), "{e}");
        std::fs::write(dir.path().join("bad.key"), "not a key").expect("write");
        let e = load(Some(&dir.path().join("bad.key")), None, dir.path())
            .expect_err("malformed")
            .to_string();
        assert!(e.contains("bad.key") && e.contains("64 hexadecimal digits"), "{e}");
        let e = load(None, Some("xyz"), dir.path()).expect_err("env").to_string();
        assert!(e.starts_with(KEY_ENV), "{e}");
        assert!(
            write_new(&dir.path().join("bad.key"), &SecretKey::generate()).is_err(),
            "never over a file"
        );
    }
}
