//! Three real `barista serve` processes over real ZooKeeper and three real PostgreSQL clusters,
//! driven through the Thrift API at a follower: DDL, parameters, a committed and a rolled-back
//! transaction, batches, NULL versus the empty string, a retried request answered once, an old-API
//! call numbered by the replica, a constraint violation's SQLSTATE; then every replica's own
//! PostgreSQL is read directly and must hold the same rows. Also: `/metrics`, `barista status`,
//! and a connection beyond the worker limit gets an "overloaded" error instead of hanging.
//!
//! About 10 s, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod support;

use std::process::Command;
use std::time::Duration;

use barista_server::api::generated::{
    Connection, ConnectionParams, ERR_OVERLOADED, ERR_REJECTED, ERR_SQL, Statement, TBaristaSyncClient, Value,
};
use support::{Cluster, REPLICAS, db_exception, wait_for};

/// The connection `con` at request number `seq`.
fn at(con: &Connection, seq: i64) -> Connection {
    Connection { request_seq: Some(seq), ..con.clone() }
}

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn value_int(i: i64) -> Value {
    Value::new(None, Some(i), None, None, None)
}

fn value_text(s: &str) -> Value {
    Value::new(None, None, None, Some(s.to_string()), None)
}

fn value_null() -> Value {
    Value::new(None, None, None, None, None)
}

