//! The production [`SqlBackend`]: a replica's PostgreSQL, through `tokio-postgres`.
//!
//! Normal build only: `tokio-postgres` needs real tokio, so the simulation uses the SQLite
//! stand-in (`testkit::sqlite`) instead.
//!
//! # Connections
//! [`PgBackend::connect`] opens one connection per session and runs its connection task on the
//! tokio runtime. Dropping the [`PgSession`] aborts that task, which closes the socket, and
//! PostgreSQL rolls back whatever transaction the session had open: the executor relies on this
//! after a fault or a crash. A session that reported a [`BackendFault`], or whose statement was
//! abandoned (its future dropped before it finished), is closed at once and refuses every later
//! statement: its transaction state is unknown, and the executor drops it and replays the slot on
//! a new one.
//!
//! Every connection pins the settings that change how values are written or read, or that would
//! make a statement fail on one replica only (see [`PINNED_SETTINGS`]), so that they do not depend
//! on each server's `postgresql.conf`. `options` in the connection string are applied after them,
//! so an operator can override one, identically on every replica. PostgreSQL 14 or later
//! (`idle_session_timeout`). A server in recovery (a standby) is refused at connect: it would fail
//! every write on this replica only.
//!
//! # Statements
//! - Transaction control without parameters (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, ... with
//!   no `;` anywhere, so the text is one statement) goes through the simple query protocol: one
//!   round trip.
//! - Everything else is prepared first (one round trip: Parse, Describe), which gives the types
//!   the server inferred for the parameters and the result columns. Parameters are then
//!   converted to those types (see `values`), and a wrong parameter count is the statement's
//!   error (SQLSTATE 08P01 with PostgreSQL's own wording, as the server would answer a Bind with
//!   the wrong count), caught before anything is sent.
//! - Results: `tokio-postgres` always asks for binary results. When every result column is of a
//!   type read exactly from binary (`int*`, `float*`, `bool`, `bytea`, text types, `json`,
//!   `jsonb`, `uuid`, `numeric`, enums), the prepared statement is executed in binary: one more
//!   round trip. Otherwise (timestamps, dates, intervals, arrays, records, ...) the statement
//!   is run through the simple query protocol, whose results are PostgreSQL's own text output for
//!   every type: the statement itself when it has no parameters (Parse accepted it, so it is one
//!   statement), else `PREPARE` / `EXECUTE` with the parameters as literals / `DEALLOCATE` in one
//!   message. The cost of that path: the server parses and plans the statement twice. Values are
//!   the same on both paths: a literal is read by the same input function as a text-format
//!   parameter.
//! - `rows_affected` is the count of the command tag: rows inserted, updated or deleted, rows
//!   returned by a query, 0 for DDL.
//!
//! A client statement run outside a client transaction stays prepared on the connection that
//! ran it (the executor's bookkeeping connection, which runs a slot's autocommit statements: see
//! `executor::slot_txn`), so that its next call goes out with the `BEGIN` or the savepoint: one
//! round trip less. A kept statement could
//! answer differently from a fresh one after DDL, so each use is guarded by a DDL epoch that an
//! event trigger advances (see `cache`, which also says what happens without a superuser).
//! Statements inside a client's transaction are prepared afresh on every call. Barista's own
//! bookkeeping writes stay prepared too, one per connection: they return no rows, run on
//! Barista's own tables, and are not client-visible results (see `write_own_now`).
//!
//! Which server errors are statement errors and which are faults: see `errors` and
//! [`is_replica_fault`].

mod cache;
mod checksum;
mod errors;
mod values;

use std::collections::HashMap;
use std::pin::pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage, Statement};
use tracing::{debug, info};

pub use errors::is_replica_fault;
pub use values::{float_text, quote_ident, string_literal};

use crate::sql::{BackendFault, Column, OwnWrite, ResultSet, SqlBackend, SqlError, SqlSession, SqlValue};

