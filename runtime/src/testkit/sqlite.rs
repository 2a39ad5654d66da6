//! A PostgreSQL stand-in on SQLite: one [`SqliteDb`] per replica, for the simulation and for tests.
//!
//! What it models, because the executor's correctness depends on it:
//! - every session is its own SQLite connection, so `BEGIN` ... `COMMIT` across calls is one
//!   transaction, and other sessions read only committed data (WAL mode: a reader sees the last
//!   committed state even while a writer's transaction is open, as under PostgreSQL's MVCC);
//! - dropping a session (the replica process crashed) closes its connection, which rolls back its
//!   open transaction; committed data stays, because it lives in the database file;
//! - dropping the [`SqliteDb`] kills every connection and deletes the files (a disk wipe): a
//!   backend or session that outlives it reports [`BackendFault`], never a fresh empty database;
//! - a failed statement inside a transaction aborts it, as in PostgreSQL (SQLite only undoes the
//!   failed statement): every later statement gets SQLSTATE `25P02` until `ROLLBACK`, and
//!   `COMMIT` rolls back. `BEGIN` inside a transaction and `COMMIT`/`ROLLBACK` outside one are
//!   no-ops (PostgreSQL only warns); a failed `COMMIT` rolls back;
//! - SQLite errors carry PostgreSQL SQLSTATEs; SQLite's own environment failures (busy, locked,
//!   I/O, out of memory) are [`BackendFault`]s;
//! - [`SqliteDb::set_down`] and [`SqliteDb::go_down_after`] stop the "server" on demand: every
//!   connection is killed (open transactions roll back), and `connect` and every statement fault
//!   until it is back; a connection killed this way stays dead, like a lost PostgreSQL connection.
//! - [`SqliteDb::lose_unflushed`] is a power failure of the server under Barista's asynchronous
//!   commits: it stops as `set_down` does and its disk goes back to the last
//!   [`SqlSession::flush`] (a copy of the database taken then), losing every commit after it.
//!   PostgreSQL loses a suffix of its commits at most, often less; losing all of them since the
//!   flush is the worst case the executor must replay.
//!
//! Why files (WAL) and not a shared in-memory database: SQLite's in-memory sharing (shared cache,
//! or the `memdb` VFS) locks whole tables or the whole database, so a session reading a table that
//! another session's open transaction wrote fails with `SQLITE_LOCKED`/`SQLITE_BUSY` instead of
//! seeing the committed rows, and [`SqliteDb::dump`] could not read a replica whose client left a
//! transaction open. With `synchronous = OFF` the files cost little: nothing is fsynced, and
//! durability across a process crash needs none (a power failure is the copy above).
//!
//! What it does not model: lock waits. SQLite has one writer per database; a second session that
//! writes while a transaction is open gets `SQLITE_BUSY`, reported as a fault, not a wait. The
//! executor's scheduling policy never lets that happen (only the open transaction's session runs).
//! Types follow SQLite's affinity rules (no `numeric` text formatting, no strict typing).
//!
//! It spawns no threads and blocks on nothing, so it runs inside the madsim simulation.
//!
//! Files live in `<temp>/barista-sqlite-<pid>/<n>/`. Dropping a `SqliteDb` deletes its directory,
//! but a runner may never drop it (madsim does not drop a finished simulation's tasks, a killed
//! test process drops nothing): [`SqliteDb::remove`] deletes it explicitly, the first database a
//! process creates deletes the directories of processes that no longer exist, and the WAL is kept
//! small, so leftovers stay bounded.

use std::collections::BTreeMap;
use std::future::{Future, ready};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ffi};
use serde::Serialize;

use crate::sql::{BackendFault, Column, ResultSet, SqlBackend, SqlError, SqlSession, SqlValue};
use crate::verify::{Coverage, DatabaseDigest, DigestBuilder, TableDigest};

/// Makes every database's directory unique within the process (with the pid, across processes).
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// Set once this process has deleted dead processes' leftovers.
static SWEPT: std::sync::Once = std::sync::Once::new();

/// The prefix of every process's directory in the temporary directory.
const DIR_PREFIX: &str = "barista-sqlite-";

/// Barista's own tables (see `executor::bookkeeping`), left out by [`Dump::without_bookkeeping`].
const BOOKKEEPING_TABLES: [&str; 3] = ["sqlpaxoslog", "barista_sessions", "barista_checks"];

/// PostgreSQL's "in failed SQL transaction".
const IN_FAILED_TXN: &str = "25P02";

/// A session's connection; `None` once the server killed it.
type Link = Arc<Mutex<Option<Connection>>>;

/// A lock that survives a panic in another holder: the data is a connection or a counter, still
/// usable, and tests that panic must not cascade into unrelated failures.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared {
    dir: PathBuf,
    path: PathBuf,
    /// The database as of the last flush: what a power failure leaves.
    flushed: PathBuf,
    /// Reads dumps. `None` only while the database is being dropped.
    anchor: Mutex<Option<Connection>>,
    down: AtomicBool,
    /// [`SqliteDb::remove`] deleted the files; nothing may open them again.
    removed: AtomicBool,
    /// Statements that may still run before the server goes down; `None`: no fault planned.
    fuse: Mutex<Option<u64>>,
    /// Statements that reached the database (for tests that sweep a fault over every one).
    statements: AtomicU64,
    /// Every session's connection, so that stopping the server can kill them all. The lock is
    /// also held while connecting, so no connection slips past a concurrent stop.
    links: Mutex<Vec<Weak<Mutex<Option<Connection>>>>>,
}

