//! The Thrift handler: each call becomes one request to the replica's [`Service`], run on the
//! tokio runtime from the Thrift worker thread (`Handle::block_on`), and its outcome becomes the
//! call's answer or a `DBException`.
//!
//! Connections and request numbers: `open_connection` is request 0 of its connection; every later
//! call carries `Connection.request_seq` (or the original API's decimal `seq_id`). A call without
//! either is numbered here, one more than the connection's last number at this replica: correct
//! while the client stays with this replica, which is all a client of the original API could do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use barista_runtime::clock::SystemClock;
use barista_runtime::command::{ConnId, Op, Statement};
use barista_runtime::executor::Outcome;
use barista_runtime::service::Service;
use thrift::OrderedFloat;
use tokio::runtime::Handle;

use super::convert::{self, LIMIT_EXCEEDED, exception};
use super::generated as g;
use crate::admin::Metrics;
use crate::config::Limits;

/// The answer of one call, or its exception.
type Answer<T> = Result<T, g::DBException>;

/// The Thrift front end of one replica. Cheap to clone: one per worker thread.
#[derive(Clone)]
pub struct Frontend {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set once the node has recovered; until then every call is "not ready".
    service: OnceLock<Arc<Service<SystemClock>>>,
    runtime: Handle,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// Last request number per connection, for calls that carry none.
    last_seq: Mutex<HashMap<ConnId, u64>>,
}

