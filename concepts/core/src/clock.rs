//! The one way time enters the service: a [`Clock`] the engine owns and hands on.
//!
//! Nothing that decides — an action, an apply, a query, a concept's background work — reads the
//! system clock. An action sees the time in its [`crate::ActionCtx`], background work asks its
//! [`crate::Host`]'s clock, and both come from the engine's clock. The service runs on
//! [`SystemClock`]; traces and tests run on a [`ManualClock`] they set and move forward, so
//! a trace is a pure function of its text and a test does not depend on the day it runs.
//!
//! Waiting is the clock's job too ([`Clock::sleep_until`]): on a manual clock a wait ends when
//! the clock is moved past its time, not when wall-clock time passes, so a test of a timer or of a
//! rate-limit wait never races a real timer.

use crate::time::{format_rfc3339, from_micros, micros, parse_duration, DurationError};
use chrono::{DateTime, Utc};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A wait for a time, as [`Clock::sleep_until`] hands it out.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where the time comes from. Times are at microsecond precision, the precision the log keeps,
/// so the time a live apply sees is the time a rebuild sees.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The time now.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `at` (at once when it has). Needs a Tokio
    /// runtime with timers for a [`SystemClock`].
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep;
}

/// A clock shared between the engine and what it hands time to.
pub type SharedClock = Arc<dyn Clock>;

/// The environment variable that sets the system clock ahead, for tests only: a duration such as
/// `1900d`. CI runs the time-dependent tests with it so that none depends on the day it runs.
pub const CLOCK_AHEAD_ENV: &str = "LIBRARYCACHE_TEST_CLOCK_AHEAD";

/// The system's clock, optionally set ahead by a fixed amount ([`CLOCK_AHEAD_ENV`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    ahead: chrono::Duration,
}

/// [`CLOCK_AHEAD_ENV`] holds something that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{CLOCK_AHEAD_ENV}: {0}")]
pub struct ClockEnvError(#[from] DurationError);

impl SystemClock {
    /// The system's clock as it is.
    pub fn new() -> Self {
        SystemClock::default()
    }

    /// The system's clock set ahead by `ahead`.
    pub fn ahead(ahead: chrono::Duration) -> Self {
        SystemClock { ahead }
    }

    /// The system's clock, set ahead by [`CLOCK_AHEAD_ENV`] when it is set (tests only).
    pub fn from_env() -> Result<Self, ClockEnvError> {
        match std::env::var(CLOCK_AHEAD_ENV) {
            Ok(v) if !v.trim().is_empty() => Ok(SystemClock::ahead(parse_duration(&v)?)),
            _ => Ok(SystemClock::new()),
        }
    }

    /// How far ahead of the system's time this clock runs.
    pub fn offset(&self) -> chrono::Duration {
        self.ahead
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now()
            .checked_add_signed(self.ahead)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        from_micros(micros(&now))
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        let wait = (at - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to: traces and tests set it and move it forward.
#[derive(Clone)]
pub struct ManualClock {
    time: tokio::sync::watch::Sender<DateTime<Utc>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock({})", format_rfc3339(&self.now()))
    }
}

impl ManualClock {
    /// A clock standing at `at` (truncated to microseconds).
    pub fn at(at: DateTime<Utc>) -> Self {
        ManualClock {
            time: tokio::sync::watch::Sender::new(from_micros(micros(&at))),
        }
    }

    /// Sets the time (backwards too: a test may need a clock that jumps).
    pub fn set(&self, at: DateTime<Utc>) {
        self.time.send_replace(from_micros(micros(&at)));
    }

    /// Moves the time forward by `by`, waking every wait it passes.
    pub fn advance(&self, by: chrono::Duration) {
        self.time.send_modify(|t| {
            *t = t.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC);
        });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.time.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        let mut time = self.time.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current time first; it fails only if the clock is dropped,
            // after which nothing can move it: the wait never ends, as it would not on a stopped
            // clock.
            if time.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> DateTime<Utc> {
        parse_rfc3339(s).expect("a time")
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_at_microsecond_precision() {
        let clock = ManualClock::at(t("2026-11-21T12:00:00.123456789Z"));
        assert_eq!(clock.now(), t("2026-11-21T12:00:00.123456Z"));
        assert_eq!(clock.now(), clock.now());
        clock.advance(chrono::Duration::hours(25));
        assert_eq!(clock.now(), t("2026-11-22T13:00:00.123456Z"));
        clock.set(t("2031-01-01T00:00:00Z"));
        assert_eq!(clock.now(), t("2031-01-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn a_wait_on_a_manual_clock_ends_when_the_clock_passes_its_time() {
        let clock = ManualClock::at(t("2026-01-01T00:00:00Z"));
        // The test's runtime has one thread: the waiting task runs only when this one yields.
        let waiting = tokio::spawn(clock.sleep_until(t("2026-01-01T00:01:00Z")));
        clock.advance(chrono::Duration::seconds(59));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !waiting.is_finished(),
            "the wait ended before the clock reached its time"
        );
        clock.advance(chrono::Duration::seconds(1));
        waiting.await.expect("the wait ends once the clock reaches its time");
        // A time already passed needs no wait.
        clock.sleep_until(t("2025-01-01T00:00:00Z")).await;
    }

    #[test]
    fn the_system_clock_can_be_set_ahead() {
        let ahead = SystemClock::ahead(chrono::Duration::days(1900));
        let gap = ahead.now() - SystemClock::new().now();
        assert!(
            gap >= chrono::Duration::days(1900) - chrono::Duration::minutes(1),
            "{gap}"
        );
        assert!(
            gap <= chrono::Duration::days(1900) + chrono::Duration::minutes(1),
            "{gap}"
        );
    }
}