impl Shared {
    fn stop(&self) {
        let mut links = lock(&self.links);
        self.down.store(true, Ordering::SeqCst);
        for link in links.drain(..) {
            if let Some(link) = link.upgrade() {
                // Closing the connection rolls back its open transaction.
                lock(&link).take();
            }
        }
    }

    /// Lets one statement through, or faults if the server is (or now goes) down.
    fn admit(&self) -> Result<(), BackendFault> {
        if self.down.load(Ordering::SeqCst) {
            return Err(down());
        }
        let mut fuse = lock(&self.fuse);
        match *fuse {
            Some(0) => {
                *fuse = None;
                drop(fuse);
                self.stop();
                return Err(down());
            }
            Some(n) => *fuse = Some(n - 1),
            None => {}
        }
        self.statements.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Shared {
    fn remove(&self) {
        self.removed.store(true, Ordering::SeqCst);
        self.stop();
        lock(&self.anchor).take();
        // Best effort: a leftover directory is swept by a later process (see `sweep_dead`).
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Deletes the directories that processes which no longer run left in `parent` (they never
/// dropped their databases). Linux only (it asks `/proc`); elsewhere it leaves everything.
fn sweep_dead(parent: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else { continue };
        // `<pid>`, or `<pid>-<n>` as an earlier version named them.
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn down() -> BackendFault {
    BackendFault("the database server is down".into())
}

fn lost() -> BackendFault {
    BackendFault("connection lost (the server was stopped)".into())
}

fn wiped() -> BackendFault {
    BackendFault("the database no longer exists (its disk was wiped)".into())
}

fn sqlite_fault(context: &str, e: rusqlite::Error) -> BackendFault {
    BackendFault(format!("sqlite {context}: {e}"))
}

/// Opens a connection with the settings every connection needs.
/// PostgreSQL's `set_config(name, value, is_local)` and `current_setting(name)`, which the
/// executor uses to pin each transaction's timestamp. Settings live per connection here, and the
/// transaction-local flag is not modelled: the executor pins again at every transaction start.
fn settings_functions(conn: &Connection) -> Result<(), BackendFault> {
    use rusqlite::functions::FunctionFlags;
    let settings = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let set = settings.clone();
    conn.create_scalar_function("set_config", 3, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let (name, value): (String, String) = (ctx.get(0)?, ctx.get(1)?);
        lock(&set).insert(name, value.clone());
        Ok(value)
    })
    .map_err(|e| sqlite_fault("set_config", e))?;
    conn.create_scalar_function("current_setting", 1, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let name: String = ctx.get(0)?;
        lock(&settings).get(&name).cloned().ok_or_else(|| {
            rusqlite::Error::UserFunctionError(format!("unrecognized configuration parameter \"{name}\"").into())
        })
    })
    .map_err(|e| sqlite_fault("current_setting", e))?;
    Ok(())
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, BackendFault> {
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite_fault("open", e))?;
    // rusqlite waits up to 5 s on a lock by default, sleeping the thread: in the simulation that
    // would stall every node. Contention is a fault here (see the module docs), so fail at once.
    conn.busy_timeout(Duration::ZERO).map_err(|e| sqlite_fault("busy_timeout", e))?;
    // PostgreSQL enforces foreign keys and compares LIKE case-sensitively; SQLite does neither by
    // default. Nothing is fsynced: only process crashes are modelled, and the OS keeps the data.
    // The WAL is checkpointed and truncated early, so a database nobody deletes stays small.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; PRAGMA synchronous = OFF; \
         PRAGMA wal_autocheckpoint = 64; PRAGMA journal_size_limit = 65536;",
    )
    .map_err(|e| sqlite_fault("settings", e))?;
    settings_functions(&conn)?;
    Ok(conn)
}

/// Opens the database's own connection (it reads dumps and takes the flushed copies), and puts
/// the file in WAL mode, which every later connection then uses too.
fn open_anchor(path: &Path) -> Result<Connection, BackendFault> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let anchor = open(path, flags)?;
    let mode: String = anchor
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| sqlite_fault("journal_mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BackendFault(format!("sqlite refused WAL mode (got {mode})")));
    }
    Ok(anchor)
}

/// Copies the committed state of `conn`'s database to `to`, replacing it only once the copy is
/// whole.
fn copy_committed(conn: &Connection, to: &Path) -> Result<(), BackendFault> {
    let partial = to.with_extension("partial");
    remove_if_present(&partial)?;
    conn.execute("VACUUM INTO ?1", [partial.to_string_lossy()]).map_err(|e| sqlite_fault("copy", e))?;
    std::fs::rename(&partial, to).map_err(|e| BackendFault(format!("renaming {}: {e}", partial.display())))
}

fn remove_if_present(file: &Path) -> Result<(), BackendFault> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(BackendFault(format!("removing {}: {e}", file.display())))
        }
        _ => Ok(()),
    }
}

/// One replica's database: its "disk". Dropping it wipes the disk.
pub struct SqliteDb {
    shared: Arc<Shared>,
}

impl SqliteDb {
    /// A new, empty database in the system's temporary directory.
    pub fn new() -> Result<SqliteDb, BackendFault> {
        SqliteDb::create_in(&std::env::temp_dir())
    }

