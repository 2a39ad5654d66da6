//! The executor against the SQLite stand-in: results, AP, exactly-once, transactions and the
//! one-open-transaction policy, crashes and backend faults.
//!
//! A "crash" drops the executor (every connection closes, open transactions roll back) and opens
//! a new one on the same `SqliteDb`, as a restarted replica process would. The strongest checks
//! are differential: a replica that crashes (or whose database fails) anywhere in a log must end
//! with the same data, and answer the same, as one that never did.

use std::collections::BTreeMap;

use barista_core::{Command, Slot, Value};
use barista_runtime::command::{ClientCommand, ConnId, Op, Statement};
use barista_runtime::executor::{Applied, Executor, Outcome};
use barista_runtime::sql::{ResultSet, SqlError, SqlValue};
use barista_runtime::testkit::{self, Dump, SqliteBackend, SqliteDb};

const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;

fn cmd(conn: u64, request_seq: u64, op: Op) -> ClientCommand {
    ClientCommand { conn: ConnId(conn), request_seq, timestamp_us: 1_700_000_000_000_000 + request_seq as i64, op }
}

fn statement(sql: &str) -> Statement {
    Statement { sql: sql.into(), params: Vec::new() }
}

fn sql(sql: &str) -> Op {
    Op::Execute(statement(sql))
}

fn sql_with(sql: &str, params: Vec<SqlValue>) -> Op {
    Op::Execute(Statement { sql: sql.into(), params })
}

fn batch(atomic: bool, statements: &[&str]) -> Op {
    Op::ExecuteBatch { statements: statements.iter().map(|s| statement(s)).collect(), atomic }
}

fn insert(table: &str, id: i64) -> Op {
    sql_with(&format!("INSERT INTO {table} (id) VALUES ($1)"), vec![SqlValue::Int(id)])
}

/// The internal idle-abort command, as a replica would propose it.
fn abort_idle(conn: u64, since_request: u64) -> ClientCommand {
    cmd(conn, 0, Op::AbortIdle { since_request })
}

fn garbage(payload: &[u8]) -> Command {
    Command { origin: testkit::ORIGIN, id: 99, payload: payload.to_vec().into() }
}

fn one_row_affected() -> Outcome {
    Outcome::Rows(ResultSet { rows_affected: 1, ..ResultSet::default() })
}

fn sqlstate(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Error(SqlError { sqlstate, .. }) => Some(sqlstate),
        _ => None,
    }
}

fn ids(rows: &[Vec<SqlValue>]) -> Vec<i64> {
    rows.iter()
        .map(|row| match row.first() {
            Some(SqlValue::Int(id)) => *id,
            other => panic!("not an id: {other:?}"),
        })
        .collect()
}

/// One replica: its database and the executor on it.
struct Replica {
    db: SqliteDb,
    executor: Option<Executor<SqliteBackend>>,
}

impl Replica {
    async fn new() -> Replica {
        let db = SqliteDb::new().expect("create database");
        let executor = Executor::open(db.backend()).await.expect("open executor");
        Replica { db, executor: Some(executor) }
    }

    fn ex(&mut self) -> &mut Executor<SqliteBackend> {
        self.executor.as_mut().expect("executor running")
    }

    /// Applies `value` as the next slot.
    async fn apply(&mut self, value: &Value) -> Vec<Applied> {
        let slot = self.ex().executed() + 1;
        self.ex().apply(slot, value).await.unwrap_or_else(|f| panic!("slot {slot}: {f}"))
    }

    /// Applies one command as the next slot and returns its outcome.
    async fn run(&mut self, command: ClientCommand) -> Outcome {
        let applied = self.apply(&testkit::slot([command])).await;
        assert_eq!(applied.len(), 1);
        applied.into_iter().next().map(|a| a.outcome).expect("one outcome")
    }

    /// The process dies (every connection closes) and restarts on the same disk.
    async fn crash(&mut self) {
        self.executor = None;
        self.executor = Some(Executor::open(self.db.backend()).await.expect("reopen executor"));
    }

    fn dump(&self) -> Dump {
        self.db.dump().expect("dump")
    }

    fn ids(&self, table: &str) -> Vec<i64> {
        ids(self.dump().rows(table))
    }
}

/// Opens `conns` (seq 1) and creates `t (id integer PRIMARY KEY, v text)` on the first (seq 2).
async fn setup(replica: &mut Replica, conns: &[u64]) {
    let opens: Vec<_> = conns.iter().map(|c| cmd(*c, 1, Op::Open)).collect();
    for applied in replica.apply(&testkit::slot(opens)).await {
        assert_eq!(applied.outcome, Outcome::Opened);
    }
    let create = replica.run(cmd(conns[0], 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))).await;
    assert!(matches!(create, Outcome::Rows(_)), "{create:?}");
}

#[tokio::test]
async fn autocommit_insert_then_read_back() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    let insert = sql_with("INSERT INTO t VALUES ($1, $2)", vec![SqlValue::Int(1), SqlValue::Text("one".into())]);
    assert_eq!(r.run(cmd(A, 3, insert)).await, one_row_affected());
    match r.run(cmd(A, 4, sql("SELECT id, v FROM t"))).await {
        Outcome::Rows(rs) => {
            assert_eq!(rs.rows, vec![vec![SqlValue::Int(1), SqlValue::Text("one".into())]]);
            assert_eq!(rs.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "v"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.ids("t"), [1]);
}

#[tokio::test]
async fn statement_error_is_a_result_and_the_log_moves_on() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    r.run(cmd(A, 3, insert("t", 1))).await;
    let dup = r.run(cmd(A, 4, insert("t", 1))).await;
    assert_eq!(sqlstate(&dup), Some("23505"), "{dup:?}");
    assert_eq!(sqlstate(&r.run(cmd(A, 5, sql("SELEC 1"))).await), Some("42601"));
    assert_eq!(r.ex().applied(), 5);
    assert_eq!(r.run(cmd(A, 6, insert("t", 2))).await, one_row_affected());
    assert_eq!(r.ids("t"), [1, 2]);
    // The error is the recorded outcome: a retry gets it again.
    assert_eq!(r.run(cmd(A, 6, insert("t", 2))).await, one_row_affected());
    r.crash().await;
    let dup_again = r.run(cmd(A, 4, insert("t", 1))).await;
    assert!(matches!(dup_again, Outcome::Rejected(_)), "older than the last request: {dup_again:?}");
}

