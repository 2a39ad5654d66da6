//! The query handlers of one PostgreSQL-protocol connection: simple queries (`Query`) and the
//! extended protocol (`Parse`/`Bind`/`Describe`/`Execute`/`Sync`), each statement one request
//! of the connection's replicated [`Session`].
//!
//! - Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK` and their spellings) becomes Barista's
//!   own `Begin`/`Commit`/`Rollback` commands; every other statement is sent as it is, with its
//!   parameters, and the determinism policy judges it in the service.
//! - A simple query with several statements runs them as one atomic batch outside a
//!   transaction (PostgreSQL runs such a string as one implicit transaction), or one after the
//!   other inside one; it stops at the first error, as PostgreSQL does.
//! - Results are written in the format the client asked for (see `values`); command tags come
//!   from `statements`.
//! - `ReadyForQuery` reports the session's transaction state as the session followed it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use barista_runtime::command::{Op, Statement};
use barista_runtime::executor::Outcome;
use barista_runtime::postgres::quote_ident;
use barista_runtime::service::ServiceError;
use barista_runtime::sql::{ResultSet, SqlError, SqlValue};
use bytes::BytesMut;
use futures::sink::{Sink, SinkExt};
use pgwire::api::copy::{CopyHandler, send_copy_in_response};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse, Response,
    Tag as PgTag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{DataRow, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{Describe, Sync as PgSync, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, ReadyForQuery};
use pgwire::messages::simplequery::Query;
use tokio::sync::Mutex;

use super::Shared;
use super::copy::{self, Loader};
use super::describe::{Description, SideConnection};
use super::session::{Session, Txn};
use super::statements::{self, Action, Tag};
use super::values;

/// SQLSTATE of Barista's own refusals of a request (unknown or closed session, stale request).
const REJECTED: &str = "55000";
/// SQLSTATE `in_failed_sql_transaction`, which the executor answers a COMMIT of an aborted
/// transaction with (PostgreSQL answers it `ROLLBACK`).
const IN_FAILED_TXN: &str = "25P02";
/// SQLSTATE `program_limit_exceeded`.
const LIMIT_EXCEEDED: &str = "54000";
/// The largest INSERT a COPY is sent as (also at most `max_statement_bytes`): a few hundred KiB
/// keep the requests well under a log slot's size and each replica's parse of them short.
const COPY_INSERT_BYTES: usize = 256 << 10;
/// A statement as Parse stored it.
#[derive(Debug)]
pub struct Prepared {
    sql: String,
    action: Action,
    /// What the replica's PostgreSQL said about it; its error is Describe's answer.
    description: Result<Description, SqlError>,
}

/// The statement type kept in pgwire's portal store.
pub type PreparedRef = Arc<Prepared>;

/// The handlers' state for one connection.
pub struct Connection {
    shared: Arc<Shared>,
    /// Made with the first statement (the service exists by then: startup checked it).
    session: Mutex<Option<Session>>,
    parser: Arc<Parser>,
    /// Portals that ran at Describe (their statement could not be described: see
    /// `on_describe`), by name, with their response, which their Execute returns.
    ran_early: Mutex<HashMap<String, Response>>,
    /// The `COPY ... FROM STDIN` in progress, between its statement and CopyDone or CopyFail.
    copy: Mutex<Option<CopyState>>,
}

/// A `COPY ... FROM STDIN` in progress (see `copy`).
struct CopyState {
    loader: Loader,
    /// It runs inside the client's transaction: its INSERTs are statements of it.
    in_client_txn: bool,
    /// The front end opened a transaction for it (outside a client transaction, once its rows
    /// outgrew one INSERT), to commit at CopyDone.
    own_txn: bool,
    /// Outside any transaction, the first full INSERT, held back: a COPY that fits one INSERT
    /// runs as that autocommit statement, atomic without a transaction held open meanwhile.
    held: Option<String>,
}

/// Parses statements for the extended protocol, describing them on a side connection.
pub struct Parser {
    side: Mutex<SideConnection>,
}

impl Connection {
    /// A connection's handlers.
    pub fn new(shared: Arc<Shared>) -> Connection {
        let side = shared.describer.side();
        Connection {
            shared,
            session: Mutex::new(None),
            parser: Arc::new(Parser { side: Mutex::new(side) }),
            ran_early: Mutex::new(HashMap::new()),
            copy: Mutex::new(None),
        }
    }

    /// Closes the replicated session, if one was opened.
    pub async fn close(&self) {
        if let Some(session) = self.session.lock().await.as_mut() {
            session.close().await;
        }
    }

    async fn status(&self) -> pgwire::messages::response::TransactionStatus {
        match self.session.lock().await.as_ref() {
            Some(session) => session.status(),
            None => pgwire::messages::response::TransactionStatus::Idle,
        }
    }

    /// Runs `op` on the session, counting it in the metrics as `method`.
    async fn submit(&self, method: &str, op: Op) -> Result<Outcome, SqlError> {
        let started = Instant::now();
        let mut guard = self.session.lock().await;
        let session = match guard.as_mut() {
            Some(session) => session,
            None => {
                let service = self.shared.service.get().ok_or_else(|| not_ready("replica starting"))?;
                guard.insert(Session::new(service.clone()))
            }
        };
        let result = session.submit(op).await;
        let label = match &result {
            Ok(Outcome::Error(_)) => "sql_error",
            Ok(Outcome::Rejected(_)) => "rejected",
            Ok(_) => "ok",
            Err(ServiceError::NotReady(_)) => "not_ready",
            Err(ServiceError::Overloaded(_)) => "overloaded",
            Err(ServiceError::Refused(_)) => "refused",
            Err(ServiceError::TooLarge(_)) => "bad_request",
        };
        self.shared.metrics.request(method, label, started.elapsed());
        result.map_err(|e| service_error(&e))
    }

    async fn txn(&self) -> Txn {
        self.session.lock().await.as_ref().map_or(Txn::Idle, Session::txn)
    }

    fn check_length(&self, sql: &str) -> Result<(), SqlError> {
        let max = self.shared.limits.max_statement_bytes;
        if sql.len() > max {
            return Err(SqlError {
                sqlstate: LIMIT_EXCEEDED.into(),
                message: format!("the statement is {} bytes; the limit (max_statement_bytes) is {max}", sql.len()),
            });
        }
        Ok(())
    }

    /// Runs transaction control; returns the tag to report.
    async fn control(&self, method: &str, action: &Action) -> Result<String, SqlError> {
        match action {
            Action::Begin { modes } => {
                expect_done(self.submit(method, Op::Begin).await?)?;
                if !modes.is_empty() {
                    let set = Statement { sql: format!("SET TRANSACTION {modes}"), params: Vec::new() };
                    expect_rows(self.submit(method, Op::Execute(set)).await?)?;
                }
                Ok("BEGIN".into())
            }
            Action::Commit => {
                let was_failed = self.txn().await == Txn::Failed;
                match self.submit(method, Op::Commit).await? {
                    // PostgreSQL ends an aborted transaction's COMMIT with a ROLLBACK tag.
                    Outcome::Error(e) if was_failed && e.sqlstate == IN_FAILED_TXN => Ok("ROLLBACK".into()),
                    outcome => expect_done(outcome).map(|()| "COMMIT".into()),
                }
            }
            Action::Rollback => expect_done(self.submit(method, Op::Rollback).await?).map(|()| "ROLLBACK".into()),
            Action::Deallocate(_) | Action::CopyIn | Action::Sql(_) => {
                Err(SqlError { sqlstate: "XX000".into(), message: "not transaction control".into() })
            }
        }
    }

    /// Runs the statements of one simple-query string (split once by the caller, which looks
    /// for a COPY among them first); returns the messages to send before `ReadyForQuery`.
    /// `deallocate` forgets a statement prepared through the protocol (`None`: all).
    async fn simple(
        &self,
        statements: &[&str],
        deallocate: &(dyn Fn(Option<&str>) + Sync),
    ) -> Vec<PgWireBackendMessage> {
        if statements.is_empty() {
            return vec![PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())];
        }
        let mut out = Vec::new();
        let mut rest = statements;
        while let Some(first) = rest.first() {
            let action = statements::classify(first);
            let result = if let Action::Sql(_) = action {
                // The run of plain statements starting here.
                let run = rest.iter().take_while(|s| matches!(statements::classify(s), Action::Sql(_))).count();
                let (group, after) = rest.split_at(run);
                rest = after;
                self.simple_group(group, &mut out).await
            } else if let Action::Deallocate(name) = &action {
                rest = &rest[1..];
                deallocate(name.as_deref());
                out.push(complete(deallocate_tag(name)));
                Ok(())
            } else {
                rest = &rest[1..];
                self.control("pg_query", &action).await.map(|tag| out.push(complete(tag)))
            };
            if let Err(e) = result {
                out.push(error_message(&e));
                break;
            }
        }
        out
    }

    /// Runs consecutive plain statements of a simple query: one alone, several as a batch.
    async fn simple_group(&self, group: &[&str], out: &mut Vec<PgWireBackendMessage>) -> Result<(), SqlError> {
        for sql in group {
            self.check_length(sql)?;
        }
        let statement = |sql: &&str| Statement { sql: (*sql).to_owned(), params: Vec::new() };
        let tag = |sql: &str| match statements::classify(sql) {
            Action::Sql(tag) => tag,
            _ => Tag { command: String::new(), counted: false },
        };
        if let [sql] = group {
            let rs = expect_rows(self.submit("pg_query", Op::Execute(statement(sql))).await?)?;
            return simple_result(&tag(sql), rs, out);
        }
        let max = self.shared.limits.max_batch_len;
        if group.len() > max {
            return Err(SqlError {
                sqlstate: LIMIT_EXCEEDED.into(),
                message: format!("the query has {} statements; the limit (max_batch_len) is {max}", group.len()),
            });
        }
        // Outside a transaction the string is one implicit transaction, as in PostgreSQL.
        let atomic = self.txn().await == Txn::Idle;
        let op = Op::ExecuteBatch { statements: group.iter().map(statement).collect(), atomic };
        let results = match self.submit("pg_query", op).await? {
            Outcome::Batch(results) => results,
            other => return Err(unexpected(other)),
        };
        for (sql, result) in group.iter().zip(results) {
            simple_result(&tag(sql), result?, out)?;
        }
        Ok(())
    }

    /// Starts a `COPY ... FROM STDIN`: reads the statement and the table's columns; returns the
    /// number of columns, for CopyInResponse.
    async fn start_copy(&self, sql: &str) -> Result<usize, SqlError> {
        let in_client_txn = match self.txn().await {
            Txn::Failed => return Err(aborted_txn()),
            Txn::Open => true,
            Txn::Idle => false,
        };
        let statement = copy::parse(sql)?;
        let columns = match &statement.columns {
            Some(columns) => columns.clone(),
            None => {
                // Read through the log, so a table created in the client's open transaction is
                // seen, and a missing one is PostgreSQL's own error (aborting that transaction,
                // as COPY would) on every replica.
                let read =
                    Statement { sql: copy::COLUMNS_SQL.into(), params: vec![SqlValue::Text(statement.table.clone())] };
                let rs = expect_rows(self.submit("pg_copy", Op::Execute(read)).await?)?;
                rs.rows
                    .iter()
                    .map(|row| match row.first() {
                        Some(SqlValue::Text(name)) => Ok(quote_ident(name)),
                        other => Err(SqlError {
                            sqlstate: "XX000".into(),
                            message: format!("reading the columns of {}: unexpected {other:?}", statement.table),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        if columns.is_empty() {
            return Err(SqlError {
                sqlstate: "0A000".into(),
                message: format!("COPY into {}, which has no columns, is not supported by Barista", statement.table),
            });
        }
        let limit = self.shared.limits.max_statement_bytes.min(COPY_INSERT_BYTES);
        let loader = Loader::new(statement, columns, limit);
        let count = loader.columns();
        *self.copy.lock().await = Some(CopyState { loader, in_client_txn, own_txn: false, held: None });
        Ok(count)
    }

    /// Sends one full INSERT of the COPY in progress (see [`CopyState::held`]).
    async fn copy_insert(&self, state: &mut CopyState, insert: String) -> Result<(), SqlError> {
        if !state.in_client_txn && !state.own_txn {
            let Some(first) = state.held.take() else {
                state.held = Some(insert);
                return Ok(());
            };
            expect_done(self.submit("pg_copy", Op::Begin).await?)?;
            state.own_txn = true;
            self.copy_statement(first).await?;
        }
        self.copy_statement(insert).await
    }

    async fn copy_statement(&self, sql: String) -> Result<(), SqlError> {
        expect_rows(self.submit("pg_copy", Op::Execute(Statement { sql, params: Vec::new() })).await?).map(|_| ())
    }

    /// Takes the data of a CopyData message.
    async fn copy_data(&self, data: &[u8]) -> Result<(), SqlError> {
        let mut state = self.copy.lock().await.take().ok_or_else(no_copy)?;
        let result = async {
            for insert in state.loader.feed(data)? {
                self.copy_insert(&mut state, insert).await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                *self.copy.lock().await = Some(state);
                Ok(())
            }
            Err(e) => Err(self.abort_copy(state, e).await),
        }
    }

    /// Ends the COPY at CopyDone; returns its row count.
    async fn copy_done(&self) -> Result<u64, SqlError> {
        let mut state = self.copy.lock().await.take().ok_or_else(no_copy)?;
        let result = async {
            for insert in state.loader.finish()? {
                self.copy_insert(&mut state, insert).await?;
            }
            if state.own_txn {
                return match self.submit("pg_copy", Op::Commit).await? {
                    Outcome::Done => Ok(()),
                    // The transaction is over, rolled back: nothing of the COPY is left.
                    other => Err(unexpected(other)),
                };
            }
            if let Some(only) = state.held.take() {
                self.copy_statement(only).await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(state.loader.rows()),
            Err(e) if state.own_txn && self.txn().await == Txn::Idle => Err(e),
            Err(e) => Err(self.abort_copy(state, e).await),
        }
    }

    /// Undoes a COPY left behind by the protocol: the client sent a message other than the
    /// COPY's in the middle of it, which pgwire refused (08P01), and went on with statements.
    /// Without this its INSERTs, in a transaction the front end opened, would be committed by
    /// the client's next COMMIT.
    async fn abandon_copy(&self) {
        if let Some(state) = self.copy.lock().await.take() {
            let abandoned = SqlError { sqlstate: "08P01".into(), message: "COPY abandoned".into() };
            let _ = self.abort_copy(state, abandoned).await;
        }
    }

    /// Undoes a COPY that failed with `error` (or that the client abandoned); returns the error.
    /// Its own transaction rolls back. Inside the client's transaction PostgreSQL aborts the
    /// transaction; where the executor has not seen a failure (the rows or the client were at
    /// fault, not a statement), a statement that fails on every replica aborts it there too, so
    /// that nothing of a half-done COPY can be committed.
    async fn abort_copy(&self, state: CopyState, error: SqlError) -> SqlError {
        let cleanup = if state.own_txn {
            Some(Op::Rollback)
        } else if state.in_client_txn && self.txn().await == Txn::Open {
            Some(Op::Execute(Statement { sql: copy::ABORT_SQL.into(), params: Vec::new() }))
        } else {
            None
        };
        if let Some(op) = cleanup
            && let Err(e) = self.submit("pg_copy", op).await
        {
            // Closing the session rolls back what this could not: the client cannot carry on.
            tracing::warn!("undoing a failed COPY: {e}");
        }
        error
    }

    /// Runs a bound portal of the extended protocol.
    async fn execute(&self, portal: &Portal<PreparedRef>) -> Result<Response, SqlError> {
        self.abandon_copy().await;
        let prepared = &portal.statement.statement;
        let tag = match &prepared.action {
            Action::Sql(tag) => tag,
            Action::CopyIn => {
                let columns = self.start_copy(&prepared.sql).await?;
                return Ok(Response::CopyIn(CopyResponse::new(0, columns, futures::stream::empty())));
            }
            control => {
                let tag = self.control("pg_execute", control).await?;
                return Ok(match control {
                    Action::Begin { .. } => Response::TransactionStart(PgTag::new(&tag)),
                    _ => Response::TransactionEnd(PgTag::new(&tag)),
                });
            }
        };
        self.check_length(&prepared.sql)?;
        let params = bound_params(portal)?;
        let statement = Statement { sql: prepared.sql.clone(), params };
        let rs = expect_rows(self.submit("pg_execute", Op::Execute(statement)).await?)?;
        if rs.columns.is_empty() {
            return Ok(Response::Execution(PgTag::new(&tag.text(rs.rows_affected))));
        }
        // The types the client was told at Describe, when they still fit the result.
        let described: Option<Vec<Type>> = prepared
            .description
            .as_ref()
            .ok()
            .filter(|d| d.columns.len() == rs.columns.len())
            .map(|d| d.columns.iter().map(|(_, ty)| values::describe_as(ty)).collect());
        let types = described.unwrap_or_else(|| rs.columns.iter().map(|c| values::type_named(&c.type_name)).collect());
        let fields: Vec<FieldInfo> = rs
            .columns
            .iter()
            .zip(&types)
            .enumerate()
            .map(|(i, (c, ty))| field(&c.name, ty.clone(), format_at(&portal.result_column_format, i)))
            .collect();
        let rows = data_rows(&fields, rs.rows)?;
        let mut response = QueryResponse::new(Arc::new(fields), futures::stream::iter(rows.into_iter().map(Ok)));
        // pgwire appends the number of rows it sends (also to `SHOW` and `EXPLAIN`, whose tags
        // PostgreSQL sends without one).
        response.set_command_tag(&tag.command);
        Ok(Response::Query(response))
    }
}

/// The result of one simple-query statement as messages.
fn simple_result(tag: &Tag, rs: ResultSet, out: &mut Vec<PgWireBackendMessage>) -> Result<(), SqlError> {
    if rs.columns.is_empty() {
        out.push(complete(tag.text(rs.rows_affected)));
        return Ok(());
    }
    let fields: Vec<FieldInfo> =
        rs.columns.iter().map(|c| field(&c.name, values::type_named(&c.type_name), FieldFormat::Text)).collect();
    let count = rs.rows.len() as u64;
    let rows = data_rows(&fields, rs.rows)?;
    out.push(PgWireBackendMessage::RowDescription(RowDescription::new(fields.iter().map(Into::into).collect())));
    out.extend(rows.into_iter().map(PgWireBackendMessage::DataRow));
    out.push(complete(tag.text(count)));
    Ok(())
}

fn deallocate_tag(name: &Option<String>) -> String {
    if name.is_some() { "DEALLOCATE".into() } else { "DEALLOCATE ALL".into() }
}

fn complete(tag: String) -> PgWireBackendMessage {
    PgWireBackendMessage::CommandComplete(CommandComplete::new(tag))
}

fn field(name: &str, ty: Type, format: FieldFormat) -> FieldInfo {
    FieldInfo::new(name.to_owned(), None, None, ty, format)
}

/// Encodes rows for `fields` (type and format of each column).
fn data_rows(fields: &[FieldInfo], rows: Vec<Vec<SqlValue>>) -> Result<Vec<DataRow>, SqlError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut data = BytesMut::new();
        for (value, field) in row.iter().zip(fields) {
            values::put_field(&mut data, value, field.datatype(), field.format() == FieldFormat::Binary)?;
        }
        out.push(DataRow::new(data, fields.len() as i16));
    }
    Ok(out)
}

/// The format of column or parameter `i`: one code for all, one per item, or text when the
/// client sent none (or too few, which PostgreSQL would refuse at Bind).
fn format_at(format: &Format, i: usize) -> FieldFormat {
    match format {
        Format::UnifiedText => FieldFormat::Text,
        Format::UnifiedBinary => FieldFormat::Binary,
        Format::Individual(codes) => codes.get(i).map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
    }
}

/// A portal's parameters as values, decoded by their declared or described types.
fn bound_params(portal: &Portal<PreparedRef>) -> Result<Vec<SqlValue>, SqlError> {
    let stored = &portal.statement;
    let described = stored.statement.description.as_ref().map(|d| d.params.as_slice()).unwrap_or(&[]);
    portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let ty = stored
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .or_else(|| described.get(i).cloned())
                .unwrap_or(Type::UNKNOWN);
            let binary = format_at(&portal.parameter_format, i) == FieldFormat::Binary;
            values::param(raw.as_deref(), binary, &ty, i)
        })
        .collect()
}

fn expect_done(outcome: Outcome) -> Result<(), SqlError> {
    match outcome {
        Outcome::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}

fn expect_rows(outcome: Outcome) -> Result<ResultSet, SqlError> {
    match outcome {
        Outcome::Rows(rs) => Ok(rs),
        Outcome::Batch(mut results) if results.len() == 1 => results.pop().unwrap_or_else(|| Ok(ResultSet::default())),
        other => Err(unexpected(other)),
    }
}

/// The error for an outcome that is not the request's success.
fn unexpected(outcome: Outcome) -> SqlError {
    match outcome {
        Outcome::Error(e) => e,
        Outcome::Rejected(why) => {
            SqlError { sqlstate: REJECTED.into(), message: format!("Barista rejected the request: {why}") }
        }
        Outcome::Busy => not_ready("another connection holds the open transaction"),
        other => {
            SqlError { sqlstate: "XX000".into(), message: format!("unexpected outcome for this request: {other:?}") }
        }
    }
}

fn no_copy() -> SqlError {
    SqlError { sqlstate: "08P01".into(), message: "COPY data without a COPY in progress".into() }
}

fn aborted_txn() -> SqlError {
    SqlError {
        sqlstate: IN_FAILED_TXN.into(),
        message: "current transaction is aborted, commands ignored until end of transaction block".into(),
    }
}

fn not_ready(why: &str) -> SqlError {
    SqlError { sqlstate: "57P03".into(), message: format!("replica not ready, try another replica: {why}") }
}

/// Why the service produced no outcome, with a SQLSTATE: not ready `57P03` (cannot connect
/// now: try another replica), overloaded `53000`, refused by the determinism policy (its own
/// code: `0A000`, or `42601` for what Barista cannot parse), too large `54000`.
fn service_error(e: &ServiceError) -> SqlError {
    let sqlstate = match e {
        ServiceError::NotReady(_) => "57P03",
        ServiceError::Overloaded(_) => "53000",
        ServiceError::Refused(refusal) => refusal.sqlstate,
        ServiceError::TooLarge(_) => LIMIT_EXCEEDED,
    };
    SqlError { sqlstate: sqlstate.into(), message: e.to_string() }
}

fn error_info(e: &SqlError) -> ErrorInfo {
    ErrorInfo::new("ERROR".to_owned(), e.sqlstate.clone(), e.message.clone())
}

fn error_message(e: &SqlError) -> PgWireBackendMessage {
    PgWireBackendMessage::ErrorResponse(error_info(e).into())
}

fn user_error(e: &SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    /// Runs the query's statements and ends with `ReadyForQuery` carrying the session's
    /// transaction state (pgwire's default would derive it from the responses alone).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        self.abandon_copy().await;
        let store = client.portal_store();
        let deallocate = |name: Option<&str>| {
            // `ALL` needs nothing: a statement parsed again under its name replaces the old one.
            if let Some(name) = name {
                store.rm_statement(name);
            }
        };
        let statements = statements::split(&query.query);
        let copy = match statements.as_slice() {
            [one] if statements::classify(one) == Action::CopyIn => Some(self.start_copy(one).await),
            many if many.iter().any(|s| statements::classify(s) == Action::CopyIn) => Some(Err(SqlError {
                sqlstate: "0A000".into(),
                message: "Barista runs COPY FROM STDIN only as the one statement of its query string".into(),
            })),
            _ => None,
        };
        let messages = match copy {
            Some(Ok(columns)) => {
                // The CopyData messages follow; CopyDone or CopyFail ends the query.
                let response = CopyResponse::new(0, columns, futures::stream::empty());
                send_copy_in_response(client, response).await?;
                client.set_state(PgWireConnectionState::CopyInProgress(false));
                return Ok(());
            }
            Some(Err(e)) => vec![error_message(&e)],
            None => self.simple(&statements, &deallocate).await,
        };
        for message in messages {
            client.feed(message).await?;
        }
        let status = self.status().await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` above does the work; pgwire calls this only from its default `on_query`.
        Err(user_error(&SqlError { sqlstate: "XX000".into(), message: "simple query path not in use".into() }))
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PreparedRef;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<PreparedRef>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let action = match statements::split(sql).as_slice() {
            [] => return Ok(None),
            // Classified without its `;` (`BEGIN;` has no transaction modes).
            [one] => statements::classify(one),
            _ => {
                return Err(user_error(&SqlError {
                    sqlstate: "42601".into(),
                    message: "cannot insert multiple commands into a prepared statement".into(),
                }));
            }
        };
        let description = match action {
            Action::Sql(_) => self.side.lock().await.describe(sql, types).await,
            _ => Ok(Description::default()),
        };
        Ok(Some(Arc::new(Prepared { sql: sql.to_owned(), action, description })))
    }

    fn get_parameter_types(&self, stmt: &PreparedRef) -> PgWireResult<Vec<Type>> {
        stmt.description.as_ref().map(|d| d.params.clone()).map_err(user_error)
    }

    fn get_result_schema(&self, stmt: &PreparedRef, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let description = stmt.description.as_ref().map_err(user_error)?;
        let format = format.cloned().unwrap_or_default();
        Ok(description
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| field(name, values::describe_as(ty), format_at(&format, i)))
            .collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = PreparedRef;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// Answers Describe: `ParameterDescription` (for a statement), then `RowDescription`, or
    /// `NoData` for a statement that returns no rows (pgwire's default sends an empty
    /// `RowDescription` when a statement has parameters but no result columns).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let (params, fields) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(stmt)) => {
                    let described = self.do_describe_statement(client, &stmt).await?;
                    (Some(described.parameters), described.fields)
                }
                Some(Entry::Empty) => (Some(Vec::new()), Vec::new()),
                None => return Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                // A statement the side connection could not describe (it names a table created
                // earlier in this session's open transaction, which only the session's own
                // connection sees) runs now, and its result describes it; Execute returns that
                // result. libpq, and so psycopg and pgbench, always describe the portal.
                Some(Entry::Value(portal)) if portal.statement.statement.description.is_err() => {
                    let response = self.execute(&portal).await.map_err(|e| user_error(&e))?;
                    let fields = match &response {
                        Response::Query(query) => query.row_schema().to_vec(),
                        _ => Vec::new(),
                    };
                    self.ran_early.lock().await.insert(portal.name.clone(), response);
                    (None, fields)
                }
                Some(Entry::Value(portal)) => (None, self.do_describe_portal(client, &portal).await?.fields),
                Some(Entry::Empty) => (None, Vec::new()),
                None => return Err(PgWireError::PortalNotFound(name.to_owned())),
            },
            other => return Err(PgWireError::InvalidTargetType(other)),
        };
        if let Some(params) = params {
            let oids = params.iter().map(Type::oid).collect();
            client.send(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
        }
        if fields.is_empty() {
            client.send(PgWireBackendMessage::NoData(NoData::new())).await?;
        } else {
            let description = RowDescription::new(fields.iter().map(Into::into).collect());
            client.send(PgWireBackendMessage::RowDescription(description)).await?;
        }
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<PreparedRef>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let inferred = self.parser.get_parameter_types(&target.statement)?;
        // The client's declared types win; PostgreSQL reports them back the same way.
        let params = (0..inferred.len().max(target.parameter_types.len()))
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .or_else(|| inferred.get(i).cloned())
                    .unwrap_or(Type::UNKNOWN)
            })
            .collect();
        Ok(DescribeStatementResponse::new(params, self.parser.get_result_schema(&target.statement, None)?))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<PreparedRef>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.parser.get_result_schema(&portal.statement.statement, Some(&portal.result_column_format))?;
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedRef>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(response) = self.ran_early.lock().await.remove(&portal.name) {
            return Ok(response);
        }
        if let Action::Deallocate(name) = &portal.statement.statement.action {
            if let Some(name) = name {
                client.portal_store().rm_statement(name);
            }
            return Ok(Response::Execution(PgTag::new(&deallocate_tag(name))));
        }
        // An error is returned rather than answered, so that pgwire discards the rest of the
        // pipeline until Sync, as PostgreSQL does.
        self.execute(portal).await.map_err(|e| user_error(&e))
    }

    /// Answers Sync with `ReadyForQuery` carrying the session's transaction state.
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        self.ran_early.lock().await.clear();
        let status = self.status().await;
        client.set_transaction_status(status);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        client.flush().await?;
        Ok(())
    }
}

/// The rows of a `COPY ... FROM STDIN` (see `copy` and [`Connection::start_copy`]).
#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = self.copy_data(&copy_data.data).await;
        // pgwire answers an error with the status it holds (failed if in a transaction).
        client.set_transaction_status(self.status().await);
        result.map_err(|e| user_error(&e))
    }

    /// Sends `COPY n`; pgwire then sends ReadyForQuery (simple protocol) or waits for Sync.
    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = self.copy_done().await;
        client.set_transaction_status(self.status().await);
        let rows = result.map_err(|e| user_error(&e))?;
        client.send(complete(format!("COPY {rows}"))).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let failed =
            SqlError { sqlstate: "57014".into(), message: format!("COPY from stdin failed: {}", fail.message) };
        let error = match self.copy.lock().await.take() {
            Some(state) => self.abort_copy(state, failed).await,
            None => failed,
        };
        client.set_transaction_status(self.status().await);
        user_error(&error)
    }
}