/// Settings every connection sets at startup, and why:
/// - `DateStyle`, `IntervalStyle`, `TimeZone`, `extra_float_digits`, `bytea_output`, `lc_monetary`,
///   `lc_numeric`, `lc_time`: how values are written as text, and how some text is read (`DateStyle`
///   decides what `'01/02/2024'` means). Text that differs between replicas becomes different
///   stored data (`now()::date`, `x::text` into a column, `to_char`). `TimeZone` is UTC rather
///   than each server's `initdb`-time zone; `extra_float_digits = 1` makes float text exact;
/// - `standard_conforming_strings`: whether a backslash in a string literal is an escape, i.e.
///   what a statement stores;
/// - `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`,
///   `idle_session_timeout`: timers that would cancel a statement or end a session on one replica
///   (a client's transaction may stay open and idle; Barista aborts it through the log);
/// - `default_transaction_read_only`: a server configured read-only would fail every write on
///   that replica only.
pub const PINNED_SETTINGS: [(&str, &str); 14] = [
    ("DateStyle", "ISO,MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("lock_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("idle_session_timeout", "0"),
    ("default_transaction_read_only", "off"),
];

/// Every connection commits asynchronously: `COMMIT` returns before the write-ahead log is on
/// disk. The executor's [`SqlSession::flush`] waits for the disk once for all commits before it,
/// and only flushed slots count as this replica's `Done`, so the slots a crash of PostgreSQL
/// could take back stay in the replicated log and are applied again (see `executor`). Set after
/// [`PINNED_SETTINGS`] and before the connection string's `options`, which may override it.
pub const ASYNC_COMMIT: (&str, &str) = ("synchronous_commit", "off");

/// How long `connect` waits for a server that does not answer, unless the connection string says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalive, unless the connection string says: a server that vanished without closing the
/// connection (a partition, a dead host) is noticed in about half a minute, not two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// `tokio-postgres`'s own default idle time, to tell whether the connection string set one.
const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// The SQL-level prepared statement of the text-result path (one per connection, never shared).
const TEXT_STATEMENT: &str = "barista_text_result";

/// A connection string that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PgConfigError {
    /// It does not parse (`key=value` pairs or a `postgresql://` URL).
    #[error("invalid PostgreSQL connection string: {0}")]
    Invalid(#[source] tokio_postgres::Error),
    /// It names no host (`host=...`: an address, or a directory holding the Unix socket).
    #[error("the PostgreSQL connection string names no host")]
    NoHost,
}

/// A replica's PostgreSQL database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgBackend {
    config: Config,
    /// Creating the DDL epoch's objects was refused (not a superuser): do not try again on
    /// every connection (see `cache`).
    epoch_refused: Arc<AtomicBool>,
}

impl PgBackend {
    /// A backend for `connection_string` (libpq style, `host=... port=... user=... dbname=...`,
    /// or a `postgresql://` URL). Nothing is connected yet. TLS is not supported.
    pub fn new(connection_string: &str) -> Result<PgBackend, PgConfigError> {
        let config = Config::from_str(connection_string).map_err(PgConfigError::Invalid)?;
        if config.get_hosts().is_empty() {
            return Err(PgConfigError::NoHost);
        }
        Ok(PgBackend::from_config(config))
    }

    /// A backend for an already built configuration; adds Barista's settings as
    /// [`PgBackend::new`] does.
    pub fn from_config(mut config: Config) -> PgBackend {
        let mut options: String = PINNED_SETTINGS
            .iter()
            .chain([&ASYNC_COMMIT])
            .map(|(name, value)| format!("-c {name}={value}"))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(theirs) = config.get_options() {
            options.push(' ');
            options.push_str(theirs);
        }
        config.options(&options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_keepalives_idle() == DEFAULT_KEEPALIVE_IDLE {
            config.keepalives_idle(KEEPALIVE_IDLE);
            config.keepalives_interval(KEEPALIVE_INTERVAL);
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        if config.get_application_name().is_none() {
            config.application_name("barista");
        }
        PgBackend { config, epoch_refused: Arc::new(AtomicBool::new(false)) }
    }

    async fn connect_now(&self) -> Result<PgSession, BackendFault> {
        let (client, connection) =
            self.config.connect(NoTls).await.map_err(|e| BackendFault(format!("connecting to PostgreSQL: {e}")))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("PostgreSQL connection ended: {e}");
            }
        });
        // From here on, dropping the session closes the connection.
        let mut session = PgSession {
            client,
            connection,
            broken: None,
            text_statement_left: false,
            own_statements: HashMap::new(),
            kept: None,
        };
        let check = format!("SELECT pg_catalog.pg_is_in_recovery(), ({})", cache::READY);
        let answer = session.client.simple_query(&check).await;
        let ready = match answer.as_deref().map(first_row) {
            Ok(Some(["f", ready])) => ready == "t",
            Ok(Some(["t", _])) => {
                return Err(BackendFault("PostgreSQL is in recovery (a standby): it cannot take writes".into()));
            }
            Ok(other) => return Err(BackendFault(format!("the new connection's check returned {other:?}"))),
            Err(e) => return Err(BackendFault(format!("checking the new PostgreSQL connection: {e}"))),
        };
        if ready || self.set_up_epoch(&session.client).await? {
            session.kept = Some(cache::StatementCache::default());
        }
        Ok(session)
    }

    /// Creates the DDL epoch's objects, unless this backend was refused before; whether
    /// connections may keep statements (see `cache`).
    async fn set_up_epoch(&self, client: &Client) -> Result<bool, BackendFault> {
        if self.epoch_refused.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let set_up = cache::set_up(client).await?;
        if !set_up {
            self.epoch_refused.store(true, Ordering::Relaxed);
            info!("not a superuser: client statements are prepared afresh on every call");
        }
        Ok(set_up)
    }
}

