//! `barista-runtime`: the node that drives `barista-core`.
//!
//! - [`command`]: the client commands the log carries, and their versioned encoding.
//! - [`sql`]: the `SqlBackend` trait the executor applies the log through, with the values,
//!   results and the split between statement errors (results) and backend faults (not results).
//! - [`executor`]: applies decided slots in order, with AP and exactly-once bookkeeping in the
//!   replica's own database, under a deterministic scheduling policy.
//!
//! Still to come (issue 3): the node event loop, the `AcceptorStore` and transport traits, the
//! client-facing service; (issue 4) the ZooKeeper, PostgreSQL and TCP adapters.

pub mod command;
pub mod executor;
pub mod sql;
