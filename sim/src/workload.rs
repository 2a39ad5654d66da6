//! Simulated clients: they open a replicated session, send requests with failover and retries,
//! and remember what they were told, so the checkers can compare promises with the data.
//!
//! - inserters add unique rows, alternately as statements and as non-atomic batches of one (what
//!   the Rust client sends): every acknowledged row must exist exactly once at the end, and a
//!   retried insert must never come back as a duplicate-key error (that would mean it ran twice);
//! - bankers move money with interactive transactions and atomic batches: the total is constant,
//!   and a read inside a transfer sees the total less the transfer's own debit;
//! - register clients read, write and compare-and-set single rows, recording when each request
//!   was invoked and answered: together their histories must be linearizable
//!   ([`crate::linearizability`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use barista_runtime::command::{ConnId, Op, Statement};
use barista_runtime::executor::Outcome;
use barista_runtime::sql::SqlValue;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use crate::config::Workload;
use crate::linearizability::{Operation, RegisterInput, RegisterOp, RegisterOutput};
use crate::rpc::{Client, Request};

/// Accounts in the bank, and each one's opening balance.
pub const ACCOUNTS: i64 = 5;
/// Opening balance of every account.
pub const OPENING_BALANCE: i64 = 1000;
/// Registers (rows of `reg`): few, so that clients contend on them.
pub const REGISTER_KEYS: i64 = 3;
/// Every register's value before the clients start.
pub const REGISTER_INITIAL: i64 = 0;
/// How long a register client waits for one answer before it gives up on it (its outcome is then
/// unknown) and goes on: shorter than the run, so faults leave unknown outcomes in the history.
const REGISTER_PATIENCE: Duration = Duration::from_secs(3);

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
    /// Register operations, with unknown outcomes for requests given up on.
    pub register_ops: Vec<RegisterOp>,
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
        self.next_by(op, self.deadline).await
    }

    /// Sends the next request, giving up on it at `deadline`.
    async fn next_by(&mut self, op: Op, deadline: Instant) -> Option<Outcome> {
        self.seq += 1;
        let request = Request { conn: self.conn, request_seq: self.seq, op };
        self.client.call(request, deadline.min(self.deadline)).await.ok()
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
    statements
        .push(Statement { sql: "CREATE TABLE reg (k bigint PRIMARY KEY, v bigint NOT NULL)".into(), params: vec![] });
    for k in 0..REGISTER_KEYS {
        statements.push(Statement {
            sql: "INSERT INTO reg (k, v) VALUES ($1, $2)".into(),
            params: vec![SqlValue::Int(k), SqlValue::Int(REGISTER_INITIAL)],
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
        let insert = Statement {
            sql: "INSERT INTO ins (id, client) VALUES ($1, $2)".into(),
            params: vec![SqlValue::Int(id), SqlValue::Int(k as i64)],
        };
        // Every other one as a non-atomic batch of one statement: what the Rust client sends.
        let outcome = if j % 2 == 0 {
            s.next(Op::Execute(insert)).await
        } else {
            match s.next(Op::ExecuteBatch { statements: vec![insert], atomic: false }).await {
                Some(Outcome::Batch(mut results)) if results.len() == 1 => results.pop().map(|r| match r {
                    Ok(rs) => Outcome::Rows(rs),
                    Err(e) => Outcome::Error(e),
                }),
                other => other,
            }
        };
        match outcome {
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
            let mut debited = matches!(s.next(Op::Execute(stmt(debit, from))).await, Some(Outcome::Rows(_)));
            if debited {
                // A read of the open transaction (answered without the log where it may be):
                // it sees the debit and nothing of any other transfer, even at another replica,
                // which may not have applied the debit yet.
                if j % 4 == 0 {
                    s.client.hop();
                }
                let total = Statement { sql: "SELECT sum(balance) FROM accounts".into(), params: vec![] };
                match s.next(Op::Execute(total)).await {
                    Some(Outcome::Rows(rs)) => {
                        let expected = ACCOUNTS * OPENING_BALANCE - amount;
                        if single_int(&rs.rows) != Some(expected) {
                            history.violations.push(format!(
                                "inside a transfer of {amount}, the bank held {:?}, not {expected}",
                                rs.rows
                            ));
                        }
                    }
                    // Aborted by the idle timeout, or unanswered.
                    _ => debited = false,
                }
            }
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

/// Stamps register events in the order they happen in the simulation, shared by all register
/// clients. The simulation runs one task at a time, so this order is the real-time order of the
/// history, and unlike virtual time it never ties: a client that got an answer before another
/// client sent its request is ordered before it, even within one simulated instant.
#[derive(Clone)]
pub struct RegisterClock {
    epoch: Instant,
    next: Arc<AtomicU64>,
}

impl RegisterClock {
    /// A clock whose reports count milliseconds from now.
    pub fn new() -> RegisterClock {
        RegisterClock { epoch: Instant::now(), next: Arc::new(AtomicU64::new(0)) }
    }

    /// The next stamp, and the simulated milliseconds since the epoch (for reports).
    fn stamp(&self) -> (u64, u64) {
        (self.next.fetch_add(1, Ordering::Relaxed), self.epoch.elapsed().as_millis() as u64)
    }
}

impl Default for RegisterClock {
    fn default() -> Self {
        RegisterClock::new()
    }
}

/// Which workload client `k` of a run runs: inserters first, then bankers, then register clients
/// (appended last so that adding them left the other clients' numbering, and so their seeds, as
/// they were).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`inserter`].
    Inserter,
    /// [`banker`].
    Banker,
    /// [`register`].
    Register,
}

impl Kind {
    /// The kind of client `k` in workload `w`.
    pub fn of(k: usize, w: &Workload) -> Kind {
        if k < w.inserters {
            Kind::Inserter
        } else if k < w.inserters + w.bankers {
            Kind::Banker
        } else {
            Kind::Register
        }
    }
}

/// Reads, writes and compare-and-sets random registers, recording every operation's invocation,
/// answer and return. Written values are unique, which keeps the checker's search small (a read
/// names the write it saw); a compare-and-set expects the last value this client saw there, so
/// it succeeds often enough to matter.
pub async fn register(
    k: u64,
    client: Client,
    requests: usize,
    seed: u64,
    clock: RegisterClock,
    deadline: Instant,
) -> History {
    let mut history = History::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(mut s) = Session::open(client, ConnId(0x3000 + k), deadline).await else {
        history.gave_up += 1;
        return history;
    };
    let mut seen = [REGISTER_INITIAL; REGISTER_KEYS as usize];
    for j in 0..requests as i64 {
        let key = rng.random_range(0..REGISTER_KEYS);
        let unique = ((k as i64 + 1) << 32) + j + 1;
        let (input, sql, params) = match rng.random_range(0..3) {
            0 => (RegisterInput::Read, "SELECT v FROM reg WHERE k = $1", vec![SqlValue::Int(key)]),
            1 => (
                RegisterInput::Write(unique),
                "UPDATE reg SET v = $2 WHERE k = $1",
                vec![SqlValue::Int(key), SqlValue::Int(unique)],
            ),
            _ => (
                RegisterInput::Cas { from: seen[key as usize], to: unique },
                "UPDATE reg SET v = $3 WHERE k = $1 AND v = $2",
                vec![SqlValue::Int(key), SqlValue::Int(seen[key as usize]), SqlValue::Int(unique)],
            ),
        };
        let (call, called_ms) = clock.stamp();
        // Given up on, a request's outcome is unknown, and the session goes on with the next
        // request number: the exactly-once table never runs the abandoned one after a later one.
        let statement = Op::Execute(Statement { sql: sql.into(), params });
        let outcome = s.next_by(statement, Instant::now() + REGISTER_PATIENCE).await;
        let (ret, returned_ms) = clock.stamp();
        let output = match (input, outcome) {
            (_, None) => {
                history.gave_up += 1;
                None
            }
            (RegisterInput::Read, Some(Outcome::Rows(rs))) => match single_int(&rs.rows) {
                Some(v) => Some(RegisterOutput::Read(v)),
                None => {
                    history.violations.push(format!("read of register {key}: rows {:?}", rs.rows));
                    continue;
                }
            },
            (RegisterInput::Write(_), Some(Outcome::Rows(rs))) if rs.rows_affected == 1 => {
                Some(RegisterOutput::Written)
            }
            (RegisterInput::Cas { .. }, Some(Outcome::Rows(rs))) if rs.rows_affected <= 1 => {
                Some(RegisterOutput::Cas(rs.rows_affected == 1))
            }
            (input, Some(other)) => {
                history.violations.push(format!("register {key} {input:?}: unexpected outcome {other:?}"));
                continue;
            }
        };
        match (input, output) {
            // A read that was never answered has no effect and constrains nothing: leave it out.
            (RegisterInput::Read, None) => continue,
            (_, Some(RegisterOutput::Read(v))) => seen[key as usize] = v,
            (_, Some(RegisterOutput::Written | RegisterOutput::Cas(true))) => seen[key as usize] = unique,
            _ => {}
        }
        history.register_ops.push(RegisterOp {
            key,
            op: Operation { client: k as usize, input, call, ret: output.map(|o| (ret, o)) },
            called_ms,
            returned_ms: output.map(|_| returned_ms),
        });
    }
    let _ = s.next(Op::Close).await;
    history
}

/// The value of a one-row, one-integer-column result.
fn single_int(rows: &[Vec<SqlValue>]) -> Option<i64> {
    match rows {
        [row] => match row.as_slice() {
            [SqlValue::Int(v)] => Some(*v),
            _ => None,
        },
        _ => None,
    }
}