    /// A new, empty database in a fresh directory under `parent`.
    pub fn create_in(parent: &Path) -> Result<SqliteDb, BackendFault> {
        SWEPT.call_once(|| sweep_dead(parent));
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{DIR_PREFIX}{}", std::process::id())).join(n.to_string());
        // A leftover of an earlier process that had the same pid: start empty.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| BackendFault(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("db.sqlite");
        let anchor = open_anchor(&path)?;
        // The empty database is on disk from the start, as after initdb.
        let flushed = dir.join("flushed.sqlite");
        copy_committed(&anchor, &flushed)?;
        Ok(SqliteDb {
            shared: Arc::new(Shared {
                dir,
                path,
                flushed,
                anchor: Mutex::new(Some(anchor)),
                down: AtomicBool::new(false),
                removed: AtomicBool::new(false),
                fuse: Mutex::new(None),
                statements: AtomicU64::new(0),
                links: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A handle that opens sessions on this database. It does not keep the database alive.
    pub fn backend(&self) -> SqliteBackend {
        SqliteBackend { shared: Arc::downgrade(&self.shared) }
    }

    /// Stops (`true`) or restarts (`false`) the server. Stopping kills every connection, rolling
    /// back its open transaction; while down, `connect` and every statement fault. Sessions
    /// killed by a stop stay dead after the restart: connect again.
    pub fn set_down(&self, down: bool) {
        if down {
            self.shared.stop();
        } else if !self.shared.removed.load(Ordering::SeqCst) {
            *lock(&self.shared.fuse) = None;
            self.shared.down.store(false, Ordering::SeqCst);
        }
    }

    /// Lets `statements` more statements run (over all sessions), then stops the server as
    /// [`SqliteDb::set_down`]`(true)` does: a fault at an exact point, e.g. in the middle of a slot.
    pub fn go_down_after(&self, statements: u64) {
        *lock(&self.shared.fuse) = Some(statements);
    }

    /// A power failure of the server: it stops as [`SqliteDb::set_down`]`(true)` does, and every
    /// commit since the last [`SqlSession::flush`] is lost. It stays down until `set_down(false)`.
    pub fn lose_unflushed(&self) -> Result<(), BackendFault> {
        let shared = &self.shared;
        shared.stop();
        let mut anchor = lock(&shared.anchor);
        if anchor.take().is_none() {
            return Err(wiped());
        }
        // The WAL and its index belong to the lost state: without them the copy is the database.
        for suffix in ["", "-wal", "-shm"] {
            remove_if_present(&PathBuf::from(format!("{}{suffix}", shared.path.display())))?;
        }
        std::fs::copy(&shared.flushed, &shared.path)
            .map_err(|e| BackendFault(format!("restoring {}: {e}", shared.flushed.display())))?;
        *anchor = Some(open_anchor(&shared.path)?);
        Ok(())
    }

    /// Deletes the database now, as dropping the last `SqliteDb` would (a disk wipe), even if
    /// clones of an `Arc<SqliteDb>` live on: for runners that never drop it (madsim keeps a
    /// finished simulation's tasks). Every session and backend faults from then on, and
    /// [`SqliteDb::dump`] fails.
    pub fn remove(&self) {
        self.shared.remove();
    }

    /// Whether the server is down.
    pub fn is_down(&self) -> bool {
        self.shared.down.load(Ordering::SeqCst)
    }

    /// How many statements reached the database so far (those refused while down not counted).
    pub fn statements_run(&self) -> u64 {
        self.shared.statements.load(Ordering::SeqCst)
    }

    /// The database file, for debugging.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Every table's committed rows, in a canonical order (tables by name, rows sorted by all
    /// columns), read in one snapshot: equal dumps mean equal data. Works while the server is
    /// down: it reads the disk, not through the server.
    pub fn dump(&self) -> Result<Dump, BackendFault> {
        let anchor = lock(&self.shared.anchor);
        let conn = anchor.as_ref().ok_or_else(wiped)?;
        let fault = |e| sqlite_fault("dump", e);
        // One read transaction: a consistent snapshot even if a session commits meanwhile.
        conn.execute_batch("BEGIN").map_err(fault)?;
        let dump = read_dump(conn);
        // Ending a read-only transaction cannot lose anything; report the read's error first.
        let end = conn.execute_batch("COMMIT").map_err(fault);
        let dump = dump.map_err(fault)?;
        end?;
        Ok(dump)
    }
}

fn read_dump(conn: &Connection) -> rusqlite::Result<Dump> {
    let mut names = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            names.push(row.get::<_, String>(0)?);
        }
    }
    let mut tables = BTreeMap::new();
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let stmt = conn.prepare(&format!("SELECT * FROM {quoted}"))?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let order: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
        drop(stmt);
        let mut stmt = conn.prepare(&format!("SELECT * FROM {quoted} ORDER BY {}", order.join(", ")))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(from_sqlite(row.get_ref(i)?, false));
            }
            out.push(values);
        }
        tables.insert(name, TableDump { columns, rows: out });
    }
    Ok(Dump { tables })
}

/// A database's contents, from [`SqliteDb::dump`].
#[derive(Clone, PartialEq, Debug, Default, Serialize)]
pub struct Dump {
    /// Tables by name, Barista's bookkeeping tables included (replicas at the same AP must agree
    /// on those too).
    pub tables: BTreeMap<String, TableDump>,
}

/// One table of a [`Dump`].
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct TableDump {
    /// Column names, in table order.
    pub columns: Vec<String>,
    /// Rows, sorted by all columns. Booleans appear as integers 0/1 (SQLite stores them so).
    pub rows: Vec<Vec<SqlValue>>,
}

impl Dump {
    /// The client-visible tables only, without Barista's bookkeeping.
    pub fn without_bookkeeping(mut self) -> Dump {
        self.tables.retain(|name, _| !BOOKKEEPING_TABLES.contains(&name.as_str()));
        self
    }