#[tokio::test]
async fn ap_advances_with_each_slot_and_survives_a_crash() {
    let mut r = Replica::new().await;
    assert_eq!(r.ex().applied(), 0);
    setup(&mut r, &[A]).await;
    assert_eq!(r.ex().applied(), 2);
    for seq in 3..8 {
        r.run(cmd(A, seq, insert("t", seq as i64))).await;
        assert_eq!(r.ex().applied(), seq);
        assert_eq!(r.ex().executed(), seq);
    }
    r.apply(&Value::Noop).await;
    assert_eq!(r.ex().applied(), 8);
    r.crash().await;
    assert_eq!(r.ex().applied(), 8);
    assert_eq!(r.ex().executed(), 8);
    // (id, lastseqnum, commands of the next slot already applied)
    assert_eq!(r.dump().rows("sqlpaxoslog"), [vec![SqlValue::Int(1), SqlValue::Int(8), SqlValue::Int(0)]]);
    // Slots must come in order.
    assert!(r.ex().apply(10, &Value::Noop).await.is_err());
    assert!(r.ex().apply(8, &Value::Noop).await.is_err());
    r.ex().apply(9, &Value::Noop).await.expect("slot 9");
}

/// `Done` (`durable`) is AP as of the last flush: never a slot that is committed but maybe not on
/// disk, never a slot inside the open transaction; and a restart counts what it finds committed.
#[tokio::test]
async fn durable_ap_follows_flushes_not_commits() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    assert_eq!((r.ex().applied(), r.ex().durable()), (2, 0));
    r.ex().flush().await.expect("flush");
    assert_eq!(r.ex().durable(), 2);
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    r.ex().flush().await.expect("flush");
    assert_eq!((r.ex().executed(), r.ex().applied(), r.ex().durable()), (4, 2, 2), "inside the open transaction");
    r.run(cmd(A, 5, Op::Commit)).await;
    assert_eq!((r.ex().applied(), r.ex().durable()), (5, 2));
    r.run(cmd(B, 2, insert("t", 2))).await;
    r.crash().await;
    assert_eq!((r.ex().applied(), r.ex().durable()), (6, 6), "a restart flushes what it finds");
}

#[tokio::test]
async fn a_retry_gets_the_recorded_outcome_and_runs_once() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    let first = r.run(cmd(A, 3, insert("t", 1))).await;
    assert_eq!(first, one_row_affected());
    // The same request again, in a later slot, as a client retry through another replica.
    assert_eq!(r.run(cmd(A, 3, insert("t", 1))).await, first);
    r.crash().await;
    assert_eq!(r.run(cmd(A, 3, insert("t", 1))).await, first);
    assert_eq!(r.ids("t"), [1]);
    // A read is answered from the record too: the answer of the first execution.
    let read = r.run(cmd(A, 4, sql("SELECT count(*) FROM t"))).await;
    r.run(cmd(A, 5, insert("t", 2))).await;
    assert!(matches!(r.run(cmd(A, 4, sql("SELECT count(*) FROM t"))).await, Outcome::Rejected(_)));
    assert!(matches!(read, Outcome::Rows(ref rs) if rs.rows == [vec![SqlValue::Int(1)]]), "{read:?}");
}

#[tokio::test]
async fn replaying_slots_of_a_lost_transaction_does_not_duplicate_effects() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    // B's autocommit work and A's BEGIN in the same slot: B's is durable, the slot's AP is not.
    let mixed = testkit::slot([cmd(B, 2, insert("t", 100)), cmd(A, 3, Op::Begin)]);
    let log = [mixed, testkit::slot([cmd(A, 4, insert("t", 1))]), testkit::slot([cmd(A, 5, insert("t", 2))])];
    let mut first = Vec::new();
    for value in &log {
        first.push(r.apply(value).await);
    }
    assert_eq!(r.ex().applied(), 2);
    assert_eq!(r.ex().executed(), 5);
    r.crash().await;
    assert_eq!(r.ex().applied(), 2);
    assert_eq!(r.ids("t"), [100]);
    let mut replayed = Vec::new();
    for value in &log {
        replayed.push(r.apply(value).await);
    }
    assert_eq!(replayed, first, "a replay answers as the first run did");
    assert_eq!(r.run(cmd(A, 6, Op::Commit)).await, Outcome::Done);
    assert_eq!(r.ids("t"), [1, 2, 100]);
}

#[tokio::test]
async fn crash_inside_a_transaction_loses_it_and_replay_converges() {
    let log = [
        testkit::slot([cmd(A, 1, Op::Open)]),
        testkit::slot([cmd(A, 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))]),
        testkit::slot([cmd(A, 3, insert("t", 1))]),
        testkit::slot([cmd(A, 4, Op::Begin)]),
        testkit::slot([cmd(A, 5, insert("t", 2))]),
        testkit::slot([cmd(A, 6, sql("UPDATE t SET v = 'x' WHERE id = 1"))]),
        testkit::slot([cmd(A, 7, Op::Commit)]),
        testkit::slot([cmd(A, 8, insert("t", 3))]),
    ];
    let mut steady = Replica::new().await;
    for value in &log {
        steady.apply(value).await;
    }
    let mut crashing = Replica::new().await;
    for value in &log[..6] {
        crashing.apply(value).await;
    }
    assert_eq!(crashing.ex().open_transaction(), Some(ConnId(A)));
    assert_eq!(crashing.ex().applied(), 3, "AP rides in the open transaction");
    crashing.crash().await;
    assert_eq!(crashing.ex().applied(), 3, "AP is the slot before BEGIN");
    assert_eq!(crashing.ex().open_transaction(), None);
    assert_eq!(crashing.dump().rows("t"), [vec![SqlValue::Int(1), SqlValue::Null]], "none of the transaction");
    for value in &log[3..] {
        crashing.apply(value).await;
    }
    assert_eq!(crashing.dump(), steady.dump());
}

