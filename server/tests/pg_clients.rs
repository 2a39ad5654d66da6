//! PostgreSQL clients that nobody here wrote, through Barista's PostgreSQL-protocol port, against
//! a live three-replica cluster with SCRAM-SHA-256 authentication:
//!
//! - `psql` runs a scripted session (DDL, DML, a committed and a rolled-back transaction, a
//!   unique violation and a determinism refusal with their SQLSTATEs, NULLs, several statements
//!   in one query, and the catalog queries behind `\dt`, `\d` and `\d TABLE`); its output is checked and
//!   every replica's own PostgreSQL must hold the rows;
//! - a wrong password is refused (28P01);
//! - `tokio-postgres` uses the extended protocol: prepared statements with parameters (NULL
//!   included), binary results, transactions, errors with their SQLSTATE;
//! - Python's `psycopg` (Debian's python3-psycopg) with parameters and transactions, including
//!   an insert into a table created in the same transaction.
//!
//! One cluster for all four (about 15 s in all, most of it starting the cluster).
#![cfg(not(madsim))]

mod pg;
mod samples;
mod support;

use std::process::Command;
use std::time::Duration;

use pg::{pg_addr, pg_client};
use samples::{expect_everywhere, run};
use support::Cluster;

const PASSWORD: &str = "s3cret pass";

fn psql(cluster: &Cluster, i: usize, password: &str) -> Command {
    let mut cmd = pg_client(cluster, i, "psql", password);
    cmd.arg("-X");
    cmd
}

/// The session, and the lines psql must print for it (in order; other lines may come between).
const SCRIPT: &str = r"\set VERBOSITY verbose
\pset null (null)
CREATE TABLE pets (id int PRIMARY KEY, name text NOT NULL, born date, weight numeric(6,2));
INSERT INTO pets VALUES (1, 'Rex', '2020-01-02', 12.5), (2, 'Tom', NULL, NULL);
UPDATE pets SET name = 'Rexy' WHERE id = 1;
BEGIN;
INSERT INTO pets VALUES (3, 'Kit', '2021-03-04', 3.25);
DELETE FROM pets WHERE id = 2;
COMMIT;
BEGIN;
INSERT INTO pets VALUES (4, 'Gone', NULL, NULL);
ROLLBACK;
INSERT INTO pets VALUES (1, 'Dup', NULL, NULL);
LISTEN pets_changed;
INSERT INTO pets VALUES (5, 'Ann', NULL, 1) \; INSERT INTO pets VALUES (6, NULL, NULL, NULL);
INSERT INTO pets VALUES (7, 'Bo', NULL, NULL); INSERT INTO pets VALUES (8, 'Cy', NULL, NULL);
SELECT id, name, born, weight FROM pets ORDER BY id;
\dt
\d
\d pets
";

const EXPECTED: &[&str] = &[
    "CREATE TABLE",
    "INSERT 0 2",
    "UPDATE 1",
    "BEGIN",
    "INSERT 0 1",
    "DELETE 1",
    "COMMIT",
    "BEGIN",
    "INSERT 0 1",
    "ROLLBACK",
    "ERROR:  23505: duplicate key value violates unique constraint \"pets_pkey\"",
    "ERROR:  0A000: Barista refuses LISTEN / UNLISTEN",
    // Two statements in one query (psql's `\;`) are one implicit transaction: the NOT NULL
    // violation of the second takes the first with it.
    "INSERT 0 1",
    "ERROR:  23502: null value in column \"name\" of relation \"pets\" violates not-null constraint",
    "INSERT 0 1",
    "INSERT 0 1",
    "id | name | born | weight",
    "1 | Rexy | 2020-01-02 | 12.50",
    "3 | Kit | 2021-03-04 | 3.25",
    "7 | Bo | (null) | (null)",
    "8 | Cy | (null) | (null)",
    "(4 rows)",
    // \dt (Barista's own bookkeeping tables are listed too), then \d.
    "List of relations",
    "public | pets | table | postgres",
    "List of relations",
    "public | pets | table | postgres",
    // \d pets: columns, then the primary key from the catalog functions psql calls.
    "Table \"public.pets\"",
    "\"pets_pkey\" PRIMARY KEY, btree (id)",
];

