//! Gives the heap's free memory back to the operating system now and then. glibc's allocator
//! keeps what a large request freed (a large ingest's input, rows and sled's log buffers: about
//! 300 MB for a 23 MB body) for the next allocation, so without this a server stays at the
//! high-water mark of its largest request for as long as it runs. `malloc_trim` returns the free
//! pages. Other allocators return memory by themselves, and there this does nothing.

use std::time::Duration;

/// How often the free heap is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Trims the heap every [`TRIM_EVERY`], on the blocking pool (a trim walks the heap).
pub async fn trim_periodically() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Returns the heap's free pages to the operating system (glibc only).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
