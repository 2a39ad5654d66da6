//! What a call can fail with, by what the caller should do about it.

use crate::generated as g;

/// A failed call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The statement failed in PostgreSQL, the same way on every replica.
    #[error("{message} (SQLSTATE {sqlstate})")]
    Sql {
        /// PostgreSQL's SQLSTATE, e.g. `23505` for a unique violation.
        sqlstate: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// Barista will not replicate the statement (it could make replicas differ); nothing ran.
    #[error("refused: {message} (SQLSTATE {sqlstate})")]
    Refused {
        /// `0A000`, or `42601` for a statement that does not parse.
        sqlstate: String,
        /// What was refused and what to write instead.
        message: String,
    },
    /// The call does not fit the connection's state (closed connection, no open transaction...).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The call is malformed or over a server limit.
    #[error("bad request: {message}")]
    BadRequest {
        /// The limit's SQLSTATE (`54000`), if it was one.
        sqlstate: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// No replica could answer within the attempts allowed; each one's last error is listed. The
    /// request may have run once (never twice): retrying it with a new client is not safe unless
    /// the statement is idempotent.
    #[error("no replica answered: {}", .0.iter().map(|(a, e)| format!("{a}: {e}")).collect::<Vec<_>>().join("; "))]
    Unavailable(Vec<(String, String)>),
    /// This client was closed.
    #[error("the connection is closed")]
    Closed,
}

impl Error {
    /// The SQLSTATE, when the error has one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Sql { sqlstate, .. } | Error::Refused { sqlstate, .. } => Some(sqlstate),
            Error::BadRequest { sqlstate, .. } => sqlstate.as_deref(),
            _ => None,
        }
    }

    /// The error for a server's `DBException` that is an answer (not a reason to fail over).
    pub(crate) fn from_exception(ex: g::DBException) -> Error {
        let message = ex.message.unwrap_or_default();
        match ex.error_code {
            Some(g::ERR_SQL) => Error::Sql { sqlstate: ex.sqlstate.unwrap_or_default(), message },
            Some(g::ERR_REFUSED) => Error::Refused { sqlstate: ex.sqlstate.unwrap_or_default(), message },
            Some(g::ERR_REJECTED) => Error::Rejected(message),
            _ => Error::BadRequest { sqlstate: ex.sqlstate, message },
        }
    }
}

/// True if the exception means "this replica cannot serve now; another may".
pub(crate) fn try_elsewhere(ex: &g::DBException) -> bool {
    matches!(ex.error_code, Some(g::ERR_NOT_READY | g::ERR_OVERLOADED))
}