#[tokio::test]
async fn other_sessions_are_busy_while_a_transaction_is_open() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    let b_before = r.run(cmd(B, 2, insert("t", 10))).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    assert_eq!(r.run(cmd(B, 3, insert("t", 20))).await, Outcome::Busy);
    assert_eq!(r.run(cmd(B, 3, insert("t", 20))).await, Outcome::Busy, "not recorded: still busy, not answered");
    assert_eq!(r.run(cmd(C, 1, Op::Open)).await, Outcome::Busy, "even opening a session waits");
    assert_eq!(r.run(cmd(B, 2, insert("t", 10))).await, b_before, "a recorded answer needs no lock");
    assert_eq!(r.run(cmd(A, 5, Op::Commit)).await, Outcome::Done);
    assert_eq!(r.run(cmd(B, 3, insert("t", 20))).await, one_row_affected(), "the retry runs once A is done");
    assert_eq!(r.run(cmd(C, 1, Op::Open)).await, Outcome::Opened);
    assert_eq!(r.ids("t"), [1, 10, 20]);
}

#[tokio::test]
async fn abort_idle_rolls_back_and_the_session_fails_until_rollback() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    assert_eq!(r.run(cmd(B, 2, insert("t", 2))).await, Outcome::Busy);
    assert_eq!(r.run(abort_idle(A, 4)).await, Outcome::Done);
    assert_eq!(r.ex().open_transaction(), None);
    // The lock is free: B's retry runs; A's insert is gone.
    assert_eq!(r.run(cmd(B, 2, insert("t", 2))).await, one_row_affected());
    assert_eq!(r.ids("t"), [2]);
    assert_eq!(sqlstate(&r.run(cmd(A, 5, insert("t", 3))).await), Some("25P02"));
    assert_eq!(sqlstate(&r.run(cmd(A, 6, batch(true, &["INSERT INTO t (id) VALUES (4)"]))).await), Some("25P02"));
    assert_eq!(sqlstate(&r.run(cmd(A, 7, Op::Begin)).await), Some("25P02"), "as PostgreSQL in an aborted block");
    // Still failed after a crash: the state is recorded, not only in memory.
    r.crash().await;
    assert_eq!(sqlstate(&r.run(cmd(A, 8, insert("t", 3))).await), Some("25P02"));
    assert_eq!(r.run(cmd(A, 9, Op::Rollback)).await, Outcome::Done);
    assert_eq!(r.run(cmd(A, 10, insert("t", 3))).await, one_row_affected());
    assert_eq!(r.ids("t"), [2, 3]);
}

#[tokio::test]
async fn commit_after_abort_idle_reports_the_abort() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    r.run(abort_idle(A, 4)).await;
    let commit = r.run(cmd(A, 5, Op::Commit)).await;
    assert_eq!(sqlstate(&commit), Some("25P02"), "must not look committed: {commit:?}");
    assert_eq!(r.run(cmd(A, 6, insert("t", 2))).await, one_row_affected(), "the block ended with COMMIT");
    assert_eq!(r.ids("t"), [2]);
}

#[tokio::test]
async fn a_stale_abort_idle_does_nothing() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    // Proposed when A's last request was 3; A made progress since.
    assert_eq!(r.run(abort_idle(A, 3)).await, Outcome::Done);
    assert_eq!(r.ex().open_transaction(), Some(ConnId(A)));
    // Aimed at a session without a transaction, or that does not exist.
    r.run(abort_idle(B, 1)).await;
    assert_eq!(r.run(cmd(A, 5, Op::Commit)).await, Outcome::Done);
    r.run(abort_idle(A, 5)).await;
    assert_eq!(r.run(cmd(A, 6, insert("t", 2))).await, one_row_affected());
    assert_eq!(r.ids("t"), [1, 2]);
}

