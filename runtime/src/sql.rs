//! The SQL side of a replica: the `SqlBackend` trait the executor applies the log through, and the
//! values, results and errors that cross it.
//!
//! Two kinds of failure are kept apart on purpose. A [`SqlError`] (constraint violation, syntax
//! error, ...) is a *result*: every replica gets the same one, it goes back to the client, and the
//! log moves on. A [`BackendFault`] (PostgreSQL down, disk full, connection lost) is not: that
//! replica stops applying at that slot and retries, and never skips it.

use std::future::Future;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::verify::{Coverage, DatabaseDigest};

/// A value in a parameter or a result row. `Null` is distinct from every empty value.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// boolean.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// Any floating-point type.
    Float(f64),
    /// Text, and every type returned in text form (numeric, timestamps, ...).
    Text(String),
    /// bytea.
    Bytes(Vec<u8>),
}

/// A result column: its name and PostgreSQL type name.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type name as PostgreSQL reports it (`int4`, `text`, ...).
    pub type_name: String,
}

/// The result of one statement.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct ResultSet {
    /// Columns, empty for statements that return no rows.
    pub columns: Vec<Column>,
    /// Rows.
    pub rows: Vec<Vec<SqlValue>>,
    /// Rows inserted, updated or deleted (or returned, for a query).
    pub rows_affected: u64,
}

/// A deterministic statement error: part of the result, the same on every replica.
#[derive(Clone, PartialEq, Eq, Debug, Error, Serialize, Deserialize)]
#[error("{message} (SQLSTATE {sqlstate})")]
pub struct SqlError {
    /// The five-character SQLSTATE.
    pub sqlstate: String,
    /// The server's message.
    pub message: String,
}

/// A failure of the replica's own database, not of the statement. Never a result.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("database fault: {0}")]
pub struct BackendFault(pub String);

/// PostgreSQL's SQLSTATE for a write refused in a read-only transaction.
pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";

/// One of Barista's own writes: SQL and its parameters (see [`SqlSession::write_own`]).
pub type OwnWrite<'a> = (&'a str, &'a [SqlValue]);

/// One database connection, used by one replicated session (or by the executor's bookkeeping).
pub trait SqlSession: Send {
    /// Prefix naming the schema of Barista's own tables (`public.` in PostgreSQL). Bookkeeping
    /// statements run inside a client's transaction, where its `SET LOCAL search_path` is in
    /// force: unqualified, the tables vanished, every replica halted at that slot, and the cluster
    /// stopped for good (found by server/tests/determinism_cases.rs).
    const BOOKKEEPING_SCHEMA: &'static str = "";

    /// What the executor runs right after each `BEGIN` of a transaction that runs client
    /// statements, in the same round trip, if anything. PostgreSQL takes `ROW EXCLUSIVE` on
    /// `sqlpaxoslog` (the lock AP's update takes anyway, only earlier), so that a re-seed holding
    /// `EXCLUSIVE` on it stops the executor between transactions, before any work, where no
    /// sequence draw is outstanding (see `barista reseed`). AP rides in the commits of the work,
    /// so without this a steady load of inserts with a `serial` key never left such a moment.
    const BEGIN_LOCK: Option<&'static str> = None;

    /// Runs one statement. Statement errors are `Ok(Err(_))`; only faults are `Err(_)`.
    ///
    /// To ensure correctness an implementation must:
    /// - run statements on one connection, so `BEGIN` ... `COMMIT` across calls is one transaction;
    /// - report a statement error as `Ok(Err(..))` with its SQLSTATE and leave the connection
    ///   usable (inside a transaction, the transaction is then aborted, as PostgreSQL does);
    /// - report a lost connection or an unavailable server as `Err(BackendFault)`; the executor
    ///   will drop the session and retry the whole slot.
    fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Result<ResultSet, SqlError>, BackendFault>> + Send;

