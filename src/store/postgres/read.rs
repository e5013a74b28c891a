//! Reads of the PostgreSQL store: the row helpers shared by commits, rebuilds and views, the
//! read-only [`PgView`] (one REPEATABLE READ snapshot per view) and the commit-time overlay a
//! concept's apply functions write through.

use super::pool::{Pooled, Stmts};
use super::{i64_of, u64_of};
use crate::store::keys;
use crate::store::StoredEvent;
use concept_core::{EventMeta, ProjectionRead, ProjectionTxn, StoreFault, StoredEventData};
use postgres::GenericClient;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// The smallest key greater than every key starting with `prefix` (`None`: there is none).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn store_fault(e: postgres::Error) -> StoreFault {
    StoreFault::new(e)
}

pub(super) fn get_row<C: GenericClient>(c: &mut C, st: &Stmts, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
    Ok(c.query_opt(&st.get_proj, &[&key])
        .map_err(store_fault)?
        .map(|row| row.get::<_, Vec<u8>>(0)))
}

pub(super) fn scan_rows<C: GenericClient>(
    c: &mut C,
    st: &Stmts,
    prefix: &[u8],
) -> Result<concept_core::Rows, StoreFault> {
    let rows = match successor(prefix) {
        Some(end) => c.query(&st.scan_proj, &[&prefix, &end.as_slice()]),
        None => c.query(&st.scan_proj_open, &[&prefix]),
    }
    .map_err(store_fault)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.get::<_, Vec<u8>>(0), row.get::<_, Vec<u8>>(1)))
        .collect())
}

pub(super) fn head<C: GenericClient>(c: &mut C, st: &Stmts, concept: &str, stream: &str) -> Result<u64, StoreFault> {
    Ok(c.query_opt(&st.head, &[&concept, &stream])
        .map_err(store_fault)?
        .map(|row| u64_of(row.get::<_, i64>(0)))
        .unwrap_or(0))
}

pub(super) fn event_of(row: &postgres::Row) -> StoredEvent {
    StoredEvent {
        concept: row.get(1),
        meta: EventMeta {
            seq: u64_of(row.get(0)),
            stream: row.get(2),
            version: u64_of(row.get(3)),
            kind: row.get(4),
            action: u64_of(row.get(5)),
            at: concept_core::time::from_micros(row.get(6)),
        },
        data: row.get(7),
    }
}

pub(super) fn stream_events<C: GenericClient>(
    c: &mut C,
    st: &Stmts,
    concept: &str,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreFault> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(&st.stream_events, &[&concept, &stream, &i64_of(after_version), &limit])
        .map_err(store_fault)?;
    Ok(rows.iter().map(event_of).collect())
}

pub(super) fn read_log<C: GenericClient>(
    c: &mut C,
    st: &Stmts,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreFault> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(&st.read_log, &[&i64_of(after), &limit]).map_err(store_fault)?;
    Ok(rows.iter().map(event_of).collect())
}

/// A read-only view of one concept's committed projections.
///
/// Its first read opens a `REPEATABLE READ READ ONLY` transaction, so every row it reads comes
/// from one committed state (a decision reading an index and then its chunks never sees a commit
/// land between the two); the transaction ends when the view is dropped.
pub(super) struct PgView<'s> {
    pub conn: RefCell<Result<Pooled<'s>, String>>,
    pub began: std::cell::Cell<bool>,
    pub prefix: Vec<u8>,
    pub concept: String,
}

impl PgView<'_> {
    fn with<T>(
        &self,
        read: impl FnOnce(&mut postgres::Client, &Stmts) -> Result<T, StoreFault>,
    ) -> Result<T, StoreFault> {
        let mut slot = self.conn.borrow_mut();
        let pooled = slot.as_mut().map_err(|e| StoreFault::new(e.clone()))?;
        let conn = pooled.conn();
        if !self.began.get() {
            conn.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(store_fault)?;
            self.began.set(true);
        }
        let out = read(&mut conn.client, &conn.st);
        if out.is_err() {
            // The transaction is aborted: the view's later reads fail too, and the connection
            // is not reused.
            pooled.discard();
            *slot = Err("an earlier read of this view failed".to_string());
        }
        out
    }

    fn abs(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }
}

impl Drop for PgView<'_> {
    fn drop(&mut self) {
        if self.began.get() {
            if let Ok(pooled) = self.conn.get_mut() {
                if pooled.conn().client.batch_execute("ROLLBACK").is_err() {
                    pooled.discard();
                }
            }
        }
    }
}

impl ProjectionRead for PgView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let k = self.abs(key);
        self.with(|c, st| get_row(c, st, &k))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<concept_core::Rows, StoreFault> {
        let k = self.abs(prefix);
        let n = self.prefix.len();
        let rows = self.with(|c, st| scan_rows(c, st, &k))?;
        Ok(rows.into_iter().map(|(k, v)| (k[n..].to_vec(), v)).collect())
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        self.with(|c, st| head(c, st, &self.concept, stream))
    }

    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        let events = self.with(|c, st| stream_events(c, st, &self.concept, stream, after_version, limit))?;
        Ok(events.into_iter().map(|e| (e.meta, e.data)).collect())
    }
}

