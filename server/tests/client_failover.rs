//! The Rust client (`barista-client`) against three real replicas: it skips a dead address in
//! its list, keeps its session when the replica it uses is stopped (the next request goes to
//! another replica under the same request numbering), and errors carry their SQLSTATE. The two
//! surviving replicas' databases must then be identical, with every increment applied once.
//!
//! About 8 s, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod support;

use std::time::Duration;

use barista_client::{Client, ClientConfig, Error, Value};
use support::{Cluster, REPLICAS, wait_for};

#[test]
fn the_client_fails_over_and_keeps_its_session() {
    let mut cluster = Cluster::start("failover", |_| Vec::new());
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let mut addrs = vec!["127.0.0.1:1".to_string()];
    addrs.extend(cluster.replicas.iter().map(|r| r.client.clone()));
    let cfg = ClientConfig { backoff: Duration::from_millis(50), ..ClientConfig::default() };
    let mut db = Client::connect(&addrs, cfg).expect("connect past the dead address");
    assert_ne!(db.replica(), "127.0.0.1:1");

    db.execute("CREATE TABLE counter (k int PRIMARY KEY, n int NOT NULL)", &[]).expect("create");
    db.execute("INSERT INTO counter VALUES ($1, $2)", &[Value::Int(1), Value::Int(0)]).expect("insert");
    let increment = "UPDATE counter SET n = n + 1 WHERE k = 1";
    for _ in 0..3 {
        assert_eq!(db.execute(increment, &[]).expect("increment").rows_affected, 1);
    }

    // Stop the replica the client uses; its next request must go elsewhere, in the same session.
    let used = cluster.replicas.iter().position(|r| r.client == db.replica()).expect("a replica of the cluster");
    cluster.stop_replica(used);
    db.begin().expect("begin after failover");
    assert_ne!(db.replica(), cluster.replicas[used].client, "moved to another replica");
    for _ in 0..3 {
        db.execute(increment, &[]).expect("increment in the transaction");
    }
    db.commit().expect("commit");

    let err =
        db.execute("INSERT INTO counter VALUES ($1, $2)", &[Value::Int(1), Value::Int(7)]).expect_err("duplicate");
    assert!(matches!(err, Error::Sql { .. }), "{err:?}");
    assert_eq!(err.sqlstate(), Some("23505"), "{err}");
    let rows = db.execute("SELECT n FROM counter WHERE k = 1", &[]).expect("select");
    assert_eq!(rows.text(0, 0).as_deref(), Some("6"), "every increment applied once");
    db.close().expect("close");

    // The surviving replicas agree, in their own databases.
    let alive: Vec<usize> = (0..REPLICAS).filter(|i| *i != used).collect();
    let reports = || alive.iter().map(|i| cluster.report(*i)).collect::<Vec<_>>();
    let target = reports().iter().map(|r| r.decided).max().unwrap_or(0);
    wait_for("the surviving replicas to apply the whole log", Duration::from_secs(30), || {
        reports().iter().all(|r| r.applied >= target).then_some(())
    });
    for i in alive {
        assert_eq!(cluster.query(i, "SELECT k, n FROM counter"), "1|6\n", "replica {i}\n{}", cluster.logs());
    }
}
