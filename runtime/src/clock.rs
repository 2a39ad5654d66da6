//! Wall-clock time, behind a trait so the simulation can supply its own.
//!
//! Only the replica that proposes a command reads the clock (to stamp it); from then on the
//! timestamp is data in the log, so every replica computes the same `now()`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in microseconds since the Unix epoch, UTC.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now_us(&self) -> i64;
}

/// The system clock. Under madsim, `SystemTime` is the simulator's virtual clock, so this is
/// deterministic there too.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        // Before 1970 only on a broken clock; 0 keeps commands well-formed.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
    }
}
