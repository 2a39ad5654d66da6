//! `COPY ... FROM STDIN` through Barista's PostgreSQL-protocol port, against a live three-replica
//! cluster (`pg_auth = trust`). The front end sends the rows as INSERTs; what a client must see is
//! PostgreSQL's COPY:
//!
//! - `tokio-postgres`'s `copy_in` (extended protocol), text format: NULLs, every escape, tabs,
//!   newlines, backslashes and quotes inside values, non-ASCII text; `COPY n` counts the rows;
//!   a COPY too big for one INSERT (so the front end wraps it in a transaction of its own);
//! - a COPY inside a transaction that is rolled back leaves nothing; a CopyFail (the sink
//!   dropped unfinished) leaves nothing, outside a transaction and inside one (which it aborts);
//!   rows with a missing column are PostgreSQL's error 22P04;
//! - a client that vanishes in the middle of a big COPY leaves nothing and holds nothing: the
//!   next transaction of another client runs;
//! - psql (simple protocol) loads CSV with a header, quotes and embedded newlines;
//! - a client that sends a query instead of CopyDone gets 08P01, and its next COMMIT commits
//!   nothing of the COPY;
//! - `VACUUM ANALYZE` of the loaded table runs; `VACUUM` inside a transaction fails with 25001;
//! - every replica's own PostgreSQL holds identical rows.
//!
//! About 10 s, most of it starting the cluster and the 20,000-row COPYs.
#![cfg(not(madsim))]

mod pg;
mod samples;
mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use pg::{pg_addr, pg_client};
use samples::{expect_everywhere, wait_applied};
use support::{Cluster, REPLICAS};
use tokio_postgres::error::SqlState;

/// The rows of the small COPY, as text-format lines, and how psql prints them back
/// (`id|v|n` with NULL shown as `<null>`, values through `quote_literal`-like escaping).
const ROWS: &[u8] = b"1\tplain\t10\n\
2\t\\N\t\\N\n\
3\ttab\\there\\nnewline\t30\n\
4\tback\\\\slash \\\\N not null\t40\n\
5\t'quoted' \"double\"\t50\n\
6\t\xc3\xa9t\xc3\xa9 \\x41\\102\\r\t60\n\
7\t\t70\n";

/// `id`, the value as E'' text (so escapes are visible), `n`.
const SHOW: &str =
    "SELECT id, coalesce(quote_literal(v), '<null>'), coalesce(n::text, '<null>') FROM copied ORDER BY id";

const SHOWN: &str = "1|'plain'|10\n\
2|<null>|<null>\n\
3|'tab\there\nnewline'|30\n\
4|E'back\\\\slash \\\\N not null'|40\n\
5|'''quoted'' \"double\"'|50\n\
6|'été AB\r'|60\n\
7|''|70\n";

fn connect(cluster: &Cluster, replica: usize) -> (String, u16) {
    let (host, port) = pg_addr(cluster, replica);
    (host, port.parse().expect("a port"))
}

async fn client(cluster: &Cluster, replica: usize) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (host, port) = connect(cluster, replica);
    let config = format!("host={host} port={port} user=postgres dbname=postgres");
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await.expect("connect");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

/// Sends `data` through `COPY sql` and returns `COPY n`'s n.
async fn copy_in(client: &tokio_postgres::Client, sql: &str, data: &[u8]) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::copy_from_slice(data)).await?;
    sink.finish().await
}

/// Rows `ids` of about 60 bytes each: thousands are far more than one INSERT holds.
fn big(ids: std::ops::RangeInclusive<u32>) -> Vec<u8> {
    ids.flat_map(|i| format!("{i}\trow {i} with some padding text to make it longer\t{i}\n").into_bytes()).collect()
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0)
}