/// The first row of a simple query's answer with two columns, neither NULL.
fn first_row(messages: &[SimpleQueryMessage]) -> Option<[&str; 2]> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some([row.get(0)?, row.get(1)?]),
        _ => None,
    })
}

impl SqlBackend for PgBackend {
    type Session = PgSession;

    fn connect(&self) -> impl Future<Output = Result<PgSession, BackendFault>> + Send {
        self.connect_now()
    }
}

/// One connection to a replica's PostgreSQL. Dropping it closes the connection, which rolls back
/// its open transaction.
pub struct PgSession {
    client: Client,
    /// The task that drives the connection; aborting it closes the socket.
    connection: JoinHandle<()>,
    /// The fault that made this session unusable.
    broken: Option<BackendFault>,
    /// [`TEXT_STATEMENT`] exists on the server: an `EXECUTE` failed before its `DEALLOCATE` ran.
    text_statement_left: bool,
    /// Barista's own writes, prepared on this connection, by their SQL (see [`PgSession::own_statement`]).
    own_statements: HashMap<String, Statement>,
    /// Client statements kept prepared, when the database has the DDL epoch (see `cache`).
    kept: Option<cache::StatementCache>,
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

type StatementResult = Result<Result<ResultSet, SqlError>, BackendFault>;

/// Closes the session if a statement's future is dropped before it finished (the caller gave up
/// on it): the statement may still run, or have run, on the server, and nobody knows its outcome.
struct InFlight<'a> {
    session: &'a mut PgSession,
    finished: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.session.close(BackendFault("a statement was abandoned before it finished".into()));
        }
    }
}

/// A client error as the statement's result, or as a fault.
fn failed(error: &tokio_postgres::Error) -> StatementResult {
    errors::classify(error).map(Err)
}

impl SqlSession for PgSession {
    const BOOKKEEPING_SCHEMA: &'static str = "public.";
    const BEGIN_LOCK: Option<&'static str> = Some("LOCK TABLE public.sqlpaxoslog IN ROW EXCLUSIVE MODE");

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> impl Future<Output = StatementResult> + Send {
        self.run(sql, params)
    }

