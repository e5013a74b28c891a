//! The store on PostgreSQL, for when one machine is not enough: several service instances share
//! one database, each commit one SQL transaction. See NOTES.md beside this file for the design
//! (why the global sequence is a gapless counter bumped under a row lock) and schema.sql for the
//! tables.
//!
//! A commit opens a transaction on a pooled connection and first locks the single `lc_global`
//! row (`SELECT … FOR UPDATE`). Holding it, the commit checks guards and expected versions, runs
//! the events' apply functions against the live projections (reading through the transaction),
//! writes the events, heads, projection rows, checkpoint, action record and guards, bumps the
//! counters and commits. The row lock serialises writers across every instance exactly as
//! sled's writer mutex does within one process, so every invariant the sled store keeps carries
//! over; the unique constraints on `(concept, stream, version)` and on guard keys are the
//! backstop that turns a write which somehow bypassed the lock into the same typed conflict.
//! A commit is durable when `COMMIT` returns (`synchronous_commit` on, the default), so
//! [`Store::wait_durable`] has nothing left to wait for.

mod lease;
mod pool;
mod read;

use super::commit::{self, Counters};
use super::keys;
use super::{
    ActionRecord, Commit, CompactReport, EngineKey, Import, RebuildFn, Receipt, Retention, Store, StoreError,
    StoreStats, StoredEvent,
};
use chrono::{DateTime, Utc};
use concept_core::{EventMeta, ProjectionRead, StoreFault};
use pool::Pool;
use read::{PgBase, PgView};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// The tables, created if missing whenever a store opens.
const SCHEMA: &str = include_str!("schema.sql");

/// The advisory lock taken while the schema is created (any constant shared by all instances).
const SCHEMA_LOCK: i64 = 0x4c43_5343_4845_4d41; // "LCSCHEMA"

/// How many events a rebuild applies per batch.
const REBUILD_BATCH: usize = 5_000;

pub(crate) fn fault(e: postgres::Error) -> StoreError {
    StoreError::Fault(StoreFault::new(e))
}