const PETS_QUERY: &str =
    "SELECT id, name, coalesce(born::text, 'NULL'), coalesce(weight::text, 'NULL') FROM pets ORDER BY id";
const PETS_ROWS: &str = "1|Rexy|2020-01-02|12.50\n3|Kit|2021-03-04|3.25\n7|Bo|NULL|NULL\n8|Cy|NULL|NULL\n";

/// Checks that `expected` lines appear in `out` in order; runs of white space count as one space
/// (psql pads table columns to their widest value).
fn expect_lines(what: &str, out: &str, expected: &[&str]) {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut lines = out.lines().map(norm);
    for want in expected {
        let want = norm(want);
        assert!(
            lines.any(|line| line.starts_with(&want)),
            "{what}: expected a line starting with {want:?} (after the ones before it); the output:\n{out}"
        );
    }
}

fn psql_session(cluster: &Cluster) {
    let script = cluster.dir.join("session.sql");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let mut cmd = psql(cluster, 0, PASSWORD);
    // Errors are part of the session; psql reports them on stderr and goes on.
    cmd.arg("-f").arg(&script);
    let out = run("psql", &mut cmd, Duration::from_secs(60));
    // `psql:FILE:LINE: ERROR: ...` to `ERROR: ...`.
    let cleaned: String = out
        .stdout
        .lines()
        .map(|l| l.split_once(": ERROR").map_or(l.to_owned(), |(_, e)| format!("ERROR{e}")) + "\n")
        .collect();
    expect_lines("psql", &cleaned, EXPECTED);
    expect_everywhere(cluster, &[0, 1, 2], PETS_QUERY, PETS_ROWS);

    // A wrong password: refused at startup, as PostgreSQL does.
    let out = psql(cluster, 1, "wrong").args(["-c", "SELECT 1"]).output().expect("run psql");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("password authentication failed for user \"postgres\""), "{text}");
}

/// A row of `scores`.
type Score = (i64, Option<String>, Option<f64>, Option<bool>, Option<i32>);

fn tokio_postgres_session(cluster: &Cluster) {
    let (host, port) = pg_addr(cluster, 1);
    let config = format!("host={host} port={port} user=postgres password='{PASSWORD}' dbname=postgres");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute("CREATE TABLE scores (id int8 PRIMARY KEY, name text, score float8, ok bool, n int4)")
            .await
            .expect("create");
        let insert = client.prepare("INSERT INTO scores VALUES ($1, $2, $3, $4, $5)").await.expect("prepare");
        assert_eq!(insert.params().len(), 5);
        let n = client.execute(&insert, &[&1i64, &"one", &1.5f64, &true, &7i32]).await.expect("insert 1");
        assert_eq!(n, 1);
        let none: Option<&str> = None;
        client.execute(&insert, &[&2i64, &none, &-0.25f64, &false, &None::<i32>]).await.expect("insert 2");

        // A committed and a rolled-back transaction.
        let mut client = client;
        let tx = client.transaction().await.expect("begin");
        tx.execute("INSERT INTO scores (id, name) VALUES ($1, $2)", &[&3i64, &"three"]).await.expect("insert 3");
        tx.commit().await.expect("commit");
        let tx = client.transaction().await.expect("begin");
        tx.execute("INSERT INTO scores (id, name) VALUES ($1, $2)", &[&4i64, &"four"]).await.expect("insert 4");
        tx.rollback().await.expect("rollback");

        // A statement error, inside a transaction too, with its SQLSTATE.
        let err = client.execute(&insert, &[&1i64, &"dup", &0f64, &true, &0i32]).await.expect_err("duplicate");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION), "{err}");
        let tx = client.transaction().await.expect("begin");
        let err = tx.execute("INSERT INTO scores (id) VALUES ($1)", &[&1i64]).await.expect_err("duplicate");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION), "{err}");
        tx.rollback().await.expect("rollback after the error");

        // Binary results of each type, NULLs as None.
        let rows = client
            .query("SELECT id, name, score, ok, n FROM scores WHERE id >= $1 ORDER BY id", &[&1i64])
            .await
            .expect("select");
        let got: Vec<Score> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
        assert_eq!(
            got,
            vec![
                (1, Some("one".into()), Some(1.5), Some(true), Some(7)),
                (2, None, Some(-0.25), Some(false), None),
                (3, Some("three".into()), None, None, None),
            ]
        );
        let row = client.query_one("SELECT count(*), $1::text || '!' FROM scores", &[&"hi"]).await.expect("count");
        assert_eq!((row.get::<_, i64>(0), row.get::<_, String>(1)), (3, "hi!".to_owned()));
        // A refusal by the determinism policy, with its SQLSTATE.
        let err = client.batch_execute("LISTEN scores_changed").await.expect_err("refused");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED), "{err}");
    });
    expect_everywhere(
        cluster,
        &[0, 1, 2],
        "SELECT id, coalesce(name, 'NULL'), coalesce(score::text, 'NULL') FROM scores ORDER BY id",
        "1|one|1.5\n2|NULL|-0.25\n3|three|NULL\n",
    );
}

