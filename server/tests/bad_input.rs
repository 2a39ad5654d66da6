//! Bad input on a live three-replica cluster (issue 4): random bytes, truncated frames and an
//! oversized length prefix on the client (Thrift) port and on the peer port each close only their
//! own connection; an oversized statement, a request too large to replicate and an unknown
//! connection get clear errors; and through all of it the cluster keeps serving, the replica that
//! took the garbage included.
//!
//! About 10 s, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use barista_server::api::generated::{
    Connection, ConnectionParams, ERR_BAD_REQUEST, ERR_REJECTED, Statement, TBaristaSyncClient, Value,
};
use support::{Cluster, REPLICAS, db_exception, wait_for};

/// Bytes no well-behaved peer sends, the same every run (a fixed xorshift sequence).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The inputs each port gets: garbage, a frame cut short, and a length prefix far over any limit.
fn bad_inputs() -> Vec<(&'static str, Vec<u8>)> {
    // A Thrift binary-protocol call header (strict version 1, CALL, name "execute_sql") whose
    // arguments never come.
    let mut truncated = vec![0x80, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b];
    truncated.extend_from_slice(b"execute_sql");
    truncated.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0x0c]);
    vec![
        ("random bytes", noise(4096)),
        ("a truncated frame", truncated),
        // A length prefix of 2 GiB - 1: for the peer port's length-delimited frames, and as a
        // string length inside a Thrift call header for the client port.
        ("an oversized length", vec![0x7f, 0xff, 0xff, 0xff, 0x80, 0x01, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff]),
    ]
}

/// Sends `bytes` to `addr` and half-closes; the server must close the connection (EOF or reset)
/// within a few seconds rather than keep it open or hang.
fn closes_the_connection(addr: &str, what: &str, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    // The server may close before reading all of it: a failed write is a closed connection too.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{addr} kept the connection open after {what}: {e}"),
    }
}

fn at(con: &Connection, seq: i64) -> Connection {
    Connection { request_seq: Some(seq), ..con.clone() }
}

#[test]
fn garbage_closes_only_its_own_connection_and_bad_requests_get_clear_errors() {
    let cluster = Cluster::start("bad-input", |_| Vec::new());
    let target = 1;
    for (what, bytes) in bad_inputs() {
        closes_the_connection(&cluster.replicas[target].client, what, &bytes);
        closes_the_connection(&cluster.replicas[target].peer, what, &bytes);
    }

    // The replica that took the garbage serves on, through a fresh connection.
    let mut client = cluster.client(target);
    let con = client.open_connection(ConnectionParams::default()).expect("open after the garbage");
    client.execute_sql(at(&con, 1), "CREATE TABLE t (k int PRIMARY KEY, v text)".into(), vec![]).expect("create");

    // A statement over max_statement_bytes (512 KiB by default): refused with SQLSTATE 54000.
    let long = format!("SELECT '{}'", "x".repeat(600 << 10));
    let ex = db_exception(client.execute_sql(at(&con, 2), long, vec![]));
    assert_eq!((ex.error_code, ex.sqlstate.as_deref()), (Some(ERR_BAD_REQUEST), Some("54000")), "{ex:?}");
    assert!(ex.message.as_deref().is_some_and(|m| m.contains("max_statement_bytes")), "{ex:?}");

    // A batch whose statements each pass but which together do not fit in one log slot.
    let insert = "INSERT INTO t VALUES ($1, $2)".to_string();
    let big = "y".repeat(400 << 10);
    let batch = (0..3)
        .map(|k| {
            Statement::new(
                insert.clone(),
                vec![
                    Value::new(None, Some(k), None, None, None),
                    Value::new(None, None, None, Some(big.clone()), None),
                ],
            )
        })
        .collect();
    let ex = db_exception(client.execute_sql_batch(at(&con, 3), batch, true));
    assert_eq!((ex.error_code, ex.sqlstate.as_deref()), (Some(ERR_BAD_REQUEST), Some("54000")), "{ex:?}");
    assert!(ex.message.as_deref().is_some_and(|m| m.contains("too large to replicate")), "{ex:?}");

    // A connection nobody opened.
    let stranger = Connection { connection_id: Some(0x5eed), request_seq: Some(1), ..Connection::default() };
    let ex = db_exception(client.execute_sql(stranger, "SELECT 1".into(), vec![]));
    assert_eq!(ex.error_code, Some(ERR_REJECTED), "{ex:?}");
    assert!(ex.message.as_deref().is_some_and(|m| m.contains("connection")), "{ex:?}");

    // Nothing of the refused requests ran, and the log goes on everywhere.
    client.execute_sql(at(&con, 4), insert, vec![b"1".to_vec(), b"after".to_vec()]).expect("insert");
    let decided = cluster.reports().iter().map(|r| r.decided).max().unwrap_or(0);
    wait_for("every replica to apply the whole log", Duration::from_secs(30), || {
        cluster.reports().iter().all(|r| r.applied >= decided).then_some(())
    });
    for i in 0..REPLICAS {
        assert_eq!(cluster.query(i, "SELECT k, v FROM t"), "1|after\n", "replica {i}");
    }
}
