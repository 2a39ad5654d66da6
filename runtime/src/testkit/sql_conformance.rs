//! The `SqlBackend` conformance suite: what the executor assumes of a replica's database, checked
//! the same way for every implementation (the SQLite stand-in here, the PostgreSQL adapter later).
//!
//! Call [`run_all`] from a test with a backend on an empty or scratch database. Every check
//! creates its own tables (named `conformance_*`, dropped first, so a persistent PostgreSQL
//! database can be reused) and panics with the statement and what it got when the backend
//! disagrees. Checks are also public one by one, to narrow down a failure.
//!
//! What the suite requires, and why:
//! - a statement error is `Ok(Err(_))` with its SQLSTATE and the connection stays usable: errors
//!   are results that every replica returns alike, and a fault would stop the replica instead;
//! - a failed statement aborts the open transaction, as in PostgreSQL: later statements fail with
//!   `25P02` until the transaction ends, and ending it commits nothing. The executor tracks the
//!   failed state itself and sends nothing but `ROLLBACK` after a failure, so it does not rely on
//!   this; the suite requires it anyway so that the stand-in behaves like PostgreSQL and cannot
//!   hide an executor bug that PostgreSQL would expose. How `COMMIT` of a failed transaction is
//!   reported is not checked (PostgreSQL reports success with the tag `ROLLBACK`);
//! - other sessions never see uncommitted changes, and read the committed ones meanwhile; a
//!   dropped session (a crashed replica process) loses its open transaction and frees its locks;
//! - committed changes survive the session that made them;
//! - NULL is distinct from the empty string and from empty bytes;
//! - parameters are PostgreSQL's `$1..$n` (repeated, out of order), every [`SqlValue`] kind round
//!   trips through a column of its type, and a wrong parameter count is a statement error;
//! - `rows_affected` counts the rows a DML statement changed (0 for DDL) or a query returned;
//! - a `COMMIT` that fails (a deferred constraint) rolls the transaction back;
//! - `COMMIT` or `ROLLBACK` outside a transaction and `BEGIN` inside one are not errors
//!   (PostgreSQL warns);
//! - `execute_all` runs statements in order and stops at the first error, which it returns, and
//!   a `BEGIN` among them leaves the transaction open; `write_own` writes with parameters typed
//!   by their values (`Int` into a narrower integer column too) and reports errors as results;
//!   `write_own_and_commit` commits after its writes, and a failed write is a fault that commits
//!   nothing; `execute_begun` runs its statement inside the transaction it begins.
//!
//! Not required: concurrent writers (the executor's policy lets only one session write while a
//! transaction is open, and the SQLite stand-in cannot wait on locks), type names beyond being
//! non-empty, and error messages' wording.

use crate::sql::{ResultSet, SqlBackend, SqlError, SqlSession, SqlValue};

/// Runs every check against `backend`.
pub async fn run_all<B: SqlBackend>(backend: &B) {
    statement_errors_are_results(backend).await;
    failed_statement_aborts_the_transaction(backend).await;
    uncommitted_changes_are_private_and_die_with_the_session(backend).await;
    committed_changes_survive_the_session(backend).await;
    null_is_not_empty(backend).await;
    parameters_round_trip(backend).await;
    rows_affected_counts_rows(backend).await;
    failed_commit_rolls_back(backend).await;
    transaction_control_out_of_place_is_not_an_error(backend).await;
    own_statements_run_in_order_and_stop_at_an_error(backend).await;
}

async fn connect<B: SqlBackend>(backend: &B) -> B::Session {
    backend.connect().await.unwrap_or_else(|f| panic!("connect: {f}"))
}

async fn exec<S: SqlSession>(s: &mut S, sql: &str, params: &[SqlValue]) -> Result<ResultSet, SqlError> {
    s.execute(sql, params).await.unwrap_or_else(|f| panic!("`{sql}`: unexpected backend fault: {f}"))
}

async fn ok<S: SqlSession>(s: &mut S, sql: &str, params: &[SqlValue]) -> ResultSet {
    exec(s, sql, params).await.unwrap_or_else(|e| panic!("`{sql}` failed: {e}"))
}

/// Runs `sql`, which must fail with `sqlstate`.
async fn fails<S: SqlSession>(s: &mut S, sql: &str, params: &[SqlValue], sqlstate: &str) {
    match exec(s, sql, params).await {
        Ok(rs) => panic!("`{sql}` should fail with {sqlstate}, returned {rs:?}"),
        Err(e) => {
            assert_eq!(e.sqlstate, sqlstate, "`{sql}`: wrong SQLSTATE ({e})");
            assert!(!e.message.is_empty(), "`{sql}`: empty error message");
        }
    }
}

