//! `librarycache stats`: a user's cached library and, for each source the user connected
//! (Spotify, Plex, Last.fm, Apple Music and the Apple library file: every concept answering
//! `_getFetch`), its last read.

use crate::app::App;
use crate::cli::args::LibraryArgs;
use crate::engine::Engine;
use serde_json::{json, Map, Value};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub library: LibraryArgs,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the stats of the user, as lines or as JSON.
pub fn exec(app: &App, args: Args) -> Result<std::process::ExitCode, String> {
    let engine = args.library.store.engine(app)?;
    let stats = read(&engine, &args.library.user)?;
    if args.json {
        println!("{}", stats.to_json());
    } else {
        println!("{}", stats.lines(&args.library.user).join("\n"));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The user's library status and each connected source's `_getFetch`, by concept name.
pub struct Stats {
    pub library: Value,
    pub sources: Map<String, Value>,
}

/// Reads the stats of `user` (refused when the user has no cached library and no source).
pub fn read(engine: &Engine, user: &str) -> Result<Stats, String> {
    let library = engine.query("LibraryCache", "_getStatus", json!({ "userId": user }));
    let mut sources = Map::new();
    for concept in engine.registry().sources() {
        // NOT_CONNECTED: the user never connected this source; it is left out.
        if let Ok(fetch) = engine.query(&concept, "_getFetch", json!({ "userId": user })) {
            sources.insert(concept, fetch);
        }
    }
    match library {
        Ok(library) => Ok(Stats { library, sources }),
        Err(_) if !sources.is_empty() => Ok(Stats {
            library: Value::Null,
            sources,
        }),
        Err(e) => Err(format!("{}: {}", e.code, e.message)),
    }
}

impl Stats {
    /// `{"library": …, "sources": {"SpotifySource": …}}` (library null before the first read).
    pub fn to_json(&self) -> Value {
        json!({ "library": self.library, "sources": self.sources })
    }

    /// The lines `stats` prints.
    pub fn lines(&self, user: &str) -> Vec<String> {
        let mut lines = vec![format!("user        {user}")];
        let status = &self.library;
        if status.is_null() {
            lines.push("library     none cached yet".into());
        } else {
            let n = |k: &str| status[k].as_u64().unwrap_or(0);
            let t = |k: &str| status[k].as_str().unwrap_or("").to_string();
            lines.push(format!("tracks      {}", n("tracks")));
            lines.push(format!("likes       {}", n("likes")));
            lines.push(format!("plays       {}", n("plays")));
            lines.push(format!("playlists   {}", n("playlists")));
            lines.push(format!("ingested    {}", t("ingestedAt")));
            let stale = if status["stale"] == true { " (stale)" } else { "" };
            lines.push(format!("last sync   {}{stale}", t("syncedAt")));
            lines.push(format!("version     {}", n("version")));
        }
        for (concept, fetch) in &self.sources {
            lines.push(describe_fetch(&label(concept), fetch));
        }
        lines
    }
}

/// `SpotifySource` → `spotify`, `AppleMusicSource` → `apple music`, `AppleLibraryFile` →
/// `apple file`.
fn label(concept: &str) -> String {
    match concept {
        "AppleMusicSource" => "apple music".to_string(),
        "AppleLibraryFile" => "apple file".to_string(),
        _ => concept.strip_suffix("Source").unwrap_or(concept).to_lowercase(),
    }
}

/// One line about a source's last read.
fn describe_fetch(label: &str, f: &Value) -> String {
    let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
    let name = format!("{label:<11} ");
    let mut line = match s("phase").as_str() {
        "idle" => format!("{name}connected, not read yet"),
        "done" => format!(
            "{name}last read {} ({}), {} likes, {} plays, {} playlists",
            s("finishedAt"),
            if f["complete"] == true {
                "complete"
            } else {
                "incremental"
            },
            f["counts"]["likes"],
            f["counts"]["plays"],
            f["counts"]["playlists"]
        ),
        "failed" => format!(
            "{name}last read failed {}: {} ({})",
            s("finishedAt"),
            s("error"),
            s("code")
        ),
        phase => format!("{name}reading: {phase} {}/{}", f["current"], f["total"]),
    };
    if !s("retryAt").is_empty() && f["phase"] == "failed" {
        line.push_str(&format!("; asked to wait until {}", s("retryAt")));
    }
    if f["needsReauth"] == true {
        line.push_str("; reconnect needed");
    }
    if f["connected"] == false {
        line.push_str("; not connected");
    }
    line
}