fn tokio_postgres_copies(cluster: &Cluster) {
    // Connection tasks run on their own threads while the test blocks on psql.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (mut client, _task) = client(cluster, 1).await;
        client
            .batch_execute(
                "CREATE TABLE copied (id int4 PRIMARY KEY, v text, n int8); \
                 CREATE TABLE bulk (id int4 PRIMARY KEY, v text, n int8)",
            )
            .await
            .expect("create");

        // Every escape, NULLs, data split anywhere between messages.
        let (first, rest) = ROWS.split_at(17);
        let sink = client.copy_in::<_, Bytes>("COPY copied FROM STDIN").await.expect("copy");
        futures::pin_mut!(sink);
        sink.send(Bytes::copy_from_slice(first)).await.expect("data");
        sink.send(Bytes::copy_from_slice(rest)).await.expect("data");
        assert_eq!(sink.finish().await.expect("COPY"), 7);

        // Too big for one INSERT: the front end runs it in a transaction of its own.
        let rows = 20_000;
        assert_eq!(
            copy_in(&client, "COPY bulk (id, v, n) FROM STDIN", &big(1..=rows)).await.expect("COPY"),
            u64::from(rows)
        );
        assert_eq!(count(&client, "bulk").await, i64::from(rows));

        // Rolled back with the transaction it ran in.
        let tx = client.transaction().await.expect("begin");
        {
            let sink = tx.copy_in::<_, Bytes>("COPY copied FROM STDIN").await.expect("copy");
            futures::pin_mut!(sink);
            sink.send(Bytes::from_static(b"100\tin a transaction\t1\n")).await.expect("data");
            assert_eq!(sink.finish().await.expect("COPY"), 1);
        }
        let seen: i64 = tx.query_one("SELECT count(*) FROM copied", &[]).await.expect("count").get(0);
        assert_eq!(seen, 8, "the transaction sees its COPY");
        tx.rollback().await.expect("rollback");

        // CopyFail outside a transaction, after several INSERTs' worth of rows: nothing stays.
        {
            let sink = client.copy_in::<_, Bytes>("COPY bulk FROM STDIN").await.expect("copy");
            futures::pin_mut!(sink);
            sink.send(Bytes::from(big(rows + 1..=2 * rows))).await.expect("data");
            // Dropped unfinished: tokio-postgres sends CopyFail.
        }
        assert_eq!(count(&client, "bulk").await, i64::from(rows));

        // CopyFail inside a transaction aborts it, as in PostgreSQL: nothing commits.
        let tx = client.transaction().await.expect("begin");
        tx.execute("INSERT INTO copied VALUES (200, 'before the COPY', 0)", &[]).await.expect("insert");
        {
            let sink = tx.copy_in::<_, Bytes>("COPY copied FROM STDIN").await.expect("copy");
            futures::pin_mut!(sink);
            sink.send(Bytes::from_static(b"201\tabandoned\t1\n")).await.expect("data");
        }
        let err = tx.execute("SELECT 1", &[]).await.expect_err("the transaction is aborted");
        assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{err}");
        // COMMIT of an aborted transaction rolls it back (answered ROLLBACK, not an error).
        tx.commit().await.expect("COMMIT ends it");

        // Bad rows are PostgreSQL's errors, and the COPY leaves nothing.
        let err = copy_in(&client, "COPY copied FROM STDIN", b"300\tfine\t1\n301\tshort\n").await.expect_err("22P04");
        assert_eq!(err.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{err}");
        // Refused before copy mode (the simple protocol here: tokio-postgres's copy_in answers a
        // failed Execute with a CopyFail and a second Sync, whose extra ReadyForQuery it then
        // takes for the next request's, with PostgreSQL as with Barista).
        let err = client.simple_query("COPY copied FROM STDIN (FORMAT binary)").await.expect_err("refused");
        assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{err}");
        let err = client.simple_query("COPY nosuch FROM STDIN").await.expect_err("no table");
        assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err}");
        assert_eq!(count(&client, "copied").await, 7);

        // A client that vanishes in the middle of a big COPY, once its first INSERTs ran in the
        // transaction the front end opened (their locks are visible on replica 0's PostgreSQL):
        // the replica sees the socket close and rolls it back, so another client's next
        // transaction can run, and none of the rows stay.
        let (doomed, task) = self::client(cluster, 0).await;
        let sink = doomed.copy_in::<_, Bytes>("COPY bulk FROM STDIN").await.expect("copy");
        futures::pin_mut!(sink);
        sink.send(Bytes::from(big(2 * rows + 1..=3 * rows))).await.expect("data");
        let locked = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                      WHERE c.relname = 'bulk' AND l.mode = 'RowExclusiveLock'";
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while cluster.query(0, locked).trim() == "0" {
            assert!(
                std::time::Instant::now() < deadline,
                "the COPY's INSERTs never ran: {}\n{}",
                cluster.query(0, "SELECT relation::regclass, mode, granted FROM pg_locks"),
                cluster.logs()
            );
            // Lets the connection task write the data meanwhile.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort(); // the socket closes, no CopyFail
        drop(doomed);
        let tx = client.transaction().await.expect("begin after the vanished COPY");
        tx.execute("INSERT INTO copied VALUES (8, 'after', 80)", &[]).await.expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(count(&client, "bulk").await, i64::from(rows));

        // pgbench -i's VACUUM after its COPY: on its own it runs (outside a transaction, on every
        // replica); inside a transaction it is PostgreSQL's error 25001.
        client.batch_execute("VACUUM ANALYZE bulk").await.expect("VACUUM");
        let tx = client.transaction().await.expect("begin");
        let err = tx.batch_execute("VACUUM bulk").await.expect_err("not in a transaction block");
        assert_eq!(err.code(), Some(&SqlState::ACTIVE_SQL_TRANSACTION), "{err}");
        tx.rollback().await.expect("rollback");
    });
}

/// A bare protocol connection, for what no driver sends.
struct Raw(std::net::TcpStream);

