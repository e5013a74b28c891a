//! Reads of the PostgreSQL store: the row helpers shared by commits, rebuilds and views, the
//! read-only [`PgView`] (one REPEATABLE READ snapshot per view) and [`PgBase`], the committed
//! state a commit (or a rebuild batch) reads through its open transaction.

use super::pool::{Pooled, Stmts};
use super::{i64_of, u64_of};
use crate::store::commit::Base;
use crate::store::keys;
use crate::store::{EngineKey, StoreError, StoredEvent};
use concept_core::{Bytes, Entries, EventMeta, ProjectionRead, StoreFault, StoredEventData};
use postgres::GenericClient;
use std::cell::RefCell;

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

pub(super) fn get_row<C: GenericClient>(c: &mut C, st: &Stmts, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
    Ok(c.query_opt(&st.get_proj, &[&key])
        .map_err(store_fault)?
        .map(|row| Bytes::from(row.get::<_, Vec<u8>>(0))))
}

/// Rows starting with `prefix`, from `from` on, in key order, at most `limit`.
pub(super) fn scan_rows_from<C: GenericClient>(
    c: &mut C,
    st: &Stmts,
    prefix: &[u8],
    from: &[u8],
    limit: usize,
) -> Result<Entries, StoreFault> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match successor(prefix) {
        Some(end) => c.query(&st.scan_proj_from, &[&from, &end.as_slice(), &limit]),
        None => c.query(&st.scan_proj_from_open, &[&from, &limit]),
    }
    .map_err(store_fault)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                Bytes::from(row.get::<_, Vec<u8>>(0)),
                Bytes::from(row.get::<_, Vec<u8>>(1)),
            )
        })
        .collect())
}

/// The last row starting with `prefix` at or below (or below) `key`.
pub(super) fn back_row<C: GenericClient>(
    c: &mut C,
    st: &Stmts,
    prefix: &[u8],
    key: &[u8],
    inclusive: bool,
) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
    let stmt = if inclusive {
        &st.back_proj_incl
    } else {
        &st.back_proj_excl
    };
    Ok(c.query_opt(stmt, &[&prefix, &key]).map_err(store_fault)?.map(|row| {
        (
            Bytes::from(row.get::<_, Vec<u8>>(0)),
            Bytes::from(row.get::<_, Vec<u8>>(1)),
        )
    }))
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
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        let k = self.abs(key);
        self.with(|c, st| get_row(c, st, &k))
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        let (p, f) = (self.abs(prefix), self.abs(from));
        let n = self.prefix.len();
        let rows = self.with(|c, st| scan_rows_from(c, st, &p, &f, limit))?;
        Ok(rows.into_iter().map(|(k, v)| (k.slice(n..), v)).collect())
    }

    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        let (p, k) = (self.abs(prefix), self.abs(key));
        let n = self.prefix.len();
        let row = self.with(|c, st| back_row(c, st, &p, &k, inclusive))?;
        Ok(row.map(|(k, v)| (k.slice(n..), v)))
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

/// The committed state a commit or rebuild batch reads, through its open transaction.
pub(super) struct PgBase<'c, 't> {
    pub txn: RefCell<&'c mut postgres::Transaction<'t>>,
    pub st: &'c Stmts,
}

impl Base for PgBase<'_, '_> {
    fn row(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        get_row(&mut **self.txn.borrow_mut(), self.st, key)
    }

    fn rows(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        scan_rows_from(&mut **self.txn.borrow_mut(), self.st, prefix, from, limit)
    }

    fn row_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        back_row(&mut **self.txn.borrow_mut(), self.st, prefix, key, inclusive)
    }

    fn head(&self, concept: &str, stream: &str) -> Result<u64, StoreFault> {
        head(&mut **self.txn.borrow_mut(), self.st, concept, stream)
    }

    fn stream_events(
        &self,
        concept: &str,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        let events = stream_events(
            &mut **self.txn.borrow_mut(),
            self.st,
            concept,
            stream,
            after_version,
            limit,
        )?;
        Ok(events.into_iter().map(|e| (e.meta, e.data)).collect())
    }

    fn guards_exist(&self, wanted: &[EngineKey]) -> Result<Option<EngineKey>, StoreError> {
        if wanted.is_empty() {
            return Ok(None);
        }
        let keys: Vec<Vec<u8>> = wanted.iter().map(keys::engine).collect();
        let found = self
            .txn
            .borrow_mut()
            .query(&self.st.guards_exist, &[&keys])
            .map_err(super::fault)?;
        Ok(found.first().map(|row| {
            let key: Vec<u8> = row.get(0);
            let index = keys.iter().position(|w| *w == key).unwrap_or(0);
            wanted[index].clone()
        }))
    }
}

/// Writes projection rows (`None`: delete) into a transaction.
pub(super) fn write_rows(
    txn: &mut postgres::Transaction<'_>,
    st: &Stmts,
    rows: impl IntoIterator<Item = (Vec<u8>, Option<Bytes>)>,
) -> Result<(), StoreFault> {
    let mut put_keys: Vec<Vec<u8>> = Vec::new();
    let mut put_values: Vec<Vec<u8>> = Vec::new();
    let mut deletes: Vec<Vec<u8>> = Vec::new();
    for (k, v) in rows {
        match v {
            Some(v) => {
                put_keys.push(k);
                put_values.push(v.to_vec());
            }
            None => deletes.push(k),
        }
    }
    if !deletes.is_empty() {
        txn.execute(&st.delete_proj, &[&deletes]).map_err(store_fault)?;
    }
    if !put_keys.is_empty() {
        txn.execute(&st.upsert_proj, &[&put_keys, &put_values])
            .map_err(store_fault)?;
    }
    Ok(())
}

/// Writes stream heads into a transaction.
pub(super) fn write_heads(
    txn: &mut postgres::Transaction<'_>,
    st: &Stmts,
    heads: impl IntoIterator<Item = ((String, String), u64)>,
) -> Result<(), StoreFault> {
    let mut concepts = Vec::new();
    let mut streams = Vec::new();
    let mut versions = Vec::new();
    for ((c, s), v) in heads {
        concepts.push(c);
        streams.push(s);
        versions.push(i64_of(v));
    }
    if concepts.is_empty() {
        return Ok(());
    }
    txn.execute(&st.upsert_heads, &[&concepts, &streams, &versions])
        .map_err(store_fault)?;
    Ok(())
}

/// The projection-key prefix of a concept (as in sled).
pub(super) fn prefix(concept: &str) -> Vec<u8> {
    keys::projection_prefix(concept)
}