#[tokio::test]
async fn an_atomic_batch_is_all_or_nothing() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    let good = r.run(cmd(A, 3, batch(true, &["INSERT INTO t (id) VALUES (1)", "INSERT INTO t (id) VALUES (2)"]))).await;
    assert!(matches!(&good, Outcome::Batch(results) if results.len() == 2 && results.iter().all(Result::is_ok)));
    let bad = batch(
        true,
        &["INSERT INTO t (id) VALUES (3)", "INSERT INTO t (id) VALUES (1)", "INSERT INTO t (id) VALUES (4)"],
    );
    let outcome = r.run(cmd(A, 4, bad.clone())).await;
    match &outcome {
        Outcome::Batch(results) => {
            assert_eq!(results.len(), 2, "stops at the failing statement: {results:?}");
            assert!(results[0].is_ok());
            assert!(matches!(&results[1], Err(e) if e.sqlstate == "23505"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.ids("t"), [1, 2]);
    r.crash().await;
    assert_eq!(r.run(cmd(A, 4, bad)).await, outcome, "the retry gets the recorded failure");
    assert_eq!(r.ids("t"), [1, 2]);
}

#[tokio::test]
async fn a_non_atomic_batch_runs_every_statement_on_its_own() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    let op = batch(
        false,
        &["INSERT INTO t (id) VALUES (1)", "INSERT INTO t (id) VALUES (1)", "INSERT INTO t (id) VALUES (2)"],
    );
    let outcome = r.run(cmd(A, 3, op.clone())).await;
    match &outcome {
        Outcome::Batch(results) => {
            assert_eq!(results.len(), 3);
            assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok(), "{results:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.ids("t"), [1, 2]);
    assert_eq!(r.run(cmd(A, 3, op)).await, outcome);
    assert_eq!(r.ids("t"), [1, 2]);
}

/// The Rust client sends every statement as a non-atomic batch of one: it must cost what the
/// same statement costs on its own, one transaction that records the outcome and moves AP (an
/// earlier version recorded the outcome again and moved AP in two more transactions).
#[tokio::test]
async fn a_batch_of_one_statement_costs_what_the_statement_costs() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    let before = r.db.statements_run();
    assert_eq!(r.run(cmd(A, 3, insert("t", 1))).await, one_row_affected());
    let single = r.db.statements_run() - before;
    let before = r.db.statements_run();
    let outcome = r.run(cmd(A, 4, batch(false, &["INSERT INTO t (id) VALUES (2)"]))).await;
    assert_eq!(outcome, Outcome::Batch(vec![Ok(ResultSet { rows_affected: 1, ..ResultSet::default() })]));
    assert_eq!(r.db.statements_run() - before, single);
    assert_eq!(r.ex().applied(), 4, "the batch's commit moved AP past its slot");
    r.crash().await;
    assert_eq!(r.run(cmd(A, 4, batch(false, &["INSERT INTO t (id) VALUES (2)"]))).await, outcome);
    assert_eq!(r.ids("t"), [1, 2]);
}

/// A COMMIT that ends its slot moves AP past the slot in the transaction it commits, with no AP
/// write of its own after it (an earlier version wrote AP again, in a transaction of its own).
#[tokio::test]
async fn a_commit_that_ends_its_slot_moves_ap_with_the_transaction() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    assert_eq!(r.run(cmd(A, 3, Op::Begin)).await, Outcome::Done);
    assert_eq!(r.run(cmd(A, 4, insert("t", 1))).await, one_row_affected());
    let before = r.db.statements_run();
    assert_eq!(r.run(cmd(A, 5, Op::Commit)).await, Outcome::Done);
    assert_eq!(r.db.statements_run() - before, 3, "the record, the position and COMMIT");
    assert_eq!(r.ex().applied(), 5);
    r.crash().await;
    assert_eq!(r.ex().applied(), 5, "the position was committed with the transaction");
    assert_eq!(r.ids("t"), [1]);
}

/// For every statement `value` runs: a fault there, then recovery, gives the same answers and
/// the same data as no fault. Returns the answers.
async fn converges_after_any_fault(prefix: &[Value], value: &Value) -> Vec<Applied> {
    let mut steady = Replica::new().await;
    let expected = fault_during(&mut steady, prefix, value, u64::MAX).await;
    let total = steady.db.statements_run();
    for fuse in 0..total {
        let mut r = Replica::new().await;
        let applied = fault_during(&mut r, prefix, value, fuse).await;
        assert_eq!(applied, expected, "fault after {fuse} statements");
        assert_eq!(r.dump(), steady.dump(), "fault after {fuse} statements");
    }
    expected
}

/// Runs `prefix`, then `value` with the database going down after `fuse` statements, then
/// recovers and feeds again from AP + 1. Returns the outcomes of `value`'s final application.
async fn fault_during(r: &mut Replica, prefix: &[Value], value: &Value, fuse: u64) -> Vec<Applied> {
    for v in prefix {
        r.apply(v).await;
    }
    r.db.go_down_after(fuse);
    let slot = r.ex().executed() + 1;
    let result = r.ex().apply(slot, value).await;
    r.db.set_down(false);
    match result {
        Ok(applied) => applied,
        Err(_) => {
            assert_eq!(r.ex().executed(), slot - 1, "a fault never skips the slot");
            r.ex().recover().await.expect("recover");
            let mut last = Vec::new();
            for s in r.ex().applied() + 1..=slot {
                let v = if s == slot { value } else { &prefix[(s - 1) as usize] };
                last = r.ex().apply(s, v).await.unwrap_or_else(|f| panic!("re-apply slot {s}: {f}"));
            }
            last
        }
    }
}

#[tokio::test]
async fn a_non_atomic_batch_resumes_after_a_fault_without_rerunning_statements() {
    let prefix = [
        testkit::slot([cmd(A, 1, Op::Open)]),
        testkit::slot([cmd(A, 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))]),
    ];
    let value = testkit::slot([cmd(
        A,
        3,
        batch(
            false,
            &["INSERT INTO t (id) VALUES (1)", "INSERT INTO t (id) VALUES (1)", "INSERT INTO t (id) VALUES (2)"],
        ),
    )]);
    converges_after_any_fault(&prefix, &value).await;
}

#[tokio::test]
async fn a_backend_fault_mid_slot_then_recover_converges() {
    let prefix = [
        testkit::slot([cmd(A, 1, Op::Open), cmd(B, 1, Op::Open)]),
        testkit::slot([cmd(A, 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))]),
    ];
    let value = testkit::slot([cmd(A, 3, insert("t", 1)), cmd(B, 2, insert("t", 2)), cmd(A, 3, insert("t", 1))]);
    converges_after_any_fault(&prefix, &value).await;
}