impl Raw {
    fn connect(cluster: &Cluster, replica: usize) -> Raw {
        let (host, port) = connect(cluster, replica);
        let mut raw = Raw(std::net::TcpStream::connect((host.as_str(), port)).expect("connect"));
        raw.0.set_read_timeout(Some(Duration::from_secs(30))).expect("a timeout");
        let params = b"user\0postgres\0database\0postgres\0\0";
        let mut startup = Vec::new();
        startup.extend_from_slice(&(8 + params.len() as i32).to_be_bytes());
        startup.extend_from_slice(&196_608i32.to_be_bytes());
        startup.extend_from_slice(params);
        raw.0.write_all(&startup).expect("startup");
        raw.until(b'Z');
        raw
    }

    fn send(&mut self, kind: u8, body: &[u8]) {
        let mut message = vec![kind];
        message.extend_from_slice(&(4 + body.len() as i32).to_be_bytes());
        message.extend_from_slice(body);
        self.0.write_all(&message).expect("send");
    }

    fn query(&mut self, sql: &str) {
        self.send(b'Q', &[sql.as_bytes(), b"\0"].concat());
    }

    /// The kinds of the messages received up to and including the first of kind `last`, and
    /// the SQLSTATEs of the errors among them.
    fn until(&mut self, last: u8) -> (Vec<u8>, Vec<String>) {
        use std::io::Read;
        let (mut kinds, mut errors) = (Vec::new(), Vec::new());
        loop {
            let mut head = [0u8; 5];
            self.0.read_exact(&mut head).expect("a message");
            let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len.saturating_sub(4)];
            self.0.read_exact(&mut body).expect("its body");
            if head[0] == b'E' {
                // Fields: a type byte, then a NUL-terminated string; `C` is the SQLSTATE.
                let code = body.split(|b| *b == 0).find(|f| f.first() == Some(&b'C'));
                errors.push(code.map(|c| String::from_utf8_lossy(&c[1..]).into_owned()).unwrap_or_default());
            }
            kinds.push(head[0]);
            if head[0] == last {
                return (kinds, errors);
            }
        }
    }
}

/// A client that breaks the protocol in the middle of a COPY (a query instead of CopyDone),
/// after the front end opened a transaction for it and sent INSERTs: the query is refused
/// (08P01), and the COPY must not ride on the client's next COMMIT.
fn protocol_break_mid_copy(cluster: &Cluster) {
    let mut raw = Raw::connect(cluster, 2);
    raw.query("COPY bulk FROM STDIN");
    raw.until(b'G');
    raw.send(b'd', &big(50_001..=60_000));
    raw.query("COMMIT");
    let (_, errors) = raw.until(b'Z');
    assert_eq!(errors, ["08P01"]);
    raw.query("COMMIT");
    let (kinds, errors) = raw.until(b'Z');
    assert!(errors.is_empty() && kinds.contains(&b'C'), "{kinds:?} {errors:?}");
    expect_everywhere(cluster, &[0, 1, 2], "SELECT count(*) FROM bulk WHERE id > 50000", "0\n");
}

const PSQL_SCRIPT: &str = "CREATE TABLE csv_rows (id int4, label text, note text);
COPY csv_rows (id, label, note) FROM STDIN (FORMAT csv, HEADER true);
id,label,note
1,\"comma, inside\",
2,\"two
lines\",\"\"\"quoted\"\"\"
3,,\"\"
\\.
SELECT id, coalesce(label, '<null>'), coalesce(note, '<null>') FROM csv_rows ORDER BY id;
";

fn psql_copies_csv(cluster: &Cluster) {
    let mut cmd = pg_client(cluster, 2, "psql", "");
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("psql starts");
    child.stdin.take().expect("stdin").write_all(PSQL_SCRIPT.as_bytes()).expect("the script");
    let out = child.wait_with_output().expect("psql runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "psql failed:\n{text}");
    assert_eq!(text, "CREATE TABLE\nCOPY 3\n1|comma, inside|<null>\n2|two\nlines|\"quoted\"\n3|<null>|\n", "{text}");
}

#[test]
fn copy_from_stdin_loads_the_same_rows_everywhere_or_none() {
    let cluster = Cluster::start("pg-copy", |_| Vec::new());
    tokio_postgres_copies(&cluster);
    psql_copies_csv(&cluster);
    protocol_break_mid_copy(&cluster);
    let all = [0, 1, 2];
    expect_everywhere(&cluster, &all, SHOW, &format!("{SHOWN}8|'after'|80\n"));
    expect_everywhere(
        &cluster,
        &all,
        "SELECT count(*), min(id), max(id), sum(n) FROM bulk",
        "20000|1|20000|200010000\n",
    );
    wait_applied(&cluster, &all);
    let digest = "SELECT md5(string_agg(b::text, ',' ORDER BY id)) FROM bulk b";
    let digests: Vec<String> = (0..REPLICAS).map(|i| cluster.query(i, digest)).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "the replicas differ: {digests:?}");
    expect_everywhere(&cluster, &all, "SELECT count(*) FROM csv_rows", "3\n");
}