/// Pending writes of one commit (or one rebuild batch) over its open transaction. Reads see
/// the pending rows first, then the transaction's view of the tables.
pub(super) struct PgOverlay<'c, 't> {
    pub txn: RefCell<&'c mut postgres::Transaction<'t>>,
    pub st: &'c Stmts,
    /// Projection rows by absolute key (`None`: deleted).
    pub pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Stream versions this commit moved, by (concept, stream).
    pub heads: HashMap<(String, String), u64>,
    pub rows_written: usize,
    pub bytes_written: usize,
}

impl<'c, 't> PgOverlay<'c, 't> {
    pub fn new(txn: &'c mut postgres::Transaction<'t>, st: &'c Stmts) -> Self {
        PgOverlay {
            txn: RefCell::new(txn),
            st,
            pending: BTreeMap::new(),
            heads: HashMap::new(),
            rows_written: 0,
            bytes_written: 0,
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => get_row(&mut **self.txn.borrow_mut(), self.st, key),
        }
    }

    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<concept_core::Rows, StoreFault> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = scan_rows(&mut **self.txn.borrow_mut(), self.st, prefix)?
            .into_iter()
            .collect();
        for (k, v) in self
            .pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    pub fn head(&self, concept: &str, stream: &str) -> Result<u64, StoreFault> {
        match self.heads.get(&(concept.to_string(), stream.to_string())) {
            Some(v) => Ok(*v),
            None => head(&mut **self.txn.borrow_mut(), self.st, concept, stream),
        }
    }

    /// Writes the pending projection rows into the transaction and forgets them.
    pub fn write_rows(&mut self) -> Result<(), StoreFault> {
        let mut put_keys: Vec<Vec<u8>> = Vec::new();
        let mut put_values: Vec<Vec<u8>> = Vec::new();
        let mut deletes: Vec<Vec<u8>> = Vec::new();
        for (k, v) in std::mem::take(&mut self.pending) {
            match v {
                Some(v) => {
                    put_keys.push(k);
                    put_values.push(v);
                }
                None => deletes.push(k),
            }
        }
        let txn = self.txn.get_mut();
        if !deletes.is_empty() {
            txn.execute(&self.st.delete_proj, &[&deletes]).map_err(store_fault)?;
        }
        if !put_keys.is_empty() {
            txn.execute(&self.st.upsert_proj, &[&put_keys, &put_values])
                .map_err(store_fault)?;
        }
        Ok(())
    }

    /// Writes the pending stream heads into the transaction and forgets them.
    pub fn write_heads(&mut self) -> Result<(), StoreFault> {
        if self.heads.is_empty() {
            return Ok(());
        }
        let mut concepts = Vec::new();
        let mut streams = Vec::new();
        let mut versions = Vec::new();
        for ((c, s), v) in std::mem::take(&mut self.heads) {
            concepts.push(c);
            streams.push(s);
            versions.push(i64_of(v));
        }
        self.txn
            .get_mut()
            .execute(&self.st.upsert_heads, &[&concepts, &streams, &versions])
            .map_err(store_fault)?;
        Ok(())
    }
}

/// One concept's namespaced window on a [`PgOverlay`].
pub(super) struct PgConceptTxn<'o, 'c, 't> {
    pub overlay: &'o mut PgOverlay<'c, 't>,
    pub prefix: Vec<u8>,
    pub concept: String,
}

impl PgConceptTxn<'_, '_, '_> {
    fn abs(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }
}

impl ProjectionRead for PgConceptTxn<'_, '_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        self.overlay.get(&self.abs(key))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<concept_core::Rows, StoreFault> {
        let n = self.prefix.len();
        Ok(self
            .overlay
            .scan_prefix(&self.abs(prefix))?
            .into_iter()
            .map(|(k, v)| (k[n..].to_vec(), v))
            .collect())
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        self.overlay.head(&self.concept, stream)
    }

    /// Committed events only, as on sled: events this commit appends are not yet in the log.
    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        let events = stream_events(
            &mut **self.overlay.txn.borrow_mut(),
            self.overlay.st,
            &self.concept,
            stream,
            after_version,
            limit,
        )?;
        Ok(events.into_iter().map(|e| (e.meta, e.data)).collect())
    }
}

impl ProjectionTxn for PgConceptTxn<'_, '_, '_> {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        let k = self.abs(key);
        self.overlay.rows_written += 1;
        self.overlay.bytes_written += k.len() + value.len();
        self.overlay.pending.insert(k, Some(value));
    }

    fn delete(&mut self, key: &[u8]) {
        let k = self.abs(key);
        self.overlay.rows_written += 1;
        self.overlay.pending.insert(k, None);
    }
}

/// The projection-key prefix of a concept (as in sled).
pub(super) fn prefix(concept: &str) -> Vec<u8> {
    keys::projection_prefix(concept)
}
