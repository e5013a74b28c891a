//! The source concepts' settings on the command line: how often a read is full and how long a
//! rate limit is waited out (every source's), and where each service is. [`SourceArgs::sources`]
//! turns them into the [`Sources`] the app's registry is built with, each value checked and a
//! bad one named by its flag.

use crate::app::Sources;
use crate::store::Retention;
use chrono::Duration;

/// What every source's reads share.
#[derive(clap::Args, Clone)]
pub struct ReadArgs {
    /// How old the last full read may be before the next read is full again (e.g. 24h, 7d):
    /// increments cannot see removals. Every source's.
    #[arg(long, env = "LIBRARYCACHE_FULL_EVERY", default_value = "24h")]
    pub full_every: String,
    /// The longest rate-limit wait (429 Retry-After, Last.fm error 29) a read of any source
    /// waits out itself (e.g. 60s, 2m; 0s: none); a longer one ends the read with retryAt and
    /// a checkpoint it resumes from at retryAt.
    #[arg(long, env = "LIBRARYCACHE_RATE_LIMIT_WAIT", default_value = "60s")]
    pub rate_limit_wait: String,
}

impl ReadArgs {
    /// `--full-every`.
    pub fn full_every(&self) -> Result<Duration, String> {
        age("--full-every", &self.full_every)
    }

    /// `--rate-limit-wait`.
    pub fn max_wait(&self) -> Result<std::time::Duration, String> {
        age("--rate-limit-wait", &self.rate_limit_wait)?
            .to_std()
            .map_err(|_| format!("--rate-limit-wait: {:?} is not a wait", self.rate_limit_wait))
    }
}

/// An AGE given with `flag`.
fn age(flag: &str, text: &str) -> Result<Duration, String> {
    Retention::parse_age(text).map_err(|e| format!("{flag}: {e}"))
}

/// A service's base URL given with `flag` must be http(s).
fn http_url(flag: &str, url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_string())
    } else {
        Err(format!("{flag}: {url:?} is not an http:// or https:// URL"))
    }
}

/// Where Spotify is.
#[derive(clap::Args, Clone)]
pub struct SpotifyArgs {
    /// Base URL of the Spotify Web API (point it at a proxy or a test server).
    #[arg(long, env = "LIBRARYCACHE_SPOTIFY_API_BASE", default_value = spotify_source::DEFAULT_API_BASE)]
    pub spotify_api_base: String,
    /// Base URL of the Spotify accounts service (its token endpoint is {base}/api/token).
    #[arg(long, env = "LIBRARYCACHE_SPOTIFY_ACCOUNTS_BASE", default_value = spotify_source::DEFAULT_ACCOUNTS_BASE)]
    pub spotify_accounts_base: String,
}

impl SpotifyArgs {
    pub fn settings(&self, read: &ReadArgs) -> Result<spotify_source::Settings, String> {
        Ok(spotify_source::Settings {
            api_base: http_url("--spotify-api-base", &self.spotify_api_base)?,
            accounts_base: http_url("--spotify-accounts-base", &self.spotify_accounts_base)?,
            full_every: read.full_every()?,
            max_wait: read.max_wait()?,
            ..spotify_source::Settings::default()
        })
    }
}

/// How PlexSource reads Plex servers (each user's server and token are given to
/// `PlexSource.connect`).
#[derive(clap::Args, Clone)]
pub struct PlexArgs {
    /// A Plex track rated at least this many stars (0.5 to 5, in halves) is a like.
    #[arg(long, env = "LIBRARYCACHE_PLEX_LIKE_STARS", default_value_t = 4.0)]
    pub plex_like_stars: f64,
    /// Items asked for per page from a Plex server (X-Plex-Container-Size).
    #[arg(long, env = "LIBRARYCACHE_PLEX_PAGE_SIZE", default_value_t = plex_source::DEFAULT_PAGE_SIZE)]
    pub plex_page_size: u64,
}

impl PlexArgs {
    pub fn settings(&self, read: &ReadArgs) -> Result<plex_source::Settings, String> {
        let like_rating =
            plex_source::Settings::like_stars(self.plex_like_stars).map_err(|e| format!("--plex-like-stars: {e}"))?;
        if !(1..=plex_source::MAX_PAGE_SIZE).contains(&self.plex_page_size) {
            return Err(format!(
                "--plex-page-size: {} is not from 1 to {}",
                self.plex_page_size,
                plex_source::MAX_PAGE_SIZE
            ));
        }
        Ok(plex_source::Settings {
            like_rating,
            page_size: self.plex_page_size,
            full_every: read.full_every()?,
            max_wait: read.max_wait()?,
            ..plex_source::Settings::default()
        })
    }
}

/// Where Last.fm is (each user's name and API key are given to `LastfmSource.connect`).
#[derive(clap::Args, Clone)]
pub struct LastfmArgs {
    /// Base URL of the Last.fm API (calls go to {base}/?method=…; a proxy, or a test server).
    #[arg(long, env = "LIBRARYCACHE_LASTFM_API_BASE", default_value = lastfm_source::DEFAULT_API_BASE)]
    pub lastfm_api_base: String,
}

impl LastfmArgs {
    pub fn settings(&self, read: &ReadArgs) -> Result<lastfm_source::Settings, String> {
        Ok(lastfm_source::Settings {
            api_base: http_url("--lastfm-api-base", &self.lastfm_api_base)?,
            max_wait: read.max_wait()?,
            ..lastfm_source::Settings::default()
        })
    }
}

/// Where the Apple Music API is, and how often a connected Library.xml is looked at.
#[derive(clap::Args, Clone)]
pub struct AppleArgs {
    /// Base URL of the Apple Music API (a proxy, or a test server).
    #[arg(long, env = "LIBRARYCACHE_APPLE_MUSIC_API_BASE", default_value = apple_source::DEFAULT_API_BASE)]
    pub apple_music_api_base: String,
    /// How often each connected Library.xml (AppleLibraryFile) is looked at: the job
    /// `apple-library-watch` (the file is read only when its modification time moved), e.g. 1m;
    /// `off` cancels the job.
    #[arg(long, env = "LIBRARYCACHE_APPLE_LIBRARY_WATCH_EVERY", default_value = "1m")]
    pub apple_library_watch_every: String,
}

/// Every source's settings, for the commands that run the sources' background work.
#[derive(clap::Args, Clone)]
pub struct SourceArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub spotify: SpotifyArgs,
    #[command(flatten)]
    pub plex: PlexArgs,
    #[command(flatten)]
    pub lastfm: LastfmArgs,
    #[command(flatten)]
    pub apple: AppleArgs,
}

impl SourceArgs {
    /// The sources' settings, every one checked before `secrets` is asked for the key their
    /// credentials are sealed with (which may create a key file).
    pub fn sources(&self, secrets: impl FnOnce() -> Result<source_kit::Secrets, String>) -> Result<Sources, String> {
        let read = &self.read;
        let full_every = read.full_every()?;
        let apple_music = apple_source::Settings {
            api_base: http_url("--apple-music-api-base", &self.apple.apple_music_api_base)?,
            full_every,
            ..apple_source::Settings::default()
        };
        Ok(Sources {
            spotify: self.spotify.settings(read)?,
            plex: self.plex.settings(read)?,
            lastfm: self.lastfm.settings(read)?,
            apple_file: apple_library::Settings { full_every },
            apple_music,
            secrets: secrets()?,
        })
    }
}