/// The single column of every row.
async fn column<S: SqlSession>(s: &mut S, sql: &str) -> Vec<SqlValue> {
    ok(s, sql, &[]).await.rows.into_iter().map(|mut row| row.swap_remove(0)).collect()
}

async fn count<S: SqlSession>(s: &mut S, table: &str) -> i64 {
    match column(s, &format!("SELECT count(*) FROM {table}")).await.as_slice() {
        [SqlValue::Int(n)] => *n,
        other => panic!("count(*) of {table} returned {other:?}"),
    }
}

fn ints(values: &[i64]) -> Vec<SqlValue> {
    values.iter().map(|v| SqlValue::Int(*v)).collect()
}

/// Drops `tables` (children first) and creates them from `ddl`.
async fn fresh<S: SqlSession>(s: &mut S, tables: &[&str], ddl: &[&str]) {
    for table in tables {
        ok(s, &format!("DROP TABLE IF EXISTS {table}"), &[]).await;
    }
    for sql in ddl {
        ok(s, sql, &[]).await;
    }
}

/// Constraint violations, syntax errors and unknown names are results with PostgreSQL's
/// SQLSTATEs, and the session goes on working.
pub async fn statement_errors_are_results<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    fresh(
        &mut s,
        &["conformance_errors_child", "conformance_errors"],
        &[
            "CREATE TABLE conformance_errors (id integer PRIMARY KEY, name text NOT NULL, qty integer CHECK (qty >= 0))",
            "CREATE TABLE conformance_errors_child (id integer PRIMARY KEY, parent integer REFERENCES conformance_errors (id))",
        ],
    )
    .await;
    ok(&mut s, "INSERT INTO conformance_errors VALUES (1, 'a', 1)", &[]).await;
    fails(&mut s, "INSERT INTO conformance_errors VALUES (1, 'b', 1)", &[], "23505").await;
    fails(&mut s, "INSERT INTO conformance_errors VALUES (2, NULL, 1)", &[], "23502").await;
    fails(&mut s, "INSERT INTO conformance_errors VALUES (3, 'c', -1)", &[], "23514").await;
    fails(&mut s, "INSERT INTO conformance_errors_child VALUES (1, 99)", &[], "23503").await;
    fails(&mut s, "SELEC 1", &[], "42601").await;
    fails(&mut s, "SELECT * FROM conformance_no_such_table", &[], "42P01").await;
    fails(&mut s, "SELECT no_such_column FROM conformance_errors", &[], "42703").await;
    // Still usable, and nothing of the failed statements was kept.
    assert_eq!(count(&mut s, "conformance_errors").await, 1);
    assert_eq!(count(&mut s, "conformance_errors_child").await, 0);
}

/// After an error inside a transaction, everything but its end fails with `25P02`, and ending it
/// commits nothing; the session is then out of the transaction and works again.
pub async fn failed_statement_aborts_the_transaction<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    let mut other = connect(backend).await;
    fresh(&mut s, &["conformance_abort"], &["CREATE TABLE conformance_abort (id integer PRIMARY KEY)"]).await;
    for end in ["COMMIT", "ROLLBACK"] {
        ok(&mut s, "BEGIN", &[]).await;
        ok(&mut s, "INSERT INTO conformance_abort VALUES (1)", &[]).await;
        fails(&mut s, "INSERT INTO conformance_abort VALUES (1)", &[], "23505").await;
        fails(&mut s, "INSERT INTO conformance_abort VALUES (2)", &[], "25P02").await;
        fails(&mut s, "SELECT 1", &[], "25P02").await;
        // PostgreSQL reports COMMIT of a failed transaction as success (tag ROLLBACK); either
        // way it must not commit.
        let _ = exec(&mut s, end, &[]).await;
        assert_eq!(count(&mut other, "conformance_abort").await, 0, "after {end} of a failed transaction");
        assert_eq!(count(&mut s, "conformance_abort").await, 0, "after {end} of a failed transaction");
    }
    // Out of the transaction: autocommit works and is visible to others.
    ok(&mut s, "INSERT INTO conformance_abort VALUES (3)", &[]).await;
    assert_eq!(count(&mut other, "conformance_abort").await, 1);
}

