//! Simulated clients: they open a replicated session, send requests with failover and retries,
//! and remember what they were told, so the checkers can compare promises with the data.
//!
//! - inserters add unique rows: every acknowledged row must exist exactly once at the end, and a
//!   retried insert must never come back as a duplicate-key error (that would mean it ran twice);
//! - bankers move money with interactive transactions and atomic batches: the total is constant.

use barista_runtime::command::{ConnId, Op, Statement};
use barista_runtime::executor::Outcome;
use barista_runtime::sql::SqlValue;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use crate::rpc::{Client, Request};

/// Accounts in the bank, and each one's opening balance.
pub const ACCOUNTS: i64 = 5;
/// Opening balance of every account.
pub const OPENING_BALANCE: i64 = 1000;

/// What one client saw.
#[derive(Debug, Default)]
pub struct History {
    /// Rows whose insert was acknowledged.
    pub acked_inserts: Vec<i64>,
    /// Transfers acknowledged as committed.
    pub committed_transfers: usize,
    /// Broken promises seen by the client itself.
    pub violations: Vec<String>,
    /// Requests that got no answer before the deadline (allowed during faults, not after).
    pub gave_up: usize,
}

/// A session with its own request counter.
struct Session {
    client: Client,
    conn: ConnId,
    seq: u64,
    deadline: Instant,
}

impl Session {
    async fn open(client: Client, conn: ConnId, deadline: Instant) -> Option<Session> {
        let mut s = Session { client, conn, seq: 0, deadline };
        match s.client.call(Request { conn, request_seq: 0, op: Op::Open }, deadline).await {
            Ok(Outcome::Opened) => Some(s),
            _ => None,
        }
    }

    /// Sends the next request; `None` if no replica answered in time.
    async fn next(&mut self, op: Op) -> Option<Outcome> {
        self.seq += 1;
        let request = Request { conn: self.conn, request_seq: self.seq, op };
        self.client.call(request, self.deadline).await.ok()
    }

    async fn exec(&mut self, sql: &str, params: Vec<SqlValue>) -> Option<Outcome> {
        self.next(Op::Execute(Statement { sql: sql.into(), params })).await
    }
}

/// Creates the workload's tables through the cluster. Returns false if it could not.
pub async fn setup(client: Client, deadline: Instant) -> bool {
    let Some(mut s) = Session::open(client, ConnId(1), deadline).await else { return false };
    let mut statements = vec![
        Statement { sql: "CREATE TABLE ins (id bigint PRIMARY KEY, client bigint NOT NULL)".into(), params: vec![] },
        Statement {
            sql: "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)".into(),
            params: vec![],
        },
    ];
    for id in 0..ACCOUNTS {
        statements.push(Statement {
            sql: "INSERT INTO accounts (id, balance) VALUES ($1, $2)".into(),
            params: vec![SqlValue::Int(id), SqlValue::Int(OPENING_BALANCE)],
        });
    }
    let done = matches!(s.next(Op::ExecuteBatch { statements, atomic: true }).await,
        Some(Outcome::Batch(results)) if results.iter().all(Result::is_ok));
    let _ = s.next(Op::Close).await;
    done
}

/// Inserts `requests` unique rows.
pub async fn inserter(k: u64, client: Client, requests: usize, deadline: Instant) -> History {
    let mut history = History::default();
    let Some(mut s) = Session::open(client, ConnId(0x1000 + k), deadline).await else {
        history.gave_up += 1;
        return history;
    };
    for j in 0..requests as i64 {
        let id = ((k as i64) << 20) + j;
        let params = vec![SqlValue::Int(id), SqlValue::Int(k as i64)];
        match s.exec("INSERT INTO ins (id, client) VALUES ($1, $2)", params).await {
            Some(Outcome::Rows(rs)) if rs.rows_affected == 1 => history.acked_inserts.push(id),
            Some(Outcome::Error(e)) if e.sqlstate == "23505" => {
                history.violations.push(format!("insert of {id} reported a duplicate key: it ran twice"))
            }
            Some(other) => history.violations.push(format!("insert of {id}: unexpected outcome {other:?}")),
            None => history.gave_up += 1,
        }
    }
    let _ = s.next(Op::Close).await;
    history
}

/// Moves money between random accounts: even requests as interactive transactions, odd ones as
/// atomic batches.
pub async fn banker(k: u64, client: Client, requests: usize, seed: u64, deadline: Instant) -> History {
    let mut history = History::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(mut s) = Session::open(client, ConnId(0x2000 + k), deadline).await else {
        history.gave_up += 1;
        return history;
    };
    let debit = "UPDATE accounts SET balance = balance - $1 WHERE id = $2";
    let credit = "UPDATE accounts SET balance = balance + $1 WHERE id = $2";
    for j in 0..requests {
        let (from, to) = (rng.random_range(0..ACCOUNTS), rng.random_range(0..ACCOUNTS));
        let amount = rng.random_range(1..100);
        let stmt =
            |sql: &str, id| Statement { sql: sql.into(), params: vec![SqlValue::Int(amount), SqlValue::Int(id)] };
        if j % 2 == 0 {
            if s.next(Op::Begin).await != Some(Outcome::Done) {
                history.gave_up += 1;
                let _ = s.next(Op::Rollback).await;
                continue;
            }
            let debited = matches!(s.next(Op::Execute(stmt(debit, from))).await, Some(Outcome::Rows(_)));
            let credited = debited && matches!(s.next(Op::Execute(stmt(credit, to))).await, Some(Outcome::Rows(_)));
            if credited && s.next(Op::Commit).await == Some(Outcome::Done) {
                history.committed_transfers += 1;
            } else {
                // Aborted by an error or the idle timeout, or unanswered: end the block.
                let _ = s.next(Op::Rollback).await;
            }
        } else {
            let batch = Op::ExecuteBatch { statements: vec![stmt(debit, from), stmt(credit, to)], atomic: true };
            match s.next(batch).await {
                Some(Outcome::Batch(results)) if results.len() == 2 && results.iter().all(Result::is_ok) => {
                    history.committed_transfers += 1
                }
                Some(Outcome::Batch(_)) => {}
                Some(other) => history.violations.push(format!("transfer batch: unexpected outcome {other:?}")),
                None => history.gave_up += 1,
            }
        }
    }
    let _ = s.next(Op::Close).await;
    history
}
