//! "Ours": LibraryCache itself — the real [`SledStore`] (or, with [`OursBackend::on_postgres`],
//! the real [`PgStore`] on a PostgreSQL server) and [`Engine`] with the standard concepts
//! and (by default) the repository's `syncs/`, exactly as `librarycache serve` builds them, minus
//! HTTP (see [`crate::http`] for that).
//!
//! On PostgreSQL each cache directory holds only a file naming the schema the cache lives in
//! (`pg-schema`), so reopening a directory reaches the same data, as on sled.
//!
//! Every update starts from the raw POST bytes, handed to `Engine::invoke` as they are (as the
//! server's handler does), which decodes them once into the typed input, decides, commits,
//! runs the syncs and waits for the durable flush (an `fdatasync`) before answering; the answer is
//! serialised as the server sends it. Queries go through `Engine::query_output` with the body's
//! bytes, as the server's do, and answer the JSON text a client receives. The request path
//! `/api/liked` runs `Requesting.request` as the server's handler does and answers the arguments
//! of the flow's `Requesting.respond`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use concept_core::ActionError;
use librarycache::engine::{Engine, Registry, SyncSet};
use librarycache::store::{PgStore, SledStore, Store};
use serde_json::Value;

use crate::cache::{Cache, Query, Reader};
use crate::error::BenchError;

const CONCEPT: &str = "LibraryCache";
const NAME: &str = "ours";
/// How long [`OursBackend::wait_closed`] waits for sled to let go of a store.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Opens [`OursCache`]s: a sled store in a directory and an engine over it.
#[derive(Debug, Clone)]
pub struct OursBackend {
    syncs: Option<PathBuf>,
    /// The PostgreSQL server to keep the caches on (`None`: sled).
    postgres: Option<String>,
}

/// The prefix of the schemas the bench creates on PostgreSQL.
pub const PG_SCHEMA_PREFIX: &str = "lcbench_";

impl Default for OursBackend {
    fn default() -> Self {
        OursBackend::new()
    }
}

impl OursBackend {
    /// The engine as `serve` runs it: the repository's default `syncs/` are loaded (and checked).
    pub fn new() -> OursBackend {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("syncs");
        OursBackend {
            syncs: dir.is_dir().then_some(dir),
            postgres: None,
        }
    }

    /// An engine firing the syncs of `dir` (`None`: no syncs).
    pub fn with_syncs(dir: Option<PathBuf>) -> OursBackend {
        OursBackend {
            syncs: dir,
            postgres: None,
        }
    }

    /// The same engine on PostgreSQL: each cache in its own schema on the server at `url`.
    pub fn on_postgres(mut self, url: &str) -> OursBackend {
        self.postgres = Some(url.to_owned());
        self
    }

    /// The PostgreSQL server the caches are kept on, if not sled.
    pub fn postgres(&self) -> Option<&str> {
        self.postgres.as_deref()
    }

    /// The sync directory the engines load, if any.
    pub fn syncs(&self) -> Option<&Path> {
        self.syncs.as_deref()
    }

    /// Opens the store in `dir` (creating it) and builds the engine over it.
    pub fn open_cache(&self, dir: &Path) -> Result<OursCache, BenchError> {
        std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
        let (store, pg): (Arc<dyn Store>, Option<Arc<PgStore>>) = match &self.postgres {
            None => (Arc::new(SledStore::open(dir).map_err(backend_error)?), None),
            Some(url) => {
                let marker = dir.join("pg-schema");
                let schema = match std::fs::read_to_string(&marker) {
                    Ok(name) => name.trim().to_owned(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let name = format!("{PG_SCHEMA_PREFIX}{}", uuid_like(dir));
                        std::fs::write(&marker, &name).map_err(BenchError::io("write", &marker))?;
                        name
                    }
                    Err(e) => return Err(BenchError::io("read", &marker)(e)),
                };
                let store_url = PgStore::schema_url(url, &schema).map_err(backend_error)?;
                let store = Arc::new(PgStore::open(&store_url).map_err(backend_error)?);
                (store.clone(), Some(store))
            }
        };
        // One registry: its specs check the syncs, and it is the engine's (building it twice
        // was a measurable part of a cold open).
        let registry = Registry::standard();
        let specs = self.syncs.as_ref().map(|_| registry.specs());
        let mut engine = Engine::new(store, registry);
        if let (Some(syncs), Some(specs)) = (&self.syncs, &specs) {
            let files = librarycache::sync::load_checked(syncs, specs).map_err(|problems| {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                BenchError::Backend {
                    cache: NAME.to_owned(),
                    source: format!("the syncs in {} do not load: {}", syncs.display(), text.join("; ")).into(),
                }
            })?;
            engine = engine.with_syncs(SyncSet::new(files));
        }
        Ok(OursCache {
            engine: Arc::new(engine),
            dir: dir.to_path_buf(),
            pg,
        })
    }
}

