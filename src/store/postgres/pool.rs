//! Connections of the PostgreSQL store: a small pool of synchronous `postgres` clients, each
//! with the store's statements prepared once.
//!
//! The `postgres` crate drives its connection on a runtime of its own and blocks the calling
//! thread; the store is only ever called from plain or blocking-pool threads (the server runs
//! all store work under `spawn_blocking`), never on an async worker.

use super::fault;
use crate::store::StoreError;
use postgres::{Client, NoTls, Statement};
use std::sync::Mutex;

/// How many idle connections the pool keeps.
const MAX_IDLE: usize = 32;

/// The statements every connection prepares.
pub(super) struct Stmts {
    pub lock_global: Statement,
    pub read_global: Statement,
    pub get_proj: Statement,
    pub scan_proj: Statement,
    pub scan_proj_open: Statement,
    pub head: Statement,
    pub stream_events: Statement,
    pub read_log: Statement,
    pub guards_exist: Statement,
    pub insert_log: Statement,
    pub upsert_heads: Statement,
    pub upsert_proj: Statement,
    pub delete_proj: Statement,
    pub upsert_checkpoint: Statement,
    pub insert_record: Statement,
    pub insert_guards: Statement,
    pub update_global: Statement,
    pub action: Statement,
    pub flow: Statement,
    pub engine_row: Statement,
}

const EVENT_COLUMNS: &str = "seq, concept, stream, version, kind, action, at_micros, data";

impl Stmts {
    fn prepare(client: &mut Client) -> Result<Self, postgres::Error> {
        let mut p = |sql: &str| client.prepare(sql);
        Ok(Stmts {
            lock_global: p("SELECT last_seq, last_action FROM lc_global WHERE id = 1 FOR UPDATE")?,
            read_global: p("SELECT last_seq, last_action FROM lc_global WHERE id = 1")?,
            get_proj: p("SELECT value FROM lc_proj WHERE key = $1")?,
            scan_proj: p("SELECT key, value FROM lc_proj WHERE key >= $1 AND key < $2 ORDER BY key")?,
            scan_proj_open: p("SELECT key, value FROM lc_proj WHERE key >= $1 ORDER BY key")?,
            head: p("SELECT version FROM lc_head WHERE concept = $1 AND stream = $2")?,
            stream_events: p(&format!(
                "SELECT {EVENT_COLUMNS} FROM lc_log WHERE concept = $1 AND stream = $2 AND version > $3 \
                 ORDER BY version LIMIT $4"
            ))?,
            read_log: p(&format!(
                "SELECT {EVENT_COLUMNS} FROM lc_log WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))?,
            guards_exist: p("SELECT key FROM lc_guard WHERE key = ANY($1::bytea[])")?,
            insert_log: p(&format!(
                "INSERT INTO lc_log ({EVENT_COLUMNS}) SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], \
                 $4::int8[], $5::text[], $6::int8[], $7::int8[], $8::bytea[])"
            ))?,
            upsert_heads: p("INSERT INTO lc_head (concept, stream, version) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
                 ON CONFLICT (concept, stream) DO UPDATE SET version = EXCLUDED.version")?,
            upsert_proj: p(
                "INSERT INTO lc_proj (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            delete_proj: p("DELETE FROM lc_proj WHERE key = ANY($1::bytea[])")?,
            upsert_checkpoint: p(
                "INSERT INTO lc_checkpoint (concept, seq) SELECT * FROM unnest($1::text[], $2::int8[]) \
                 ON CONFLICT (concept) DO UPDATE SET seq = EXCLUDED.seq",
            )?,
            insert_record: p("INSERT INTO lc_record (id, flow, at_micros, body) \
                 SELECT * FROM unnest($1::int8[], $2::uuid[], $3::int8[], $4::bytea[])")?,
            insert_guards: p("INSERT INTO lc_guard (key, value, largest) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int8[])")?,
            update_global: p("UPDATE lc_global SET last_seq = $1, last_action = $2 WHERE id = 1")?,
            action: p("SELECT body FROM lc_record WHERE id = $1")?,
            flow: p("SELECT body FROM lc_record WHERE flow = $1 ORDER BY id")?,
            engine_row: p("SELECT value FROM lc_guard WHERE key = $1")?,
        })
    }
}

/// One connection and its prepared statements.
pub(super) struct Conn {
    pub client: Client,
    pub st: Stmts,
}

/// A pool of connections to one database (and schema, through the URL's `options`).
pub(super) struct Pool {
    config: postgres::Config,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(config: postgres::Config) -> Self {
        Pool {
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A new connection, without prepared statements (to create the schema first).
    pub fn connect_raw(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(fault)
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => {
                let mut client = self.connect_raw()?;
                let st = Stmts::prepare(&mut client).map_err(fault)?;
                Conn { client, st }
            }
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
        })
    }
}

/// A connection lent by the pool; it goes back when dropped (unless it broke).
pub(super) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl Pooled<'_> {
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }

    /// Drops the connection instead of returning it (after an error that may have left it in a
    /// transaction).
    pub fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.client.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
            }
        }
    }
}