/// Another session sees only committed data while a transaction is open, and a dropped session
/// takes its transaction with it and frees its locks.
pub async fn uncommitted_changes_are_private_and_die_with_the_session<B: SqlBackend>(backend: &B) {
    let mut a = connect(backend).await;
    let mut b = connect(backend).await;
    fresh(&mut a, &["conformance_isolation"], &["CREATE TABLE conformance_isolation (id integer PRIMARY KEY, v text)"])
        .await;
    ok(&mut a, "INSERT INTO conformance_isolation VALUES (1, 'committed')", &[]).await;
    ok(&mut a, "BEGIN", &[]).await;
    ok(&mut a, "INSERT INTO conformance_isolation VALUES (2, 'uncommitted')", &[]).await;
    ok(&mut a, "UPDATE conformance_isolation SET v = 'changed' WHERE id = 1", &[]).await;
    let read = "SELECT v FROM conformance_isolation ORDER BY id";
    let text = |v: &[&str]| v.iter().map(|s| SqlValue::Text((*s).into())).collect::<Vec<_>>();
    assert_eq!(column(&mut a, read).await, text(&["changed", "uncommitted"]), "a sees its own changes");
    assert_eq!(column(&mut b, read).await, text(&["committed"]), "b sees only committed data");
    drop(a); // the replica process crashed
    assert_eq!(column(&mut b, read).await, text(&["committed"]), "the dropped session's transaction is gone");
    // Its locks went with it (PostgreSQL may take a moment to notice the closed connection; the
    // statement then waits, it does not fail).
    ok(&mut b, "INSERT INTO conformance_isolation VALUES (2, 'b')", &[]).await;
    ok(&mut b, "UPDATE conformance_isolation SET v = 'b' WHERE id = 1", &[]).await;
    assert_eq!(column(&mut b, read).await, text(&["b", "b"]));
}

/// Autocommit statements and committed transactions outlive the session.
pub async fn committed_changes_survive_the_session<B: SqlBackend>(backend: &B) {
    let mut a = connect(backend).await;
    fresh(&mut a, &["conformance_durable"], &["CREATE TABLE conformance_durable (id integer PRIMARY KEY)"]).await;
    ok(&mut a, "INSERT INTO conformance_durable VALUES (1)", &[]).await;
    ok(&mut a, "BEGIN", &[]).await;
    ok(&mut a, "INSERT INTO conformance_durable VALUES (2)", &[]).await;
    ok(&mut a, "COMMIT", &[]).await;
    drop(a);
    let mut b = connect(backend).await;
    assert_eq!(column(&mut b, "SELECT id FROM conformance_durable ORDER BY id").await, ints(&[1, 2]));
}

/// NULL, `''` and empty bytes are three different values, both ways.
pub async fn null_is_not_empty<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    fresh(
        &mut s,
        &["conformance_nulls"],
        &["CREATE TABLE conformance_nulls (id integer PRIMARY KEY, s text, b bytea)"],
    )
    .await;
    let insert = "INSERT INTO conformance_nulls VALUES ($1, $2, $3)";
    ok(&mut s, insert, &[SqlValue::Int(1), SqlValue::Null, SqlValue::Null]).await;
    ok(&mut s, insert, &[SqlValue::Int(2), SqlValue::Text(String::new()), SqlValue::Bytes(Vec::new())]).await;
    ok(&mut s, "INSERT INTO conformance_nulls VALUES (3, '', NULL)", &[]).await;
    let rows = ok(&mut s, "SELECT id, s, b FROM conformance_nulls ORDER BY id", &[]).await.rows;
    assert_eq!(
        rows,
        vec![
            vec![SqlValue::Int(1), SqlValue::Null, SqlValue::Null],
            vec![SqlValue::Int(2), SqlValue::Text(String::new()), SqlValue::Bytes(Vec::new())],
            vec![SqlValue::Int(3), SqlValue::Text(String::new()), SqlValue::Null],
        ]
    );
    assert_eq!(column(&mut s, "SELECT id FROM conformance_nulls WHERE s IS NULL").await, ints(&[1]));
    assert_eq!(column(&mut s, "SELECT id FROM conformance_nulls WHERE s = '' ORDER BY id").await, ints(&[2, 3]));
}

