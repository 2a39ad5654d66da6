//! A replica whose PostgreSQL stops (issue 7): writes go on through the other two; the replica
//! halts at the slot it could not apply and says so (`database-unavailable`, with the slot), never
//! moving past it; once its PostgreSQL is back it resumes from that slot by itself, and its
//! database ends identical to the others' (a skipped slot would leave its rows different).
//!
//! About 12 s, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod support;

use std::process::Command;
use std::time::Duration;

use barista_client::{Client, ClientConfig, Value};
use support::{Cluster, REPLICAS, wait_for};

/// Runs `scripts/pg.sh` with `args`.
fn pg_sh(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");
    let out = Command::new(script).args(args).output().expect("run scripts/pg.sh");
    assert!(out.status.success(), "pg.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_replica_whose_database_stops_halts_at_its_slot_and_resumes_without_skipping() {
    let cluster = Cluster::start("db-outage", |_| Vec::new());
    let leader = cluster.leader();
    // The victim is a follower; the client talks to the other two replicas only.
    let victim = (leader + 1) % REPLICAS;
    let others: Vec<String> =
        (0..REPLICAS).filter(|i| *i != victim).map(|i| cluster.replicas[i].client.clone()).collect();
    let mut db = Client::connect(&others, ClientConfig::default()).expect("connect");
    db.execute("CREATE TABLE t (k int PRIMARY KEY, v text NOT NULL)", &[]).expect("create");
    let insert = "INSERT INTO t VALUES ($1, $2)";
    for k in 0..10 {
        db.execute(insert, &[Value::Int(k), Value::Text(format!("before {k}"))]).expect("insert");
    }
    cluster.wait_applied(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));

    let data = cluster.dir.join(format!("pg{victim}"));
    let data = data.to_str().expect("a UTF-8 path");
    pg_sh(&["stop", data]);
    for k in 10..40 {
        db.execute(insert, &[Value::Int(k), Value::Text(format!("during {k}"))])
            .expect("insert while one database is down");
    }
    let halted = wait_for("the victim to report its database down", Duration::from_secs(30), || {
        let r = cluster.report(victim);
        (r.health == "database-unavailable").then_some(r)
    });
    let detail = halted.detail.clone().unwrap_or_default();
    assert!(detail.contains("stopped at slot"), "{halted:?}");
    let decided = cluster.report(leader).decided;
    assert!(halted.applied < decided, "the victim applied {} of {decided} while its database was down", halted.applied);
    // More writes: the victim stays where it stopped.
    for k in 40..50 {
        db.execute(insert, &[Value::Int(k), Value::Text(format!("during {k}"))]).expect("insert");
    }
    let still = cluster.report(victim);
    assert_eq!((still.health.as_str(), still.applied), ("database-unavailable", halted.applied), "{still:?}");

    pg_sh(&["start", data, &cluster.replicas[victim].pg_port.to_string()]);
    wait_for("the victim to be healthy again", Duration::from_secs(30), || {
        (cluster.report(victim).health == "healthy").then_some(())
    });
    let ap = cluster.wait_applied(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert!(ap >= decided);
    let dump = "SELECT string_agg(k || '=' || v, ',' ORDER BY k) FROM t";
    let first = cluster.query(0, dump);
    assert!(first.contains("0=before 0") && first.contains("49=during 49"), "{first}");
    for i in 1..REPLICAS {
        assert_eq!(cluster.query(i, dump), first, "replica {i} differs from replica 0");
    }
}