    /// A table's rows (empty if there is no such table).
    pub fn rows(&self, table: &str) -> &[Vec<SqlValue>] {
        self.tables.get(table).map_or(&[], |t| t.rows.as_slice())
    }

    /// A 64-bit FNV-1a hash of the canonical encoding: the same on every run and every machine,
    /// for comparing replicas cheaply.
    pub fn checksum(&self) -> u64 {
        // Serializing plain data into a Vec cannot fail.
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
    }
}

/// Opens sessions on one [`SqliteDb`]. Cheap to clone.
#[derive(Clone)]
pub struct SqliteBackend {
    shared: Weak<Shared>,
}

impl SqliteBackend {
    fn connect_now(&self) -> Result<SqliteSession, BackendFault> {
        let shared = self.shared.upgrade().ok_or_else(wiped)?;
        let mut links = lock(&shared.links);
        if shared.removed.load(Ordering::SeqCst) {
            return Err(wiped());
        }
        if shared.down.load(Ordering::SeqCst) {
            return Err(down());
        }
        // No CREATE: a missing file must be an error, never a new empty database.
        let conn = open(&shared.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        let link = Arc::new(Mutex::new(Some(conn)));
        links.retain(|l| l.strong_count() > 0);
        links.push(Arc::downgrade(&link));
        Ok(SqliteSession { shared: self.shared.clone(), link, failed: false })
    }
}

impl SqlBackend for SqliteBackend {
    type Session = SqliteSession;

    fn connect(&self) -> impl Future<Output = Result<SqliteSession, BackendFault>> + Send {
        ready(self.connect_now())
    }
}

/// One connection to a [`SqliteDb`], with PostgreSQL's transaction behaviour.
pub struct SqliteSession {
    shared: Weak<Shared>,
    link: Link,
    /// A statement failed inside the open transaction: only its end is accepted now.
    failed: bool,
}

impl SqliteSession {
    fn execute_now(&mut self, sql: &str, params: &[SqlValue]) -> Result<Result<ResultSet, SqlError>, BackendFault> {
        let shared = self.shared.upgrade().ok_or_else(wiped)?;
        // Before taking our own connection's lock: a stop takes every connection's lock.
        shared.admit()?;
        let guard = lock(&self.link);
        let conn = guard.as_ref().ok_or_else(lost)?;
        statement(conn, &mut self.failed, sql, params)
    }

    /// [`SqlSession::read_in_txn`] as PostgreSQL's backend does it: in a savepoint, with
    /// `PRAGMA query_only` as the read-only transaction (SQLite then refuses every write with
    /// `SQLITE_READONLY`, SQLSTATE 25006), rolled back to afterwards.
    fn read_now(&mut self, sql: &str, params: &[SqlValue]) -> Result<Result<ResultSet, SqlError>, BackendFault> {
        if control(sql) != Control::Other || self.failed {
            return Ok(Err(sql_error(crate::sql::READ_ONLY_SQL_TRANSACTION, "not a read")));
        }
        let own = |result: Result<Result<ResultSet, SqlError>, BackendFault>| match result? {
            Ok(_) => Ok(()),
            Err(e) => Err(BackendFault(format!("read savepoint: {e}"))),
        };
        own(self.execute_now("SAVEPOINT barista_read", &[]))?;
        own(self.execute_now("PRAGMA query_only = ON", &[]))?;
        let result = self.execute_now(sql, params)?;
        // In this order: a failed statement leaves the transaction aborted until ROLLBACK TO.
        own(self.execute_now("ROLLBACK TO barista_read", &[]))?;
        own(self.execute_now("PRAGMA query_only = OFF", &[]))?;
        own(self.execute_now("RELEASE barista_read", &[]))?;
        Ok(result)
    }

    fn flush_now(&mut self) -> Result<(), BackendFault> {
        let shared = self.shared.upgrade().ok_or_else(wiped)?;
        shared.admit()?;
        if lock(&self.link).is_none() {
            return Err(lost());
        }
        // The anchor, not this session: it never holds a transaction, which VACUUM refuses.
        let anchor = lock(&shared.anchor);
        copy_committed(anchor.as_ref().ok_or_else(wiped)?, &shared.flushed)
    }

    /// The checksum: the same rows as [`SqliteDb::dump`] reads, in one read transaction on this
    /// session's connection; each table's digest covers its column names and its rows' canonical
    /// encodings in sorted order.
    fn checksum_now(&mut self, bookkeeping: &[(&str, Coverage)]) -> Result<DatabaseDigest, BackendFault> {
        let shared = self.shared.upgrade().ok_or_else(wiped)?;
        shared.admit()?;
        let guard = lock(&self.link);
        let conn = guard.as_ref().ok_or_else(lost)?;
        let fault = |e| sqlite_fault("checksum", e);
        conn.execute_batch("BEGIN").map_err(fault)?;
        let dump = read_dump(conn);
        let end = conn.execute_batch("COMMIT").map_err(fault);
        let dump = dump.map_err(fault)?;
        end?;
        let mut tables = Vec::new();
        for (name, table) in dump.tables {
            let picked: Vec<usize> = match bookkeeping.iter().find(|(t, _)| *t == name).map(|(_, c)| *c) {
                Some(Coverage::Skip) => continue,
                Some(Coverage::Columns(only)) => table
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| only.contains(&c.as_str()))
                    .map(|(i, _)| i)
                    .collect(),
                None => (0..table.columns.len()).collect(),
            };
            let mut rows: Vec<Vec<u8>> = table
                .rows
                .iter()
                .map(|row| {
                    let values: Vec<&SqlValue> = picked.iter().filter_map(|i| row.get(*i)).collect();
                    // Serializing plain data into a Vec cannot fail.
                    postcard::to_allocvec(&values).unwrap_or_default()
                })
                .collect();
            rows.sort_unstable();
            let mut builder = DigestBuilder::new();
            for i in &picked {
                builder.part(table.columns[*i].as_bytes());
            }
            for row in &rows {
                builder.part(row);
            }
            tables.push(TableDigest { table: name, rows: rows.len() as u64, digest: builder.finish() });
        }
        Ok(DatabaseDigest::from_tables(tables))
    }
}

