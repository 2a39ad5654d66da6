//! The PostgreSQL backend against a real PostgreSQL: the `SqlBackend` conformance suite,
//! PostgreSQL-specific behaviour (types, parameters, text output, faults), and the executor on it.
//!
//! The tests start their own servers with `scripts/pg.sh` on free ports, in temporary
//! directories. One server is shared by the tests of this binary (starting one takes about a
//! second); each test creates its own database in it, so tests do not see each other. A test that
//! stops its server has a cluster of its own. PostgreSQL must be installed (`scripts/setup.sh`):
//! without it every test fails and says so.
//!
//! Every cluster is stopped (through `pg.sh stop`, which uses the server's PID file) and its
//! directory removed by a guard when it drops, also when a test fails. The shared cluster lives in
//! a static, which Rust never drops: a watcher process, started with each cluster in a process
//! group of its own, stops it and removes its directory once this test process has exited, even
//! when it was killed.

#![cfg(not(madsim))]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use barista_core::Value;
use barista_runtime::command::{ClientCommand, ConnId, Op, Statement};
use barista_runtime::executor::{Executor, Outcome};
use barista_runtime::postgres::{PgBackend, PgSession};
use barista_runtime::sql::{BackendFault, ResultSet, SqlBackend, SqlError, SqlSession, SqlValue};
use barista_runtime::testkit::{self, sql_conformance};

// ---------------------------------------------------------------------------------------------
// Clusters

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the runtime crate is inside the repository").to_owned()
}

fn script(name: &str) -> PathBuf {
    repo().join("scripts").join(name)
}

