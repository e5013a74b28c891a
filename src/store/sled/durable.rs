//! Durable acknowledgements: concurrent actions that each need their commit on disk share one
//! flush, and a flush reaches the disk.
//!
//! Every commit bumps a generation counter. A caller that needs generation g durable either
//! finds it already flushed, starts a flush (which covers every generation committed so far), or
//! waits for the running flush and then re-checks. A flush is sled's blocking `flush` (its log
//! buffers written to the file with `pwrite` and `sync_file_range`, which survives the process
//! but not the machine) followed by `fdatasync` of the store's file, which makes the written
//! pages and the file's size stable on the device. sled's async flush deadlocks under
//! concurrency on 0.34, so the blocking one is used.

use crate::store::StoreError;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

/// The store's durability: the group flush and the files it syncs.
pub struct Durable {
    group: GroupFlush,
    /// Flushes that reached the disk (for tests and diagnostics).
    flushes: std::sync::atomic::AtomicU64,
    /// The store's data file (`dir/db`), opened for `fdatasync`; `None` for a temporary store.
    file: Option<File>,
    /// sled's blob directory (a node too large for its log goes to a file of its own there,
    /// which sled writes without syncing), and the blob files already synced.
    blobs: Option<(PathBuf, Mutex<std::collections::HashSet<std::ffi::OsString>>)>,
}

impl Durable {
    /// Opens the store's file `path` for syncing; sled's `conf` and the directory are synced
    /// once, so the files sled created survive a crash.
    pub fn new(path: Option<PathBuf>) -> Result<Self, StoreError> {
        let blobs = path
            .as_ref()
            .and_then(|p| p.parent())
            .map(|dir| (dir.join("blobs"), Mutex::new(Default::default())));
        let file = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    // sled writes its `conf` (segment size, format version) when it creates a
                    // store and never syncs it: a store whose conf a power cut emptied does
                    // not open.
                    let conf = dir.join("conf");
                    if conf.exists() {
                        File::open(&conf).and_then(|f| f.sync_all()).map_err(io_fault)?;
                    }
                    File::open(dir).and_then(|d| d.sync_all()).map_err(io_fault)?;
                }
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_fault)?;
                file.sync_all().map_err(io_fault)?;
                Some(file)
            }
            None => None,
        };
        Ok(Durable {
            group: GroupFlush::new(),
            flushes: Default::default(),
            file,
            blobs,
        })
    }

    /// Records a new commit (one that changed state, or of records only); returns its generation.
    pub fn committed(&self, changes_state: bool) -> u64 {
        self.group.committed(changes_state)
    }

    /// The generation of the last commit that changed state.
    pub fn last_change(&self) -> u64 {
        self.group.last_change()
    }

    /// Returns once generation `generation` is on disk.
    pub fn wait(&self, generation: u64, db: &sled::Db) -> Result<(), StoreError> {
        self.group.wait(generation, || self.sync_now(db))
    }

    /// Flushes and syncs now.
    pub fn sync_now(&self, db: &sled::Db) -> Result<(), StoreError> {
        db.flush()?;
        if let Some(file) = &self.file {
            file.sync_data().map_err(io_fault)?;
        }
        self.sync_blobs()?;
        self.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// How many flushes reached the disk since the store was opened.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Syncs blob files sled wrote since the last flush, and their directory. The store keeps
    /// its rows small enough that sled seldom writes one (see `concept_core::chunked`).
    fn sync_blobs(&self) -> Result<(), StoreError> {
        let Some((dir, synced)) = &self.blobs else {
            return Ok(());
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut synced = synced.lock().unwrap_or_else(|p| p.into_inner());
        let mut new = false;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if synced.contains(&name) {
                continue;
            }
            match File::open(entry.path()).and_then(|f| f.sync_all()) {
                Ok(()) => {}
                // Collected by sled meanwhile: nothing to sync.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_fault(e)),
            }
            synced.insert(name);
            new = true;
        }
        if new {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io_fault)?;
        }
        Ok(())
    }
}

fn io_fault(e: std::io::Error) -> StoreError {
    StoreError::Fault(concept_core::StoreFault::new(format!("syncing the store's file: {e}")))
}

#[derive(Default)]
struct State {
    committed: u64,
    /// The last commit that changed state (what a read waits for).
    last_change: u64,
    durable: u64,
    flushing: bool,
}

#[derive(Default)]
pub struct GroupFlush {
    state: Mutex<State>,
    changed: Condvar,
}

impl GroupFlush {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a new commit; returns its generation.
    pub fn committed(&self, changes_state: bool) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.committed += 1;
        if changes_state {
            s.last_change = s.committed;
        }
        s.committed
    }

    /// The generation of the last commit that changed state (0 before any).
    pub fn last_change(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).last_change
    }

    /// Blocks until `generation` is durable, calling `flush` when this caller leads a flush. A
    /// generation beyond the last commit (e.g. `u64::MAX`: "everything so far") means the last
    /// commit.
    pub fn wait<E>(&self, generation: u64, flush: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let generation = generation.min(s.committed);
        loop {
            if s.durable >= generation {
                return Ok(());
            }
            if !s.flushing {
                s.flushing = true;
                let target = s.committed;
                drop(s);
                let result = flush();
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.flushing = false;
                if result.is_ok() {
                    s.durable = s.durable.max(target);
                }
                self.changed.notify_all();
                result?;
                continue;
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A flush that only counts its calls in `flushes`.
    fn counting(flushes: &AtomicUsize) -> impl Fn() -> Result<(), ()> + Copy + '_ {
        move || {
            flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn waiting_for_everything_flushes_once_and_returns() {
        let group = GroupFlush::new();
        let flushes = AtomicUsize::new(0);
        let flush = counting(&flushes);
        // Nothing committed: nothing to wait for.
        group.wait(u64::MAX, flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 0);
        let g = group.committed(true);
        group.committed(false);
        group.wait(u64::MAX, flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        // Already durable: no second flush.
        group.wait(g, flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn commits_of_records_only_leave_the_last_change_where_it_was() {
        let group = GroupFlush::new();
        let flushes = AtomicUsize::new(0);
        let flush = counting(&flushes);
        assert_eq!(group.last_change(), 0);
        let change = group.committed(true);
        group.committed(false);
        group.committed(false);
        assert_eq!(group.last_change(), change);
        // A read waits for the change: one flush, which covers the records too.
        group.wait(group.last_change(), flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        // More reads' records: the change is on disk already, nothing to flush.
        group.committed(false);
        group.wait(group.last_change(), flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }
}
