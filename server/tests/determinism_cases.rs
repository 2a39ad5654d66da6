//! Every construct of the determinism policy (`docs/determinism.md`, generated from
//! `barista_runtime::determinism::CASES`) against three real replicas (issue 7): each case's
//! example goes through the Thrift API on its own connection. A case the policy refuses must come
//! back as `ERR_REFUSED`; any other must be replicated (succeeding, or failing with a SQL error,
//! which is a deterministic result too). Then every replica's PostgreSQL, dumped whole with
//! `pg_dump` (tables, rows, sequence positions, Barista's own bookkeeping), must be identical.
//! Also: a transaction under `SET LOCAL search_path` (Barista's bookkeeping runs inside it).
//!
//! About 20 s, most of it starting PostgreSQL and ZooKeeper and the cases' round trips.
#![cfg(not(madsim))]

mod support;

use std::process::Command;
use std::time::Duration;

use barista_runtime::determinism::{CASES, Expect, FIXTURE};
use barista_server::api::generated::{
    Connection, ConnectionParams, DBException, ERR_REFUSED, ERR_SQL, TBaristaSyncClient,
};
use support::{Cluster, REPLICAS, wait_for};

fn at(con: &Connection, seq: i64) -> Connection {
    Connection { request_seq: Some(seq), ..con.clone() }
}

/// The DBException of a failed call, or what else went wrong.
fn exception<T>(result: thrift::Result<T>) -> Result<Option<DBException>, String> {
    match result {
        Ok(_) => Ok(None),
        Err(thrift::Error::User(e)) => e.downcast::<DBException>().map(|ex| Some(*ex)).map_err(|e| format!("{e:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// PostgreSQL's binary directory, as the project's scripts find it.
fn pg_bindir() -> String {
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts");
    let out = Command::new("bash")
        .args(["-c", r#"source "$1/lib.sh" && pg_bindir"#, "pg_bindir", scripts])
        .output()
        .expect("run scripts/lib.sh");
    assert!(out.status.success(), "pg_bindir: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replica `i`'s whole database as `pg_dump` prints it, schema and data.
fn dump(cluster: &Cluster, bindir: &str, i: usize) -> String {
    let out = Command::new(format!("{bindir}/pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &cluster.replicas[i].pg_port.to_string(), "-U", "postgres"])
        .args(["--no-owner", "--no-privileges", "postgres"])
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump of replica {i}: {}", String::from_utf8_lossy(&out.stderr));
    // Newer pg_dump brackets its output with a random key (`\restrict KEY`): not data.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.starts_with("\\restrict ") && !line.starts_with("\\unrestrict "))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn every_policy_case_is_refused_or_leaves_three_identical_databases() {
    let cluster = Cluster::start("determinism-cases", |_| Vec::new());
    let mut client = cluster.client(1);
    let setup = client.open_connection(ConnectionParams::default()).expect("open");
    let rows = [
        "INSERT INTO items (id, name, price) VALUES (1, 'apple', 3), (2, 'pear', 5), (3, 'plum', 7)",
        "INSERT INTO events (kind, note) VALUES ('login', 'a'), ('logout', 'b')",
    ];
    for (n, sql) in FIXTURE.iter().chain(&rows).enumerate() {
        client.execute_sql(at(&setup, n as i64 + 1), (*sql).into(), vec![]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    client.close_connection(at(&setup, 100)).expect("close");

    let mut wrong = Vec::new();
    let (mut refused, mut replicated) = (0, 0);
    for case in CASES {
        let con = client.open_connection(ConnectionParams::default()).expect("open");
        let outcome = exception(client.execute_sql(at(&con, 1), case.sql.into(), vec![]));
        match (&case.expect, outcome) {
            (Expect::Refused(_), Ok(Some(ex))) if ex.error_code == Some(ERR_REFUSED) => refused += 1,
            (Expect::Unchanged(_) | Expect::Rewritten(..), Ok(None)) => replicated += 1,
            // A statement error is a result like any other: the same on every replica.
            (Expect::Unchanged(_) | Expect::Rewritten(..), Ok(Some(ex))) if ex.error_code == Some(ERR_SQL) => {
                replicated += 1
            }
            (expect, got) => wrong.push(format!("{}: {:?} expected, got {got:?}\n  {}", case.id, expect, case.sql)),
        }
        // Ends whatever the case left open (a transaction, a cursor) before the next one.
        if let Err(e) = client.close_connection(at(&con, 2)) {
            wrong.push(format!("{}: closing its connection failed: {e}", case.id));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases went wrong:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
    eprintln!("{refused} cases refused, {replicated} replicated");

    // SET LOCAL search_path inside an explicit transaction: Barista's own bookkeeping runs in the
    // same transaction and must still find its tables.
    let con = client.open_connection(ConnectionParams::default()).expect("open");
    client.begin_txn(at(&con, 1)).expect("begin");
    client.execute_sql_txn(at(&con, 2), "SET LOCAL search_path = pg_catalog".into(), vec![]).expect("set local");
    let insert = "INSERT INTO public.items (id, name) VALUES (100, 'under another search_path')";
    client.execute_sql_txn(at(&con, 3), insert.into(), vec![]).expect("insert");
    client.commit_txn(at(&con, 4)).expect("commit");
    client.close_connection(at(&con, 5)).expect("close");

    let decided = cluster.reports().iter().map(|r| r.decided).max().unwrap_or(0);
    wait_for("every replica to apply the whole log", Duration::from_secs(30), || {
        cluster.reports().iter().all(|r| r.applied >= decided).then_some(())
    });
    let bindir = pg_bindir();
    let first = dump(&cluster, &bindir, 0);
    assert!(first.contains("CREATE TABLE public.items"), "the dump holds the fixture:\n{first}");
    assert_eq!(cluster.query(0, "SELECT name FROM items WHERE id = 100"), "under another search_path\n");
    for i in 1..REPLICAS {
        let other = dump(&cluster, &bindir, i);
        if other != first {
            let diff: Vec<String> = first
                .lines()
                .zip(other.lines())
                .filter(|(a, b)| a != b)
                .take(10)
                .map(|(a, b)| format!("replica 0: {a}\nreplica {i}: {b}"))
                .collect();
            panic!("replica {i}'s database differs from replica 0's:\n{}", diff.join("\n"));
        }
    }
}
