//! Divergence checks in the executor, against the SQLite stand-in: three replicas apply the same
//! log; a `Checksum` digests each one's database where it stands in the log; reports applied from
//! the log mark the odd one out, and the verdict survives a restart.

use barista_core::{NodeId, Slot, Value};
use barista_runtime::command::{ClientCommand, ConnId, Op, Statement};
use barista_runtime::executor::{Executor, Outcome};
use barista_runtime::sql::{SqlBackend, SqlSession};
use barista_runtime::testkit::{self, SqliteBackend, SqliteDb};
use barista_runtime::verify::{DatabaseDigest, Verdict, tally};

const A: u64 = 1;
/// The id a requester gives its `Checksum` command.
const CHECKER: u64 = 99;

fn cmd(conn: u64, request_seq: u64, op: Op) -> ClientCommand {
    ClientCommand { conn: ConnId(conn), request_seq, timestamp_us: 1_700_000_000_000_000, op }
}

fn sql(conn: u64, request_seq: u64, text: &str) -> ClientCommand {
    cmd(conn, request_seq, Op::Execute(Statement { sql: text.into(), params: Vec::new() }))
}

struct Replica {
    db: SqliteDb,
    executor: Executor<SqliteBackend>,
}

impl Replica {
    async fn new() -> Replica {
        let db = SqliteDb::new().expect("create database");
        let executor = Executor::open(db.backend()).await.expect("open executor");
        Replica { db, executor }
    }

    async fn apply(&mut self, value: &Value) -> Vec<Outcome> {
        let slot = self.executor.executed() + 1;
        let applied = self.executor.apply(slot, value).await.unwrap_or_else(|f| panic!("slot {slot}: {f}"));
        applied.into_iter().map(|a| a.outcome).collect()
    }

    /// Changes the database behind the executor's back.
    async fn tamper(&self, statement: &str) {
        let mut session = self.db.backend().connect().await.expect("connect");
        session.execute(statement, &[]).await.expect("no fault").expect("statement ran");
    }
}

/// Applies `value` on every replica as the same slot; returns the first replica's outcomes.
async fn apply_all(replicas: &mut [Replica], value: Value) -> Vec<Outcome> {
    let mut first = None;
    for r in replicas.iter_mut() {
        let outcomes = r.apply(&value).await;
        first.get_or_insert(outcomes);
    }
    first.unwrap_or_default()
}

/// Runs a check on every replica, then applies every replica's report; returns the check's slot
/// and the digests.
async fn check(replicas: &mut [Replica]) -> (Slot, Vec<DatabaseDigest>) {
    let outcomes = apply_all(replicas, testkit::slot([cmd(CHECKER, 0, Op::Checksum)])).await;
    let Some(Outcome::Checksum { check }) = outcomes.first().cloned() else { panic!("{outcomes:?}") };
    let mut digests = Vec::new();
    for r in replicas.iter_mut() {
        let taken = r.executor.take_digests();
        assert_eq!(taken.len(), 1, "one digest per check");
        assert_eq!(taken[0].0, check);
        digests.push(taken[0].1.clone());
    }
    let reports = digests
        .iter()
        .enumerate()
        .map(|(i, digest)| cmd(0, 0, Op::ChecksumReport { check, replica: i as NodeId, digest: digest.clone() }));
    apply_all(replicas, testkit::slot(reports)).await;
    (check, digests)
}