const PSYCOPG_SCRIPT: &str = r#"
import sys
import psycopg

with psycopg.connect(sys.argv[1]) as conn:
    # psycopg opens a transaction itself: the table and its first rows commit together.
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE birds (id int PRIMARY KEY, name text, note text)")
        cur.execute("INSERT INTO birds VALUES (%s, %s, %s)", (1, "robin", None))
        cur.executemany("INSERT INTO birds VALUES (%s, %s, %s)", [(2, "wren", "small"), (3, "owl's", None)])
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO birds VALUES (%s, %s, %s)", (4, "dodo", None))
    conn.rollback()
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO birds VALUES (%s, %s, %s)", (1, "again", None))
    except psycopg.errors.UniqueViolation as e:
        print("error", e.sqlstate)
    conn.rollback()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT id, name, note FROM birds WHERE id <= %s ORDER BY id", (10,))
        for row in cur.fetchall():
            print(row)
        cur.execute("UPDATE birds SET note = %s WHERE id = %s", ("wise", 3))
        print("updated", cur.rowcount)
"#;

fn psycopg_session(cluster: &Cluster) {
    let (host, port) = pg_addr(cluster, 2);
    let dsn = format!("host={host} port={port} user=postgres password='{PASSWORD}' dbname=postgres");
    let script = cluster.dir.join("birds.py");
    std::fs::write(&script, PSYCOPG_SCRIPT).expect("write the script");
    let mut cmd = Command::new(std::env::var_os("BARISTA_PYTHON").unwrap_or_else(|| "/usr/bin/python3".into()));
    cmd.arg("-u").arg(&script).arg(dsn).env_remove("PYTHONPATH");
    let out = run("psycopg", &mut cmd, Duration::from_secs(60));
    let expected = "error 23505\n(1, 'robin', None)\n(2, 'wren', 'small')\n(3, \"owl's\", None)\nupdated 1\n";
    assert_eq!(out.stdout, expected, "psycopg's output; stderr:\n{}", out.stderr);
    expect_everywhere(
        cluster,
        &[0, 1, 2],
        "SELECT id, name, coalesce(note, 'NULL') FROM birds ORDER BY id",
        "1|robin|NULL\n2|wren|small\n3|owl's|wise\n",
    );
}

#[test]
fn postgresql_clients_work_through_barista_with_scram() {
    let cluster = Cluster::start("pg-clients", |_| {
        vec![("BARISTA_PG_AUTH".into(), "scram-sha-256".into()), ("BARISTA_PG_PASSWORD".into(), PASSWORD.into())]
    });
    psql_session(&cluster);
    tokio_postgres_session(&cluster);
    psycopg_session(&cluster);
}