impl OursBackend {
    /// sled releases its directory from background threads a moment after the last handle is
    /// dropped; until then the store can neither be reopened (its file lock) nor safely deleted.
    /// Waits until the lock on `dir/db` can be taken (and releases it again).
    pub fn wait_closed(&self, dir: &Path) -> Result<(), BenchError> {
        use fs2::FileExt;
        let path = dir.join("db");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BenchError::io("open", &path)(e)),
        };
        let start = Instant::now();
        loop {
            match FileExt::try_lock_exclusive(&file) {
                Ok(()) => {
                    FileExt::unlock(&file).map_err(BenchError::io("unlock", &path))?;
                    return Ok(());
                }
                Err(_) if start.elapsed() < CLOSE_WAIT => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(BenchError::io("wait for sled to release", &path)(e)),
            }
        }
    }
}

/// LibraryCache on one store.
pub struct OursCache {
    engine: Arc<Engine>,
    dir: PathBuf,
    /// The PostgreSQL store, when the cache is on one (for its size).
    pg: Option<Arc<PgStore>>,
}

/// Queries on a LibraryCache engine (the cache's own, or shared with a reader thread).
#[derive(Clone)]
pub struct OursReader {
    engine: Arc<Engine>,
}

impl OursCache {
    /// The engine (shared with the HTTP server in the HTTP measurements).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Runs `action` on the request body `body` as the server's handler does (the bytes handed to
    /// the engine as they are); the answer, serialised as the server sends it, comes back only once
    /// the flow is durable.
    fn action(&self, action: &str, body: &Bytes) -> Result<Bytes, BenchError> {
        let answer = self
            .engine
            .invoke(CONCEPT, action, concept_core::Input::Json(body.clone()));
        if let Some(e) = answer.flow_error {
            return Err(backend_error(e));
        }
        match answer.result {
            Ok(output) => Ok(Bytes::from(serde_json::to_vec(&output)?)),
            Err(e) => Err(match serde_json::from_slice::<Value>(body) {
                // Text that is not JSON: the same error the baseline's parse gives.
                Err(syntax) if e.code == "MALFORMED_JSON" => BenchError::Json(syntax),
                parsed => {
                    let user = parsed.unwrap_or_default();
                    refusal(e, user["userId"].as_str().unwrap_or_default())
                }
            }),
        }
    }
}

impl OursReader {
    /// A query as the server runs it: the body handed over as it is, the answer the JSON text the
    /// query wrote.
    fn concept_query(&self, query: &str, body: &Bytes) -> Result<Bytes, BenchError> {
        self.engine
            .query_output(CONCEPT, query, concept_core::Input::Json(body.clone()))
            .and_then(concept_core::Output::into_bytes)
            .map_err(|e| refusal(e, &subject(body)))
    }

