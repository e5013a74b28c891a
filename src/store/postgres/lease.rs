//! Leases on PostgreSQL: a session advisory lock, taken and kept on a connection of its own by a
//! thread of its own (the synchronous client must not be dropped on an async worker). The thread
//! checks the connection every few seconds; when it fails, the database has released the lock
//! and the lease is marked lost. Dropping the lease ends the thread, whose connection closing
//! releases the lock.

use super::fault;
use crate::store::lease::Lease;
use crate::store::StoreError;
use concept_core::StoreFault;
use postgres::NoTls;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// How often the holding thread checks that its connection (and so its lock) is still there.
const CHECK_EVERY: Duration = Duration::from_secs(3);

/// The advisory lock key of a lease name: FNV-1a, fixed here so that every instance, whatever
/// its build, computes the same key.
fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "librarycache lease ".bytes().chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Tries to take the lease `name`: `Ok(None)` when another connection holds it.
pub(super) fn try_lease(config: &postgres::Config, name: &str) -> Result<Option<Lease>, StoreError> {
    let config = config.clone();
    let key = lock_key(name);
    let (granted_tx, granted_rx) = channel::<Result<bool, StoreError>>();
    let (release_tx, release_rx) = channel::<()>();
    let held = Arc::new(AtomicBool::new(true));
    let keeper_held = Arc::clone(&held);
    std::thread::Builder::new()
        .name(format!("lease {name}"))
        .spawn(move || {
            let mut client = match config.connect(NoTls) {
                Ok(client) => client,
                Err(e) => {
                    granted_tx.send(Err(fault(e))).ok();
                    return;
                }
            };
            let granted = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map(|row| row.get::<_, bool>(0))
                .map_err(fault);
            let keep = matches!(granted, Ok(true));
            granted_tx.send(granted).ok();
            if !keep {
                return;
            }
            loop {
                match release_rx.recv_timeout(CHECK_EVERY) {
                    Err(RecvTimeoutError::Timeout) => {
                        if client.is_valid(CHECK_EVERY).is_err() {
                            keeper_held.store(false, Ordering::SeqCst);
                            return;
                        }
                    }
                    // Given up (the lease was dropped): closing the connection releases the lock.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .map_err(|e| StoreError::Fault(StoreFault::new(format!("cannot start the lease thread: {e}"))))?;
    match granted_rx.recv() {
        Ok(Ok(true)) => Ok(Some(Lease::kept(held, release_tx))),
        Ok(Ok(false)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError::Fault(StoreFault::new(
            "the lease thread ended without an answer",
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_are_fixed_and_distinct() {
        assert_eq!(super::lock_key("SpotifySource"), super::lock_key("SpotifySource"));
        assert_ne!(super::lock_key("SpotifySource"), super::lock_key("Scheduling"));
    }
}