impl SqlSession for SqliteSession {
    fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Result<ResultSet, SqlError>, BackendFault>> + Send {
        ready(self.execute_now(sql, params))
    }

    fn checksum(
        &mut self,
        bookkeeping: &'static [(&'static str, Coverage)],
    ) -> impl Future<Output = Result<DatabaseDigest, BackendFault>> + Send {
        ready(self.checksum_now(bookkeeping))
    }

    fn read_in_txn(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Result<ResultSet, SqlError>, BackendFault>> + Send {
        ready(self.read_now(sql, params))
    }

    /// Copies the committed state aside: what [`SqliteDb::lose_unflushed`] goes back to.
    fn flush(&mut self) -> impl Future<Output = Result<(), BackendFault>> + Send {
        ready(self.flush_now())
    }
}

/// Transaction control, recognised by its first words, because SQLite's own rules for it differ
/// from PostgreSQL's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Control {
    Begin,
    Commit,
    Rollback,
    RollbackTo,
    Savepoint,
    /// `RESET ALL`.
    ResetAll,
    Other,
}

fn control(sql: &str) -> Control {
    let mut words = sql.split(|c: char| c.is_whitespace() || c == ';').filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default().to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" => Control::Begin,
        "COMMIT" | "END" => Control::Commit,
        "ROLLBACK" | "ABORT" if words.any(|w| w.eq_ignore_ascii_case("TO")) => Control::RollbackTo,
        "ROLLBACK" | "ABORT" => Control::Rollback,
        "SAVEPOINT" => Control::Savepoint,
        "RESET" if words.next().is_some_and(|w| w.eq_ignore_ascii_case("ALL")) => Control::ResetAll,
        _ => Control::Other,
    }
}

fn done() -> Result<Result<ResultSet, SqlError>, BackendFault> {
    Ok(Ok(ResultSet::default()))
}

fn sql_error(sqlstate: &str, message: impl Into<String>) -> SqlError {
    SqlError { sqlstate: sqlstate.into(), message: message.into() }
}

/// Runs one statement with PostgreSQL's transaction rules on top of SQLite's. `RESET ALL`
/// changes nothing: settings here are not transaction-local (see [`settings_functions`]).
fn statement(
    conn: &Connection,
    failed: &mut bool,
    sql: &str,
    params: &[SqlValue],
) -> Result<Result<ResultSet, SqlError>, BackendFault> {
    let in_txn = !conn.is_autocommit();
    if *failed {
        return match control(sql) {
            // PostgreSQL ends a failed transaction on COMMIT too, by rolling it back.
            Control::Commit | Control::Rollback => {
                *failed = false;
                // SQLite may already have rolled back (some errors end the transaction).
                if in_txn {
                    run(conn, "ROLLBACK", &[])?.map_err(|e| BackendFault(format!("ROLLBACK failed: {e}")))?;
                }
                done()
            }
            Control::RollbackTo => {
                let result = run(conn, sql, params)?;
                *failed = result.is_err();
                Ok(result)
            }
            _ => Ok(Err(sql_error(
                IN_FAILED_TXN,
                "current transaction is aborted, commands ignored until end of transaction block",
            ))),
        };
    }
    match control(sql) {
        // PostgreSQL warns and carries on; SQLite would fail. `START TRANSACTION` and isolation
        // levels are PostgreSQL syntax: the stand-in's one transaction kind is plain BEGIN.
        Control::Begin if in_txn => done(),
        Control::Begin => run(conn, "BEGIN", &[]),
        Control::Commit | Control::Rollback if !in_txn => done(),
        Control::Rollback => run(conn, "ROLLBACK", &[]),
        Control::Commit => {
            let result = run(conn, "COMMIT", &[])?;
            // A deferred constraint failed: PostgreSQL rolls back, SQLite keeps the transaction.
            if result.is_err() && !conn.is_autocommit() {
                run(conn, "ROLLBACK", &[])?.map_err(|e| BackendFault(format!("ROLLBACK failed: {e}")))?;
            }
            Ok(result)
        }
        Control::ResetAll => done(),
        // SQLite would start a transaction; PostgreSQL refuses.
        Control::Savepoint | Control::RollbackTo if !in_txn => {
            Ok(Err(sql_error("25P01", "savepoints can only be used in transaction blocks")))
        }
        Control::Savepoint | Control::RollbackTo | Control::Other => {
            let result = run(conn, sql, params)?;
            if result.is_err() && in_txn {
                *failed = true;
            }
            Ok(result)
        }
    }
}