/// A sequence number or id as PostgreSQL's `bigint` holds it. Ids never reach 2^63.
pub(super) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The store on a PostgreSQL database.
pub struct PgStore {
    pool: Pool,
    /// Commits made through this handle (the receipts' generations).
    generation: AtomicU64,
    /// The URL with any password removed, for messages.
    shown: String,
    /// The schema the tables are in: leases (database-wide advisory locks) are named within it,
    /// so stores in two schemas of one database never hold each other's leases.
    schema: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.shown)
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, optionally
    /// `?options=-c%20search_path%3Dschema` to keep the tables in one schema) and creates the
    /// tables if they are missing.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Fault(StoreFault::new(format!("{}: {e}", redact(url)))))?;
        let mut store = PgStore {
            pool: Pool::new(config),
            generation: AtomicU64::new(0),
            shown: redact(url),
            schema: String::new(),
        };
        let mut client = store.pool.connect_raw()?;
        let mut txn = client.transaction().map_err(fault)?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(fault)?;
        // A search_path naming a schema that does not exist yet: create the first one.
        let row = txn
            .query_one("SELECT current_schema() IS NULL, current_setting('search_path')", &[])
            .map_err(fault)?;
        if row.get::<_, bool>(0) {
            let path: String = row.get(1);
            let first = path
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string();
            if !valid_schema(&first) {
                return Err(StoreError::Fault(StoreFault::new(format!(
                    "search_path {path:?} names no existing schema, and {first:?} is not a name to create"
                ))));
            }
            txn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {first}"))
                .map_err(fault)?;
        }
        txn.batch_execute(SCHEMA).map_err(fault)?;
        let schema: Option<String> = txn.query_one("SELECT current_schema()", &[]).map_err(fault)?.get(0);
        txn.commit().map_err(fault)?;
        drop(client);
        store.schema = schema.unwrap_or_default();
        Ok(store)
    }

    /// Creates schema `schema` in the database at `url` if missing and returns the URL of a store
    /// kept in it (for tests and benchmarks that want a fresh store per run on one server).
    pub fn schema_url(url: &str, schema: &str) -> Result<String, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Fault(StoreFault::new(format!(
                "schema name {schema:?} must be letters, digits and underscores"
            ))));
        }
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Fault(StoreFault::new(format!("{}: {e}", redact(url)))))?;
        let mut client = config.connect(postgres::NoTls).map_err(fault)?;
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .map_err(fault)?;
        let sep = if url.contains('?') { '&' } else { '?' };
        Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
    }

    /// Drops schema `schema` and everything in it (the other half of [`PgStore::schema_url`]).
    pub fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Fault(StoreFault::new(format!("{}: {e}", redact(url)))))?;
        let mut client = config.connect(postgres::NoTls).map_err(fault)?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .map_err(fault)
    }

    /// Drops every schema whose name starts with `prefix` (letters, digits, underscores), e.g. the
    /// schemas earlier benchmark runs left behind. Returns how many it dropped.
    pub fn drop_schemas_with_prefix(url: &str, prefix: &str) -> Result<usize, StoreError> {
        if !valid_schema(prefix) {
            return Err(StoreError::Fault(StoreFault::new(format!(
                "{prefix:?} is not a schema prefix"
            ))));
        }
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Fault(StoreFault::new(format!("{}: {e}", redact(url)))))?;
        let mut client = config.connect(postgres::NoTls).map_err(fault)?;
        let names: Vec<String> = client
            .query(
                "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, $1)",
                &[&prefix],
            )
            .map_err(fault)?
            .into_iter()
            .map(|row| row.get(0))
            .collect();
        for name in &names {
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .map_err(fault)?;
        }
        Ok(names.len())
    }

    /// The bytes the store's tables and indexes take in the database (with TOAST).
    pub fn bytes_on_disk(&self) -> Result<u64, StoreError> {
        let mut pooled = self.pool.get()?;
        let client = &mut pooled.conn().client;
        let row = client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r' AND starts_with(c.relname::text, 'lc_')",
                &[],
            )
            .map_err(fault)?;
        Ok(u64_of(row.get(0)))
    }

    /// The database URL with the password removed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn commit_in(&self, commit: Commit, conn: &mut pool::Conn) -> Result<Receipt, StoreError> {
        let pool::Conn { client, st } = conn;
        let mut txn = client.transaction().map_err(fault)?;
        let global = txn.query_one(&st.lock_global, &[]).map_err(fault)?;
        let counters = Counters {
            last_seq: u64_of(global.get(0)),
            last_action: u64_of(global.get(1)),
        };
        let concept = commit.concept.clone();
        let prepared = {
            let base = PgBase {
                txn: RefCell::new(&mut txn),
                st,
            };
            commit::prepare(commit, &base, counters)?
        };
        let mut log = LogRows::default();
        for event in prepared.events {
            let at = concept_core::time::micros(&event.meta.at);
            log.push(&event.concept, &event.meta, at, event.data);
        }
        log.write(&mut txn, st).map_err(|e| conflict_or_fault(e, &concept))?;
        read::write_heads(&mut txn, st, prepared.heads)?;
        read::write_rows(&mut txn, st, prepared.rows)?;
        if prepared.receipt.events > 0 {
            txn.execute(
                &st.upsert_checkpoint,
                &[&vec![concept.clone()], &vec![i64_of(prepared.receipt.last_seq)]],
            )
            .map_err(fault)?;
        }
        if let Some(record) = prepared.record {
            insert_records(&mut txn, st, &[record])?;
        }
        let first_guard = prepared.guards.first().map(|(key, _, _)| key.clone());
        let guards: Vec<(Vec<u8>, Vec<u8>)> = prepared.guards.into_iter().map(|(_, k, v)| (k, v)).collect();
        if let Err(e) = insert_guards(&mut txn, st, guards) {
            return Err(match (unique_violation(&e), first_guard) {
                (Some(_), Some(key)) => StoreError::GuardExists(key),
                _ => fault(e),
            });
        }
        txn.execute(
            &st.update_global,
            &[&i64_of(prepared.next.last_seq), &i64_of(prepared.next.last_action)],
        )
        .map_err(fault)?;
        txn.commit().map_err(fault)?;
        let mut receipt = prepared.receipt;
        receipt.generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(receipt)
    }
}

/// Whether `name` is a schema name this store creates (letters, digits, underscores).
fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The constraint a unique violation names, if `e` is one.
fn unique_violation(e: &postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (*db.code() == postgres::error::SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or("").to_string())
}

/// A failed log insert: a version conflict when two appends claimed one stream version.
///
/// Only reachable by a writer that bypassed the global lock (the versions are checked under it),
/// so the stream and versions are not known here: `stream` carries the database's description of
/// the duplicate key and both versions are 0. The engine treats it like any version conflict
/// (decide again).
fn conflict_or_fault(e: postgres::Error, concept: &str) -> StoreError {
    match unique_violation(&e) {
        Some(constraint) if constraint == "lc_log_stream_version" => {
            let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or("").to_string();
            StoreError::VersionConflict {
                concept: concept.to_string(),
                stream: detail,
                expected: 0,
                actual: 0,
            }
        }
        _ => fault(e),
    }
}