/// `$n` parameters of every kind, repeated and out of order; text that looks like SQL stays data.
pub async fn parameters_round_trip<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    fresh(
        &mut s,
        &["conformance_params"],
        &["CREATE TABLE conformance_params \
           (id integer PRIMARY KEY, big bigint, f double precision, s text, b bytea, flag boolean)"],
    )
    .await;
    let insert = "INSERT INTO conformance_params (id, big, f, s, b, flag) VALUES ($1, $2, $3, $4, $5, $6)";
    let first = vec![
        SqlValue::Int(1),
        SqlValue::Int(i64::MAX),
        SqlValue::Float(-1.5),
        SqlValue::Text("it's $2 'quoted'; DROP TABLE conformance_params; --".into()),
        SqlValue::Bytes(vec![0, 1, 255]),
        SqlValue::Bool(true),
    ];
    let second =
        vec![SqlValue::Int(2), SqlValue::Null, SqlValue::Null, SqlValue::Null, SqlValue::Null, SqlValue::Bool(false)];
    assert_eq!(ok(&mut s, insert, &first).await.rows_affected, 1);
    ok(&mut s, insert, &second).await;
    let select = "SELECT id, big, f, s, b, flag FROM conformance_params WHERE id = $1";
    let rs = ok(&mut s, select, &[SqlValue::Int(1)]).await;
    let names: Vec<&str> = rs.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "big", "f", "s", "b", "flag"]);
    assert!(rs.columns.iter().all(|c| !c.type_name.is_empty()), "every column has a type name: {:?}", rs.columns);
    assert_eq!(rs.rows, vec![first.clone()]);
    assert_eq!(ok(&mut s, select, &[SqlValue::Int(2)]).await.rows, vec![second]);
    // Repeated and out of order.
    let both = "SELECT id FROM conformance_params WHERE id >= $1 AND id <= $1 AND s = $2";
    assert_eq!(ok(&mut s, both, &[SqlValue::Int(1), first[3].clone()]).await.rows, vec![ints(&[1])]);
    let reversed = "SELECT id FROM conformance_params WHERE s = $2 AND id = $1";
    assert_eq!(ok(&mut s, reversed, &[SqlValue::Int(1), first[3].clone()]).await.rows, vec![ints(&[1])]);
    // A wrong count is the statement's error, not the backend's.
    let result = exec(&mut s, select, &[SqlValue::Int(1), SqlValue::Int(2)]).await;
    assert!(result.is_err(), "too many parameters: {result:?}");
    let result = exec(&mut s, select, &[]).await;
    assert!(result.is_err(), "too few parameters: {result:?}");
    assert_eq!(count(&mut s, "conformance_params").await, 2);
}

/// Rows changed by DML, 0 for DDL, rows returned by a query.
pub async fn rows_affected_counts_rows<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    ok(&mut s, "DROP TABLE IF EXISTS conformance_counts", &[]).await;
    let created = ok(&mut s, "CREATE TABLE conformance_counts (id integer PRIMARY KEY, v integer)", &[]).await;
    assert_eq!(created.rows_affected, 0, "CREATE TABLE");
    let cases: [(&str, u64); 6] = [
        ("INSERT INTO conformance_counts VALUES (1, 0), (2, 0), (3, 0)", 3),
        ("UPDATE conformance_counts SET v = 1 WHERE id > 1", 2),
        ("UPDATE conformance_counts SET v = 1 WHERE id > 100", 0),
        ("DELETE FROM conformance_counts WHERE id = 1", 1),
        ("CREATE INDEX conformance_counts_v ON conformance_counts (v)", 0),
        ("SELECT id FROM conformance_counts", 2),
    ];
    for (sql, expected) in cases {
        assert_eq!(ok(&mut s, sql, &[]).await.rows_affected, expected, "`{sql}`");
    }
}

/// A `COMMIT` that fails on a deferred constraint is an error and leaves nothing behind.
pub async fn failed_commit_rolls_back<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    fresh(
        &mut s,
        &["conformance_deferred_child", "conformance_deferred"],
        &[
            "CREATE TABLE conformance_deferred (id integer PRIMARY KEY)",
            "CREATE TABLE conformance_deferred_child \
             (id integer PRIMARY KEY, parent integer REFERENCES conformance_deferred (id) DEFERRABLE INITIALLY DEFERRED)",
        ],
    )
    .await;
    ok(&mut s, "BEGIN", &[]).await;
    ok(&mut s, "INSERT INTO conformance_deferred VALUES (1)", &[]).await;
    ok(&mut s, "INSERT INTO conformance_deferred_child VALUES (1, 99)", &[]).await;
    fails(&mut s, "COMMIT", &[], "23503").await;
    assert_eq!(count(&mut s, "conformance_deferred").await, 0);
    assert_eq!(count(&mut s, "conformance_deferred_child").await, 0);
    // Out of the transaction.
    ok(&mut s, "INSERT INTO conformance_deferred VALUES (2)", &[]).await;
    let mut other = connect(backend).await;
    assert_eq!(count(&mut other, "conformance_deferred").await, 1);
}