/// Prepares, binds `$1..$n`, and runs one statement.
fn run(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<Result<ResultSet, SqlError>, BackendFault> {
    // PostgreSQL resolves `pg_catalog.f` and `f` alike; SQLite has no schema-qualified functions.
    let sql = sql.replace("pg_catalog.", "");
    let mut stmt = match conn.prepare(&sql) {
        Ok(stmt) => stmt,
        Err(e) => return classify(e),
    };
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Ok(Err(sql_error(
            "08P01",
            format!("bind message supplies {} parameters, but the statement requires {expected}", params.len()),
        )));
    }
    for (i, param) in params.iter().enumerate() {
        // SQLite reads `$1` as a parameter *named* "$1", numbered by first appearance: bind by
        // name so that `$2 ... $1` and a repeated `$1` mean what they mean in PostgreSQL.
        let name = format!("${}", i + 1);
        let index = match stmt.parameter_index(&name) {
            Ok(Some(index)) => index,
            Ok(None) => return Ok(Err(sql_error("42P02", format!("there is no parameter {name}")))),
            Err(e) => return classify(e),
        };
        if let Err(e) = stmt.raw_bind_parameter(index, ToSqlOutput::Borrowed(to_sqlite(param))) {
            return classify(e);
        }
    }
    let columns: Vec<(String, Option<String>)> =
        stmt.columns().iter().map(|c| (c.name().to_owned(), c.decl_type().map(pg_type_name))).collect();
    if columns.is_empty() {
        let before = conn.total_changes();
        if let Err(e) = stmt.raw_execute() {
            return classify(e);
        }
        // `changes()` keeps the count of the last INSERT/UPDATE/DELETE across other statements;
        // PostgreSQL reports 0 for DDL, so count only when this statement changed something.
        let rows_affected = if conn.total_changes() == before { 0 } else { conn.changes() };
        return Ok(Ok(ResultSet { columns: Vec::new(), rows: Vec::new(), rows_affected }));
    }
    let booleans: Vec<bool> = columns.iter().map(|(_, t)| t.as_deref() == Some("bool")).collect();
    let mut rows = Vec::new();
    let mut cursor = stmt.raw_query();
    loop {
        match cursor.next() {
            Ok(Some(row)) => {
                let mut values = Vec::with_capacity(columns.len());
                for (i, boolean) in booleans.iter().enumerate() {
                    match row.get_ref(i) {
                        Ok(value) => values.push(from_sqlite(value, *boolean)),
                        Err(e) => return classify(e),
                    }
                }
                rows.push(values);
            }
            Ok(None) => break,
            Err(e) => return classify(e),
        }
    }
    let columns = columns
        .into_iter()
        .enumerate()
        .map(|(i, (name, declared))| {
            let type_name = declared.unwrap_or_else(|| inferred_type(rows.iter().map(|r| &r[i])));
            Column { name, type_name }
        })
        .collect();
    let rows_affected = rows.len() as u64;
    Ok(Ok(ResultSet { columns, rows, rows_affected }))
}

fn to_sqlite(value: &SqlValue) -> ValueRef<'_> {
    match value {
        SqlValue::Null => ValueRef::Null,
        SqlValue::Bool(b) => ValueRef::Integer(i64::from(*b)),
        SqlValue::Int(i) => ValueRef::Integer(*i),
        SqlValue::Float(f) => ValueRef::Real(*f),
        SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
        SqlValue::Bytes(b) => ValueRef::Blob(b),
    }
}

fn from_sqlite(value: ValueRef<'_>, boolean: bool) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) if boolean => SqlValue::Bool(i != 0),
        ValueRef::Integer(i) => SqlValue::Int(i),
        ValueRef::Real(f) => SqlValue::Float(f),
        ValueRef::Text(bytes) => SqlValue::Text(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => SqlValue::Bytes(bytes.to_vec()),
    }
}

/// The PostgreSQL name (`pg_type.typname`) of a declared column type, so clients see the same
/// type names from the stand-in as from PostgreSQL for the common types.
fn pg_type_name(declared: &str) -> String {
    let lower = declared.trim().to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or_default().trim();
    let name = match base {
        "int" | "integer" | "int4" | "serial" => "int4",
        "bigint" | "int8" | "bigserial" => "int8",
        "smallint" | "int2" => "int2",
        "boolean" | "bool" => "bool",
        "real" | "float4" => "float4",
        "double precision" | "double" | "float" | "float8" => "float8",
        "numeric" | "decimal" => "numeric",
        "varchar" | "character varying" => "varchar",
        "char" | "character" | "bpchar" => "bpchar",
        "blob" | "bytea" => "bytea",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        other => other,
    };
    name.to_owned()
}

/// An expression's type (SQLite declares none): from its first non-NULL value, `text` when there
/// is none (PostgreSQL's type for an untyped NULL).
fn inferred_type<'a>(mut values: impl Iterator<Item = &'a SqlValue>) -> String {
    let name = match values.find(|v| **v != SqlValue::Null) {
        Some(SqlValue::Int(_)) => "int8",
        Some(SqlValue::Float(_)) => "float8",
        Some(SqlValue::Bool(_)) => "bool",
        Some(SqlValue::Bytes(_)) => "bytea",
        Some(SqlValue::Text(_) | SqlValue::Null) | None => "text",
    };
    name.to_owned()
}

