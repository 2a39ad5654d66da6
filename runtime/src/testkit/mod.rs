//! Stand-ins and conformance suites for the simulation and for tests (cargo feature `testkit`).
//!
//! - [`sqlite`]: a PostgreSQL stand-in on SQLite, one [`SqliteDb`] per replica, with faults on
//!   demand and a canonical [`Dump`] for comparing replicas.
//! - [`sql_conformance`]: what every `SqlBackend` must do, run against the stand-in here and
//!   against the PostgreSQL adapter by its own tests.
//! - [`slot`]: builds a decided slot's value from client commands, as the log would carry them.

pub mod sql_conformance;
pub mod sqlite;

use barista_core::{Command, NodeId, Value};

use crate::command::ClientCommand;
pub use sqlite::{Dump, SqliteBackend, SqliteDb, SqliteSession, TableDump};

/// The origin node that [`slot`] puts on commands.
pub const ORIGIN: NodeId = 1;

/// A slot's value carrying `commands` in order, encoded as the log carries them. Command ids are
/// their position in the slot: the executor never reads them, and a counter shared by the process
/// would make values differ between otherwise identical (simulation) runs.
pub fn slot(commands: impl IntoIterator<Item = ClientCommand>) -> Value {
    Value::Batch(
        commands
            .into_iter()
            .enumerate()
            .map(|(i, command)| Command { origin: ORIGIN, id: i as u64, payload: command.encode().into() })
            .collect(),
    )
}
