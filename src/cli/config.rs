//! The optional configuration file, `librarycache.toml` (or `--config FILE`): the same settings
//! as `serve`'s flags, in kebab-case. Precedence: flags, then environment variables, then this
//! file, then the defaults. Unknown keys and wrong types are errors naming the key.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The name looked for in the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "librarycache.toml";

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    /// A `postgres://` URL or a sled directory (as `--store`).
    pub store: Option<String>,
    pub addr: Option<SocketAddr>,
    pub syncs: Option<PathBuf>,
    /// A directory of external concept declarations (as `--concepts`).
    pub concepts: Option<PathBuf>,
    pub token: Option<String>,
    pub expose: Option<String>,
    pub body_limit: Option<usize>,
    pub request_timeout: Option<u64>,
    pub log_retention: Option<String>,
    pub log_max_actions: Option<u64>,
    pub trace: Option<bool>,
    pub cache_size: Option<u64>,
    pub spotify_api_base: Option<String>,
    pub spotify_accounts_base: Option<String>,
    pub full_every: Option<String>,
    pub rate_limit_wait: Option<String>,
    pub plex_like_stars: Option<f64>,
    pub plex_page_size: Option<u64>,
    pub lastfm_api_base: Option<String>,
    pub apple_music_api_base: Option<String>,
    pub apple_library_watch_every: Option<String>,
    pub refresh_every: Option<String>,
    pub insecure_no_token: Option<bool>,
    pub allowed_hosts: Option<String>,
    pub allow_origin: Option<String>,
    pub secrets_key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Reads `explicit`, or `librarycache.toml` in the working directory if it exists (an empty
/// configuration otherwise). A file named explicitly must exist.
pub fn load(explicit: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(FileConfig::default()),
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&shown, &text)
}

pub fn parse(path: &str, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_string(),
        message: e.to_string().trim().replace('\n', " "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_and_names_bad_keys() {
        let c = parse("c.toml", "addr = \"127.0.0.1:9000\"\nbody-limit = 1000\ntrace = true\n").expect("parses");
        assert_eq!(c.addr, Some("127.0.0.1:9000".parse().expect("addr")));
        assert_eq!(c.body_limit, Some(1000));
        assert_eq!(c.trace, Some(true));
        let c = parse(
            "c.toml",
            "allowed-hosts = \"music.example\"\nallow-origin = \"https://app.example\"\ninsecure-no-token = true\nsecrets-key-file = \"/etc/lc.key\"\n",
        )
        .expect("parses");
        assert_eq!(c.allowed_hosts.as_deref(), Some("music.example"));
        assert_eq!(c.allow_origin.as_deref(), Some("https://app.example"));
        assert_eq!(c.insecure_no_token, Some(true));
        assert_eq!(c.secrets_key_file, Some(PathBuf::from("/etc/lc.key")));
        let e = parse("c.toml", "adress = \"x\"").expect_err("unknown key").to_string();
        assert!(e.starts_with("c.toml: ") && e.contains("adress"), "{e}");
        let e = parse("c.toml", "body-limit = \"big\"")
            .expect_err("wrong type")
            .to_string();
        assert!(e.contains("body-limit") || e.contains("invalid type"), "{e}");
    }
}