/// Splits SQLite's errors into statement errors (with a PostgreSQL SQLSTATE) and faults.
fn classify(error: rusqlite::Error) -> Result<Result<ResultSet, SqlError>, BackendFault> {
    let (code, message) = match error {
        rusqlite::Error::SqliteFailure(code, message) => (code, message.unwrap_or_else(|| code.to_string())),
        rusqlite::Error::SqlInputError { error, msg, .. } => (error, msg),
        rusqlite::Error::MultipleStatement => {
            return Ok(Err(sql_error("42601", "cannot insert multiple commands into a prepared statement")));
        }
        rusqlite::Error::NulError(_) => {
            return Ok(Err(sql_error("22021", "invalid byte sequence: the statement contains a NUL character")));
        }
        rusqlite::Error::InvalidParameterCount(given, expected) => {
            return Ok(Err(sql_error("08P01", format!("{given} parameters supplied, {expected} required"))));
        }
        rusqlite::Error::InvalidParameterName(name) => {
            return Ok(Err(sql_error("42P02", format!("there is no parameter {name}"))));
        }
        // Anything else is the stand-in misusing rusqlite: its environment, not the statement.
        other => return Err(sqlite_fault("call", other)),
    };
    let sqlstate = match code.extended_code & 0xff {
        ffi::SQLITE_CONSTRAINT => match code.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => "23505",
            ffi::SQLITE_CONSTRAINT_NOTNULL => "23502",
            ffi::SQLITE_CONSTRAINT_CHECK => "23514",
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "23503",
            ffi::SQLITE_CONSTRAINT_TRIGGER => "P0001",
            _ => "23000",
        },
        ffi::SQLITE_ERROR => error_sqlstate(&message),
        ffi::SQLITE_MISMATCH => "42804",
        ffi::SQLITE_TOOBIG => "54000",
        ffi::SQLITE_RANGE => "08P01",
        ffi::SQLITE_AUTH => "42501",
        // Only `PRAGMA query_only` makes a write fail so here (the files are never read-only):
        // PostgreSQL's write in a read-only transaction.
        ffi::SQLITE_READONLY => crate::sql::READ_ONLY_SQL_TRANSACTION,
        // Busy, locked, I/O, full, out of memory, corrupt, ...: the stand-in's environment failed.
        _ => return Err(BackendFault(format!("sqlite: {message} ({code})"))),
    };
    Ok(Err(sql_error(sqlstate, message)))
}

