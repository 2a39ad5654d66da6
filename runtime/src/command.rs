//! What the replicated log carries: client commands, encoded into the core's opaque payloads.
//!
//! A [`ClientCommand`] is `{ conn, request_seq, op }`. The encoding is a version byte followed by
//! postcard (serde) bytes, so a node can refuse a payload written by an incompatible version with
//! a clear error instead of misreading it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::sql::SqlValue;
use crate::verify::DatabaseDigest;

/// A replicated client connection. Chosen at random by the replica that opens it, so replicas
/// never need to coordinate to hand out ids (a collision is refused by the executor).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One statement with its parameters.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Statement {
    /// SQL text, already checked (and, for time functions, marked for rewriting) by the
    /// determinism policy.
    pub sql: String,
    /// Positional parameters `$1..`.
    pub params: Vec<SqlValue>,
}

/// What a command asks the replicas to do.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Op {
    /// Open the session on every replica.
    Open,
    /// One statement; autocommit unless the session is in a transaction.
    Execute(Statement),
    /// Several statements. `atomic`: all in one transaction (the fast path for whole
    /// transactions: no lock is held across client round trips).
    ExecuteBatch {
        /// The statements, in order.
        statements: Vec<Statement>,
        /// Run them in one transaction, all or nothing.
        atomic: bool,
    },
    /// Start an explicit transaction.
    Begin,
    /// Commit it.
    Commit,
    /// Roll it back.
    Rollback,
    /// Close the session (rolling back an open transaction).
    Close,
    /// Internal: abort the session's transaction if it is still the one that went idle. Proposed
    /// by a replica that saw the transaction idle for the configured timeout; `since_request` is
    /// the last request it saw, so a transaction that made progress meanwhile is left alone.
    AbortIdle {
        /// The session's last request sequence when the timeout fired.
        since_request: u64,
    },
    // New variants go last: postcard encodes a variant by its index, and logs and stores hold
    // the indices of the ones above.
    /// Internal: every replica checksums its database at this point of the log (see
    /// [`crate::verify`]); the check's id is this slot. Waits like a `BEGIN`: while a client
    /// transaction is open it is answered `Busy` and retried. `conn` is a fresh id naming only the
    /// request, so the replica that proposed it can answer it.
    Checksum,
    /// Internal: `replica`'s digest for the check at slot `check`, proposed by that replica once it
    /// applied the check.
    ChecksumReport {
        /// The slot of the check.
        check: barista_core::Slot,
        /// The reporting replica.
        replica: barista_core::NodeId,
        /// Its digest.
        digest: DatabaseDigest,
    },
}

/// A command in the log.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ClientCommand {
    /// The session.
    pub conn: ConnId,
    /// Per-connection request number; a retry reuses it, so the executor runs it once.
    pub request_seq: u64,
    /// Wall-clock time (microseconds since the Unix epoch, UTC) chosen once, by the replica that
    /// proposed the command. Time functions in SQL are replaced by the transaction's timestamp,
    /// derived from these deterministically, so every replica computes the same values.
    pub timestamp_us: i64,
    /// What to do.
    pub op: Op,
}

/// Encoding version written in front of every payload.
const VERSION: u8 = 1;

/// A payload that is not a command this version understands.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Empty payload.
    #[error("empty command payload")]
    Empty,
    /// Written by another encoding version.
    #[error("command encoding version {0} is not supported (this build reads version {VERSION})")]
    Version(u8),
    /// Corrupt or truncated.
    #[error("malformed command: {0}")]
    Malformed(String),
}

impl ClientCommand {
    /// Encodes the command for [`barista_core::Replica::propose`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        // Serializing plain data into a Vec cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Decodes a payload from the log.
    pub fn decode(bytes: &[u8]) -> Result<ClientCommand, DecodeError> {
        let (version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if *version != VERSION {
            return Err(DecodeError::Version(*version));
        }
        postcard::from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_bad_payloads_are_errors() {
        let command = ClientCommand {
            conn: ConnId(7),
            request_seq: 3,
            timestamp_us: 1_700_000_000_000_000,
            op: Op::Execute(Statement {
                sql: "insert into t values ($1, $2)".into(),
                params: vec![SqlValue::Int(1), SqlValue::Null],
            }),
        };
        let bytes = command.encode();
        assert_eq!(ClientCommand::decode(&bytes), Ok(command));
        assert_eq!(ClientCommand::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(ClientCommand::decode(&[9, 1, 2]), Err(DecodeError::Version(9)));
        assert!(matches!(ClientCommand::decode(&bytes[..bytes.len() / 2]), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn existing_variants_keep_their_encoding() {
        // Variant indices are in every stored log: new variants must only ever be appended.
        let command =
            ClientCommand { conn: ConnId(1), request_seq: 2, timestamp_us: 3, op: Op::AbortIdle { since_request: 4 } };
        assert_eq!(command.encode(), [1, 1, 2, 6, 7, 4]);
        let check = ClientCommand { op: Op::Checksum, ..command };
        assert_eq!(ClientCommand::decode(&check.encode()), Ok(check));
    }
}
