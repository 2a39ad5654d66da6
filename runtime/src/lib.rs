//! `barista-runtime`: the node that drives `barista-core`.
//!
//! Not built yet (issue 3). It will hold the event loop (persist, then send, then apply, in the
//! order `barista_core::Ready` demands), the IO traits with their conformance suites
//! (`AcceptorStore`, `SqlBackend`, peer transport, clock), the executor that applies the decided
//! log to PostgreSQL, and the production adapters (ZooKeeper, PostgreSQL, TCP).