    /// A request path answered by the syncs, as the server's handler runs it: the body parsed, its
    /// path added, `Requesting.request` invoked (the flow runs the syncs and is flushed), and the
    /// arguments of the flow's `Requesting.respond` serialised as the answer.
    fn request(&self, path: &str, body: &Bytes) -> Result<Bytes, BenchError> {
        let Value::Object(mut fields) = serde_json::from_slice::<Value>(body)? else {
            return Err(backend_error(ActionError::invalid(
                "MALFORMED_JSON",
                "the request body must be a JSON object",
            )));
        };
        fields.insert("path".into(), Value::String(path.to_owned()));
        let answer = self.engine.invoke("Requesting", "request", Value::Object(fields));
        if let Some(e) = answer.flow_error {
            return Err(backend_error(e));
        }
        let request = answer.result.as_ref().map_err(|e| backend_error(e.clone()))?;
        let respond = answer.cascade().iter().find(|c| {
            c.concept == "Requesting"
                && c.action == "respond"
                && !c.failed
                && c.input.get("request") == request.get("request")
        });
        let Some(respond) = respond else {
            return Err(backend_error(ActionError::not_found(
                "UNANSWERED",
                format!("no sync answered the request {path}"),
            )));
        };
        let (status, answer) = requesting::response_of(&respond.input);
        match (status, answer.get("code").and_then(Value::as_str)) {
            (200, _) => Ok(Bytes::from(serde_json::to_vec(&answer)?)),
            (_, Some("USER_NOT_FOUND")) => Err(BenchError::UnknownUser(subject(body))),
            _ => Err(backend_error(ActionError::internal(format!(
                "{path} answered {status}: {}",
                answer.to_value()
            )))),
        }
    }
}

impl Reader for OursReader {
    fn query(&mut self, query: Query, body: &Bytes) -> Result<Bytes, BenchError> {
        match query {
            Query::LikedRequest => self.request(query.name(), body),
            _ => self.concept_query(query.name(), body),
        }
    }
}

impl Reader for OursCache {
    fn query(&mut self, query: Query, body: &Bytes) -> Result<Bytes, BenchError> {
        OursReader {
            engine: Arc::clone(&self.engine),
        }
        .query(query, body)
    }
}

impl Cache for OursCache {
    fn ingest(&mut self, body: &Bytes) -> Result<Bytes, BenchError> {
        self.action("ingest", body)
    }

    fn sync(&mut self, body: &Bytes) -> Result<Bytes, BenchError> {
        self.action("sync", body)
    }

    fn merge(&mut self, body: &Bytes) -> Result<Bytes, BenchError> {
        self.action("merge", body)
    }

    fn bytes_on_disk(&self) -> Result<u64, BenchError> {
        match &self.pg {
            Some(pg) => pg.bytes_on_disk().map_err(backend_error),
            None => dir_size(&self.dir),
        }
    }

    fn rebuild(&mut self) -> Result<Option<u64>, BenchError> {
        self.engine.rebuild().map(Some).map_err(backend_error)
    }

    fn reader(&self) -> Result<Box<dyn Reader>, BenchError> {
        Ok(Box::new(OursReader {
            engine: Arc::clone(&self.engine),
        }))
    }

    fn engine(&self) -> Option<&Arc<Engine>> {
        Some(&self.engine)
    }
}

/// The user or playlist a request body names (for an error message).
fn subject(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    ["userId", "playlistId"]
        .iter()
        .find_map(|f| value.get(f).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// A refusal as the bench's error: the refusals the runner expects get their own variants.
fn refusal(e: ActionError, subject: &str) -> BenchError {
    match e.code.as_str() {
        "ALREADY_INGESTED" => BenchError::AlreadyIngested(subject.to_owned()),
        "USER_NOT_FOUND" => BenchError::UnknownUser(subject.to_owned()),
        "PLAYLIST_NOT_FOUND" => BenchError::UnknownPlaylist(subject.to_owned()),
        _ => backend_error(e),
    }
}

fn backend_error(e: impl std::error::Error + Send + Sync + 'static) -> BenchError {
    BenchError::Backend {
        cache: NAME.to_owned(),
        source: Box::new(e),
    }
}

/// A schema-name suffix unique to this directory and this moment (digits and letters only).
fn uuid_like(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    std::process::id().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> Result<u64, BenchError> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir).map_err(BenchError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(BenchError::io("list", dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(BenchError::io("stat", &path))?;
        total += if meta.is_dir() { dir_size(&path)? } else { meta.len() };
    }
    Ok(total)
}