/// A transaction that ends without committing, in the middle of a slot, and a fault before the
/// slot's AP: the replica must resume after the end, not replay the transaction's slots with no
/// transaction open (where a command that was busy would run, and run out of order).
#[tokio::test]
async fn a_fault_after_a_transaction_ends_does_not_reorder_busy_commands() {
    let log = [
        testkit::slot([cmd(A, 1, Op::Open), cmd(B, 1, Op::Open), cmd(C, 1, Op::Open)]),
        testkit::slot([cmd(
            A,
            2,
            batch(true, &["CREATE TABLE c (id integer PRIMARY KEY, v integer)", "INSERT INTO c VALUES (1, 1)"]),
        )]),
        testkit::slot([cmd(A, 3, Op::Begin)]),
        testkit::slot([cmd(B, 2, sql("UPDATE c SET v = v * 2"))]), // busy
        testkit::slot([cmd(C, 2, sql("UPDATE c SET v = v + 1")), cmd(A, 4, Op::Rollback)]), // C busy
        testkit::slot([cmd(C, 2, sql("UPDATE c SET v = v + 1"))]), // the retries run now, C's first
        testkit::slot([cmd(B, 2, sql("UPDATE c SET v = v * 2"))]),
    ];
    let (reference, expected) = steady(&log).await;
    assert_eq!(reference.dump().rows("c"), [vec![SqlValue::Int(1), SqlValue::Int(4)]]);
    let end = 5; // the slot with the ROLLBACK
    let mut probe = Replica::new().await;
    for value in &log[..end - 1] {
        probe.apply(value).await;
    }
    let before = probe.db.statements_run();
    probe.apply(&log[end - 1]).await;
    for fuse in 0..probe.db.statements_run() - before {
        let mut r = Replica::new().await;
        let applied = fault_during(&mut r, &log[..end - 1], &log[end - 1], fuse).await;
        assert_eq!(applied, expected[&(end as Slot)], "fault after {fuse} statements of the slot");
        for value in &log[end..] {
            r.apply(value).await;
        }
        assert_eq!(r.dump(), reference.dump(), "fault after {fuse} statements of the slot");
    }
}

#[tokio::test]
async fn apply_refuses_to_run_after_a_fault_until_recovered() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    r.db.set_down(true);
    let slot = r.ex().executed() + 1;
    assert!(r.ex().apply(slot, &testkit::slot([cmd(A, 3, insert("t", 1))])).await.is_err());
    assert!(r.ex().recover().await.is_err(), "still down");
    r.db.set_down(false);
    // A failed recover left nothing usable: applying now must fault, not run on lost state.
    assert!(r.ex().apply(slot, &testkit::slot([cmd(A, 3, insert("t", 1))])).await.is_err());
    r.ex().recover().await.expect("recover");
    assert_eq!(r.ex().apply(slot, &testkit::slot([cmd(A, 3, insert("t", 1))])).await.expect("apply").len(), 1);
    assert_eq!(r.ids("t"), [1]);
}

#[tokio::test]
async fn undecodable_payloads_are_skipped() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    let mut commands = testkit::slot([cmd(A, 3, insert("t", 1))]).commands().to_vec();
    commands.insert(0, garbage(&[]));
    commands.insert(1, garbage(&[9, 1, 2, 3]));
    commands.push(garbage(&[1, 0xff, 0xff, 0xff]));
    let value = Value::batch(commands);
    let applied = r.apply(&value).await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].outcome, one_row_affected());
    assert_eq!(r.ex().applied(), 3);
    assert_eq!(r.ids("t"), [1]);
}

#[tokio::test]
async fn open_twice_and_unknown_connections_are_rejected() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    assert!(matches!(r.run(cmd(A, 1, Op::Open)).await, Outcome::Rejected(_)), "older than the last request");
    assert!(matches!(r.run(cmd(A, 3, Op::Open)).await, Outcome::Rejected(_)), "open twice");
    assert!(matches!(r.run(cmd(B, 1, insert("t", 1))).await, Outcome::Rejected(_)), "never opened");
    assert!(matches!(r.run(cmd(B, 2, Op::Commit)).await, Outcome::Rejected(_)), "never opened");
    // Not recorded: the connection can still be opened, and its retried Open is answered alike.
    assert_eq!(r.run(cmd(B, 3, Op::Open)).await, Outcome::Opened);
    assert_eq!(r.run(cmd(B, 3, Op::Open)).await, Outcome::Opened);
    assert_eq!(r.run(cmd(B, 4, Op::Close)).await, Outcome::Done);
    assert!(matches!(r.run(cmd(B, 5, insert("t", 1))).await, Outcome::Rejected(_)), "closed");
    assert!(matches!(r.run(cmd(B, 6, Op::Open)).await, Outcome::Rejected(_)), "a closed id is not reused");
    assert!(r.ids("t").is_empty());
}

#[tokio::test]
async fn close_rolls_back_an_open_transaction() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    assert_eq!(r.run(cmd(A, 5, Op::Close)).await, Outcome::Done);
    assert_eq!(r.ex().open_transaction(), None);
    assert_eq!(r.run(cmd(B, 2, insert("t", 2))).await, one_row_affected());
    assert_eq!(r.ids("t"), [2]);
}

#[tokio::test]
async fn a_failed_statement_fails_the_transaction_until_its_end() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    assert_eq!(sqlstate(&r.run(cmd(A, 5, insert("t", 1))).await), Some("23505"));
    assert_eq!(sqlstate(&r.run(cmd(A, 6, insert("t", 2))).await), Some("25P02"));
    assert_eq!(sqlstate(&r.run(cmd(A, 7, Op::Begin)).await), Some("25P02"), "as PostgreSQL in an aborted block");
    assert_eq!(sqlstate(&r.run(cmd(A, 8, Op::Commit)).await), Some("25P02"), "a failed transaction cannot commit");
    assert_eq!(r.ex().open_transaction(), None);
    assert_eq!(r.ex().applied(), 8);
    assert!(r.ids("t").is_empty());
}

