//! Group commit: concurrent actions that each need their commit on disk share one flush.
//!
//! Every commit bumps a generation counter. A caller that needs generation g durable either
//! finds it already flushed, starts a flush (which covers every generation committed so far), or
//! waits for the running flush and then re-checks. sled's blocking `flush` is used; its async
//! twin deadlocks under concurrency on 0.34.

use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct State {
    committed: u64,
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
    pub fn committed(&self) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.committed += 1;
        s.committed
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

    #[test]
    fn waiting_for_everything_flushes_once_and_returns() {
        let group = GroupFlush::new();
        let flushes = AtomicUsize::new(0);
        let flush = || -> Result<(), ()> {
            flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        // Nothing committed: nothing to wait for.
        group.wait(u64::MAX, flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 0);
        let g = group.committed();
        group.committed();
        group.wait(u64::MAX, flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        // Already durable: no second flush.
        group.wait(g, flush).expect("flushed");
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }
}
