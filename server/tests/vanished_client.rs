//! A client that vanishes with a transaction open (issue 7): after the idle timeout the leader
//! puts an abort in the log, every replica rolls the transaction back, and the client that was
//! waiting behind it proceeds. The vanished client's uncommitted row is on no replica.
//!
//! About 10 s, most of it starting PostgreSQL and ZooKeeper; the idle timeout is 1.5 s here.
#![cfg(not(madsim))]

mod support;

use std::time::Duration;

use barista_client::{Client, ClientConfig, Value};
use barista_server::api::generated::{Connection, ConnectionParams, TBaristaSyncClient};
use support::{Cluster, REPLICAS};

fn at(con: &Connection, seq: i64) -> Connection {
    Connection { request_seq: Some(seq), ..con.clone() }
}

#[test]
fn an_abandoned_transaction_is_rolled_back_everywhere_and_others_proceed() {
    let cluster = Cluster::start("vanished", |_| vec![("BARISTA_IDLE_TXN_TIMEOUT_MS".into(), "1500".into())]);
    let addrs: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
    let mut other = Client::connect(&addrs[1..], ClientConfig::default()).expect("connect");
    other.execute("CREATE TABLE t (k int PRIMARY KEY, who text NOT NULL)", &[]).expect("create");

    // The vanishing client: a transaction with an uncommitted row, then its socket is gone.
    let mut gone = cluster.client(0);
    let con = gone.open_connection(ConnectionParams::default()).expect("open");
    gone.begin_txn(at(&con, 1)).expect("begin");
    gone.execute_sql_txn(at(&con, 2), "INSERT INTO t VALUES (1, 'vanished')".into(), vec![]).expect("insert");
    drop(gone);

    // The other client's write waits behind the open transaction until the idle timeout ends it.
    other.execute("INSERT INTO t VALUES (2, 'other')", &[]).expect("the other client proceeds");
    other.execute("INSERT INTO t VALUES ($1, 'other')", &[Value::Int(1)]).expect("key 1 is free: rolled back");

    cluster.wait_applied(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    for i in 0..REPLICAS {
        assert_eq!(cluster.query(i, "SELECT k, who FROM t ORDER BY k"), "1|other\n2|other\n", "replica {i}");
        assert_eq!(cluster.report(i).health, "healthy", "replica {i}");
    }
}