#[tokio::test]
async fn a_commit_that_fails_rolls_back_and_is_the_answer() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A]).await;
    r.run(cmd(
        A,
        3,
        batch(
            true,
            &[
                "CREATE TABLE parent (id integer PRIMARY KEY)",
                "CREATE TABLE child (id integer PRIMARY KEY, p integer REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
            ],
        ),
    ))
    .await;
    r.run(cmd(A, 4, Op::Begin)).await;
    r.run(cmd(A, 5, sql("INSERT INTO child VALUES (1, 99)"))).await;
    let commit = r.run(cmd(A, 6, Op::Commit)).await;
    assert_eq!(sqlstate(&commit), Some("23503"), "{commit:?}");
    assert_eq!(r.ex().open_transaction(), None);
    assert_eq!(r.ex().applied(), 6);
    assert!(r.dump().rows("child").is_empty());
    r.crash().await;
    assert_eq!(r.run(cmd(A, 6, Op::Commit)).await, commit);
}

#[tokio::test]
async fn vacuum_runs_outside_a_transaction_and_fails_inside_one() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    r.run(cmd(A, 3, insert("t", 1))).await;
    // On its own: no BEGIN around it (SQLite, like PostgreSQL, refuses VACUUM in a transaction).
    assert!(matches!(r.run(cmd(A, 4, sql("VACUUM"))).await, Outcome::Rows(_)));
    assert!(matches!(r.run(cmd(A, 5, sql("ANALYZE t"))).await, Outcome::Rows(_)));
    assert_eq!(r.ex().applied(), 5);
    // Recorded: a retry is answered, not run.
    assert!(matches!(r.run(cmd(A, 5, sql("ANALYZE t"))).await, Outcome::Rows(_)));
    // Inside a transaction it fails as in PostgreSQL, and aborts the transaction.
    r.run(cmd(B, 2, Op::Begin)).await;
    r.run(cmd(B, 3, insert("t", 2))).await;
    assert_eq!(sqlstate(&r.run(cmd(B, 4, sql("VACUUM"))).await), Some("25001"));
    assert_eq!(sqlstate(&r.run(cmd(B, 5, Op::Commit)).await), Some("25P02"));
    assert_eq!(r.ids("t"), [1]);
    // And in an atomic batch, which is one transaction.
    let outcome = r.run(cmd(A, 6, batch(true, &["INSERT INTO t (id) VALUES (3)", "VACUUM"]))).await;
    assert!(matches!(&outcome, Outcome::Batch(results) if results.last().is_some_and(Result::is_err)), "{outcome:?}");
    assert_eq!(r.ids("t"), [1]);
}

#[tokio::test]
async fn a_slot_transaction_survives_a_fault_anywhere() {
    let prefix = [
        testkit::slot([A, B, C, D, E, F, G].map(|conn| cmd(conn, 1, Op::Open))),
        testkit::slot([cmd(A, 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))]),
        testkit::slot([cmd(
            A,
            3,
            sql(
                "CREATE TABLE child (id integer PRIMARY KEY, p integer REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED)",
            ),
        )]),
    ];
    // Statements that join the slot transaction, one failing in the middle, a deferred
    // constraint broken, then DDL (which commits the slot transaction in the middle of the
    // slot), and a second slot transaction after it. One command per session, as a client sends
    // its next request only once the last one was answered, after its slot.
    const D: u64 = 4;
    const E: u64 = 5;
    const F: u64 = 6;
    const G: u64 = 7;
    let value = testkit::slot([
        cmd(A, 4, insert("t", 1)),
        cmd(B, 2, insert("t", 1)),
        cmd(C, 2, sql("INSERT INTO child (id, p) VALUES (1, 99)")),
        cmd(D, 2, batch(false, &["INSERT INTO child (id, p) VALUES (2, 1)"])),
        cmd(E, 2, sql("CREATE TABLE u (id integer PRIMARY KEY)")),
        cmd(F, 2, insert("u", 7)),
        cmd(G, 2, sql("SELECT count(*) FROM t")),
    ]);
    let expected = converges_after_any_fault(&prefix, &value).await;
    let states: Vec<Option<&str>> = expected.iter().map(|a| sqlstate(&a.outcome)).collect();
    assert_eq!(states, [None, Some("23505"), Some("23503"), None, None, None, None], "{expected:?}");
    assert!(matches!(&expected[3].outcome, Outcome::Batch(r) if r.len() == 1 && r[0].is_ok()), "{expected:?}");
}

#[tokio::test]
async fn a_fault_around_a_vacuum_runs_it_again_harmlessly() {
    let prefix = [
        testkit::slot([cmd(A, 1, Op::Open), cmd(B, 1, Op::Open)]),
        testkit::slot([cmd(A, 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))]),
        testkit::slot([cmd(A, 3, insert("t", 1))]),
    ];
    // A fault before the VACUUM's record (or the slot's AP) makes the replay run it again.
    let value = testkit::slot([cmd(A, 4, sql("VACUUM")), cmd(B, 2, insert("t", 2))]);
    let expected = converges_after_any_fault(&prefix, &value).await;
    assert!(matches!(expected[0].outcome, Outcome::Rows(_)), "{expected:?}");
}

