//! Which PostgreSQL errors are statement errors (results) and which are replica faults.
//!
//! The rule behind the split: a [`SqlError`] is returned to the client and the log moves on, so
//! it must be what *every* replica gets for that statement at that point of the log. Anything
//! that depends on this replica's environment, on timing, or on other connections than
//! Barista's own sequential ones is a [`BackendFault`] instead: the replica stops at the slot,
//! rolls back, and retries it, and never records a result the others may not have.
//!
//! Faults, by SQLSTATE class or code (see [`is_replica_fault`]):
//! - severity `FATAL` or `PANIC`, whatever the code: the server ends the connection, so the
//!   session (and its open transaction) is gone on this replica only;
//! - `08` connection exception: the connection is broken or the protocol out of step (08P01;
//!   the backend never sends a malformed message on purpose: wrong parameter counts are caught
//!   before they reach the server);
//! - `40` transaction rollback (40001 serialization failure, 40P01 deadlock): they depend on
//!   which transactions ran concurrently. The executor runs one statement at a time, so among
//!   Barista's own sessions they cannot happen; when they do, something else (a connection that
//!   is not Barista's, or a session PostgreSQL has not yet noticed is closed) is involved, and
//!   only this replica is affected;
//! - `53` insufficient resources (53100 disk full, 53200 out of memory, 53300 too many
//!   connections, 53400 configuration limit exceeded, e.g. `temp_file_limit`): this replica's
//!   machine or configuration;
//! - `57` operator intervention (57014 query canceled: a cancel request or a timeout; 57P01 admin
//!   shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P04 database dropped, 57P05 idle
//!   session timeout): an operator or a timer on this replica, not the statement;
//! - `58` system error (58030 I/O error, 58P01 undefined file, e.g. an extension whose files are
//!   not installed on this machine);
//! - `72` snapshot too old (depends on timing and `old_snapshot_threshold`);
//! - `F0` configuration file error; `HV` foreign data wrapper error (another system, reached from
//!   this replica only); `XX` internal error (XX001 data corrupted, XX002 index corrupted, and
//!   internal errors, which are this server's bug or damage, not the statement's);
//! - single codes from otherwise deterministic classes: 25P03 idle-in-transaction timeout and
//!   25P04 transaction timeout (timers), 55P03 lock not available (`NOWAIT` or `lock_timeout`
//!   meeting a lock whose holder depends on timing, e.g. a dropped session PostgreSQL has not yet
//!   cleaned up).
//!
//! Everything else is a statement error: syntax and name errors (42), constraint violations (23),
//! data exceptions (22), invalid transaction state (25, e.g. 25P02), PL/pgSQL `RAISE` (P0), and
//! so on. They are deterministic only if every replica has the same schema, roles, extensions,
//! PostgreSQL major version, server encoding and `lc_messages` (messages are part of the recorded
//! outcome); Barista requires that of its replicas.
//!
//! The price of a fault is liveness, not safety: a statement that deterministically raises a
//! fault code (a query that runs out of memory everywhere) stops every replica at that slot,
//! where a statement error would have let the log move on. Divergent data would be worse.
//!
//! Errors without a server error (I/O, a closed connection, a message the client could not parse
//! or encode) are faults too: the session's state is unknown.

use tokio_postgres::error::{DbError, Severity};

use crate::sql::{BackendFault, SqlError};

/// SQLSTATE classes (the first two characters) whose every code is a replica fault.
const FAULT_CLASSES: [&str; 9] = ["08", "40", "53", "57", "58", "72", "F0", "HV", "XX"];

/// Codes from otherwise deterministic classes that are replica faults.
const FAULT_CODES: [&str; 3] = ["25P03", "25P04", "55P03"];

/// Whether an error with this SQLSTATE (at severity `ERROR`) means the replica itself is unwell,
/// rather than that the statement failed the same way it fails everywhere. See the module docs
/// for the list and the reasoning.
pub fn is_replica_fault(sqlstate: &str) -> bool {
    FAULT_CODES.contains(&sqlstate) || FAULT_CLASSES.iter().any(|class| sqlstate.starts_with(class))
}

/// Whether the server ends the connection with this error.
fn ends_the_connection(db: &DbError) -> bool {
    match db.parsed_severity() {
        Some(severity) => matches!(severity, Severity::Fatal | Severity::Panic),
        // Servers before 9.6 send only the localized severity.
        None => matches!(db.severity(), "FATAL" | "PANIC"),
    }
}

/// PostgreSQL's message with its detail and hint, as psql shows them: all of it is determined by
/// the statement and the data (key values, names), and the client needs it to act.
fn full_message(db: &DbError) -> String {
    let mut message = db.message().to_owned();
    if let Some(detail) = db.detail() {
        message.push_str("\nDETAIL: ");
        message.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        message.push_str("\nHINT: ");
        message.push_str(hint);
    }
    message
}

/// A server error as a statement error or a fault.
pub(crate) fn classify_db(db: &DbError) -> Result<SqlError, BackendFault> {
    let sqlstate = db.code().code();
    if ends_the_connection(db) || is_replica_fault(sqlstate) {
        return Err(BackendFault(format!("PostgreSQL {}: {} (SQLSTATE {sqlstate})", db.severity(), db.message())));
    }
    Ok(SqlError { sqlstate: sqlstate.to_owned(), message: full_message(db) })
}

/// A client error as a statement error or a fault.
pub(crate) fn classify(error: &tokio_postgres::Error) -> Result<SqlError, BackendFault> {
    match error.as_db_error() {
        Some(db) => classify_db(db),
        None => Err(BackendFault(format!("PostgreSQL connection: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_the_environment_and_timing_classes() {
        for code in [
            "08000", "08003", "08006", "08P01", "40001", "40P01", "53100", "53200", "53300", "53400", "57014", "57P01",
            "57P02", "57P03", "57P04", "57P05", "58000", "58030", "58P01", "72000", "F0000", "HV00N", "XX000", "XX001",
            "XX002", "25P03", "25P04", "55P03",
        ] {
            assert!(is_replica_fault(code), "{code} should be a fault");
        }
    }

    #[test]
    fn statement_errors_are_the_deterministic_ones() {
        for code in [
            "23505", "23503", "23502", "23514", "23P01", "42601", "42P01", "42703", "42883", "42501", "22012", "22003",
            "22P02", "22021", "25P02", "25001", "25006", "0A000", "P0001", "P0004", "54000", "54001", "55000", "55006",
            "3D000", "3F000", "2BP01", "21000", "26000", "44000",
        ] {
            assert!(!is_replica_fault(code), "{code} should be a statement error");
        }
    }
}
