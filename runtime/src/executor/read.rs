//! Reads inside the open transaction, answered by the serving replica without the log.
//!
//! Under the one-open-transaction rule ([`super::policy`]) the session that holds the open
//! transaction is the only one that changes the database until that transaction ends: every other
//! session's command in the log meanwhile is answered `Busy` and runs nothing. So a statement of
//! that transaction that only reads sees, on the replica that applied the transaction's earlier
//! statements, exactly what it would see if it went through the log: the state after those
//! statements, with nothing interleaved. And since it changes nothing, the other replicas need not
//! run it. Such a read costs one or two round trips to this replica's PostgreSQL instead of a
//! consensus round (about a quarter of an interactive TPC-C transaction's statements).
//!
//! A read is answered here only when all of this holds, else it goes through the log as before:
//! - its session holds the open transaction on this replica, and that transaction has not failed;
//! - the request directly follows the session's last one that this replica applied or read (or
//!   repeats that read): a client that failed over to a replica that has not yet applied its
//!   previous statement is served through the log, which orders it after that statement;
//! - the session's last command in the log was proposed less than half the idle-transaction
//!   timeout ago. Reads leave no trace in the log, so to every other replica the transaction looks
//!   idle meanwhile, and one of them proposes its abort once the timeout passed since it applied
//!   that command, which it cannot have done before the command was proposed. So a transaction
//!   that only reads for longer sends a read through the log, which restarts every replica's idle
//!   timer, and a read answered here comes before any idle abort is decided as long as the
//!   replicas' clocks differ by less than half the timeout. (Were they further apart, a read could
//!   be answered from a transaction the log has just aborted: the client then learns of the abort
//!   at its next request, as after a serialization failure at `COMMIT`, and nothing committed
//!   depends on what it read);
//! - the determinism policy calls the statement read-only ([`StatementKind::ReadOnly`]), and the
//!   database agrees: it runs under [`SqlSession::read_in_txn`], which refuses any write (a
//!   sequence draw, a write inside a function) instead of undoing it. A refused or failed
//!   statement changed nothing and goes through the log, where it runs for real (and an error
//!   fails the transaction on every replica alike).
//!
//! Nothing is recorded for such a read: a retry reads again, and sees the same state, because the
//! transaction's next change has a later request number.

use std::time::Duration;

use tracing::debug;

use crate::command::{ClientCommand, Op, Statement};
use crate::determinism::StatementKind;
use crate::sql::{BackendFault, SqlBackend, SqlSession};

use super::{Executor, Outcome, SessionState, Txn};

impl<B: SqlBackend> Executor<B> {
    /// Answers `command` here, without the log, if it is a read of the open transaction that may
    /// be (see the module docs); `Ok(None)` when it must go through the log. `window` is how long
    /// after the session's last command in the log its reads may be answered here (half the idle
    /// transaction timeout). A fault leaves the session's connection closed: the transaction's
    /// next command in the log faults too, and the executor replays it from the log.
    pub async fn read(&mut self, command: &ClientCommand, window: Duration) -> Result<Option<Outcome>, BackendFault> {
        let Some((stmt, batch)) = one_statement(&command.op) else { return Ok(None) };
        let Some(timestamp_us) = self.readable(command, window) else { return Ok(None) };
        let checked = match self.checked(stmt, timestamp_us) {
            Ok(checked) if checked.kind == StatementKind::ReadOnly => checked,
            _ => return Ok(None),
        };
        let sql = checked.sql(&stmt.sql);
        let Some(db) = self.sessions.get_mut(&command.conn).and_then(|s| s.db.as_mut()) else { return Ok(None) };
        let Ok(rows) = db.read_in_txn(sql, &stmt.params).await? else { return Ok(None) };
        if let Some(session) = self.sessions.get_mut(&command.conn) {
            session.read_seq = Some(command.request_seq);
        }
        debug!(conn = %command.conn, request = command.request_seq, "read answered without the log");
        Ok(Some(Outcome::of_statement(batch, Ok(rows))))
    }

    /// The open transaction's timestamp, if `command` may be read here; see the module docs.
    fn readable(&self, command: &ClientCommand, window: Duration) -> Option<i64> {
        if self.faulted || self.open_txn != Some(command.conn) {
            return None;
        }
        let session = self.sessions.get(&command.conn)?;
        let Txn::Open { timestamp_us, failed: false } = session.txn else { return None };
        let last = session.last.as_ref().map(|(seq, _)| *seq);
        let previous = last.max(session.read_seq)?;
        let next = previous.checked_add(1)?;
        // A retry of the last read, if nothing came after it (a late duplicate would see more).
        let retry = session.read_seq == Some(command.request_seq) && command.request_seq == previous;
        let in_turn = command.request_seq == next || retry || planted!(ReadOutOfTurn);
        let window_us = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        let fresh = session.logged_us.is_some_and(|at| command.timestamp_us < at.saturating_add(window_us));
        (in_turn && fresh && session.state == SessionState::Open).then_some(timestamp_us)
    }
}

/// The statement of an operation that runs one, and whether it is a batch (whose outcome is
/// [`Outcome::Batch`]); only such operations can be reads answered outside the log, or join a
/// slot transaction (see `slot_txn`).
pub fn one_statement(op: &Op) -> Option<(&Statement, bool)> {
    match op {
        Op::Execute(stmt) => Some((stmt, false)),
        // A batch of one is that statement, atomic or not.
        Op::ExecuteBatch { statements, .. } if statements.len() == 1 => Some((&statements[0], true)),
        _ => None,
    }
}