/// A log that exercises every command kind, transactions, busy retries, idle aborts and errors.
fn workload() -> Vec<Value> {
    use testkit::slot;
    vec![
        slot([cmd(A, 1, Op::Open), cmd(B, 1, Op::Open)]),
        slot([cmd(A, 2, sql("CREATE TABLE t (id integer PRIMARY KEY, v text)"))]),
        slot([cmd(
            A,
            3,
            batch(
                false,
                &[
                    "CREATE TABLE parent (id integer PRIMARY KEY)",
                    "CREATE TABLE child (id integer PRIMARY KEY, p integer REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
                ],
            ),
        )]),
        slot([cmd(A, 4, insert("t", 1)), cmd(B, 2, insert("t", 2))]),
        slot([cmd(B, 3, insert("t", 1))]),
        slot([cmd(A, 5, Op::Begin)]),
        slot([cmd(A, 6, insert("t", 10)), cmd(B, 4, insert("t", 20))]),
        slot([cmd(A, 7, sql("UPDATE t SET v = 'x' WHERE id = 1"))]),
        Value::Noop,
        {
            let mut commands = slot([cmd(A, 8, Op::Commit)]).commands().to_vec();
            commands.insert(0, garbage(&[7, 7]));
            Value::batch(commands)
        },
        slot([cmd(B, 4, insert("t", 20))]),
        slot([
            cmd(C, 1, Op::Open),
            cmd(A, 9, batch(true, &["INSERT INTO t (id) VALUES (30)", "INSERT INTO t (id) VALUES (31)"])),
        ]),
        slot([cmd(A, 10, batch(true, &["INSERT INTO t (id) VALUES (40)", "INSERT INTO t (id) VALUES (1)"]))]),
        slot([cmd(
            B,
            5,
            batch(
                false,
                &["INSERT INTO t (id) VALUES (50)", "INSERT INTO t (id) VALUES (2)", "INSERT INTO t (id) VALUES (51)"],
            ),
        )]),
        slot([cmd(C, 2, Op::Begin)]),
        slot([cmd(C, 3, insert("t", 60))]),
        slot([cmd(C, 4, insert("t", 60))]),
        slot([cmd(C, 5, insert("t", 61)), cmd(A, 11, insert("t", 62))]),
        slot([cmd(C, 6, Op::Commit)]),
        slot([cmd(B, 6, Op::Begin)]),
        slot([cmd(B, 7, batch(false, &["INSERT INTO t (id) VALUES (70)", "INSERT INTO t (id) VALUES (71)"]))]),
        slot([abort_idle(B, 6)]),
        slot([abort_idle(B, 7)]),
        slot([cmd(B, 8, insert("t", 72))]),
        slot([cmd(B, 7, insert("t", 73))]),
        slot([cmd(A, 11, insert("t", 62))]),
        slot([cmd(A, 12, insert("t", 80))]),
        slot([cmd(B, 9, Op::Rollback)]),
        slot([cmd(B, 10, insert("t", 72))]),
        slot([cmd(A, 13, Op::Begin)]),
        slot([cmd(A, 14, sql("INSERT INTO child VALUES (1, 999)"))]),
        slot([cmd(A, 15, Op::Commit)]),
        slot([cmd(C, 7, Op::Close)]),
        slot([cmd(C, 8, insert("t", 90))]),
        slot([cmd(A, 2, insert("t", 91))]),
        slot([cmd(A, 15, Op::Commit)]),
        slot([cmd(A, 16, Op::Begin)]),
        slot([cmd(A, 17, sql("INSERT INTO parent VALUES (1)"))]),
        slot([cmd(A, 18, sql("INSERT INTO child VALUES (1, 1)"))]),
        slot([cmd(B, 11, sql("SELECT count(*) FROM t"))]),
        slot([cmd(A, 19, Op::Commit)]),
        slot([cmd(B, 12, sql("SELECT id, v FROM t ORDER BY id"))]),
        slot([cmd(B, 13, Op::Begin)]),
        slot([cmd(B, 14, insert("t", 100))]),
    ]
}

/// Feeds `log` to a replica that never fails; returns it and the outcomes by slot.
async fn steady(log: &[Value]) -> (Replica, BTreeMap<Slot, Vec<Applied>>) {
    let mut r = Replica::new().await;
    let mut outcomes = BTreeMap::new();
    for value in log {
        let slot = r.ex().executed() + 1;
        outcomes.insert(slot, r.apply(value).await);
    }
    (r, outcomes)
}

#[tokio::test]
async fn the_workload_does_what_it_says() {
    let log = workload();
    let (r, outcomes) = steady(&log).await;
    let outcome = |slot: Slot, i: usize| &outcomes[&slot][i].outcome;
    assert_eq!(*outcome(7, 1), Outcome::Busy);
    assert_eq!(*outcome(11, 0), one_row_affected());
    assert_eq!(sqlstate(outcome(17, 0)), Some("23505"));
    assert_eq!(sqlstate(outcome(18, 0)), Some("25P02"));
    assert_eq!(*outcome(18, 1), Outcome::Busy);
    assert_eq!(sqlstate(outcome(24, 0)), Some("25P02"), "B was idle-aborted at slot 23");
    assert!(matches!(outcome(25, 0), Outcome::Rejected(_)), "stale duplicate of B's request 7");
    assert_eq!(sqlstate(outcome(32, 0)), Some("23503"));
    assert!(matches!(outcome(34, 0), Outcome::Rejected(_)), "closed");
    assert_eq!(*outcome(40, 0), Outcome::Busy);
    let dump = r.dump();
    assert_eq!(ids(dump.rows("t")), [1, 2, 10, 20, 30, 31, 50, 51, 62, 72, 80]);
    assert_eq!(ids(dump.rows("child")), [1]);
    assert_eq!(r.executor.as_ref().map(|e| e.open_transaction()), Some(Some(ConnId(B))));
}

#[tokio::test]
async fn a_crash_after_any_slot_converges_and_answers_alike() {
    let log = workload();
    let (reference, expected) = steady(&log).await;
    for crash_after in 0..log.len() {
        let mut r = Replica::new().await;
        for value in &log[..crash_after] {
            r.apply(value).await;
        }
        r.crash().await;
        let resume = r.ex().applied() + 1;
        for (i, value) in log.iter().enumerate().skip(resume as usize - 1) {
            let slot = i as Slot + 1;
            let applied = r.apply(value).await;
            assert_eq!(applied, expected[&slot], "crash after slot {crash_after}, slot {slot}");
        }
        assert_eq!(r.dump(), reference.dump(), "crash after slot {crash_after}");
    }
}

