//! Connections of the PostgreSQL store: a bounded pool of synchronous `postgres` clients, each
//! with the store's statements prepared once.
//!
//! The `postgres` crate drives its connection on a runtime of its own and blocks the calling
//! thread; the store is only ever called from plain or blocking-pool threads (the server runs
//! all store work under `spawn_blocking`), never on an async worker.

use super::fault;
use crate::store::StoreError;
use postgres::{Client, NoTls, Statement};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How many connections one store opens at most (PostgreSQL's default `max_connections` is 100:
/// leave room for several instances). A caller finding them all lent out waits for one.
pub(super) const MAX_CONNECTIONS: usize = 32;

/// How long a caller waits for a free connection before the store reports a fault.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(30);

/// The statements every connection prepares.
pub(super) struct Stmts {
    pub lock_global: Statement,
    pub read_global: Statement,
    pub get_proj: Statement,
    pub scan_proj_from: Statement,
    pub scan_proj_from_open: Statement,
    pub back_proj_incl: Statement,
    pub back_proj_excl: Statement,
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
            scan_proj_from: p("SELECT key, value FROM lc_proj WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3")?,
            scan_proj_from_open: p("SELECT key, value FROM lc_proj WHERE key >= $1 ORDER BY key LIMIT $2")?,
            back_proj_incl: p(
                "SELECT key, value FROM lc_proj WHERE key >= $1 AND key <= $2 ORDER BY key DESC LIMIT 1",
            )?,
            back_proj_excl: p("SELECT key, value FROM lc_proj WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT 1")?,
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

/// The pool's connections: idle ones, and how many exist (idle or lent).
#[derive(Default)]
struct Slots {
    idle: Vec<Conn>,
    open: usize,
}

/// A pool of at most [`MAX_CONNECTIONS`] connections to one database (and schema, through the
/// URL's `options`).
pub(super) struct Pool {
    config: postgres::Config,
    slots: Mutex<Slots>,
    returned: Condvar,
}

impl Pool {
    /// How the pool connects (for connections kept outside it, such as a lease's).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    pub fn new(config: postgres::Config) -> Self {
        Pool {
            config,
            slots: Mutex::new(Slots::default()),
            returned: Condvar::new(),
        }
    }

    /// A new connection, without prepared statements (to create the schema first).
    pub fn connect_raw(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(fault)
    }

    /// An idle connection, or a new one while fewer than [`MAX_CONNECTIONS`] exist; otherwise
    /// waits (at most [`WAIT_FOR_CONNECTION`]) for one to come back.
    pub fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let deadline = Instant::now() + WAIT_FOR_CONNECTION;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = slots.idle.pop() {
                if conn.client.is_closed() {
                    slots.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if slots.open < MAX_CONNECTIONS {
                slots.open += 1;
                drop(slots);
                return match self.connect_prepared() {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Fault(concept_core::StoreFault::new(format!(
                    "all {MAX_CONNECTIONS} connections to PostgreSQL stayed busy for {WAIT_FOR_CONNECTION:?}"
                ))));
            }
            slots = self
                .returned
                .wait_timeout(slots, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn connect_prepared(&self) -> Result<Conn, StoreError> {
        let mut client = self.connect_raw()?;
        let st = Stmts::prepare(&mut client).map_err(fault)?;
        Ok(Conn { client, st })
    }

    /// A connection was dropped: its slot is free.
    fn release_slot(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.open = slots.open.saturating_sub(1);
        drop(slots);
        self.returned.notify_one();
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
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => {
                let mut slots = self.pool.slots.lock().unwrap_or_else(|p| p.into_inner());
                slots.idle.push(conn);
                drop(slots);
                self.pool.returned.notify_one();
            }
            // Broken or discarded: closed with the drop, its slot freed.
            _ => self.pool.release_slot(),
        }
    }
}
