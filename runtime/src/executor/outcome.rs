//! What a command produced, as returned to the client and recorded for exactly-once retries.

use serde::{Deserialize, Serialize};

use crate::sql::{ResultSet, SqlError};

/// The result of one applied command.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// The session exists on every replica.
    Opened,
    /// A statement's result.
    Rows(ResultSet),
    /// A batch's results, in order. An atomic batch that failed reports the failing statement's
    /// error last and nothing after it; the whole batch was rolled back.
    Batch(Vec<Result<ResultSet, SqlError>>),
    /// Begin, commit, rollback or close succeeded.
    Done,
    /// The statement failed the same way on every replica.
    Error(SqlError),
    /// Not run because another session holds the open transaction; retry with the same sequence.
    Busy,
    /// Refused by Barista: unknown or closed connection, a stale request, a transaction-state
    /// error. Deterministic, like a SQL error.
    Rejected(String),
    // New variants go last: recorded outcomes hold the indices of the ones above.
    /// A divergence check ran here; its id is this slot (see [`crate::verify`]).
    Checksum {
        /// The check's slot.
        check: barista_core::Slot,
    },
}

impl Outcome {
    /// The outcome of a request that runs one statement (see [`super::one_statement`]): a batch
    /// of one, or a statement's rows or error.
    pub(crate) fn of_statement(batch: bool, result: Result<ResultSet, SqlError>) -> Outcome {
        match (batch, result) {
            (true, result) => Outcome::Batch(vec![result]),
            (false, Ok(rows)) => Outcome::Rows(rows),
            (false, Err(e)) => Outcome::Error(e),
        }
    }

    /// Encodes for the exactly-once table.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a recorded outcome; a record this build cannot read is reported as such.
    pub fn decode(bytes: &[u8]) -> Outcome {
        postcard::from_bytes(bytes).unwrap_or_else(|e| Outcome::Rejected(format!("unreadable recorded outcome: {e}")))
    }
}