    /// Digests the whole database in one consistent read, for a divergence check
    /// ([`crate::verify`]): every table outside the system schemas in full, and Barista's own
    /// tables (in [`SqlSession::BOOKKEEPING_SCHEMA`]) as `bookkeeping` says. Called with no
    /// transaction open on this session.
    ///
    /// To ensure correctness an implementation must give equal digests for equal data whatever
    /// the physical order of the rows, and leave the session with no transaction open. Any error
    /// is a fault: the executor stops at the slot and retries it.
    fn checksum(
        &mut self,
        bookkeeping: &'static [(&'static str, Coverage)],
    ) -> impl Future<Output = Result<DatabaseDigest, BackendFault>> + Send;

    /// Runs `statements`, Barista's own and without parameters, in order, stopping at the first
    /// error, which is returned. A backend sends them in one round trip where it can
    /// (PostgreSQL: one simple query); the default runs them one by one.
    fn execute_all(
        &mut self,
        statements: &[&str],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        async move {
            for sql in statements {
                if let Err(e) = self.execute(sql, &[]).await? {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        }
    }

    /// Runs one of Barista's own writes (bookkeeping), whose parameters have the types of their
    /// values (`Int` is `bigint`, `Bytes` is `bytea`, `Text` is `text`, ...; never NULL) and which returns no
    /// rows. A backend can then send it in one round trip, where [`SqlSession::execute`] must ask
    /// the server for the parameter types first; the default does just that.
    fn write_own(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        async move { Ok(self.execute(sql, params).await?.map(drop)) }
    }

    /// [`SqlSession::write_own`] of each of `writes` in order, sent together where the backend can
    /// (PostgreSQL: pipelined, one round trip); stops at the first error, which is returned.
    fn write_own_all(
        &mut self,
        writes: &[OwnWrite<'_>],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        async move {
            for (sql, params) in writes {
                if let Err(e) = self.write_own(sql, params).await? {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        }
    }

    /// `begin` (Barista's own statements without parameters, which begin a transaction or a
    /// savepoint in one: see [`SqlSession::execute_all`]), then one statement as
    /// [`SqlSession::execute`] runs it, sent
    /// together where the backend can (PostgreSQL: the `BEGIN` pipelined with the statement's
    /// preparation, or with its execution when the statement is kept prepared). A failure of
    /// `begin` is a fault; the result is the statement's.
    fn execute_begun(
        &mut self,
        begin: &[&str],
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Result<ResultSet, SqlError>, BackendFault>> + Send {
        async move {
            if let Err(e) = self.execute_all(begin).await? {
                return Err(BackendFault(format!("transaction control failed: {e}")));
            }
            self.execute(sql, params).await
        }
    }

    /// [`SqlSession::write_own`] of each of `writes` in order, then `COMMIT`, sent together where
    /// the backend can (PostgreSQL: pipelined, one round trip). A failed write is a fault (its
    /// transaction can only roll back); the result is the `COMMIT`'s, which fails when a deferred
    /// constraint does.
    fn write_own_and_commit(
        &mut self,
        writes: &[OwnWrite<'_>],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        async move {
            if let Err(e) = self.write_own_all(writes).await? {
                return Err(BackendFault(format!("a bookkeeping write failed: {e}")));
            }
            Ok(self.execute("COMMIT", &[]).await?.map(drop))
        }
    }

    /// Runs `sql`, a read, inside the session's open transaction, and leaves the transaction as it
    /// found it: its data, its settings, and whether it is aborted. The result is the rows when
    /// the statement only read; a statement that would write anything, or that fails, returns its
    /// error and changed nothing. The executor answers such reads without the log (see
    /// `executor::read`); an error sends the statement through the log, where it runs for real.
    ///
    /// To ensure correctness an implementation must refuse every write, including writes inside
    /// functions and sequence draws, rather than undo them afterwards: a draw cannot be undone.
    /// The default refuses every statement, so a backend without such a guard reads through the log.
    fn read_in_txn(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Result<ResultSet, SqlError>, BackendFault>> + Send {
        let _ = (sql, params);
        std::future::ready(Ok(Err(SqlError {
            sqlstate: READ_ONLY_SQL_TRANSACTION.into(),
            message: "this backend runs every statement through the log".into(),
        })))
    }

    /// Makes every transaction committed so far, on any connection of this database, survive a
    /// crash of the database server. Called with no transaction open on this session.
    ///
    /// A backend whose `COMMIT` is durable when it returns needs nothing here (the default).
    /// PostgreSQL's connections commit asynchronously (see `postgres`): the executor answers
    /// clients from the replicated log and only counts a slot as `Done` after a flush, so the
    /// disk is waited on once per flush instead of once per statement.
    fn flush(&mut self) -> impl Future<Output = Result<(), BackendFault>> + Send {
        std::future::ready(Ok(()))
    }
}

/// A replica's database.
///
/// To ensure correctness an implementation must:
/// - give every session its own connection, with PostgreSQL's transaction semantics: committed
///   work survives a crash of the replica process, uncommitted work of every session vanishes;
/// - never lose a committed transaction once [`SqlSession::flush`] returned after its `COMMIT`,
///   and lose only a suffix of the commits (in commit order) when it loses any.
pub trait SqlBackend: Send + Sync + 'static {
    /// A connection.
    type Session: SqlSession + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Session, BackendFault>> + Send;
}