/// SQLITE_ERROR covers most statement errors; its message tells which.
fn error_sqlstate(message: &str) -> &'static str {
    let has = |s: &str| message.contains(s);
    if has("syntax error") || has("incomplete input") || has("unrecognized token") {
        "42601"
    } else if has("no such table") {
        "42P01"
    } else if has("no such column") {
        "42703"
    } else if has("already exists") {
        "42P07"
    } else if has("no such function") || has("wrong number of arguments") {
        "42883"
    } else if has("no such index") {
        "42704"
    } else if has("ambiguous column name") {
        "42702"
    } else if has("no such savepoint") {
        "3B001"
    } else if has("integer overflow") {
        "22003"
    } else if has("cannot VACUUM from within a transaction") {
        // PostgreSQL's "VACUUM cannot run inside a transaction block".
        "25001"
    } else {
        // Not classified: PostgreSQL's catch-all class. Still deterministic, so still a result.
        "XX000"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sql_conformance;

    fn db() -> SqliteDb {
        SqliteDb::new().expect("create database")
    }

    async fn ok(session: &mut SqliteSession, sql: &str, params: &[SqlValue]) -> ResultSet {
        match session.execute(sql, params).await {
            Ok(Ok(rs)) => rs,
            other => panic!("`{sql}`: {other:?}"),
        }
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let db = db();
        sql_conformance::run_all(&db.backend()).await;
    }

    #[tokio::test]
    async fn down_kills_connections_and_faults_until_back() {
        let db = db();
        let backend = db.backend();
        let mut a = backend.connect().await.expect("connect");
        ok(&mut a, "CREATE TABLE t (id integer PRIMARY KEY)", &[]).await;
        ok(&mut a, "INSERT INTO t VALUES (1)", &[]).await;
        ok(&mut a, "BEGIN", &[]).await;
        ok(&mut a, "INSERT INTO t VALUES (2)", &[]).await;
        db.set_down(true);
        assert!(db.is_down());
        assert!(a.execute("SELECT 1", &[]).await.is_err());
        assert!(backend.connect().await.is_err());
        db.set_down(false);
        // The old connection was lost with the server; its transaction rolled back.
        assert!(a.execute("SELECT 1", &[]).await.is_err());
        let mut b = backend.connect().await.expect("connect after restart");
        assert_eq!(ok(&mut b, "SELECT id FROM t", &[]).await.rows, vec![vec![SqlValue::Int(1)]]);
    }

    #[tokio::test]
    async fn a_power_failure_keeps_the_flushed_commits_only() {
        let db = db();
        let backend = db.backend();
        let mut a = backend.connect().await.expect("connect");
        ok(&mut a, "CREATE TABLE t (id integer PRIMARY KEY)", &[]).await;
        ok(&mut a, "INSERT INTO t VALUES (1)", &[]).await;
        a.flush().await.expect("flush");
        ok(&mut a, "INSERT INTO t VALUES (2)", &[]).await;
        db.lose_unflushed().expect("power failure");
        assert!(db.is_down());
        assert!(a.execute("SELECT 1", &[]).await.is_err());
        db.set_down(false);
        let mut b = backend.connect().await.expect("connect after restart");
        assert_eq!(ok(&mut b, "SELECT id FROM t", &[]).await.rows, vec![vec![SqlValue::Int(1)]]);
        // And what was never flushed at all: the table.
        let fresh = SqliteDb::new().expect("create database");
        let mut c = fresh.backend().connect().await.expect("connect");
        ok(&mut c, "CREATE TABLE t (id integer PRIMARY KEY)", &[]).await;
        fresh.lose_unflushed().expect("power failure");
        fresh.set_down(false);
        let mut d = fresh.backend().connect().await.expect("connect after restart");
        assert!(d.execute("SELECT id FROM t", &[]).await.expect("no fault").is_err());
        assert!(fresh.dump().expect("dump").tables.is_empty());
    }

    #[tokio::test]
    async fn go_down_after_counts_statements() {
        let db = db();
        let mut a = db.backend().connect().await.expect("connect");
        let before = db.statements_run();
        db.go_down_after(2);
        ok(&mut a, "SELECT 1", &[]).await;
        ok(&mut a, "SELECT 2", &[]).await;
        assert!(a.execute("SELECT 3", &[]).await.is_err());
        assert!(db.is_down());
        assert_eq!(db.statements_run(), before + 2);
    }

    #[tokio::test]
    async fn dropping_the_database_wipes_it() {
        let db = db();
        let backend = db.backend();
        let mut a = backend.connect().await.expect("connect");
        ok(&mut a, "CREATE TABLE t (id integer PRIMARY KEY)", &[]).await;
        let dir = db.path().parent().expect("a directory").to_owned();
        drop(db);
        assert!(!dir.exists());
        assert!(a.execute("SELECT 1", &[]).await.is_err());
        assert!(backend.connect().await.is_err());
    }

    #[tokio::test]
    async fn remove_wipes_even_while_handles_live() {
        let db = std::sync::Arc::new(db());
        let kept = db.clone();
        let backend = db.backend();
        let mut a = backend.connect().await.expect("connect");
        ok(&mut a, "CREATE TABLE t (id integer PRIMARY KEY)", &[]).await;
        let dir = db.path().parent().expect("a directory").to_owned();
        db.remove();
        assert!(!dir.exists());
        assert!(a.execute("SELECT 1", &[]).await.is_err());
        db.set_down(false);
        assert!(backend.connect().await.is_err(), "no resurrection as an empty database");
        assert!(kept.dump().is_err());
    }

    #[test]
    fn dead_processes_leftovers_are_swept() {
        let parent = std::env::temp_dir().join(format!("barista-sweep-test-{}", std::process::id()));
        // pid_max is at most 2^22 on Linux: no process has this pid.
        let dead = parent.join(format!("{DIR_PREFIX}999999999"));
        let old_layout = parent.join(format!("{DIR_PREFIX}999999998-3"));
        let alive = parent.join(format!("{DIR_PREFIX}{}", std::process::id()));
        for dir in [&dead, &old_layout, &alive] {
            std::fs::create_dir_all(dir).expect("create dir");
        }
        sweep_dead(&parent);
        let linux = Path::new("/proc/self").exists();
        assert_eq!(dead.exists(), !linux);
        assert_eq!(old_layout.exists(), !linux);
        assert!(alive.exists());
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[tokio::test]
    async fn dump_is_canonical_and_reads_committed_data_only() {
        let (x, y) = (db(), db());
        for (db, order) in [(&x, [3, 1, 2]), (&y, [2, 3, 1])] {
            let mut s = db.backend().connect().await.expect("connect");
            ok(&mut s, "CREATE TABLE b (id integer PRIMARY KEY, v text)", &[]).await;
            ok(&mut s, "CREATE TABLE a (v text)", &[]).await;
            for id in order {
                ok(&mut s, "INSERT INTO b VALUES ($1, $2)", &[SqlValue::Int(id), SqlValue::Text(format!("v{id}"))])
                    .await;
                ok(&mut s, "INSERT INTO a VALUES ($1)", &[SqlValue::Text(format!("a{id}"))]).await;
            }
        }
        let mut open = x.backend().connect().await.expect("connect");
        ok(&mut open, "BEGIN", &[]).await;
        ok(&mut open, "INSERT INTO a VALUES ('uncommitted')", &[]).await;
        let (dx, dy) = (x.dump().expect("dump"), y.dump().expect("dump"));
        assert_eq!(dx, dy);
        assert_eq!(dx.checksum(), dy.checksum());
        assert_eq!(dx.tables.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(dx.rows("b")[0], vec![SqlValue::Int(1), SqlValue::Text("v1".into())]);
        ok(&mut open, "COMMIT", &[]).await;
        assert_ne!(x.dump().expect("dump").checksum(), dy.checksum());
    }

    #[tokio::test]
    async fn types_and_counts_look_like_postgresql() {
        let db = db();
        let mut s = db.backend().connect().await.expect("connect");
        let created =
            ok(&mut s, "CREATE TABLE t (id integer, n bigint, f double precision, s varchar(10), ok boolean)", &[])
                .await;
        assert_eq!(created.rows_affected, 0);
        ok(&mut s, "INSERT INTO t VALUES (1, 2, 0.5, 'x', $1)", &[SqlValue::Bool(true)]).await;
        // DDL after DML still reports 0, not the previous statement's count.
        assert_eq!(ok(&mut s, "CREATE INDEX t_n ON t (n)", &[]).await.rows_affected, 0);
        let rs = ok(&mut s, "SELECT id, n, f, s, ok, id + 1 AS next FROM t", &[]).await;
        let types: Vec<&str> = rs.columns.iter().map(|c| c.type_name.as_str()).collect();
        assert_eq!(types, ["int4", "int8", "float8", "varchar", "bool", "int8"]);
        assert_eq!(rs.rows[0][4], SqlValue::Bool(true));
        assert!(matches!(s.execute("SELECT 1; SELECT 2", &[]).await, Ok(Err(e)) if e.sqlstate == "42601"));
        assert!(matches!(s.execute("SAVEPOINT x", &[]).await, Ok(Err(e)) if e.sqlstate == "25P01"));
    }
}