/// Runs a script; its stderr on failure.
fn run_script(name: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(script(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scripts/{name}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("scripts/{name} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The PostgreSQL binaries' directory, as `scripts/pg.sh` finds it.
fn pg_bindir() -> Result<String, String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1/scripts/lib.sh" && pg_bindir"#)
        .arg("pg_bindir")
        .arg(repo())
        .output()
        .map_err(|e| format!("cannot run bash to look for PostgreSQL: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Fails the test, clearly, when the PostgreSQL server binaries are missing.
fn require_postgres() {
    if let Err(e) = pg_bindir() {
        panic!("PostgreSQL is not installed: {e}\nRun scripts/setup.sh (as root) first; CI runs it before the tests.");
    }
}

fn free_port() -> u16 {
    let out = run_script("free-port.sh", &[]).unwrap_or_else(|e| panic!("{e}"));
    out.trim().parse().unwrap_or_else(|e| panic!("free-port.sh printed {out:?}: {e}"))
}

/// A shell in its own process group (so a Ctrl-C of the test run does not take it along)
/// that waits for this process to end, then stops the server and removes the directory.
fn spawn_watcher(base: &Path, data: &Path) -> Child {
    let watch = r#"source "$1/scripts/lib.sh"
        while pid_alive "$2"; do sleep 0.5; done
        "$1/scripts/pg.sh" stop "$3" >/dev/null 2>&1
        rm -rf "$4""#;
    Command::new("bash")
        .arg("-c")
        .arg(watch)
        .arg("pg-test-watcher")
        .arg(repo())
        .arg(std::process::id().to_string())
        .arg(data)
        .arg(base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting the cleanup watcher: {e}"))
}

/// A PostgreSQL cluster in a temporary directory: stopped when dropped, removed when this process
/// exits.
struct Cluster {
    data: PathBuf,
    port: u16,
    /// Stops the server (if this process ends without dropping the cluster) and removes the
    /// directory once this process has exited.
    _watcher: Child,
}

impl Cluster {
    fn start(label: &str) -> Cluster {
        require_postgres();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("barista-pg-test-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
        // The server runs as user postgres (when we are root), which must enter this directory.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", base.display()));
        let data = base.join("data");
        let watcher = spawn_watcher(&base, &data);
        let mut cluster = Cluster { data, port: 0, _watcher: watcher };
        // A port is free when chosen, not reserved: another process may take it first.
        for attempt in 1..=3 {
            cluster.port = free_port();
            match cluster.pg_start() {
                Ok(()) => {
                    cluster.skip_fsync();
                    return cluster;
                }
                Err(e) if attempt < 3 && e.contains("already in use") => continue,
                Err(e) => panic!("starting PostgreSQL: {e}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Test data need not survive a power failure; fsync would make every commit and every
    /// `CREATE DATABASE` wait for the disk.
    fn skip_fsync(&self) {
        self.alter_system("fsync = off");
    }

    /// `ALTER SYSTEM SET {setting}`, in force at once.
    fn alter_system(&self, setting: &str) {
        let conninfo = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port);
        let out = Command::new(Path::new(&self.bindir()).join("psql"))
            .args([
                "-qAtX",
                "-d",
                &conninfo,
                "-c",
                &format!("ALTER SYSTEM SET {setting}"),
                "-c",
                "SELECT pg_reload_conf()",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running psql: {e}"));
        assert!(out.status.success(), "ALTER SYSTEM SET {setting}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn bindir(&self) -> String {
        pg_bindir().unwrap_or_else(|e| panic!("{e}"))
    }

    fn data(&self) -> &str {
        self.data.to_str().expect("a UTF-8 temporary directory")
    }

    fn pg_start(&self) -> Result<(), String> {
        run_script("pg.sh", &["start", self.data(), &self.port.to_string()]).map(|_| ())
    }

    /// Stops the server (fast shutdown: sessions are terminated, open transactions roll back).
    fn stop(&self) {
        run_script("pg.sh", &["stop", self.data()]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops the server as a crash would: immediate shutdown, without writing out the WAL
    /// buffers, so asynchronous commits not yet written are lost.
    fn crash(&self) {
        run_script("pg.sh", &["crash", self.data()]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts it again on the same port.
    fn restart(&self) {
        self.pg_start().unwrap_or_else(|e| panic!("{e}"));
    }

    fn backend(&self, database: &str) -> PgBackend {
        PgBackend::new(&format!("host=127.0.0.1 port={} user=postgres dbname={database}", self.port))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A new, empty database (dropped first if a failed run left it).
    async fn database(&self, name: &str) -> PgBackend {
        let mut admin = connect(&self.backend("postgres")).await;
        ok(&mut admin, &format!("DROP DATABASE IF EXISTS {name}"), &[]).await;
        ok(&mut admin, &format!("CREATE DATABASE {name}"), &[]).await;
        self.backend(name)
    }
}

impl Drop for Cluster {
    /// Stops the server now. The watcher removes the directory when this process exits: removing
    /// a cluster's thousand files takes seconds on a slow disk, and nothing waits for it.
    fn drop(&mut self) {
        if let Err(e) = run_script("pg.sh", &["stop", self.data()]) {
            eprintln!("{e}");
        }
    }
}

/// The server the tests share, started by the first test that needs it.
fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start("shared"))
}

/// A fresh database on the shared server.
async fn database(name: &str) -> PgBackend {
    shared().database(name).await
}

// ---------------------------------------------------------------------------------------------
// Statements

async fn connect(backend: &PgBackend) -> PgSession {
    backend.connect().await.unwrap_or_else(|f| panic!("connect: {f}"))
}

async fn exec(s: &mut PgSession, sql: &str, params: &[SqlValue]) -> Result<ResultSet, SqlError> {
    s.execute(sql, params).await.unwrap_or_else(|f| panic!("`{sql}`: unexpected fault: {f}"))
}

async fn ok(s: &mut PgSession, sql: &str, params: &[SqlValue]) -> ResultSet {
    exec(s, sql, params).await.unwrap_or_else(|e| panic!("`{sql}` failed: {e}"))
}

async fn fails(s: &mut PgSession, sql: &str, params: &[SqlValue], sqlstate: &str) -> SqlError {
    match exec(s, sql, params).await {
        Ok(rs) => panic!("`{sql}` should fail with {sqlstate}, returned {rs:?}"),
        Err(e) => {
            assert_eq!(e.sqlstate, sqlstate, "`{sql}`: {e}");
            e
        }
    }
}

async fn fault(s: &mut PgSession, sql: &str) -> BackendFault {
    match s.execute(sql, &[]).await {
        Err(fault) => fault,
        Ok(result) => panic!("`{sql}` should be a fault, returned {result:?}"),
    }
}

/// The only row.
async fn row(s: &mut PgSession, sql: &str, params: &[SqlValue]) -> Vec<SqlValue> {
    let rs = ok(s, sql, params).await;
    assert_eq!(rs.rows.len(), 1, "`{sql}`: {rs:?}");
    rs.rows.into_iter().next().expect("one row")
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

fn type_names(rs: &ResultSet) -> Vec<&str> {
    rs.columns.iter().map(|c| c.type_name.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The contract

#[tokio::test]
async fn passes_the_conformance_suite() {
    sql_conformance::run_all(&database("conformance").await).await;
}

#[tokio::test]
async fn null_is_not_the_empty_string_on_either_path() {
    let backend = database("nulls").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TABLE t (id int4 PRIMARY KEY, s text, b bytea, at timestamptz)", &[]).await;
    let insert = "INSERT INTO t VALUES ($1, $2, $3, $4)";
    ok(&mut s, insert, &[SqlValue::Int(1), SqlValue::Null, SqlValue::Null, SqlValue::Null]).await;
    ok(&mut s, insert, &[SqlValue::Int(2), text(""), SqlValue::Bytes(Vec::new()), SqlValue::Null]).await;
    let expected = vec![
        vec![SqlValue::Int(1), SqlValue::Null, SqlValue::Null],
        vec![SqlValue::Int(2), text(""), SqlValue::Bytes(Vec::new())],
    ];
    // Binary results.
    assert_eq!(ok(&mut s, "SELECT id, s, b FROM t ORDER BY id", &[]).await.rows, expected);
    // Text results (a timestamptz column takes the simple query path), without and with parameters.
    let rows = ok(&mut s, "SELECT id, s, b, at FROM t ORDER BY id", &[]).await.rows;
    let without_at: Vec<Vec<SqlValue>> = rows.iter().map(|r| r[..3].to_vec()).collect();
    assert_eq!(without_at, expected);
    assert!(rows.iter().all(|r| r[3] == SqlValue::Null));
    let rows = ok(&mut s, "SELECT id, s, b, at FROM t WHERE id >= $1 ORDER BY id", &[SqlValue::Int(1)]).await.rows;
    assert_eq!(rows.iter().map(|r| r[..3].to_vec()).collect::<Vec<_>>(), expected);
    assert_eq!(
        row(&mut s, "SELECT $1::text IS NULL, $2::text = '', NULL::text, ''::text", &[SqlValue::Null, text("")]).await,
        [SqlValue::Bool(true), SqlValue::Bool(true), SqlValue::Null, text("")]
    );
}

#[tokio::test]
async fn parameters_take_the_type_postgresql_inferred() {
    let backend = database("params").await;
    let mut s = connect(&backend).await;
    ok(
        &mut s,
        "CREATE TABLE t (id int4 PRIMARY KEY, small int2, amount numeric(10,2), ratio real, at timestamptz, \
         u uuid, label text, flag bool, tags int4[])",
        &[],
    )
    .await;
    let insert = "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let params = [
        SqlValue::Int(7),
        SqlValue::Int(-3),
        SqlValue::Int(12),
        SqlValue::Float(0.5),
        text("2024-02-03 04:05:06.5+02"),
        text("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
        SqlValue::Int(42),
        SqlValue::Int(1),
        text("{1,2,3}"),
    ];
    assert_eq!(ok(&mut s, insert, &params).await.rows_affected, 1);
    let rs = ok(&mut s, "SELECT id, small, amount, ratio, at, u, label, flag, tags FROM t", &[]).await;
    assert_eq!(type_names(&rs), ["int4", "int2", "numeric", "float4", "timestamptz", "uuid", "text", "bool", "_int4"]);
    assert_eq!(
        rs.rows,
        [vec![
            SqlValue::Int(7),
            SqlValue::Int(-3),
            text("12.00"),
            SqlValue::Float(0.5),
            text("2024-02-03 02:05:06.5+00"),
            text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            text("42"),
            SqlValue::Bool(true),
            text("{1,2,3}"),
        ]]
    );
    // Comparisons with narrower columns, and parameters in functions that take int4.
    assert_eq!(
        row(&mut s, "SELECT id FROM t WHERE id = $1 AND small = $2", &[SqlValue::Int(7), SqlValue::Int(-3)]).await,
        [SqlValue::Int(7)]
    );
    assert_eq!(
        row(&mut s, "SELECT substr('abcdef', $1, $2)", &[SqlValue::Int(2), SqlValue::Int(3)]).await,
        [text("bcd")]
    );
    // Values that do not fit are the server's own errors.
    let too_big = [
        SqlValue::Int(8),
        SqlValue::Int(1 << 20),
        SqlValue::Null,
        SqlValue::Null,
        SqlValue::Null,
        SqlValue::Null,
        SqlValue::Null,
        SqlValue::Null,
        SqlValue::Null,
    ];
    fails(&mut s, insert, &too_big, "22003").await;
    fails(&mut s, "INSERT INTO t (id) VALUES ($1)", &[SqlValue::Int(i64::MAX)], "22003").await;
    fails(&mut s, "INSERT INTO t (id) VALUES ($1)", &[text("seven")], "22P02").await;
    fails(&mut s, "INSERT INTO t (id, label) VALUES (9, $1)", &[SqlValue::Bytes(vec![1])], "42804").await;
    // Bool and Float into text columns read as PostgreSQL writes them.
    ok(&mut s, "INSERT INTO t (id, label) VALUES (10, $1), (11, $2)", &[SqlValue::Bool(false), SqlValue::Float(1e-7)])
        .await;
    let labels = ok(&mut s, "SELECT label FROM t WHERE id IN (10, 11) ORDER BY id", &[]).await.rows;
    assert_eq!(labels, [vec![text("false")], vec![text("1e-07")]]);
}

#[tokio::test]
async fn other_types_come_back_as_postgresql_text() {
    let backend = database("texts").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TYPE mood AS ENUM ('sad', 'happy')", &[]).await;
    ok(&mut s, "CREATE DOMAIN positive AS int4 CHECK (VALUE > 0)", &[]).await;
    ok(
        &mut s,
        "CREATE TABLE t (id positive PRIMARY KEY, n numeric, at timestamptz, ts timestamp, d date, \
         i interval, a text[], j jsonb, js json, m mood, ip inet, c char(3), v varchar(5))",
        &[],
    )
    .await;
    ok(
        &mut s,
        "INSERT INTO t VALUES (1, 123.4500, '2024-01-02 03:04:05.678+00', '2024-01-02 03:04:05', '2024-01-02', \
         '1 day 02:03:04', ARRAY['a', 'b c', NULL], '{\"b\": [1, 2], \"a\": null}', '{\"b\":1,  \"a\":2}', 'happy', \
         '10.0.0.1/8', 'ab', 'xy')",
        &[],
    )
    .await;
    let columns = ["id", "n", "at", "ts", "d", "i", "a", "j", "js", "m", "ip", "c", "v"];
    let expected = [
        SqlValue::Int(1),
        text("123.4500"),
        text("2024-01-02 03:04:05.678+00"),
        text("2024-01-02 03:04:05"),
        text("2024-01-02"),
        text("1 day 02:03:04"),
        text("{a,\"b c\",NULL}"),
        text("{\"a\": null, \"b\": [1, 2]}"),
        text("{\"b\":1,  \"a\":2}"),
        text("happy"),
        text("10.0.0.1/8"),
        text("ab "),
        text("xy"),
    ];
    let select = format!("SELECT {} FROM t", columns.join(", "));
    let rs = ok(&mut s, &select, &[]).await;
    assert_eq!(rs.rows, [expected.to_vec()]);
    assert_eq!(
        type_names(&rs),
        [
            "int4",
            "numeric",
            "timestamptz",
            "timestamp",
            "date",
            "interval",
            "_text",
            "jsonb",
            "json",
            "mood",
            "inet",
            "bpchar",
            "varchar"
        ]
    );
    assert_eq!(rs.rows_affected, 1);
    // The same through the parameterised text path.
    let rs = ok(&mut s, &format!("{select} WHERE id = $1 AND m = $2"), &[SqlValue::Int(1), text("happy")]).await;
    assert_eq!(rs.rows, [expected.to_vec()]);
    // Every value equals the server's own `::text` of it, row types and arrays of them included.
    let pairs = "SELECT (1, 'x y', NULL::int)::record, ((1, 'x y', NULL::int)::record)::text, \
                 ARRAY[now()::date], (ARRAY[now()::date])::text, '1.5'::money::numeric, '1.5'::money::numeric::text, \
                 tsrange('2024-01-01', '2024-02-01'), tsrange('2024-01-01', '2024-02-01')::text";
    let values = row(&mut s, pairs, &[]).await;
    for pair in values.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    // numeric decoded from binary equals numeric_out for awkward values.
    let numerics = "SELECT x, x::text FROM (VALUES (0::numeric), ('-0.000'), ('1e-20'), ('0.00012'), ('-123456789.987654321'), \
                    ('NaN'), ('Infinity'), ('-Infinity'), (1e100), (10000), (9999.9999), ('0.1'), (round(2::numeric / 3, 30)), \
                    (1.00000000000000000001)) v(x) \
                    UNION ALL SELECT round((i * 1.37 ^ i)::numeric, i % 13), round((i * 1.37 ^ i)::numeric, i % 13)::text \
                    FROM generate_series(-40, 120) i";
    let rs = ok(&mut s, numerics, &[]).await;
    assert_eq!(type_names(&rs), ["numeric", "text"]);
    assert!(rs.rows.len() > 150);
    for r in &rs.rows {
        assert_eq!(r[0], r[1]);
    }
}

#[tokio::test]
async fn floats_are_exact_on_both_paths() {
    let backend = database("floats").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TABLE t (id int4 PRIMARY KEY, f8 float8, f4 float4)", &[]).await;
    let values = [0.1, -0.0, 1e-300, 1.7976931348623157e308, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.0 / 3.0];
    for (i, f) in values.iter().enumerate() {
        let params = [SqlValue::Int(i as i64), SqlValue::Float(*f), SqlValue::Float(f64::from(*f as f32))];
        ok(&mut s, "INSERT INTO t VALUES ($1, $2, $3)", &params).await;
    }
    let binary = ok(&mut s, "SELECT f8, f4 FROM t ORDER BY id", &[]).await.rows;
    let text_path = ok(&mut s, "SELECT f8, f4, DATE '2024-01-01' FROM t ORDER BY id", &[]).await.rows;
    for (i, f) in values.iter().enumerate() {
        let same = |v: &SqlValue, expected: f64| match v {
            SqlValue::Float(x) => x.to_bits() == expected.to_bits() || (x.is_nan() && expected.is_nan()),
            _ => false,
        };
        assert!(same(&binary[i][0], *f), "float8 {f:e}: {:?}", binary[i][0]);
        assert!(same(&text_path[i][0], *f), "float8 via text {f:e}: {:?}", text_path[i][0]);
        let f4 = f64::from(*f as f32);
        assert!(same(&binary[i][1], f4), "float4 {f4:e}: {:?}", binary[i][1]);
        assert!(same(&text_path[i][1], f4), "float4 via text {f4:e}: {:?}", text_path[i][1]);
        // A float written to text reads as PostgreSQL's own text of it.
        let pair = row(
            &mut s,
            "SELECT $1::text, f8::text FROM t WHERE id = $2",
            &[SqlValue::Float(*f), SqlValue::Int(i as i64)],
        )
        .await;
        assert_eq!(pair[0], pair[1], "{f:e}");
    }
}

#[tokio::test]
async fn parameters_survive_the_literal_path() {
    let backend = database("literals").await;
    let mut s = connect(&backend).await;
    // The date column sends these through PREPARE / EXECUTE with the parameters as literals.
    let select = "SELECT $1::text, $2::bytea, $3::int8, $4::float8, $5::bool, DATE '2024-01-01'";
    for tricky in
        ["it's", "back\\slash", "$1 $$ dollar $q$", "'; DROP TABLE x; --", "new\nline", "ünïcødé ✓", "\\x00", ""]
    {
        let params = [
            text(tricky),
            SqlValue::Bytes(vec![0, b'\'', b'\\', 255]),
            SqlValue::Int(i64::MIN),
            SqlValue::Float(0.1),
            SqlValue::Bool(true),
        ];
        let mut expected = params.to_vec();
        expected.push(text("2024-01-01"));
        assert_eq!(row(&mut s, select, &params).await, expected, "{tricky:?}");
    }
    // A statement ending in a comment, or in a semicolon.
    assert_eq!(
        row(&mut s, "SELECT $1::int4, DATE '2024-01-01' -- trailing", &[SqlValue::Int(1)]).await[0],
        SqlValue::Int(1)
    );
    assert_eq!(row(&mut s, "SELECT $1::int4, DATE '2024-01-01';", &[SqlValue::Int(2)]).await[0], SqlValue::Int(2));
    // An EXECUTE that fails leaves its prepared statement behind; the next one cleans up.
    ok(&mut s, "CREATE TABLE t (id int4 PRIMARY KEY, d date)", &[]).await;
    let insert = "INSERT INTO t VALUES ($1, DATE '2024-01-01') RETURNING id, d";
    assert_eq!(row(&mut s, insert, &[SqlValue::Int(1)]).await, [SqlValue::Int(1), text("2024-01-01")]);
    fails(&mut s, insert, &[SqlValue::Int(1)], "23505").await;
    assert_eq!(row(&mut s, insert, &[SqlValue::Int(2)]).await, [SqlValue::Int(2), text("2024-01-01")]);
    ok(&mut s, "BEGIN", &[]).await;
    fails(&mut s, insert, &[SqlValue::Int(2)], "23505").await;
    fails(&mut s, insert, &[SqlValue::Int(3)], "25P02").await;
    ok(&mut s, "ROLLBACK", &[]).await;
    assert_eq!(row(&mut s, insert, &[SqlValue::Int(3)]).await, [SqlValue::Int(3), text("2024-01-01")]);
    assert_eq!(ok(&mut s, "SELECT id FROM t ORDER BY id", &[]).await.rows.len(), 3);
    // rows_affected on the text path: rows returned or changed.
    let rs = ok(&mut s, "UPDATE t SET d = d + 1 WHERE id > $1 RETURNING d", &[SqlValue::Int(1)]).await;
    assert_eq!(rs.rows_affected, 2);
}

#[tokio::test]
async fn nul_characters_and_copy_are_statement_errors() {
    let backend = database("nuls").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TABLE t (id int4 PRIMARY KEY, s text)", &[]).await;
    fails(&mut s, "SELECT 'a\0b'", &[], "22021").await;
    fails(&mut s, "INSERT INTO t VALUES (1, $1)", &[text("a\0b")], "22021").await;
    fails(&mut s, "SELECT $1::text, DATE '2024-01-01'", &[text("a\0b")], "22021").await;
    fails(&mut s, "COPY t TO STDOUT", &[], "0A000").await;
    fails(&mut s, "copy t FROM STDIN", &[], "0A000").await;
    assert_eq!(ok(&mut s, "SELECT count(*) FROM t", &[]).await.rows, [vec![SqlValue::Int(0)]]);
}

#[tokio::test]
async fn a_deferred_constraint_fails_at_commit() {
    let backend = database("deferred").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TABLE parent (id int4 PRIMARY KEY)", &[]).await;
    ok(
        &mut s,
        "CREATE TABLE child (id int4 PRIMARY KEY, parent int4 REFERENCES parent DEFERRABLE INITIALLY DEFERRED)",
        &[],
    )
    .await;
    // Once through the simple-protocol path of COMMIT, once through the prepared path.
    for commit in ["COMMIT", "commit;"] {
        ok(&mut s, "BEGIN", &[]).await;
        ok(&mut s, "INSERT INTO parent VALUES (1)", &[]).await;
        ok(&mut s, "INSERT INTO child VALUES (1, $1)", &[SqlValue::Int(99)]).await;
        let e = fails(&mut s, commit, &[], "23503").await;
        assert!(e.message.contains("DETAIL: Key (parent)=(99)"), "{e}");
        assert_eq!(row(&mut s, "SELECT count(*) FROM parent", &[]).await, [SqlValue::Int(0)]);
    }
    ok(&mut s, "INSERT INTO parent VALUES (2)", &[]).await;
    assert_eq!(row(&mut s, "SELECT count(*) FROM parent", &[]).await, [SqlValue::Int(1)]);
}

/// `read_in_txn` on `s`, which must not fault.
async fn read(s: &mut PgSession, sql: &str, params: &[SqlValue]) -> Result<ResultSet, SqlError> {
    s.read_in_txn(sql, params).await.unwrap_or_else(|f| panic!("read `{sql}`: unexpected fault: {f}"))
}

#[tokio::test]
async fn a_read_in_a_transaction_sees_it_and_changes_nothing() {
    let backend = database("read_in_txn").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TABLE r (id int4 PRIMARY KEY, at timestamptz)", &[]).await;
    ok(&mut s, "CREATE SEQUENCE r_seq", &[]).await;
    ok(
        &mut s,
        "CREATE FUNCTION r_add(int4) RETURNS int4 LANGUAGE sql AS 'INSERT INTO r VALUES ($1) RETURNING id'",
        &[],
    )
    .await;
    for isolation in ["READ COMMITTED", "REPEATABLE READ"] {
        ok(&mut s, &format!("BEGIN ISOLATION LEVEL {isolation}"), &[]).await;
        ok(&mut s, "INSERT INTO r VALUES (1, '2024-01-02 03:04:05+00')", &[]).await;
        // A read sees the transaction's own write, on both result paths (binary; text for timestamptz).
        let rs = read(&mut s, "SELECT count(*) FROM r WHERE id = $1", &[SqlValue::Int(1)]).await;
        assert_eq!(rs.map(|rs| rs.rows), Ok(vec![vec![SqlValue::Int(1)]]), "{isolation}");
        let rs = read(&mut s, "SELECT at FROM r", &[]).await;
        assert_eq!(rs.map(|rs| rs.rows), Ok(vec![vec![text("2024-01-02 03:04:05+00")]]), "{isolation}");
        // Writes are refused, not undone: the sequence is never drawn, the function inserts nothing.
        for write in [
            "SELECT nextval('r_seq')",
            "SELECT id FROM r FOR UPDATE",
            "SELECT r_add(2)",
            "WITH w AS (INSERT INTO r VALUES (3) RETURNING id) SELECT id FROM w",
            "INSERT INTO r VALUES (4)",
        ] {
            let e = read(&mut s, write, &[]).await.expect_err(write);
            assert_eq!(e.sqlstate, "25006", "{write}: {e}");
        }
        // A failing read leaves the transaction healthy, and read-write.
        assert_eq!(read(&mut s, "SELECT 1 / 0", &[]).await.map_err(|e| e.sqlstate), Err("22012".to_string()));
        assert!(read(&mut s, "SELECT * FROM missing", &[]).await.is_err());
        ok(&mut s, "INSERT INTO r VALUES (5)", &[]).await;
        assert_eq!(row(&mut s, "SHOW transaction_read_only", &[]).await, [text("off")]);
        ok(&mut s, "COMMIT", &[]).await;
        assert_eq!(ids_of(&mut s, "SELECT id FROM r ORDER BY id").await, [1, 5], "{isolation}");
        ok(&mut s, "DELETE FROM r", &[]).await;
    }
    assert_eq!(row(&mut s, "SELECT nextval('r_seq')", &[]).await, [SqlValue::Int(1)], "never drawn before");
}

async fn ids_of(s: &mut PgSession, sql: &str) -> Vec<i64> {
    let rows = ok(s, sql, &[]).await.rows;
    rows.iter()
        .map(|row| match row.as_slice() {
            [SqlValue::Int(id)] => *id,
            other => panic!("not an id: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn own_writes_are_prepared_once_per_connection_and_follow_the_schema() {
    let backend = database("own_writes").await;
    let mut s = connect(&backend).await;
    ok(&mut s, "CREATE TABLE own (k int8 PRIMARY KEY, v bytea NOT NULL)", &[]).await;
    let upsert = "INSERT INTO own (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";
    let write = async |s: &mut PgSession, v: u8| {
        s.write_own(upsert, &[SqlValue::Int(1), SqlValue::Bytes(vec![v])])
            .await
            .unwrap_or_else(|f| panic!("fault: {f}"))
            .unwrap_or_else(|e| panic!("failed: {e}"));
    };
    let value = async |s: &mut PgSession| row(s, "SELECT v FROM own WHERE k = 1", &[]).await;
    for v in 0..3 {
        write(&mut s, v).await;
    }
    assert_eq!(value(&mut s).await, [SqlValue::Bytes(vec![2])]);
    let prepared = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
    assert_eq!(row(&mut s, prepared, &[text(upsert)]).await, [SqlValue::Int(1)], "one statement for three writes");
    // The server re-plans the kept statement when its table changes, even for a new table of
    // the same name.
    ok(&mut s, "ALTER TABLE own ADD COLUMN note text", &[]).await;
    write(&mut s, 3).await;
    assert_eq!(value(&mut s).await, [SqlValue::Bytes(vec![3])]);
    ok(&mut s, "DROP TABLE own", &[]).await;
    ok(&mut s, "CREATE TABLE own (v bytea NOT NULL, k int8 PRIMARY KEY)", &[]).await;
    write(&mut s, 4).await;
    assert_eq!(value(&mut s).await, [SqlValue::Bytes(vec![4])]);
}

#[tokio::test]
async fn a_dropped_session_closes_its_connection_and_rolls_back() {
    let backend = database("dropped").await;
    let mut a = connect(&backend).await;
    let mut b = connect(&backend).await;
    ok(&mut a, "CREATE TABLE t (id int4 PRIMARY KEY, v text)", &[]).await;
    ok(&mut a, "INSERT INTO t VALUES (1, 'committed')", &[]).await;
    let pid = row(&mut a, "SELECT pg_backend_pid()", &[]).await.remove(0);
    ok(&mut a, "BEGIN", &[]).await;
    ok(&mut a, "UPDATE t SET v = 'uncommitted' WHERE id = 1", &[]).await;
    ok(&mut a, "INSERT INTO t VALUES (2, 'uncommitted')", &[]).await;
    drop(a);
    let gone = Instant::now();
    loop {
        let alive =
            row(&mut b, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", std::slice::from_ref(&pid)).await;
        if alive == [SqlValue::Int(0)] {
            break;
        }
        assert!(gone.elapsed() < Duration::from_secs(10), "the dropped session's backend is still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its transaction rolled back and its row lock is free.
    assert_eq!(ok(&mut b, "SELECT v FROM t ORDER BY id", &[]).await.rows, [vec![text("committed")]]);
    ok(&mut b, "UPDATE t SET v = 'b' WHERE id = 1", &[]).await;
}

#[tokio::test]
async fn output_settings_are_pinned_and_can_be_overridden() {
    let backend = database("settings").await;
    let mut s = connect(&backend).await;
    for (name, value) in
        [("TimeZone", "UTC"), ("DateStyle", "ISO, MDY"), ("extra_float_digits", "1"), ("bytea_output", "hex")]
    {
        assert_eq!(row(&mut s, &format!("SHOW {name}"), &[]).await, [text(value)], "{name}");
    }
    assert_eq!(row(&mut s, "SELECT '01/02/2024'::date", &[]).await, [text("2024-01-02")]);
    let port = shared().port;
    let berlin = PgBackend::new(&format!(
        "host=127.0.0.1 port={port} user=postgres dbname=settings options='-c TimeZone=Europe/Berlin'"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut s = connect(&berlin).await;
    assert_eq!(row(&mut s, "SHOW TimeZone", &[]).await, [text("Europe/Berlin")]);
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn a_stopped_server_is_a_fault_until_it_is_back() {
    let cluster = Cluster::start("stopped");
    let backend = cluster.backend("postgres");
    let mut a = connect(&backend).await;
    ok(&mut a, "CREATE TABLE t (id int4 PRIMARY KEY)", &[]).await;
    ok(&mut a, "INSERT INTO t VALUES (1)", &[]).await;
    ok(&mut a, "BEGIN", &[]).await;
    ok(&mut a, "INSERT INTO t VALUES (2)", &[]).await;
    cluster.stop();
    let first = fault(&mut a, "INSERT INTO t VALUES (3)").await;
    // Closed for good, even once the server is back.
    let again = fault(&mut a, "SELECT 1").await;
    assert!(again.0.contains("earlier fault"), "{again}");
    let refused = backend.connect().await.err().unwrap_or_else(|| panic!("connect to a stopped server succeeded"));
    assert!(refused.0.contains("connecting"), "{refused}");
    cluster.restart();
    let b = &mut connect(&backend).await;
    assert_eq!(ok(b, "SELECT id FROM t", &[]).await.rows, [vec![SqlValue::Int(1)]], "the open transaction rolled back");
    assert!(fault(&mut a, "SELECT 1").await.0.contains("earlier fault"));
    eprintln!("fault after the stop: {first}");
}

/// Sessions commit asynchronously (the executor waits for the disk once per flush, not per
/// statement), and a flush makes every earlier commit, on any session, survive a crash.
#[tokio::test]
async fn a_flush_keeps_every_earlier_commit_through_a_crash() {
    let cluster = Cluster::start("crash");
    // Only a flush writes the WAL out in time: the WAL writer would otherwise do it within
    // 200 ms, and the test could not tell a flush from none.
    cluster.alter_system("wal_writer_delay = '10s'");
    let backend = cluster.backend("postgres");
    let (mut a, mut b) = (connect(&backend).await, connect(&backend).await);
    assert_eq!(row(&mut a, "SHOW synchronous_commit", &[]).await, [text("off")]);
    ok(&mut a, "CREATE TABLE t (id int4 PRIMARY KEY)", &[]).await;
    ok(&mut a, "INSERT INTO t VALUES (1)", &[]).await;
    ok(&mut b, "INSERT INTO t VALUES (2)", &[]).await;
    b.flush().await.unwrap_or_else(|e| panic!("{e}"));
    ok(&mut a, "INSERT INTO t VALUES (3)", &[]).await;
    cluster.crash();
    cluster.restart();
    let mut c = connect(&backend).await;
    let ids: Vec<_> = ok(&mut c, "SELECT id FROM t ORDER BY id", &[]).await.rows.concat();
    // 3 was committed after the flush: the crash may take it back, and nothing else.
    assert!(ids.starts_with(&[SqlValue::Int(1), SqlValue::Int(2)]), "flushed commits lost in the crash: {ids:?}");
    assert!(ids.len() <= 3, "{ids:?}");
    // A flush on a session whose server went away is a fault, and the session is closed.
    let gone = a.flush().await.err().unwrap_or_else(|| panic!("a flush after the crash succeeded"));
    assert!(fault(&mut a, "SELECT 1").await.0.contains("earlier fault"), "{gone}");
}

#[tokio::test]
async fn terminations_cancels_and_lock_conflicts_are_faults() {
    let backend = database("faults").await;
    let mut a = connect(&backend).await;
    let mut b = connect(&backend).await;
    ok(&mut a, "CREATE TABLE t (id int4 PRIMARY KEY)", &[]).await;
    ok(&mut a, "INSERT INTO t VALUES (1)", &[]).await;

    // 55P03: a lock conflict depends on timing, not on the log.
    ok(&mut a, "BEGIN", &[]).await;
    ok(&mut a, "SELECT id FROM t FOR UPDATE", &[]).await;
    let f = fault(&mut b, "SELECT id FROM t FOR UPDATE NOWAIT").await;
    assert!(f.0.contains("55P03"), "{f}");
    ok(&mut a, "ROLLBACK", &[]).await;

    // 57014: a statement timeout.
    let mut c = connect(&backend).await;
    ok(&mut c, "BEGIN", &[]).await;
    ok(&mut c, "SET LOCAL statement_timeout = '50ms'", &[]).await;
    let f = fault(&mut c, "SELECT pg_sleep(5)").await;
    assert!(f.0.contains("57014"), "{f}");

    // 57P01: the backend was terminated by an administrator.
    let mut d = connect(&backend).await;
    let pid = row(&mut d, "SELECT pg_backend_pid()", &[]).await.remove(0);
    assert_eq!(row(&mut a, "SELECT pg_terminate_backend($1)", &[pid]).await, [SqlValue::Bool(true)]);
    fault(&mut d, "SELECT 1").await;

    // A statement abandoned by its caller: its outcome is unknown, so the session is closed.
    let mut e = connect(&backend).await;
    let abandoned = tokio::time::timeout(Duration::from_millis(50), e.execute("SELECT pg_sleep(1)", &[])).await;
    assert!(abandoned.is_err(), "pg_sleep(1) finished within 50 ms: {abandoned:?}");
    let f = fault(&mut e, "SELECT 1").await;
    assert!(f.0.contains("abandoned"), "{f}");

    // A statement error is not a fault, and the session goes on.
    fails(&mut a, "SELECT 1 / 0", &[], "22012").await;
    ok(&mut a, "SELECT 1", &[]).await;
}

// ---------------------------------------------------------------------------------------------
// The executor on PostgreSQL

const TIMESTAMP_US: i64 = 1_700_000_000_000_000;

fn cmd(conn: u64, request_seq: u64, op: Op) -> ClientCommand {
    ClientCommand { conn: ConnId(conn), request_seq, timestamp_us: TIMESTAMP_US + request_seq as i64, op }
}

fn sql(sql: &str, params: Vec<SqlValue>) -> Op {
    Op::Execute(Statement { sql: sql.into(), params })
}

async fn ap(s: &mut PgSession) -> Vec<SqlValue> {
    row(s, "SELECT lastseqnum, commands_done FROM sqlpaxoslog", &[]).await
}

#[tokio::test]
async fn the_executor_applies_slots_on_postgresql() {
    let backend = database("executor").await;
    let mut executor = Executor::open(backend.clone()).await.unwrap_or_else(|f| panic!("open: {f}"));
    let mut look = connect(&backend).await;
    assert_eq!(ap(&mut look).await, [SqlValue::Int(0), SqlValue::Int(0)], "bookkeeping created on first start");
    let slots = [
        testkit::slot([cmd(1, 1, Op::Open)]),
        testkit::slot([cmd(1, 2, sql("CREATE TABLE t (id int4 PRIMARY KEY, v text, at timestamptz)", vec![]))]),
        testkit::slot([
            cmd(1, 3, sql("INSERT INTO t VALUES ($1, $2, now())", vec![SqlValue::Int(1), text("one")])),
            cmd(1, 4, sql("INSERT INTO t VALUES ($1, $2, now())", vec![SqlValue::Int(1), text("again")])),
        ]),
        testkit::slot([cmd(1, 5, Op::Begin)]),
        testkit::slot([cmd(1, 6, sql("INSERT INTO t VALUES (2, 'two', now())", vec![]))]),
        testkit::slot([cmd(1, 7, Op::Commit)]),
        testkit::slot([cmd(1, 8, sql("SELECT id, v, at FROM t ORDER BY id", vec![]))]),
    ];
    let mut outcomes = Vec::new();
    for (i, value) in slots.iter().enumerate() {
        let slot = i as u64 + 1;
        let applied = executor.apply(slot, value).await.unwrap_or_else(|f| panic!("slot {slot}: {f}"));
        outcomes.extend(applied.into_iter().map(|a| a.outcome));
        assert_eq!(executor.executed(), slot);
        // AP is durable only outside the open transaction (slots 4 and 5 ride in it).
        assert_eq!(executor.applied(), if (4..=5).contains(&slot) { 3 } else { slot });
    }
    assert_eq!(outcomes[0], Outcome::Opened);
    assert_eq!(outcomes[2], Outcome::Rows(ResultSet { rows_affected: 1, ..ResultSet::default() }));
    assert!(matches!(&outcomes[3], Outcome::Error(e) if e.sqlstate == "23505"), "{:?}", outcomes[3]);
    assert_eq!(outcomes[5], Outcome::Rows(ResultSet { rows_affected: 1, ..ResultSet::default() }));
    match &outcomes[7] {
        Outcome::Rows(rs) => assert_eq!(
            rs.rows,
            // now() is each transaction's timestamp from the log, written in UTC.
            [
                vec![SqlValue::Int(1), text("one"), text("2023-11-14 22:13:20.000003+00")],
                vec![SqlValue::Int(2), text("two"), text("2023-11-14 22:13:20.000005+00")],
            ]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(ap(&mut look).await, [SqlValue::Int(7), SqlValue::Int(0)]);

    // A crash: the executor and its connections go; AP and the exactly-once records stay.
    drop(executor);
    let mut executor = Executor::open(backend.clone()).await.unwrap_or_else(|f| panic!("reopen: {f}"));
    assert_eq!(executor.applied(), 7);
    let retry = testkit::slot([cmd(1, 8, sql("SELECT id, v, at FROM t ORDER BY id", vec![]))]);
    let applied = executor.apply(8, &retry).await.unwrap_or_else(|f| panic!("slot 8: {f}"));
    assert_eq!(applied[0].outcome, outcomes[7], "a retry gets the recorded outcome");
    executor.apply(9, &Value::Noop).await.unwrap_or_else(|f| panic!("slot 9: {f}"));
    assert_eq!(ap(&mut look).await, [SqlValue::Int(9), SqlValue::Int(0)]);
}

#[tokio::test]
async fn vacuum_runs_outside_a_transaction_and_its_replay_is_harmless() {
    let backend = database("vacuum").await;
    let mut executor = Executor::open(backend.clone()).await.unwrap_or_else(|f| panic!("open: {f}"));
    let mut look = connect(&backend).await;
    let setup = [
        testkit::slot([cmd(1, 1, Op::Open), cmd(2, 1, Op::Open)]),
        testkit::slot([cmd(1, 2, sql("CREATE TABLE t (id int4 PRIMARY KEY, v text)", vec![]))]),
        testkit::slot([cmd(1, 3, sql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) AS g", vec![]))]),
        testkit::slot([cmd(1, 4, sql("DELETE FROM t WHERE id > 50", vec![]))]),
    ];
    for (i, value) in setup.iter().enumerate() {
        executor.apply(i as u64 + 1, value).await.unwrap_or_else(|f| panic!("slot {}: {f}", i + 1));
    }
    const DATA: &str = "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM t";
    let data = row(&mut look, DATA, &[]).await;
    // The bookkeeping as a crash right after the VACUUM (before its outcome and AP) would leave it.
    ok(&mut look, "CREATE TABLE saved_sessions AS SELECT * FROM barista_sessions", &[]).await;

    // pgbench -i's statement: PostgreSQL refuses it in a transaction block, so this ran without one.
    let vacuum = testkit::slot([cmd(1, 5, sql("VACUUM ANALYZE t", vec![]))]);
    let first = executor.apply(5, &vacuum).await.unwrap_or_else(|f| panic!("slot 5: {f}"));
    assert!(matches!(first[0].outcome, Outcome::Rows(_)), "{:?}", first[0].outcome);
    assert_eq!(executor.applied(), 5);
    let stats = "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 't'";
    assert_eq!(row(&mut look, stats, &[]).await, [SqlValue::Bool(true), SqlValue::Bool(true)]);

    // The crash: the executor goes, and the slot's record and AP with it; the replay runs it again.
    drop(executor);
    ok(&mut look, "UPDATE sqlpaxoslog SET lastseqnum = 4, commands_done = 0", &[]).await;
    ok(&mut look, "DELETE FROM barista_sessions", &[]).await;
    ok(&mut look, "INSERT INTO barista_sessions SELECT * FROM saved_sessions", &[]).await;
    let mut executor = Executor::open(backend.clone()).await.unwrap_or_else(|f| panic!("reopen: {f}"));
    assert_eq!(executor.applied(), 4);
    let again = executor.apply(5, &vacuum).await.unwrap_or_else(|f| panic!("slot 5 again: {f}"));
    assert_eq!(again, first, "the replay answers as the first run");
    assert_eq!(ap(&mut look).await, [SqlValue::Int(5), SqlValue::Int(0)]);
    assert_eq!(row(&mut look, DATA, &[]).await, data, "VACUUM changed no data, twice");

    // Inside a transaction PostgreSQL refuses it, and the transaction is aborted.
    let in_txn = [
        testkit::slot([cmd(2, 2, Op::Begin)]),
        testkit::slot([cmd(2, 3, sql("INSERT INTO t VALUES (99, 'x')", vec![]))]),
        testkit::slot([cmd(2, 4, sql("VACUUM t", vec![]))]),
        testkit::slot([cmd(2, 5, Op::Commit)]),
    ];
    let mut outcomes = Vec::new();
    for (i, value) in in_txn.iter().enumerate() {
        let slot = i as u64 + 6;
        let applied = executor.apply(slot, value).await.unwrap_or_else(|f| panic!("slot {slot}: {f}"));
        outcomes.extend(applied.into_iter().map(|a| a.outcome));
    }
    match &outcomes[2] {
        Outcome::Error(e) => {
            assert_eq!(e.sqlstate, "25001", "{e}");
            assert!(e.message.contains("VACUUM cannot run inside a transaction block"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&outcomes[3], Outcome::Error(e) if e.sqlstate == "25P02"), "{:?}", outcomes[3]);
    assert_eq!(row(&mut look, DATA, &[]).await, data, "the aborted transaction left nothing");
}

// ---------------------------------------------------------------------------------------------
// Divergence checksum

#[tokio::test]
async fn the_checksum_sees_rows_columns_and_sequences_but_not_physical_order() {
    use barista_runtime::executor::CHECKSUM_COVERAGE;
    let (a, b) = (database("checksum_a").await, database("checksum_b").await);
    // Barista's own tables, as a replica has them.
    drop(Executor::open(a.clone()).await.expect("open executor"));
    drop(Executor::open(b.clone()).await.expect("open executor"));
    let (mut sa, mut sb) = (connect(&a).await, connect(&b).await);
    // The same data, written in different orders: the rows lie in different physical places.
    for (s, order) in [(&mut sa, [1, 2, 3]), (&mut sb, [3, 1, 2])] {
        ok(s, "CREATE TABLE t (id int PRIMARY KEY, v text, f float8)", &[]).await;
        ok(s, "CREATE SEQUENCE seq", &[]).await;
        for id in order {
            ok(s, "INSERT INTO t VALUES ($1, 'x', 0.1)", &[SqlValue::Int(id)]).await;
        }
        ok(s, "SELECT nextval('seq')", &[]).await;
    }
    ok(&mut sb, "UPDATE t SET v = 'x' WHERE id = 1", &[]).await; // a new tuple version, same value
    // barista_sessions' outcome is not covered: a recorded read may differ between replicas.
    ok(&mut sa, "INSERT INTO barista_sessions VALUES (1, 1, '\\x01', 1)", &[]).await;
    ok(&mut sb, "INSERT INTO barista_sessions VALUES (1, 1, '\\x02', 1)", &[]).await;
    ok(&mut sb, "UPDATE sqlpaxoslog SET lastseqnum = 7", &[]).await;
    let da = sa.checksum(&CHECKSUM_COVERAGE).await.expect("checksum");
    let db = sb.checksum(&CHECKSUM_COVERAGE).await.expect("checksum");
    assert_eq!(da, db);
    let names: Vec<&str> = da.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["public.barista_sessions", "public.seq", "public.t"]);
    assert_eq!(da.tables[2].rows, 3);
    // The session is left outside any transaction.
    ok(&mut sa, "INSERT INTO t VALUES (4, 'y', 0)", &[]).await;
    ok(&mut sa, "DELETE FROM t WHERE id = 4", &[]).await;
    assert_eq!(sa.checksum(&CHECKSUM_COVERAGE).await.expect("checksum"), da);

    // A value, a sequence step, a column type, a session's request number: each is seen.
    let changed = async |s: &mut PgSession, sql: &str| {
        ok(s, sql, &[]).await;
        s.checksum(&CHECKSUM_COVERAGE).await.expect("checksum").differing_tables(&da)
    };
    assert_eq!(changed(&mut sb, "UPDATE t SET f = 0.1000000001 WHERE id = 2").await, ["public.t"]);
    ok(&mut sb, "UPDATE t SET f = 0.1 WHERE id = 2", &[]).await;
    assert_eq!(changed(&mut sb, "SELECT nextval('seq')").await, ["public.seq"]);
    assert_eq!(changed(&mut sa, "ALTER TABLE t ALTER COLUMN v TYPE varchar(10)").await, ["public.t"]);
    assert_eq!(
        changed(&mut sa, "UPDATE barista_sessions SET request_seq = 2").await,
        ["public.barista_sessions", "public.t"]
    );
}

// ---------------------------------------------------------------------------------------------
// Kept statements (the statement cache behind `execute_begun`)

/// `sql` as the executor runs an autocommit command: begun with `BEGIN`, then committed, or
/// rolled back after an error.
async fn begun(s: &mut PgSession, sql: &str, params: &[SqlValue]) -> Result<ResultSet, SqlError> {
    let result = s.execute_begun(&["BEGIN"], sql, params).await.unwrap_or_else(|f| panic!("`{sql}`: fault: {f}"));
    ok(s, if result.is_ok() { "COMMIT" } else { "ROLLBACK" }, &[]).await;
    result
}

/// How many statements with the text `sql` the session has prepared on the server.
async fn prepared(s: &mut PgSession, sql: &str) -> SqlValue {
    row(s, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", &[text(sql)]).await.remove(0)
}

#[tokio::test]
async fn a_kept_statement_answers_as_a_fresh_one_after_ddl_inside_a_function() {
    let db = database("kept_statements").await;
    let mut s = connect(&db).await;
    ok(&mut s, "CREATE TABLE kept (k int PRIMARY KEY, v int)", &[]).await;
    // DDL the statement text cannot show: it runs inside functions.
    let widen = "CREATE FUNCTION widen() RETURNS void LANGUAGE plpgsql AS \
                 $$BEGIN ALTER TABLE kept ALTER v TYPE text; END$$";
    ok(&mut s, widen, &[]).await;
    let add = "CREATE FUNCTION add_column() RETURNS void LANGUAGE plpgsql AS \
               $$BEGIN ALTER TABLE kept ADD COLUMN w int; END$$";
    ok(&mut s, add, &[]).await;

    let insert = "INSERT INTO kept VALUES ($1, $2)";
    begun(&mut s, insert, &[SqlValue::Int(1), SqlValue::Int(10)]).await.expect("first insert");
    begun(&mut s, insert, &[SqlValue::Int(2), SqlValue::Int(20)]).await.expect("second insert");
    assert_eq!(prepared(&mut s, insert).await, SqlValue::Int(1), "the insert is kept prepared");

    // Kept, `$2` would still be an integer and 'three' would fail to parse as one.
    begun(&mut s, "SELECT widen()", &[]).await.expect("widen");
    begun(&mut s, insert, &[SqlValue::Int(3), text("three")]).await.expect("insert of text after widen()");

    let select = "SELECT * FROM kept WHERE k = $1";
    begun(&mut s, select, &[SqlValue::Int(3)]).await.expect("select");
    assert_eq!(prepared(&mut s, select).await, SqlValue::Int(1), "the select is kept prepared");
    // Kept, it would fail: "cached plan must not change result type".
    begun(&mut s, "SELECT add_column()", &[]).await.expect("add_column");
    let rs = begun(&mut s, select, &[SqlValue::Int(3)]).await.expect("select after add_column()");
    let names: Vec<&str> = rs.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["k", "v", "w"]);
    assert_eq!(rs.rows, [vec![SqlValue::Int(3), text("three"), SqlValue::Null]]);
    // A wrong parameter count is the same error as on a fresh statement.
    let e = begun(&mut s, insert, &[SqlValue::Int(5)]).await.expect_err("one parameter of two");
    assert_eq!(e.sqlstate, "08P01", "{e}");
    // A statement error from a kept statement is the statement's, as from a fresh one.
    begun(&mut s, insert, &[SqlValue::Int(4), text("four")]).await.expect("insert");
    let e = begun(&mut s, insert, &[SqlValue::Int(4), text("again")]).await.expect_err("duplicate key");
    assert_eq!(e.sqlstate, "23505", "{e}");
}

#[tokio::test]
async fn without_a_superuser_nothing_is_kept_until_one_sets_the_epoch_up() {
    let mut admin = connect(&shared().backend("postgres")).await;
    ok(&mut admin, "DROP DATABASE IF EXISTS kept_plain", &[]).await;
    ok(&mut admin, "DROP ROLE IF EXISTS barista_plain", &[]).await;
    ok(&mut admin, "CREATE ROLE barista_plain LOGIN", &[]).await;
    ok(&mut admin, "CREATE DATABASE kept_plain OWNER barista_plain", &[]).await;
    let conninfo = |user: &str| format!("host=127.0.0.1 port={} user={user} dbname=kept_plain", shared().port);
    let plain = PgBackend::new(&conninfo("barista_plain")).unwrap_or_else(|e| panic!("{e}"));
    let insert = "INSERT INTO t VALUES ($1)";

    let mut s = connect(&plain).await;
    ok(&mut s, "CREATE TABLE t (k int PRIMARY KEY)", &[]).await;
    for k in 1..=2 {
        begun(&mut s, insert, &[SqlValue::Int(k)]).await.expect("insert");
    }
    assert_eq!(prepared(&mut s, insert).await, SqlValue::Int(0), "nothing is kept without the DDL epoch");

    // A superuser's connection sets the epoch up; the user's next connections keep statements.
    connect(&PgBackend::new(&conninfo("postgres")).unwrap_or_else(|e| panic!("{e}"))).await;
    let mut s = connect(&plain).await;
    for k in 3..=4 {
        begun(&mut s, insert, &[SqlValue::Int(k)]).await.expect("insert");
    }
    assert_eq!(prepared(&mut s, insert).await, SqlValue::Int(1), "kept once the epoch is set up");
    assert_eq!(row(&mut s, "SELECT count(*) FROM t", &[]).await, [SqlValue::Int(4)]);
}

/// The outcomes of applying `value` as `slot`, which must not fault.
async fn apply(executor: &mut Executor<PgBackend>, slot: u64, value: &Value) -> Vec<Outcome> {
    let applied = executor.apply(slot, value).await.unwrap_or_else(|f| panic!("slot {slot}: {f}"));
    applied.into_iter().map(|a| a.outcome).collect()
}

fn rows(outcome: &Outcome) -> &[Vec<SqlValue>] {
    match outcome {
        Outcome::Rows(rs) => &rs.rows,
        other => panic!("expected rows, got {other:?}"),
    }
}

fn sqlstate(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Error(e) => &e.sqlstate,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slot_transaction_gives_each_statement_its_own_outcome() {
    let backend = database("slot_txn").await;
    let mut executor = Executor::open(backend.clone()).await.unwrap_or_else(|f| panic!("open: {f}"));
    let setup = [
        testkit::slot([cmd(1, 1, Op::Open), cmd(2, 1, Op::Open), cmd(3, 1, Op::Open), cmd(4, 1, Op::Open)]),
        testkit::slot([cmd(1, 2, sql("CREATE TABLE parent (id int4 PRIMARY KEY)", vec![]))]),
        testkit::slot([cmd(
            1,
            3,
            sql(
                "CREATE TABLE child (id int4 PRIMARY KEY, parent int4 REFERENCES parent DEFERRABLE INITIALLY DEFERRED)",
                vec![],
            ),
        )]),
    ];
    for (i, value) in setup.iter().enumerate() {
        apply(&mut executor, i as u64 + 1, value).await;
    }
    // One slot of autocommit statements, all in the slot transaction.
    let slot = testkit::slot([
        cmd(1, 4, sql("INSERT INTO parent VALUES (1)", vec![])),
        // A transaction-local setting, which its own commit would have undone.
        cmd(2, 2, sql("SELECT set_config('search_path', 'nowhere', true)", vec![])),
        // A deferred constraint, which its own commit would have checked.
        cmd(4, 2, sql("INSERT INTO child VALUES (1, 99)", vec![])),
        cmd(1, 5, sql("SELECT count(*) FROM parent", vec![])),
        cmd(2, 3, sql("INSERT INTO child VALUES (2, 1)", vec![])),
        cmd(3, 2, sql("SELECT current_setting('search_path') <> 'nowhere'", vec![])),
        // Failing last: the commit undoes it before recording.
        cmd(3, 3, sql("INSERT INTO child VALUES (3, 98)", vec![])),
    ]);
    let outcomes = apply(&mut executor, 4, &slot).await;
    assert!(matches!(outcomes[0], Outcome::Rows(_)), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[1], Outcome::Rows(_)), "{:?}", outcomes[1]);
    assert_eq!(sqlstate(&outcomes[2]), "23503", "the violation is the statement's own error");
    assert_eq!(rows(&outcomes[3]), [vec![SqlValue::Int(1)]], "unqualified names resolve: the setting was undone");
    assert!(matches!(outcomes[4], Outcome::Rows(_)), "{:?}", outcomes[4]);
    assert_eq!(rows(&outcomes[5]), [vec![SqlValue::Bool(true)]]);
    assert_eq!(sqlstate(&outcomes[6]), "23503");
    let mut look = connect(&backend).await;
    assert_eq!(ids_of(&mut look, "SELECT id FROM child ORDER BY id").await, [2]);
    assert_eq!(ap(&mut look).await, [SqlValue::Int(4), SqlValue::Int(0)]);

    // The records committed with the work: a crash, and the failed statement's retry gets its
    // error again, not a run.
    drop(executor);
    let mut executor = Executor::open(backend.clone()).await.unwrap_or_else(|f| panic!("reopen: {f}"));
    let retry =
        apply(&mut executor, 5, &testkit::slot([cmd(4, 2, sql("INSERT INTO child VALUES (1, 99)", vec![]))])).await;
    assert_eq!(retry[0], outcomes[2]);

    // A statement kept prepared from before DDL is found stale inside a slot transaction: only
    // its own savepoint is undone, not the statements before it in the slot.
    apply(&mut executor, 6, &testkit::slot([cmd(1, 6, sql("SELECT count(*) FROM parent", vec![]))])).await;
    apply(&mut executor, 7, &testkit::slot([cmd(1, 7, sql("ALTER TABLE parent ADD COLUMN note text", vec![]))])).await;
    let slot = testkit::slot([
        cmd(2, 4, sql("INSERT INTO parent (id) VALUES (5)", vec![])),
        cmd(1, 8, sql("SELECT count(*) FROM parent", vec![])),
    ]);
    let outcomes = apply(&mut executor, 8, &slot).await;
    assert_eq!(rows(&outcomes[1]), [vec![SqlValue::Int(2)]], "{outcomes:?}");
    assert_eq!(ids_of(&mut look, "SELECT id FROM parent ORDER BY id").await, [1, 5]);
}