impl Frontend {
    /// A front end running requests on `runtime`; it answers "not ready" until
    /// [`Frontend::set_service`].
    pub fn new(runtime: Handle, limits: Limits, metrics: Arc<Metrics>) -> Frontend {
        Frontend {
            inner: Arc::new(Inner {
                service: OnceLock::new(),
                runtime,
                limits,
                metrics,
                last_seq: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The replica's service, once its node runs.
    pub fn set_service(&self, service: Arc<Service<SystemClock>>) {
        let _ = self.inner.service.set(service);
    }

    /// The metrics (the server counts connections there).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Runs one call, counts it, and turns an exception into Thrift's user error.
    fn observe<T>(&self, method: &str, call: impl FnOnce() -> Answer<T>) -> thrift::Result<T> {
        let started = Instant::now();
        let answer = call();
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(e) => match e.error_code {
                Some(g::ERR_SQL) => "sql_error",
                Some(g::ERR_NOT_READY) => "not_ready",
                Some(g::ERR_OVERLOADED) => "overloaded",
                Some(g::ERR_REFUSED) => "refused",
                Some(g::ERR_REJECTED) => "rejected",
                _ => "bad_request",
            },
        };
        self.inner.metrics.request(method, outcome, started.elapsed());
        answer.map_err(|e| thrift::Error::User(Box::new(e)))
    }

    fn submit(&self, conn: ConnId, request_seq: u64, op: Op) -> Answer<Outcome> {
        let service = self.inner.service.get().ok_or_else(|| {
            exception(
                g::ERR_NOT_READY,
                "replica starting: still recovering its state from ZooKeeper and PostgreSQL; try another replica",
                None,
            )
        })?;
        self.inner.runtime.block_on(service.submit(conn, request_seq, op)).map_err(|e| convert::service_exception(&e))
    }

    /// The connection a call names, and the call's request number.
    fn ids(&self, con: &g::Connection) -> Answer<(ConnId, u64)> {
        let conn = match (con.connection_id, &con.client_id) {
            (Some(id), _) => ConnId(id as u64),
            (None, Some(hex)) => u64::from_str_radix(hex, 16).map(ConnId).map_err(|_| {
                exception(g::ERR_BAD_REQUEST, format!("Connection.client_id {hex:?} is not a connection id"), None)
            })?,
            (None, None) => {
                return Err(exception(
                    g::ERR_BAD_REQUEST,
                    "the Connection names no connection: pass the one open_connection returned",
                    None,
                ));
            }
        };
        let explicit = match (con.request_seq, &con.seq_id) {
            (Some(seq), _) => Some(u64::try_from(seq).map_err(|_| {
                exception(g::ERR_BAD_REQUEST, format!("Connection.request_seq {seq} is negative"), None)
            })?),
            (None, Some(text)) => Some(text.trim().parse::<u64>().map_err(|_| {
                exception(g::ERR_BAD_REQUEST, format!("Connection.seq_id {text:?} is not a request number"), None)
            })?),
            (None, None) => None,
        };
        let mut last_seq = self.inner.last_seq.lock().unwrap_or_else(|p| p.into_inner());
        let last = last_seq.entry(conn).or_insert(0);
        let seq = match explicit {
            Some(seq) => seq,
            None => *last + 1,
        };
        *last = (*last).max(seq);
        Ok((conn, seq))
    }

    fn forget(&self, conn: ConnId) {
        self.inner.last_seq.lock().unwrap_or_else(|p| p.into_inner()).remove(&conn);
    }

    fn check_statement(&self, index: Option<usize>, sql: &str) -> Answer<()> {
        let max = self.inner.limits.max_statement_bytes;
        if sql.len() <= max {
            return Ok(());
        }
        let which = index.map_or("the statement".to_string(), |i| format!("statement {i} of the batch"));
        Err(exception(
            g::ERR_BAD_REQUEST,
            format!("{which} is {} bytes; the limit (max_statement_bytes) is {max}", sql.len()),
            Some(LIMIT_EXCEEDED),
        ))
    }

    fn execute(&self, con: g::Connection, query: String, params: Vec<Vec<u8>>) -> Answer<g::ResultSet> {
        self.check_statement(None, &query)?;
        let (conn, seq) = self.ids(&con)?;
        let statement = Statement { sql: query, params: params.into_iter().map(convert::text_param).collect() };
        match self.submit(conn, seq, Op::Execute(statement))? {
            Outcome::Rows(rs) => Ok(convert::result_set(rs, Some(con))),
            other => Err(failure(other)),
        }
    }

    /// Begin, commit, rollback, close: commands answered by `Done`.
    fn control(&self, con: &g::Connection, op: Op) -> Answer<()> {
        let (conn, seq) = self.ids(con)?;
        let close = op == Op::Close;
        match self.submit(conn, seq, op)? {
            Outcome::Done => {
                if close {
                    self.forget(conn);
                }
                Ok(())
            }
            other => Err(failure(other)),
        }
    }
}

/// The exception for an outcome that is not the call's success.
fn failure(outcome: Outcome) -> g::DBException {
    match outcome {
        Outcome::Error(e) => convert::sql_exception(&e),
        Outcome::Rejected(why) => exception(g::ERR_REJECTED, why, None),
        // The service retries Busy itself until its timeout; it does not return it.
        Outcome::Busy => exception(g::ERR_NOT_READY, "another connection holds the open transaction", None),
        other => exception(g::ERR_REJECTED, format!("unexpected outcome for this call: {other:?}"), None),
    }
}

impl g::BaristaSyncHandler for Frontend {
    fn handle_get_version(&self) -> thrift::Result<OrderedFloat<f64>> {
        self.observe("get_version", || Ok(g::ConstVERSION::const_value()))
    }

    fn handle_open_connection(&self, params: g::ConnectionParams) -> thrift::Result<g::Connection> {
        self.observe("open_connection", || {
            // 0 means "pick one", like an absent id: the IDL asks clients for a nonzero id, and
            // Thrift's Rust `ConnectionParams::default()` sends 0. Taken literally, every such
            // client would share connection 0 (found by server/tests/determinism_cases.rs).
            let conn = match (params.connection_id.filter(|id| *id != 0), self.inner.service.get()) {
                (Some(id), _) => ConnId(id as u64),
                (None, Some(service)) => service.new_conn_id(),
                // Not started: `submit` says so.
                (None, None) => ConnId(0),
            };
            match self.submit(conn, 0, Op::Open)? {
                Outcome::Opened => {
                    self.inner.last_seq.lock().unwrap_or_else(|p| p.into_inner()).insert(conn, 0);
                    Ok(g::Connection {
                        client_id: Some(conn.to_string()),
                        seq_id: None,
                        user: params.user,
                        database: params.database,
                        connection_id: Some(conn.0 as i64),
                        request_seq: None,
                    })
                }
                other => Err(failure(other)),
            }
        })
    }

    fn handle_execute_sql(
        &self,
        con: g::Connection,
        query: String,
        query_params: Vec<Vec<u8>>,
    ) -> thrift::Result<g::ResultSet> {
        self.observe("execute_sql", || self.execute(con, query, query_params))
    }

    fn handle_execute_sql_txn(
        &self,
        con: g::Connection,
        query: String,
        query_params: Vec<Vec<u8>>,
    ) -> thrift::Result<g::ResultSet> {
        self.observe("execute_sql_txn", || self.execute(con, query, query_params))
    }

    fn handle_begin_txn(&self, con: g::Connection) -> thrift::Result<()> {
        self.observe("begin_txn", || self.control(&con, Op::Begin))
    }

    fn handle_commit_txn(&self, con: g::Connection) -> thrift::Result<()> {
        self.observe("commit_txn", || self.control(&con, Op::Commit))
    }

    fn handle_rollback_txn(&self, con: g::Connection) -> thrift::Result<()> {
        self.observe("rollback_txn", || self.control(&con, Op::Rollback))
    }

    fn handle_close_connection(&self, con: g::Connection) -> thrift::Result<()> {
        self.observe("close_connection", || self.control(&con, Op::Close))
    }

    fn handle_execute_sql_batch(
        &self,
        con: g::Connection,
        statements: Vec<g::Statement>,
        atomic: bool,
    ) -> thrift::Result<Vec<g::ResultSet>> {
        self.observe("execute_sql_batch", || {
            let max = self.inner.limits.max_batch_len;
            if statements.is_empty() || statements.len() > max {
                return Err(exception(
                    g::ERR_BAD_REQUEST,
                    format!("a batch needs 1 to {max} statements (max_batch_len); this one has {}", statements.len()),
                    Some(LIMIT_EXCEEDED),
                ));
            }
            for (i, s) in statements.iter().enumerate() {
                self.check_statement(Some(i), &s.query)?;
            }
            let statements = statements.into_iter().map(convert::statement).collect::<Answer<Vec<_>>>()?;
            let (conn, seq) = self.ids(&con)?;
            match self.submit(conn, seq, Op::ExecuteBatch { statements, atomic })? {
                Outcome::Batch(mut results) => {
                    if let (true, Some(Err(e))) = (atomic, results.last()) {
                        return Err(convert::sql_exception(e));
                    }
                    Ok(results
                        .drain(..)
                        .map(|r| match r {
                            Ok(rs) => convert::result_set(rs, None),
                            Err(e) => convert::failed_result(&e, None),
                        })
                        .collect())
                }
                other => Err(failure(other)),
            }
        })
    }
}
