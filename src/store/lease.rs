//! Leases: which process runs a concept's background work when several service instances share
//! one store. A lease is held until it is dropped or its holder's connection to the store is
//! lost; whoever holds it runs the work, the others stand by and try again.
//!
//! The embedded sled store admits one process, so its leases are always granted and never lost
//! ([`Lease::local`]). The PostgreSQL store grants them with session advisory locks, which the
//! database releases when the holder's connection ends (a killed instance included).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A granted lease. Dropping it gives the lease up.
pub struct Lease {
    /// False once the holder lost its hold (its connection to the store ended).
    held: Arc<AtomicBool>,
    /// Dropped with the lease, which tells whatever keeps the hold to let go.
    release: Option<std::sync::mpsc::Sender<()>>,
}

impl Lease {
    /// A lease on a store only one process can open: always held.
    pub fn local() -> Self {
        Lease {
            held: Arc::new(AtomicBool::new(true)),
            release: None,
        }
    }

    /// A lease kept by something else (a connection holding a lock): `held` turns false when
    /// the hold is lost, and dropping `release`'s receiver side is how the keeper hears the
    /// lease was given up.
    pub fn kept(held: Arc<AtomicBool>, release: std::sync::mpsc::Sender<()>) -> Self {
        Lease {
            held,
            release: Some(release),
        }
    }

    /// Whether the lease can still be lost (false for a local lease).
    pub fn can_be_lost(&self) -> bool {
        self.release.is_some()
    }

    /// Whether the holder still holds it.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }
}