/// Event rows to insert with one statement.
#[derive(Default)]
struct LogRows {
    seq: Vec<i64>,
    concept: Vec<String>,
    stream: Vec<String>,
    version: Vec<i64>,
    kind: Vec<String>,
    action: Vec<i64>,
    at: Vec<i64>,
    data: Vec<Vec<u8>>,
    bytes: usize,
}

impl LogRows {
    fn push(&mut self, concept: &str, meta: &EventMeta, at_micros: i64, data: Vec<u8>) {
        self.bytes += data.len() + meta.kind.len() + meta.stream.len() + concept.len() + 32;
        self.seq.push(i64_of(meta.seq));
        self.concept.push(concept.to_string());
        self.stream.push(meta.stream.clone());
        self.version.push(i64_of(meta.version));
        self.kind.push(meta.kind.clone());
        self.action.push(i64_of(meta.action));
        self.at.push(at_micros);
        self.data.push(data);
    }

    fn write(&self, txn: &mut postgres::Transaction<'_>, st: &pool::Stmts) -> Result<(), postgres::Error> {
        if self.seq.is_empty() {
            return Ok(());
        }
        txn.execute(
            &st.insert_log,
            &[
                &self.seq,
                &self.concept,
                &self.stream,
                &self.version,
                &self.kind,
                &self.action,
                &self.at,
                &self.data,
            ],
        )?;
        Ok(())
    }
}

fn insert_records(
    txn: &mut postgres::Transaction<'_>,
    st: &pool::Stmts,
    records: &[ActionRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut flows = Vec::new();
    let mut ats = Vec::new();
    let mut bodies = Vec::new();
    for record in records {
        ids.push(i64_of(record.id));
        flows.push(record.flow);
        ats.push(concept_core::time::micros(&record.at));
        bodies.push(serde_json::to_vec(record).map_err(StoreFault::new)?);
    }
    txn.execute(&st.insert_record, &[&ids, &flows, &ats, &bodies])
        .map_err(fault)?;
    Ok(())
}

fn insert_guards(
    txn: &mut postgres::Transaction<'_>,
    st: &pool::Stmts,
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let largest: Vec<Option<i64>> = rows
        .iter()
        .map(|(k, _)| keys::fire_guard_largest_matched(k).map(i64_of))
        .collect();
    let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = rows.into_iter().unzip();
    txn.execute(&st.insert_guards, &[&keys, &values, &largest])?;
    Ok(())
}

fn record_of(bytes: &[u8]) -> Result<ActionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Fault(StoreFault::new(e)))
}

/// `url` with any password replaced by `***` (in the authority and as a `password=` parameter).
pub fn redact(url: &str) -> String {
    concept_core::redact::redact_url(url)
}

impl Store for PgStore {
    fn lease(&self, name: &str) -> Result<Option<crate::store::Lease>, StoreError> {
        lease::try_lease(self.pool.config(), &format!("{}.{name}", self.schema))
    }