/// Only the last command of each connection in a slot: a replay after a fault in the middle of
/// a slot answers earlier commands of the same connection as stale (its record holds only the
/// last request), which a client that waits for each answer never sees.
fn last_per_connection(applied: &[Applied]) -> BTreeMap<ConnId, &Applied> {
    applied.iter().map(|a| (a.conn, a)).collect()
}

#[tokio::test]
async fn a_backend_fault_at_any_statement_converges_and_answers_alike() {
    let log = workload();
    let (reference, expected) = steady(&log).await;
    let total = reference.db.statements_run();
    for fuse in 0..total {
        let mut r = Replica::new().await;
        r.db.go_down_after(fuse);
        let mut outcomes = BTreeMap::new();
        let mut slot = r.ex().executed() + 1;
        let mut faults = 0;
        while slot as usize <= log.len() {
            match r.ex().apply(slot, &log[slot as usize - 1]).await {
                Ok(applied) => {
                    outcomes.insert(slot, applied);
                    slot += 1;
                }
                Err(_) => {
                    faults += 1;
                    assert!(faults == 1, "fuse {fuse}: a fault after the database came back");
                    r.db.set_down(false);
                    r.ex().recover().await.unwrap_or_else(|f| panic!("fuse {fuse}: recover: {f}"));
                    slot = r.ex().applied() + 1;
                }
            }
        }
        for (slot, applied) in &outcomes {
            assert_eq!(
                last_per_connection(applied),
                last_per_connection(&expected[slot]),
                "fault after {fuse} statements, slot {slot}"
            );
        }
        assert_eq!(r.dump(), reference.dump(), "fault after {fuse} statements");
    }
}

// Reads of the open transaction, answered without the log (`executor::read`).

/// Half the default idle-transaction timeout, as the node passes it.
const READ_WINDOW: std::time::Duration = std::time::Duration::from_secs(15);

impl Replica {
    /// The executor's answer to `command` as a read outside the log.
    async fn read_outside_log(&mut self, command: &ClientCommand) -> Option<Outcome> {
        self.ex().read(command, READ_WINDOW).await.unwrap_or_else(|f| panic!("read: {f}"))
    }
}

fn read_ids(outcome: Option<Outcome>) -> Vec<i64> {
    match outcome {
        Some(Outcome::Rows(rs)) => ids(&rs.rows),
        other => panic!("not answered with rows: {other:?}"),
    }
}

#[tokio::test]
async fn a_read_of_the_open_transaction_is_answered_without_the_log() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    let executed = r.ex().executed();
    let select = |seq| cmd(A, seq, sql("SELECT id FROM t"));
    assert_eq!(read_ids(r.read_outside_log(&select(5)).await), [1], "it sees its own insert");
    assert_eq!(read_ids(r.read_outside_log(&select(5)).await), [1], "a retry reads again");
    assert_eq!(read_ids(r.read_outside_log(&select(6)).await), [1], "reads in a row");
    let one = cmd(A, 7, batch(false, &["SELECT id FROM t"]));
    match r.read_outside_log(&one).await {
        Some(Outcome::Batch(results)) => assert_eq!(results.len(), 1, "a batch of one is answered as a batch"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.ex().executed(), executed, "nothing entered the log");
    // The transaction goes on through the log after its reads.
    assert_eq!(r.run(cmd(A, 8, insert("t", 2))).await, one_row_affected());
    assert_eq!(r.read_outside_log(&one).await, None, "a late copy of read 7 would see request 8");
    assert_eq!(read_ids(r.read_outside_log(&select(9)).await), [1, 2]);
    assert_eq!(r.run(cmd(A, 10, Op::Commit)).await, Outcome::Done);
    assert_eq!(r.ids("t"), [1, 2]);
}

#[tokio::test]
async fn only_a_read_in_turn_of_a_healthy_recent_transaction_skips_the_log() {
    let mut r = Replica::new().await;
    setup(&mut r, &[A, B]).await;
    let select = |conn, seq| cmd(conn, seq, sql("SELECT id FROM t"));
    assert_eq!(r.read_outside_log(&select(A, 3)).await, None, "no transaction is open");
    r.run(cmd(A, 3, Op::Begin)).await;
    r.run(cmd(A, 4, insert("t", 1))).await;
    assert_eq!(r.read_outside_log(&select(B, 2)).await, None, "not the transaction's session");
    assert_eq!(r.read_outside_log(&select(A, 6)).await, None, "request 5 was not applied here");
    assert_eq!(r.read_outside_log(&cmd(A, 5, insert("t", 2))).await, None, "a write");
    let missing = cmd(A, 5, sql("SELECT id FROM missing"));
    assert_eq!(r.read_outside_log(&missing).await, None, "an error is the log's to give");
    let mut late = select(A, 5);
    late.timestamp_us = cmd(A, 4, Op::Begin).timestamp_us + READ_WINDOW.as_micros() as i64;
    assert_eq!(r.read_outside_log(&late).await, None, "the others may be aborting it as idle");
    // None of that changed the transaction: it reads, then fails through the log like anywhere.
    assert_eq!(read_ids(r.read_outside_log(&select(A, 5)).await), [1]);
    assert_eq!(sqlstate(&r.run(cmd(A, 6, sql("SELECT id FROM missing"))).await), Some("42P01"));
    assert_eq!(r.read_outside_log(&select(A, 7)).await, None, "the transaction failed");
    assert_eq!(sqlstate(&r.run(select(A, 7)).await), Some("25P02"));
    assert_eq!(r.run(cmd(A, 8, Op::Rollback)).await, Outcome::Done);
    assert_eq!(r.ids("t"), Vec::<i64>::new());
}