#[test]
fn replicas_stay_identical_through_the_thrift_api() {
    // Replica 2 gets a tiny worker pool through the environment (every key is also a variable).
    let cluster =
        Cluster::start("identical", |i| if i == 2 { vec![("BARISTA_WORKERS".into(), "2".into())] } else { Vec::new() });
    let leader = cluster.leader();
    // A follower: its requests are forwarded to the leader and answered from its own execution.
    let follower = (leader + 1) % REPLICAS;
    let mut client = cluster.client(follower);

    assert_eq!(client.get_version().expect("get_version").0, 0.2);
    let con = client.open_connection(ConnectionParams::default()).expect("open_connection");
    assert!(con.connection_id.is_some(), "{con:?}");

    client.execute_sql(at(&con, 1), "CREATE TABLE t (k int PRIMARY KEY, v text)".into(), vec![]).expect("create");
    let insert = "INSERT INTO t VALUES ($1, $2)".to_string();
    let rs = client.execute_sql(at(&con, 2), insert.clone(), vec![text("1"), text("one")]).expect("insert 1");
    assert_eq!((rs.status, rs.rows_affected), (true, Some(1)));
    // The same request again (a client retrying after a lost answer): answered, not run twice.
    let again = client.execute_sql(at(&con, 2), insert.clone(), vec![text("1"), text("one")]).expect("retry");
    assert_eq!(again.rows_affected, Some(1), "a retry gets the first answer, not a duplicate-key error");

    // A transaction that commits and one that rolls back.
    client.begin_txn(at(&con, 3)).expect("begin");
    client.execute_sql_txn(at(&con, 4), insert.clone(), vec![text("2"), text("two")]).expect("insert 2");
    // A read of the open transaction: answered by this replica without the log, and counted.
    let rs = client.execute_sql_txn(at(&con, 5), "SELECT count(*) FROM t".into(), vec![]).expect("read in txn");
    assert_eq!(rs.tuples.expect("a row")[0].cells.as_ref().expect("cells")[0], text("2"));
    client.commit_txn(at(&con, 6)).expect("commit");
    client.begin_txn(at(&con, 7)).expect("begin");
    client.execute_sql_txn(at(&con, 8), insert.clone(), vec![text("3"), text("three")]).expect("insert 3");
    client.rollback_txn(at(&con, 9)).expect("rollback");

    // An atomic batch with a NULL and an empty string.
    let batch = vec![
        Statement::new(insert.clone(), vec![value_int(4), value_null()]),
        Statement::new(insert.clone(), vec![value_int(5), value_text("")]),
    ];
    let results = client.execute_sql_batch(at(&con, 10), batch, true).expect("atomic batch");
    assert_eq!(results.iter().map(|r| r.rows_affected).collect::<Vec<_>>(), vec![Some(1), Some(1)]);

    // A constraint violation comes back with its SQLSTATE, and changes nothing.
    let ex = db_exception(client.execute_sql(at(&con, 11), insert.clone(), vec![text("1"), text("dup")]));
    assert_eq!((ex.error_code, ex.sqlstate.as_deref()), (Some(ERR_SQL), Some("23505")), "{ex:?}");

    // A non-atomic batch: each statement on its own; the failing one reports its error.
    let batch = vec![
        Statement::new(insert.clone(), vec![value_int(6), value_text("six")]),
        Statement::new(insert.clone(), vec![value_int(1), value_text("dup")]),
    ];
    let results = client.execute_sql_batch(at(&con, 12), batch, false).expect("batch");
    assert!(results[0].status);
    assert!(!results[1].status);
    assert_eq!(results[1].error.as_ref().and_then(|e| e.sqlstate.as_deref()), Some("23505"));

    // Read back through the API: NULL and '' differ; column names and types come along.
    let rs = client.execute_sql(at(&con, 13), "SELECT k, v FROM t ORDER BY k".into(), vec![]).expect("select");
    assert_eq!(rs.field_names, Some(vec!["k".to_string(), "v".to_string()]));
    assert_eq!(rs.field_types, Some(vec!["int4".to_string(), "text".to_string()]));
    let rows: Vec<(String, Option<String>)> = rs
        .tuples
        .expect("rows")
        .into_iter()
        .map(|t| {
            let cells = t.cells.expect("cells");
            let nulls = t.nulls.expect("null markers");
            let v = (!nulls[1]).then(|| String::from_utf8_lossy(&cells[1]).into_owned());
            (String::from_utf8_lossy(&cells[0]).into_owned(), v)
        })
        .collect();
    let expected = vec![
        ("1".to_string(), Some("one".to_string())),
        ("2".to_string(), Some("two".to_string())),
        ("4".to_string(), None),
        ("5".to_string(), Some(String::new())),
        ("6".to_string(), Some("six".to_string())),
    ];
    assert_eq!(rows, expected);

    // A client of the original API sends no request number: the replica numbers its calls.
    let old_api = Connection { request_seq: None, seq_id: None, ..con.clone() };
    let rs = client.execute_sql(old_api.clone(), "SELECT count(*) FROM t".into(), vec![]).expect("old-API call");
    assert_eq!(rs.tuples.expect("a row")[0].cells.as_ref().expect("cells")[0], text("5"));
    // An older request number than the connection's last one is refused, not run.
    let ex = db_exception(client.execute_sql(at(&con, 3), "SELECT 1".into(), vec![]));
    assert_eq!(ex.error_code, Some(ERR_REJECTED), "{ex:?}");
    client.close_connection(at(&con, 100)).expect("close");

    // Every replica's own PostgreSQL holds exactly these rows, once all have applied the log.
    let target = cluster.reports().iter().map(|r| r.decided).max().unwrap_or(0);
    wait_for("every replica to apply the whole log", Duration::from_secs(30), || {
        cluster.reports().iter().all(|r| r.applied >= target).then_some(())
    });
    let direct = "SELECT k, coalesce(v, '<NULL>') FROM t ORDER BY k";
    let databases: Vec<String> = (0..REPLICAS).map(|i| cluster.query(i, direct)).collect();
    assert_eq!(databases[0], "1|one\n2|two\n4|<NULL>\n5|\n6|six\n", "{}", cluster.logs());
    assert!(databases.iter().all(|d| *d == databases[0]), "replicas differ: {databases:?}");

    // Metrics and `barista status`.
    let metrics = cluster.admin_get(follower, "/metrics");
    for name in ["barista_applied_slot", "barista_decided_slot", "barista_leader", "barista_healthy"] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    assert!(metrics.contains(r#"barista_requests_total{method="execute_sql",node="#), "{metrics}");
    assert!(metrics.contains("barista_request_duration_seconds_bucket"), "{metrics}");
    let reads = format!("barista_reads_outside_log_total{{node=\"{follower}\"}} 1\n");
    assert!(metrics.contains(&reads), "{reads:?} missing from /metrics:\n{metrics}");
    let admins: Vec<&str> = cluster.replicas.iter().map(|r| r.admin.as_str()).collect();
    let status = Command::new(env!("CARGO_BIN_EXE_barista"))
        .args(["status", "--admin", &admins.join(",")])
        .output()
        .expect("run barista status");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "barista status: {table}{}", String::from_utf8_lossy(&status.stderr));
    assert!(table.contains(&format!("leader: node {leader}")), "{table}");
    assert_eq!(table.matches("healthy").count(), REPLICAS, "{table}");

    // Replica 2 has 2 workers: a third connection is told it is overloaded rather than left hanging.
    // First let go of the session's client (replica 2 is the follower when replica 1 leads) and
    // wait until replica 2 serves no connection at all, so both workers are free to be held.
    drop(client);
    wait_for("replica 2 to serve no client connection", Duration::from_secs(10), || {
        let metrics = cluster.admin_get(2, "/metrics");
        let serving = metrics
            .lines()
            .find(|l| l.strip_prefix("barista_client_connections").is_some_and(|rest| rest.starts_with([' ', '{'])))?;
        serving.ends_with(" 0").then_some(())
    });
    let mut held: Vec<_> = (0..2).map(|_| cluster.client(2)).collect();
    for c in &mut held {
        c.get_version().expect("served within the worker limit");
    }
    let ex = db_exception(cluster.client(2).open_connection(ConnectionParams::default()));
    assert_eq!(ex.error_code, Some(ERR_OVERLOADED), "{ex:?}");
    drop(held.pop());
    wait_for("a worker to be free again", Duration::from_secs(10), || cluster.client(2).get_version().ok());
}
