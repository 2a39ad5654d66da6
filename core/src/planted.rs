//! Bugs that can be planted on purpose, to prove the simulation's checkers catch them.
//!
//! Compiled only into the simulation build (`--cfg madsim`): a production binary has no switch to
//! flip. The switch is thread-local because every simulation run owns its thread, so parallel runs
//! with and without a bug never see each other's setting.

use std::cell::Cell;

/// A deliberately broken rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// The node sends a `Ready`'s messages before persisting it: a vote can be forgotten.
    ReplyBeforePersist,
    /// The executor never writes AP: a restarted replica cannot know where it is.
    SkipApUpdate,
    /// The executor ignores the exactly-once table: retries run again.
    NoExactlyOnce,
    /// A new leader proposes no-ops over values reported accepted in its promises.
    LeaderOverridesAccepted,
    /// The applier reports a slot `Done` once applied, before the database flushed it: a
    /// database power failure then needs slots the log may have forgotten.
    DoneBeforeFlush,
    /// The executor answers a read of the open transaction without the log even when it has not
    /// applied the session's previous request (a client that failed over to a lagging replica).
    ReadOutOfTurn,
}

thread_local! {
    static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
}

/// Plants `bug` (or none) for runs on this thread.
pub fn plant(bug: Option<Bug>) {
    ACTIVE.with(|a| a.set(bug));
}

/// True if `bug` is planted on this thread.
pub fn is_planted(bug: Bug) -> bool {
    ACTIVE.with(|a| a.get() == Some(bug))
}
