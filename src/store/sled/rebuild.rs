//! Rebuilding the projections of the embedded store, without ever showing half of them.
//!
//! Projection rows live in one of two generations (`keys::GENERATION` names the one in use). A
//! rebuild replays the log into the other generation — many commits' events per batch, through
//! one overlay and one decoded cache per batch (`commit::replay`) — then switches the
//! generation in one batch and deletes the old rows. Queries go on reading the generation in use
//! the whole time; commits wait for the writer lock. A rebuild that stops half way leaves only
//! rows of the unused generation, which the next open drops.

use super::{keys, log, view::TreeBase, SledStore};
use crate::store::commit;
use crate::store::{RebuildFn, StoreError};
use std::collections::BTreeMap;

/// How many events one batch of a rebuild replays.
const REPLAY_BATCH: usize = 50_000;

/// The most rows one `apply_batch` writes: sled holds its global write lock (which every read
/// waits for) while it applies a batch, so a rebuild writes in short batches.
const WRITE_BATCH: usize = 512;

/// Replays the whole log into the unused generation and switches to it; returns the number of
/// events replayed.
pub fn run(store: &SledStore, apply: &RebuildFn<'_>) -> Result<u64, StoreError> {
    // No action commits while the projections are rebuilt.
    let counters = store.writer.lock().unwrap_or_else(|p| p.into_inner());
    let current = store.generation();
    let next = 1 - current;
    store.tree.insert(keys::REBUILDING, &[next])?;
    clear_generation(store, next)?;
    let base = TreeBase {
        tree: &store.tree,
        generation: next,
    };
    let mut checkpoints: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = 0u64;
    let mut replayed = 0u64;
    while after < counters.last_seq {
        let events = log::read_log(&store.tree, after, REPLAY_BATCH)?;
        let Some(last) = events.last() else { break };
        after = last.meta.seq;
        replayed += events.len() as u64;
        let batch = commit::replay(&base, &events, apply)?;
        checkpoints.extend(batch.checkpoints);
        let mut writes = sled::Batch::default();
        let mut n = 0;
        for (key, value) in batch.rows {
            let key = keys::physical(next, &key);
            match value {
                Some(v) => writes.insert(key, v.as_ref()),
                None => writes.remove(key),
            }
            n += 1;
            if n == WRITE_BATCH {
                store.tree.apply_batch(std::mem::take(&mut writes))?;
                n = 0;
            }
        }
        store.tree.apply_batch(writes)?;
    }
    // Switch generations in one batch, once every view of the old one has ended.
    let mut switch = sled::Batch::default();
    for item in store.tree.scan_prefix([crate::store::keys::CHECKPOINT]) {
        switch.remove(item?.0);
    }
    for (concept, seq) in &checkpoints {
        switch.insert(crate::store::keys::checkpoint(concept), &seq.to_be_bytes());
    }
    switch.insert(keys::GENERATION, &[next]);
    switch.remove(keys::REBUILDING);
    {
        let _exclusive = store.snapshot.write().unwrap_or_else(|p| p.into_inner());
        store.tree.apply_batch(switch)?;
        store.generation.store(next, std::sync::atomic::Ordering::Release);
    }
    store.durable.sync_now(&store.db)?;
    clear_generation(store, current)?;
    store.durable.sync_now(&store.db)?;
    drop(counters);
    Ok(replayed)
}

/// Deletes every projection row of `generation`, in short batches.
pub fn clear_generation(store: &SledStore, generation: u8) -> Result<(), StoreError> {
    loop {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in store
            .tree
            .scan_prefix(keys::generation_prefix(generation))
            .take(WRITE_BATCH)
        {
            batch.remove(item?.0);
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        store.tree.apply_batch(batch)?;
    }
}