    fn view<'a>(&'a self, concept: &str) -> Box<dyn ProjectionRead + 'a> {
        Box::new(PgView {
            conn: RefCell::new(self.pool.get().map_err(|e| e.to_string())),
            began: Cell::new(false),
            prefix: read::prefix(concept),
            concept: concept.to_string(),
        })
    }

    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let mut pooled = self.pool.get()?;
        let out = self.commit_in(commit, pooled.conn());
        if matches!(out, Err(StoreError::Fault(_))) && pooled.conn().client.is_closed() {
            pooled.discard();
        }
        out
    }

    fn wait_durable(&self, _generation: u64) -> Result<(), StoreError> {
        // Every commit was durable when its COMMIT returned.
        Ok(())
    }

    fn wait_changes_durable(&self) -> Result<(), StoreError> {
        // Each COMMIT was durable before it returned.
        Ok(())
    }

    fn read_log(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn();
        Ok(read::read_log(&mut conn.client, &conn.st, after, limit)?)
    }

    fn read_stream(&self, concept: &str, stream: &str, after_version: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn();
        Ok(read::stream_events(
            &mut conn.client,
            &conn.st,
            concept,
            stream,
            after_version,
            usize::MAX,
        )?)
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn();
        let row = conn.client.query_one(&conn.st.read_global, &[]).map_err(fault)?;
        Ok(u64_of(row.get(0)))
    }

    fn action(&self, id: u64) -> Result<Option<ActionRecord>, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn();
        match conn.client.query_opt(&conn.st.action, &[&i64_of(id)]).map_err(fault)? {
            Some(row) => Ok(Some(record_of(row.get(0))?)),
            None => Ok(None),
        }
    }

    fn flow(&self, flow: Uuid) -> Result<Vec<ActionRecord>, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn();
        let rows = conn.client.query(&conn.st.flow, &[&flow]).map_err(fault)?;
        rows.iter().map(|row| record_of(row.get(0))).collect()
    }

    fn engine_row(&self, key: &EngineKey) -> Result<Option<Vec<u8>>, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn();
        Ok(conn
            .client
            .query_opt(&conn.st.engine_row, &[&keys::engine(key)])
            .map_err(fault)?
            .map(|row| row.get(0)))
    }

    fn rebuild(&self, apply: &RebuildFn<'_>) -> Result<u64, StoreError> {
        // One transaction: commits from every instance wait on the global row; views keep
        // reading the old projections until it commits; an interrupted rebuild changes nothing.
        let mut pooled = self.pool.get()?;
        let pool::Conn { client, st } = pooled.conn();
        let mut txn = client.transaction().map_err(fault)?;
        let global = txn.query_one(&st.lock_global, &[]).map_err(fault)?;
        let last_seq = u64_of(global.get(0));
        txn.batch_execute("DELETE FROM lc_proj; DELETE FROM lc_checkpoint")
            .map_err(fault)?;
        let mut after = 0u64;
        let mut replayed = 0u64;
        while after < last_seq {
            let events = read::read_log(&mut txn, st, after, REBUILD_BATCH)?;
            if events.is_empty() {
                break;
            }
            after = events.last().map_or(after, |e| e.meta.seq);
            replayed += events.len() as u64;
            let batch = {
                let base = PgBase {
                    txn: RefCell::new(&mut txn),
                    st,
                };
                commit::replay(&base, &events, apply)?
            };
            read::write_rows(&mut txn, st, batch.rows)?;
            let (concepts, seqs): (Vec<String>, Vec<i64>) =
                batch.checkpoints.into_iter().map(|(c, s)| (c, i64_of(s))).unzip();
            txn.execute(&st.upsert_checkpoint, &[&concepts, &seqs]).map_err(fault)?;
        }
        txn.commit().map_err(fault)?;
        Ok(replayed)
    }

    fn projection_dump(&self) -> Result<concept_core::Rows, StoreError> {
        // The same rows, in the same order, as the sled store's dump: projections, then
        // checkpoints, each in key order.
        let mut pooled = self.pool.get()?;
        let client = &mut pooled.conn().client;
        let mut txn = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(fault)?;
        let mut out: concept_core::Rows = txn
            .query("SELECT key, value FROM lc_proj ORDER BY key", &[])
            .map_err(fault)?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut checkpoints: Vec<(Vec<u8>, Vec<u8>)> = txn
            .query("SELECT concept, seq FROM lc_checkpoint", &[])
            .map_err(fault)?
            .into_iter()
            .map(|row| {
                let concept: String = row.get(0);
                let seq: i64 = row.get(1);
                (keys::checkpoint(&concept), u64_of(seq).to_be_bytes().to_vec())
            })
            .collect();
        checkpoints.sort();
        out.extend(checkpoints);
        txn.commit().map_err(fault)?;
        Ok(out)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut pooled = self.pool.get()?;
        let client = &mut pooled.conn().client;
        let row = client
            .query_one(
                "SELECT last_seq, last_action, (SELECT count(*) FROM lc_proj) FROM lc_global WHERE id = 1",
                &[],
            )
            .map_err(fault)?;
        Ok(StoreStats {
            last_seq: u64_of(row.get(0)),
            actions: u64_of(row.get(1)),
            projection_rows: u64_of(row.get(2)),
        })
    }

    fn compact(&self, retention: &Retention, now: DateTime<Utc>) -> Result<CompactReport, StoreError> {
        if retention.keeps_everything() {
            return Ok(CompactReport::default());
        }
        let mut pooled = self.pool.get()?;
        let client = &mut pooled.conn().client;
        let mut txn = client.transaction().map_err(fault)?;
        let last_action = u64_of(
            txn.query_one("SELECT last_action FROM lc_global WHERE id = 1", &[])
                .map_err(fault)?
                .get(0),
        );
        let end = last_action.saturating_add(1);
        let mut boundary = match retention.max_actions {
            Some(n) => last_action.saturating_sub(n).saturating_add(1),
            None => end,
        };
        if let Some(age) = retention.max_age {
            let cutoff = now
                .checked_sub_signed(age.max(chrono::Duration::zero()))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let first_young: Option<i64> = txn
                .query_one(
                    "SELECT min(id) FROM lc_record WHERE id < $1 AND at_micros >= $2",
                    &[&i64_of(boundary), &concept_core::time::micros(&cutoff)],
                )
                .map_err(fault)?
                .get(0);
            if let Some(id) = first_young {
                boundary = u64_of(id);
            }
        }
        // Lower the boundary to the start of every flow straddling it, until none does.
        loop {
            let lowest: Option<i64> = txn
                .query_one(
                    "SELECT min(first) FROM (SELECT min(id) AS first, max(id) AS last FROM lc_record GROUP BY flow) f \
                     WHERE first < $1 AND last >= $1",
                    &[&i64_of(boundary)],
                )
                .map_err(fault)?
                .get(0);
            match lowest {
                Some(id) if u64_of(id) < boundary => boundary = u64_of(id),
                _ => break,
            }
        }
        let deleted = txn
            .query(
                "DELETE FROM lc_record WHERE id < $1 RETURNING flow",
                &[&i64_of(boundary)],
            )
            .map_err(fault)?;
        let flows: HashSet<Uuid> = deleted.iter().map(|row| row.get(0)).collect();
        let guards = txn
            .execute(
                "DELETE FROM lc_guard WHERE largest IS NOT NULL AND largest < $1",
                &[&i64_of(boundary)],
            )
            .map_err(fault)?;
        txn.commit().map_err(fault)?;
        Ok(CompactReport {
            records: deleted.len() as u64,
            flows: flows.len() as u64,
            guards,
            boundary,
        })
    }

    fn read_records(&self, after: u64, limit: usize) -> Result<Vec<ActionRecord>, StoreError> {
        let mut pooled = self.pool.get()?;
        let client = &mut pooled.conn().client;
        let rows = client
            .query(
                "SELECT body FROM lc_record WHERE id > $1 ORDER BY id LIMIT $2",
                &[&i64_of(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(fault)?;
        rows.iter().map(|row| record_of(row.get(0))).collect()
    }

    fn read_engine_rows(&self, after: &[u8], limit: usize) -> Result<concept_core::Rows, StoreError> {
        let mut pooled = self.pool.get()?;
        let client = &mut pooled.conn().client;
        let rows = client
            .query(
                "SELECT key, value FROM lc_guard WHERE key > $1 ORDER BY key LIMIT $2",
                &[&after, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(fault)?;
        Ok(rows.into_iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    fn import(&self, copy: Import) -> Result<(), StoreError> {
        let mut pooled = self.pool.get()?;
        let pool::Conn { client, st } = pooled.conn();
        let mut txn = client.transaction().map_err(fault)?;
        let global = txn.query_one(&st.lock_global, &[]).map_err(fault)?;
        let mut last_seq = u64_of(global.get(0));
        let last_action = u64_of(global.get(1));
        let mut log = LogRows::default();
        let mut heads: BTreeMap<(String, String), u64> = BTreeMap::new();
        for event in copy.events {
            if event.meta.seq != last_seq + 1 {
                return Err(StoreError::Fault(StoreFault::new(format!(
                    "imported event {} does not follow the log's last event {last_seq}",
                    event.meta.seq
                ))));
            }
            last_seq = event.meta.seq;
            heads.insert((event.concept.clone(), event.meta.stream.clone()), event.meta.version);
            let at = concept_core::time::micros(&event.meta.at);
            log.push(&event.concept, &event.meta, at, event.data);
        }
        log.write(&mut txn, st).map_err(fault)?;
        let (concepts, (streams, versions)): (Vec<String>, (Vec<String>, Vec<i64>)) =
            heads.into_iter().map(|((c, s), v)| (c, (s, i64_of(v)))).unzip();
        if !concepts.is_empty() {
            txn.execute(&st.upsert_heads, &[&concepts, &streams, &versions])
                .map_err(fault)?;
        }
        insert_records(&mut txn, st, &copy.records)?;
        insert_guards(&mut txn, st, copy.engine_rows).map_err(fault)?;
        txn.execute(
            &st.update_global,
            &[
                &i64_of(last_seq.max(copy.last_seq)),
                &i64_of(last_action.max(copy.last_action)),
            ],
        )
        .map_err(fault)?;
        txn.commit().map_err(fault)?;
        Ok(())
    }
}
