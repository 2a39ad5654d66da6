//! One PostgreSQL-protocol connection as one replicated Barista session: opened on every replica
//! with the connection's first statement, each statement a numbered request of it, and closed
//! (through the log) when the socket goes away.
//!
//! The session also keeps the transaction state the protocol reports in every `ReadyForQuery`
//! (idle, in a transaction, in a failed transaction), from the outcomes of its own requests.

use std::sync::Arc;

use barista_runtime::clock::SystemClock;
use barista_runtime::command::{ConnId, Op};
use barista_runtime::executor::Outcome;
use barista_runtime::service::{Service, ServiceError};
use pgwire::messages::response::TransactionStatus;
use tracing::debug;

/// Where the session's explicit transaction stands, as far as this front end has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Txn {
    /// No explicit transaction.
    Idle,
    /// Inside `BEGIN` ... `COMMIT`.
    Open,
    /// Inside a transaction that a statement error aborted: only its end will be accepted.
    Failed,
}

/// A replicated session.
pub struct Session {
    service: Arc<Service<SystemClock>>,
    conn: ConnId,
    opened: bool,
    /// The last request number used (0 is the open).
    last_seq: u64,
    txn: Txn,
}

impl Session {
    /// A session that will be opened with a fresh connection id on first use.
    pub fn new(service: Arc<Service<SystemClock>>) -> Session {
        let conn = service.new_conn_id();
        Session { service, conn, opened: false, last_seq: 0, txn: Txn::Idle }
    }

    /// The transaction state, for `ReadyForQuery`.
    pub fn status(&self) -> TransactionStatus {
        match self.txn {
            Txn::Idle => TransactionStatus::Idle,
            Txn::Open => TransactionStatus::Transaction,
            Txn::Failed => TransactionStatus::Error,
        }
    }

    /// Where the transaction stands.
    pub fn txn(&self) -> Txn {
        self.txn
    }

    /// Runs `op` as the session's next request (opening the session first if needed) and
    /// follows the transaction state from its outcome.
    pub async fn submit(&mut self, op: Op) -> Result<Outcome, ServiceError> {
        if !self.opened {
            match self.service.open(self.conn).await? {
                Outcome::Opened => self.opened = true,
                other => return Ok(other),
            }
        }
        self.last_seq += 1;
        let ends_txn = matches!(op, Op::Commit | Op::Rollback);
        let begins_txn = op == Op::Begin;
        let outcome = self.service.submit(self.conn, self.last_seq, op).await?;
        self.txn = match (&outcome, self.txn) {
            // Whatever COMMIT or ROLLBACK answered, the transaction is over.
            (_, _) if ends_txn => Txn::Idle,
            (Outcome::Done, Txn::Idle) if begins_txn => Txn::Open,
            (Outcome::Error(_), Txn::Open) => Txn::Failed,
            (Outcome::Batch(results), Txn::Open) if results.iter().any(Result::is_err) => Txn::Failed,
            (_, state) => state,
        };
        Ok(outcome)
    }

    /// Closes the session on every replica (rolling back its open transaction), if it was opened.
    pub async fn close(&mut self) {
        if !self.opened {
            return;
        }
        self.opened = false;
        self.last_seq += 1;
        if let Err(e) = self.service.submit(self.conn, self.last_seq, Op::Close).await {
            // The idle-transaction timeout rolls back what this could not.
            debug!(conn = %self.conn, "closing the session of a PostgreSQL-protocol connection: {e}");
        }
    }
}
