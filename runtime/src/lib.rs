//! `barista-runtime`: the node that drives `barista-core`.
//!
//! - [`command`]: the client commands the log carries, and their versioned encoding.
//! - [`sql`]: the `SqlBackend` trait the executor applies the log through, with the values,
//!   results and the split between statement errors (results) and backend faults (not results).
//! - [`executor`]: applies decided slots in order, with AP and exactly-once bookkeeping in the
//!   replica's own database, under a deterministic scheduling policy.
//! - [`determinism`]: checks each statement before it enters the log; rewrites time functions,
//!   refuses what would make replicas diverge.
//! - [`verify`]: divergence detection: checksums at a log position, reports through the log, and
//!   the majority rule that marks a diverged replica.
//!
//! - [`store`]: the `AcceptorStore` trait (durable promises and votes), an in-memory store and
//!   the conformance suite every store passes.
//! - [`transport`]: the peer `Transport` trait (and an in-process network for tests).
//! - [`tcp`]: the TCP peer transport, the same code over real and simulated sockets.
//! - [`clock`]: wall-clock time for stamping commands.
//! - [`node`]: the event loop: persist, then send, then hand decided slots to the applier,
//!   which applies them beside the loop (`applier.rs`).
//! - [`service`]: what client front ends call: open a session, submit a request, get the outcome.
//! - `testkit` (cargo feature `testkit`): the SQLite stand-in for PostgreSQL, the `SqlBackend`
//!   conformance suite, and helpers that build log slots, for the simulation and for tests.
//!
//! - [`zookeeper`] (normal build only): the production `AcceptorStore`, acceptor state in ZooKeeper.
//!
//! - [`postgres`] (normal build only): the production `SqlBackend`, a replica's PostgreSQL.

/// True if the named [`barista_core::planted::Bug`] is planted; always false outside the
/// simulation build, where the switch does not exist.
#[cfg(madsim)]
macro_rules! planted {
    ($bug:ident) => {
        barista_core::planted::is_planted(barista_core::planted::Bug::$bug)
    };
}
#[cfg(not(madsim))]
macro_rules! planted {
    ($bug:ident) => {
        false
    };
}

mod applier;
pub mod calendar;
pub mod clock;
pub mod command;
pub mod determinism;
pub mod executor;
pub mod node;
pub mod service;
pub mod sql;
pub mod store;
pub mod tcp;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
pub mod verify;
// zookeeper-client spawns real tokio tasks, which fail inside the simulation.
#[cfg(not(madsim))]
pub mod zookeeper;
// tokio-postgres needs real tokio; the simulation uses the SQLite stand-in.
#[cfg(not(madsim))]
pub mod postgres;