    fn checksum(
        &mut self,
        bookkeeping: &'static [(&'static str, crate::verify::Coverage)],
    ) -> impl Future<Output = Result<crate::verify::DatabaseDigest, BackendFault>> + Send {
        self.checksum_now(bookkeeping)
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), BackendFault>> + Send {
        self.flush_now()
    }

    fn execute_all(
        &mut self,
        statements: &[&str],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        self.execute_all_now(statements.join("; "))
    }

    async fn write_own(&mut self, sql: &str, params: &[SqlValue]) -> Result<Result<(), SqlError>, BackendFault> {
        self.write_own_now(&[(sql, params)], false).await
    }

    fn write_own_all(
        &mut self,
        writes: &[OwnWrite<'_>],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        self.write_own_now(writes, false)
    }

    fn write_own_and_commit(
        &mut self,
        writes: &[OwnWrite<'_>],
    ) -> impl Future<Output = Result<Result<(), SqlError>, BackendFault>> + Send {
        self.write_own_now(writes, true)
    }

    fn read_in_txn(&mut self, sql: &str, params: &[SqlValue]) -> impl Future<Output = StatementResult> + Send {
        self.guarded(async move |session| session.read_now(sql, params).await)
    }

    fn execute_begun(
        &mut self,
        begin: &[&str],
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = StatementResult> + Send {
        // A kept statement found stale undoes `begin` before it prepares afresh: back to the last
        // savepoint `begin` set (a slot transaction's statement, see `executor::slot_txn`), else
        // the whole transaction `begin` began.
        let undo = begin
            .iter()
            .rev()
            .find_map(|s| s.strip_prefix("SAVEPOINT "))
            .map_or_else(|| "ROLLBACK".to_owned(), |name| format!("ROLLBACK TO SAVEPOINT {name}"));
        let begin = begin.join("; ");
        self.guarded(async move |session| session.statement_begun(begin, &undo, sql, params).await)
    }
}

impl PgSession {
    async fn run(&mut self, sql: &str, params: &[SqlValue]) -> StatementResult {
        self.guarded(async |session| session.statement(sql, params).await).await
    }

    /// Waits until the write-ahead log is on disk through every commit so far, on any connection
    /// (they all commit asynchronously, see [`ASYNC_COMMIT`]). One round trip: a transaction that
    /// wrote no WAL does not wait for the disk at `COMMIT`, even with a transaction id (found by
    /// `runtime/tests/postgres.rs`), so this one writes a transactional logical-decoding message
    /// (any user may, at any `wal_level`, and it touches no table, so no lock of an open client
    /// transaction can block it) and commits synchronously; flushing the log up to its commit
    /// record flushes every commit before it.
    async fn flush_now(&mut self) -> Result<(), BackendFault> {
        const FLUSH: &str = "BEGIN; SET LOCAL synchronous_commit = on; \
                             SELECT pg_catalog.pg_logical_emit_message(true, 'barista', 'flush'); COMMIT";
        let flushed = self.execute_all_now(FLUSH.into()).await?;
        flushed.map_err(|e| BackendFault(format!("flushing PostgreSQL's write-ahead log: {e}")))
    }

    /// Barista's own statements without parameters, in one simple query: one round trip.
    async fn execute_all_now(&mut self, script: String) -> Result<Result<(), SqlError>, BackendFault> {
        self.guarded(async |session| match session.client.simple_query(&script).await {
            Ok(_) => Ok(Ok(())),
            Err(e) => failed(&e).map(|r| r.map(drop)),
        })
        .await
    }

    /// Bookkeeping writes, each prepared once per connection with its parameter types given (see
    /// [`PgSession::own_statement`]), then bound and executed all pipelined, and with `commit`, a
    /// `COMMIT` pipelined behind them (sent before the writes' answers arrive: if one fails, the
    /// server rolls back instead). One round trip, after the first use of each statement.
    async fn write_own_now(
        &mut self,
        writes: &[OwnWrite<'_>],
        commit: bool,
    ) -> Result<Result<(), SqlError>, BackendFault> {
        let mut types: Vec<Vec<Type>> = Vec::with_capacity(writes.len());
        for (sql, params) in writes {
            let own: Option<Vec<Type>> = params.iter().map(own_type).collect();
            types.push(own.ok_or_else(|| BackendFault(format!("`{sql}`: NULL in a bookkeeping write")))?);
        }
        self.guarded(async |session| {
            let mut statements = Vec::with_capacity(writes.len());
            for ((sql, _), types) in writes.iter().zip(&types) {
                match session.own_statement(sql, types).await {
                    Ok(statement) => statements.push(statement),
                    Err(e) if commit => return Err(BackendFault(format!("preparing `{sql}`: {e}"))),
                    Err(e) => return failed(&e).map(|r| r.map(drop)),
                }
            }
            // Each value has its parameter's type exactly, so this borrows it (no copy of a
            // large outcome) and cannot fail.
            let mut bound = Vec::with_capacity(writes.len());
            for ((sql, params), statement) in writes.iter().zip(&statements) {
                bound.push(
                    values::bind(params, statement.params())
                        .map_err(|e| BackendFault(format!("binding `{sql}`: {e}")))?,
                );
            }
            let client = &session.client;
            let pipelined = statements
                .iter()
                .zip(&bound)
                .map(|(statement, bound)| client.execute_raw(statement, bound.iter().map(|p| p as &dyn ToSql)));
            let commit = async { if commit { Some(client.simple_query("COMMIT").await) } else { None } };
            let (written, committed) = futures::join!(futures::future::join_all(pipelined), commit);
            for ((sql, _), result) in writes.iter().zip(written) {
                match result {
                    Ok(_) => {}
                    // On its own, a write's error is its result, as `write_own` promises.
                    Err(e) if committed.is_none() => return failed(&e).map(|r| r.map(drop)),
                    Err(e) => {
                        return Err(failed(&e)?.err().map_or_else(
                            || BackendFault(format!("`{sql}` failed")),
                            |e| BackendFault(format!("`{sql}`: {e}")),
                        ));
                    }
                }
            }
            match committed {
                None | Some(Ok(_)) => Ok(Ok(())),
                Some(Err(e)) => failed(&e).map(|r| r.map(drop)),
            }
        })
        .await
    }

    /// `sql` with parameters of `types`, prepared on this connection the first time and kept: the
    /// server then parses and plans each bookkeeping write once per connection, not once per
    /// command. Safe to keep, unlike a client's statement (see the module docs): Barista's tables
    /// are its own, and a statement the server can no longer run fails the write, a fault, and
    /// the executor replays the slot on a new connection, which prepares afresh.
    async fn own_statement(&mut self, sql: &str, types: &[Type]) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.own_statements.get(sql)
            && statement.params() == types
        {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare_typed(sql, types).await?;
        self.own_statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs `work` on this session unless an earlier fault closed it, and closes it if `work`
    /// faults or is abandoned before it finished (see [`InFlight`]).
    async fn guarded<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgSession) -> Result<T, BackendFault>,
    ) -> Result<T, BackendFault> {
        if let Some(fault) = &self.broken {
            return Err(BackendFault(format!("session closed after an earlier fault ({})", fault.0)));
        }
        let mut in_flight = InFlight { session: self, finished: false };
        let result = work(in_flight.session).await;
        in_flight.finished = true;
        if let Err(fault) = &result {
            in_flight.session.close(fault.clone());
        }
        result
    }

    /// Marks the session unusable and closes its connection, so PostgreSQL rolls back its
    /// transaction: after a fault, or a statement whose outcome nobody saw, its state is unknown.
    fn close(&mut self, why: BackendFault) {
        self.broken = Some(why);
        self.connection.abort();
    }

    async fn statement(&mut self, sql: &str, params: &[SqlValue]) -> StatementResult {
        // The protocol cannot carry a NUL (the client library would fail to encode it, which
        // would look like a fault); PostgreSQL could not store one either.
        if sql.contains('\0') {
            return Ok(Err(values::nul_error()));
        }
        if first_word(sql).eq_ignore_ascii_case("COPY") {
            // The copy sub-protocol has no place in a replicated statement (the determinism policy
            // refuses COPY too); without this check it would be an unexpected message: a fault.
            return Ok(Err(SqlError {
                sqlstate: "0A000".into(),
                message: "COPY is not supported by Barista's PostgreSQL backend".into(),
            }));
        }
        if params.is_empty() && is_transaction_control(sql) {
            return match self.client.simple_query(sql).await {
                Ok(_) => Ok(Ok(ResultSet::default())),
                Err(e) => failed(&e),
            };
        }
        let prepared = match self.client.prepare(sql).await {
            Ok(prepared) => prepared,
            Err(e) => return failed(&e),
        };
        self.execute_prepared(sql, params, prepared).await
    }

    /// [`SqlSession::read_in_txn`]: the statement runs in a savepoint whose transaction is
    /// read-only, so PostgreSQL itself refuses any write (SQLSTATE 25006: `INSERT`, `nextval`,
    /// `SELECT ... FOR UPDATE`, a write inside a function); rolling back to the savepoint then
    /// restores the transaction's read-write mode and undoes the error, if any. The savepoint and
    /// the statement's Parse go out together: two round trips, three when the statement has
    /// parameters or needs text results.
    async fn read_now(&mut self, sql: &str, params: &[SqlValue]) -> StatementResult {
        const ENTER: &str = "SAVEPOINT barista_read; SET LOCAL transaction_read_only = on";
        const LEAVE: &str = "ROLLBACK TO SAVEPOINT barista_read; RELEASE SAVEPOINT barista_read";
        if Self::unprepared(sql, params) {
            // Transaction control, COPY, a NUL: nothing a read-only savepoint could contain.
            return Ok(Err(SqlError {
                sqlstate: crate::sql::READ_ONLY_SQL_TRANSACTION.into(),
                message: "not a read".into(),
            }));
        }
        let (entered, prepared) = futures::join!(self.client.simple_query(ENTER), self.client.prepare(sql));
        entered.map_err(begin_fault)?;
        let result = match prepared {
            Ok(prepared) => self.execute_prepared(sql, params, prepared).await?,
            Err(e) => failed(&e)?,
        };
        self.client.simple_query(LEAVE).await.map_err(begin_fault)?;
        Ok(result)
    }

    /// Whether `statement` runs `sql` without preparing it (or without sending it at all).
    fn unprepared(sql: &str, params: &[SqlValue]) -> bool {
        sql.contains('\0')
            || first_word(sql).eq_ignore_ascii_case("COPY")
            || (params.is_empty() && is_transaction_control(sql))
    }

    /// `begin`, then the statement: the `BEGIN` and the statement's Parse go out together, since
    /// preparing does not depend on the answer to `BEGIN` (one round trip less per command).
    async fn statement_begun(&mut self, begin: String, undo: &str, sql: &str, params: &[SqlValue]) -> StatementResult {
        if Self::unprepared(sql, params) {
            self.client.simple_query(&begin).await.map_err(begin_fault)?;
            return self.statement(sql, params).await;
        }
        if let Some(result) = self.kept_statement_begun(&begin, undo, sql, params).await? {
            return Ok(result);
        }
        let begin = match self.kept {
            Some(_) => format!("{begin}; {}", cache::READ_EPOCH),
            None => begin,
        };
        let (begun, prepared) = futures::join!(self.client.simple_query(&begin), self.client.prepare(sql));
        let begun = begun.map_err(begin_fault)?;
        match prepared {
            Ok(prepared) => {
                if let (Some(kept), Some(epoch)) = (&mut self.kept, cache::epoch_in(&begun))
                    && prepared.params().len() == params.len()
                    && prepared.columns().iter().all(|c| values::binary_readable(c.type_()))
                {
                    kept.keep(sql, prepared.clone(), epoch);
                }
                self.execute_prepared(sql, params, prepared).await
            }
            Err(e) => failed(&e),
        }
    }

    /// `begin` and `sql`'s kept statement in one round trip, if it has one (see `cache`).
    /// `Ok(None)`: nothing ran; it has none, or it may be stale (`undo` rolled back what `begin`
    /// did, and every kept statement is forgotten), and the caller prepares it afresh.
    async fn kept_statement_begun(
        &mut self,
        begin: &str,
        undo: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Option<Result<ResultSet, SqlError>>, BackendFault> {
        let Some((prepared, epoch)) = self.kept.as_ref().and_then(|kept| kept.get(sql)) else {
            return Ok(None);
        };
        // A wrong parameter count, or a value that cannot be bound: the fresh path returns the
        // error, from the same types.
        if prepared.params().len() != params.len() {
            return Ok(None);
        }
        let Ok(bound) = values::bind(params, prepared.params()) else {
            return Ok(None);
        };
        let script = format!("{begin}; {}", cache::check_epoch(epoch));
        let (begun, result) = futures::join!(self.client.simple_query(&script), self.binary_rows(&prepared, &bound));
        let stale = match begun {
            Ok(_) => {
                // The guard should make this impossible; if DDL escaped the trigger, the error
                // came from Bind, before anything ran, and the statement is still run afresh.
                matches!(&result, Ok(Err(e)) if e.sqlstate == "0A000" && e.message.contains("cached plan"))
            }
            Err(e) if cache::is_stale(&e) => true,
            Err(e) => return Err(begin_fault(e)),
        };
        if !stale {
            return result.map(Some);
        }
        self.client
            .simple_query(undo)
            .await
            .map_err(|e| BackendFault(format!("rolling back after a stale statement: {e}")))?;
        if let Some(kept) = &mut self.kept {
            kept.clear();
        }
        Ok(None)
    }

    /// The rest of `statement` once `sql` is prepared: bind, execute, read the rows.
    async fn execute_prepared(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        prepared: tokio_postgres::Statement,
    ) -> StatementResult {
        if prepared.params().len() != params.len() {
            return Ok(Err(SqlError {
                sqlstate: "08P01".into(),
                message: format!(
                    "bind message supplies {} parameters, but prepared statement \"\" requires {}",
                    params.len(),
                    prepared.params().len()
                ),
            }));
        }
        let bound = match values::bind(params, prepared.params()) {
            Ok(bound) => bound,
            Err(e) => return Ok(Err(e)),
        };
        if !prepared.columns().iter().all(|c| values::binary_readable(c.type_())) {
            let types: Vec<Type> = prepared.columns().iter().map(|c| c.type_().clone()).collect();
            let columns = columns_of(&prepared);
            drop(prepared);
            return self.text_results(sql, params, columns, &types).await;
        }
        self.binary_rows(&prepared, &bound).await
    }

    /// Binds and executes `prepared`, every result column of which is read from binary, and
    /// reads its rows.
    async fn binary_rows(&self, prepared: &Statement, bound: &[values::Param<'_>]) -> StatementResult {
        let types: Vec<Type> = prepared.columns().iter().map(|c| c.type_().clone()).collect();
        let columns = columns_of(prepared);
        let stream = match self.client.query_raw(prepared, bound.iter().map(|p| p as &dyn ToSql)).await {
            Ok(stream) => stream,
            Err(e) => return failed(&e),
        };
        let mut stream = pin!(stream);
        let mut rows = Vec::new();
        loop {
            match stream.as_mut().try_next().await {
                Ok(Some(row)) => {
                    let mut values = Vec::with_capacity(types.len());
                    for (i, ty) in types.iter().enumerate() {
                        let raw = row
                            .try_get::<_, values::Raw<'_>>(i)
                            .map_err(|e| BackendFault(format!("reading column {i}: {e}")))?;
                        values.push(values::from_binary(ty, raw.0)?);
                    }
                    rows.push(values);
                }
                Ok(None) => break,
                Err(e) => return failed(&e),
            }
        }
        let rows_affected = stream.rows_affected().unwrap_or(0);
        Ok(Ok(ResultSet { columns, rows, rows_affected }))
    }

    /// Runs a statement (that Parse accepted: one statement) through the simple query protocol,
    /// whose results are text for every type, and reads them with the prepared column types.
    async fn text_results(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        columns: Vec<Column>,
        types: &[Type],
    ) -> StatementResult {
        // The statements sent, in order; `Some(exists)`: whether TEXT_STATEMENT exists after it.
        let mut steps: Vec<Option<bool>> = Vec::new();
        let query = if params.is_empty() {
            steps.push(None);
            sql.to_owned()
        } else {
            let mut literals = Vec::with_capacity(params.len());
            for param in params {
                match values::literal(param) {
                    Some(literal) => literals.push(literal),
                    None => return Ok(Err(values::nul_error())),
                }
            }
            let mut query = String::new();
            if self.text_statement_left {
                query.push_str(&format!("DEALLOCATE {TEXT_STATEMENT};\n"));
                steps.push(Some(false));
            }
            // Newlines end a trailing `--` comment of the statement before the next one starts.
            query.push_str(&format!("PREPARE {TEXT_STATEMENT} AS {sql}\n;\n"));
            query.push_str(&format!("EXECUTE {TEXT_STATEMENT} ({});\n", literals.join(", ")));
            query.push_str(&format!("DEALLOCATE {TEXT_STATEMENT}"));
            steps.extend([Some(true), None, Some(false)]);
            query
        };
        let stream = match self.client.simple_query_raw(&query).await {
            Ok(stream) => stream,
            Err(e) => return failed(&e),
        };
        let mut stream = pin!(stream);
        let mut rows = Vec::new();
        let mut rows_affected = None;
        let mut completed = 0;
        let mut described = false;
        let outcome = loop {
            match stream.as_mut().try_next().await {
                Ok(Some(SimpleQueryMessage::RowDescription(_))) => described = true,
                Ok(Some(SimpleQueryMessage::Row(row))) => {
                    let mut values = Vec::with_capacity(types.len());
                    for (i, ty) in types.iter().enumerate() {
                        let text = row.try_get(i).map_err(|e| BackendFault(format!("reading text column {i}: {e}")))?;
                        values.push(values::from_text(ty, text)?);
                    }
                    rows.push(values);
                }
                Ok(Some(SimpleQueryMessage::CommandComplete(n))) => {
                    if let Some(Some(exists)) = steps.get(completed) {
                        self.text_statement_left = *exists;
                    }
                    completed += 1;
                    if described && rows_affected.is_none() {
                        rows_affected = Some(n);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = outcome {
            return failed(&e);
        }
        Ok(Ok(ResultSet { columns, rows, rows_affected: rows_affected.unwrap_or(0) }))
    }
}

/// A `BEGIN` script that failed: a fault (see [`SqlSession::execute_begun`]).
fn begin_fault(error: tokio_postgres::Error) -> BackendFault {
    BackendFault(format!("transaction control failed: {error}"))
}

/// The result columns of a prepared statement.
fn columns_of(prepared: &Statement) -> Vec<Column> {
    prepared
        .columns()
        .iter()
        .map(|c| Column { name: c.name().to_owned(), type_name: c.type_().name().to_owned() })
        .collect()
}

/// A bookkeeping parameter's type: its value's own (`Int` is `bigint`, ...; see
/// [`SqlSession::write_own`]). NULL has none, and no bookkeeping write carries one.
fn own_type(value: &SqlValue) -> Option<Type> {
    Some(match value {
        SqlValue::Int(_) => Type::INT8,
        SqlValue::Bytes(_) => Type::BYTEA,
        SqlValue::Text(_) => Type::TEXT,
        SqlValue::Bool(_) => Type::BOOL,
        SqlValue::Float(_) => Type::FLOAT8,
        SqlValue::Null => return None,
    })
}

/// The first word of a statement (letters only), after leading white space.
fn first_word(sql: &str) -> &str {
    let sql = sql.trim_start();
    let end = sql.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(sql.len());
    &sql[..end]
}

/// Transaction control that is certainly one statement: it starts with a transaction keyword
/// and has no `;` anywhere (not even quoted: such text takes the prepared path, which is as
/// correct, just one round trip slower).
fn is_transaction_control(sql: &str) -> bool {
    const CONTROL: [&str; 9] =
        ["BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"];
    let word = first_word(sql);
    !sql.contains(';')
        && CONTROL.iter().any(|c| word.eq_ignore_ascii_case(c))
        // PREPARE TRANSACTION is transaction control; PREPARE name AS ... is not.
        && (!word.eq_ignore_ascii_case("PREPARE") || sql.split_whitespace().nth(1).is_some_and(|w| w.eq_ignore_ascii_case("TRANSACTION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_control_is_recognised_conservatively() {
        for sql in ["BEGIN", "  commit", "ROLLBACK", "ROLLBACK TO SAVEPOINT a", "SAVEPOINT a", "START TRANSACTION"] {
            assert!(is_transaction_control(sql), "{sql}");
        }
        for sql in ["BEGIN; DROP TABLE t", "COMMIT;", "SELECT 1", "PREPARE p AS SELECT 1", "/* x */ BEGIN", "BEGINX"] {
            assert!(!is_transaction_control(sql), "{sql}");
        }
        assert!(is_transaction_control("PREPARE TRANSACTION 'x'"));
    }

    #[test]
    fn options_put_pinned_settings_first() {
        let backend = PgBackend::new("host=127.0.0.1 user=postgres options='-c TimeZone=Europe/Berlin'")
            .unwrap_or_else(|e| panic!("{e}"));
        let options = backend.config.get_options().unwrap_or_default();
        assert!(options.starts_with("-c DateStyle=ISO,MDY "), "{options}");
        assert!(options.ends_with(" -c TimeZone=Europe/Berlin"), "{options}");
        assert_eq!(backend.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(backend.config.get_application_name(), Some("barista"));
        assert!(matches!(PgBackend::new("host=127.0.0.1 port=notaport"), Err(PgConfigError::Invalid(_))));
        assert!(matches!(PgBackend::new("user=postgres"), Err(PgConfigError::NoHost)));
    }
}