/// PostgreSQL only warns about these; a backend must not turn them into errors.
pub async fn transaction_control_out_of_place_is_not_an_error<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    fresh(&mut s, &["conformance_control"], &["CREATE TABLE conformance_control (id integer PRIMARY KEY)"]).await;
    ok(&mut s, "COMMIT", &[]).await;
    ok(&mut s, "ROLLBACK", &[]).await;
    ok(&mut s, "BEGIN", &[]).await;
    ok(&mut s, "INSERT INTO conformance_control VALUES (1)", &[]).await;
    ok(&mut s, "BEGIN", &[]).await; // still the same transaction
    ok(&mut s, "ROLLBACK", &[]).await;
    assert_eq!(count(&mut s, "conformance_control").await, 0);
}

/// The executor's own shortcuts: several statements at once (`BEGIN` with the pinned timestamp),
/// and bookkeeping writes whose parameter types are known.
pub async fn own_statements_run_in_order_and_stop_at_an_error<B: SqlBackend>(backend: &B) {
    let mut s = connect(backend).await;
    let ddl = ["CREATE TABLE conformance_own (id integer PRIMARY KEY, n smallint NOT NULL, b bytea NOT NULL)"];
    fresh(&mut s, &["conformance_own"], &ddl).await;
    let all = |statements: &'static [&'static str]| statements;
    let begun = s.execute_all(all(&["BEGIN", "INSERT INTO conformance_own VALUES (1, 1, '')"])).await;
    assert_eq!(begun.unwrap_or_else(|f| panic!("{f}")), Ok(()));
    let write = "INSERT INTO conformance_own (id, n, b) VALUES ($1, $2, $3)";
    let params = [SqlValue::Int(2), SqlValue::Int(7), SqlValue::Bytes(vec![0, 255])];
    assert_eq!(s.write_own(write, &params).await.unwrap_or_else(|f| panic!("{f}")), Ok(()));
    let duplicate = s.write_own(write, &params).await.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(duplicate.map_err(|e| e.sqlstate), Err("23505".to_string()));
    ok(&mut s, "ROLLBACK", &[]).await;
    assert_eq!(count(&mut s, "conformance_own").await, 0, "the BEGIN left the transaction open");
    let stopped = s
        .execute_all(all(&[
            "INSERT INTO conformance_own VALUES (3, 3, '')",
            "SELEC 1",
            "INSERT INTO conformance_own VALUES (4, 4, '')",
        ]))
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(stopped.map_err(|e| e.sqlstate), Err("42601".to_string()));
    assert!(count(&mut s, "conformance_own").await <= 1, "ran past the error");
    assert_eq!(s.write_own(write, &params).await.unwrap_or_else(|f| panic!("{f}")), Ok(()));
    assert_eq!(column(&mut s, "SELECT n FROM conformance_own WHERE id = 2").await, ints(&[7]));
    ok(&mut s, "BEGIN", &[]).await;
    let params = [SqlValue::Int(5), SqlValue::Int(5), SqlValue::Bytes(vec![5])];
    let eight = [SqlValue::Int(8), SqlValue::Int(8), SqlValue::Bytes(vec![8])];
    let both = s.write_own_and_commit(&[(write, &params), (write, &eight)]).await;
    assert_eq!(both.unwrap_or_else(|f| panic!("{f}")), Ok(()));
    drop(s);
    let mut t = connect(backend).await;
    // (Row 3 committed or not above, depending on the backend.)
    let ids = "SELECT id FROM conformance_own WHERE id <> 3 ORDER BY id";
    assert_eq!(column(&mut t, ids).await, ints(&[2, 5, 8]), "committed");
    ok(&mut t, "BEGIN", &[]).await;
    ok(&mut t, "INSERT INTO conformance_own VALUES (6, 6, '')", &[]).await;
    let nine = [SqlValue::Int(9), SqlValue::Int(9), SqlValue::Bytes(vec![9])];
    let failed = t.write_own_and_commit(&[(write, &nine), (write, &params)]).await;
    assert!(failed.is_err(), "a failed write is a fault");
    drop(t);
    let mut u = connect(backend).await;
    assert_eq!(column(&mut u, ids).await, ints(&[2, 5, 8]), "nothing of the failed transaction committed");
    let insert = "INSERT INTO conformance_own (id, n, b) VALUES ($1, 1, '')";
    let begun = u.execute_begun(&["BEGIN"], insert, &[SqlValue::Int(7)]).await.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(begun.map(|rs| rs.rows_affected), Ok(1));
    let failed = u.execute_begun(&["BEGIN"], "SELEC 1", &[]).await.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(failed.map_err(|e| e.sqlstate), Err("42601".to_string()));
    ok(&mut u, "ROLLBACK", &[]).await;
    assert_eq!(column(&mut u, ids).await, ints(&[2, 5, 8]), "the statement ran inside the transaction begun with it");
}