#[tokio::test]
async fn replicas_agree_until_one_is_changed_behind_barista_s_back() {
    let mut replicas = vec![Replica::new().await, Replica::new().await, Replica::new().await];
    apply_all(&mut replicas, testkit::slot([cmd(A, 1, Op::Open)])).await;
    apply_all(&mut replicas, testkit::slot([sql(A, 2, "CREATE TABLE t (id integer PRIMARY KEY, v text)")])).await;
    apply_all(&mut replicas, testkit::slot([sql(A, 3, "INSERT INTO t VALUES (1, 'one'), (2, 'two')")])).await;

    let (first, digests) = check(&mut replicas).await;
    assert!(digests.iter().all(|d| d.digest == digests[0].digest), "{digests:?}");
    assert!(digests[0].tables.iter().any(|t| t.table == "t" && t.rows == 2), "{digests:?}");
    assert!(
        digests[0].tables.iter().any(|t| t.table == "barista_sessions")
            && !digests[0].tables.iter().any(|t| t.table == "sqlpaxoslog" || t.table == "barista_checks"),
        "bookkeeping coverage: {:?}",
        digests[0].tables
    );
    let checks = replicas[0].executor.checks().clone();
    assert!(matches!(tally::verdict(checks.reports(first).expect("reports"), 3), Verdict::Agreed(_)));

    // Replica 2's row changes behind Barista's back; the same write through the log continues.
    replicas[2].tamper("UPDATE t SET v = 'tampered' WHERE id = 2").await;
    apply_all(&mut replicas, testkit::slot([sql(A, 4, "INSERT INTO t VALUES (3, 'three')")])).await;
    let (second, digests) = check(&mut replicas).await;
    assert_eq!(digests[0].digest, digests[1].digest);
    assert_ne!(digests[2].digest, digests[0].digest);
    assert_eq!(digests[2].differing_tables(&digests[0]), ["t"]);
    for r in &replicas {
        // Every replica applied the same reports: every replica reaches the same verdict.
        let verdict = tally::verdict(r.executor.checks().reports(second).expect("reports"), 3);
        assert_eq!(verdict, Verdict::Diverged { majority: digests[0].digest, minority: vec![2] });
        assert_eq!(tally::standing(r.executor.checks(), 2, 3).map(|d| d.check), Some(second));
        assert_eq!(tally::standing(r.executor.checks(), 0, 3), None);
    }

    // The reports are in the database: a restarted replica knows it diverged.
    let reopened = Executor::open(replicas[2].db.backend()).await.expect("reopen");
    assert_eq!(reopened.checks(), replicas[2].executor.checks());
    assert_eq!(tally::standing(reopened.checks(), 2, 3).map(|d| d.tables), Some(vec!["t".to_string()]));
    drop(reopened);

    // Repaired by hand: the next check finds it agreeing.
    replicas[2].tamper("UPDATE t SET v = 'two' WHERE id = 2").await;
    let (_, digests) = check(&mut replicas).await;
    assert!(digests.iter().all(|d| d.digest == digests[0].digest));
    assert_eq!(tally::standing(replicas[2].executor.checks(), 2, 3), None);
}

#[tokio::test]
async fn a_check_waits_for_the_open_transaction_like_a_begin() {
    let mut r = Replica::new().await;
    r.apply(&testkit::slot([cmd(A, 1, Op::Open)])).await;
    r.apply(&testkit::slot([sql(A, 2, "CREATE TABLE t (id integer PRIMARY KEY)")])).await;
    r.apply(&testkit::slot([cmd(A, 3, Op::Begin)])).await;
    r.apply(&testkit::slot([sql(A, 4, "INSERT INTO t VALUES (1)")])).await;
    let busy = r.apply(&testkit::slot([cmd(CHECKER, 0, Op::Checksum)])).await;
    assert_eq!(busy, [Outcome::Busy]);
    assert!(r.executor.take_digests().is_empty());
    // So does a report: its replica proposes it again once the transaction ended.
    let digest = DatabaseDigest::from_tables(Vec::new());
    let report = cmd(0, 0, Op::ChecksumReport { check: 1, replica: 0, digest });
    assert_eq!(r.apply(&testkit::slot([report.clone()])).await, [Outcome::Busy]);
    assert!(r.executor.checks().reports(1).is_none());
    r.apply(&testkit::slot([cmd(A, 5, Op::Commit)])).await;
    assert_eq!(r.apply(&testkit::slot([report])).await, [Outcome::Done]);
    assert!(r.executor.checks().reports(1).is_some_and(|reports| reports.contains_key(&0)));
    // Two checks in one slot are one check.
    let twice = testkit::slot([cmd(CHECKER, 0, Op::Checksum), cmd(CHECKER + 1, 0, Op::Checksum)]);
    let outcomes = r.apply(&twice).await;
    let slot = r.executor.executed();
    assert_eq!(outcomes, [Outcome::Checksum { check: slot }, Outcome::Checksum { check: slot }]);
    let digests = r.executor.take_digests();
    assert_eq!(digests.len(), 1);
    let t = digests[0].1.tables.iter().find(|t| t.table == "t").expect("table t");
    assert_eq!(t.rows, 1, "the committed row");
}
