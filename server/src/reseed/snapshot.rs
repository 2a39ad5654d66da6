//! The source's snapshot: an exported REPEATABLE READ snapshot, AP as it records it, and the
//! state outside MVCC (sequences, roles) as of the same point.
//!
//! # Sequences
//! A sequence's state is not versioned: `nextval` is never rolled back, and `pg_dump` writes each
//! sequence's value as it reads it, after the snapshot. Replay reproduces a draw only if the
//! snapshot lacks the record of the command that made it. So the sequences must be read at a
//! moment when every draw the executor made belongs to a command whose effects and outcome are
//! committed (or whose transaction's end moved the durable position past it), and none is made
//! between the snapshot and the read. To catch the executor at such a moment, one connection
//! takes `EXCLUSIVE` on `sqlpaxoslog` (reads go on), and another watches `pg_locks`. Every
//! transaction in which the executor runs client statements takes `ROW EXCLUSIVE` on
//! `sqlpaxoslog` right after its `BEGIN` (`SqlSession::BEGIN_LOCK`), and its bookkeeping
//! transactions take it when they move AP; so the lock is granted between two of them, and the
//! executor's next one waits for it. Then either
//! - *frozen*: the executor waits for the lock on a connection that holds no lock on any table
//!   or sequence (at the start of a transaction, or moving AP on its own after a slot: not with
//!   the record of a transaction's end, whose absence from the snapshot would make the target
//!   replay a rolled-back transaction and draw its values again), and no connection holds a
//!   sequence lock (a transaction that called `nextval` holds one until it ends); or
//! - *idle*: no connection of the database is anything but idle, and none changed state since the
//!   lock was taken (an executor that starts a transaction meanwhile waits for the lock, so it
//!   shows up as busy or waiting).
//!
//! Then the snapshot is exported, AP and every sequence read, the same condition checked again,
//! and the lock released. The executor waits only while that happens (the re-seed prints how
//! long: 20-90 ms in the tests on a busy two-core machine); a waiter inside a transaction is let
//! go at once, and if no moment comes within a second, the lock is released too and the attempt
//! repeated after a pause. A process that stalls between two statements for longer than the
//! idle check's settling time could fool the idle case; a healthy executor never does.
//!
//! # Roles
//! Roles are cluster-wide (`CREATE ROLE` goes through the log), so a database dump lacks them;
//! `pg_authid` is read in the snapshot (it is MVCC like any catalog), so the roles are those of
//! the snapshot's AP. Passwords are copied only when the source role is a superuser.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use barista_core::Slot;
use barista_runtime::postgres::string_literal;
use tokio_postgres::Client;

use super::connect;

/// Attempts to find a safe moment before giving up.
const ATTEMPTS: u32 = 60;
/// How long one attempt holds the lock waiting for such a moment.
const FREEZE_WAIT: Duration = Duration::from_secs(1);
/// How long the database must look idle before an idle moment is believed.
const IDLE_SETTLE: Duration = Duration::from_millis(50);
/// Pause between two polls of `pg_locks`.
const POLL: Duration = Duration::from_millis(2);
/// The first pause between attempts; it doubles up to [`BACKOFF_MAX`].
const BACKOFF: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// A role as of the snapshot.
#[derive(Clone, Debug)]
pub(super) struct Role {
    pub name: String,
    /// `SUPERUSER INHERIT LOGIN ...`: its attributes as `CREATE ROLE` options.
    pub options: String,
    /// The stored password hash, if the source role may read it.
    pub password: Option<String>,
}

/// `role` is granted to `member`.
#[derive(Clone, Debug)]
pub(super) struct Membership {
    pub role: String,
    pub member: String,
    pub admin: bool,
}

/// A sequence's state at the snapshot: `setval(name, last_value, is_called)` restores it.
#[derive(Clone, Debug)]
pub(super) struct Sequence {
    /// Schema-qualified, quoted as an identifier.
    pub name: String,
    pub last_value: i64,
    pub is_called: bool,
}

/// An exported snapshot of the source, held open until [`Snapshot::finish`].
pub(super) struct Snapshot {
    /// The connection whose transaction holds the snapshot.
    client: Client,
    /// The `pg_export_snapshot()` id, for `pg_dump --snapshot`.
    pub id: String,
    /// AP in the snapshot.
    pub applied: Slot,
    /// Commands of slot `applied + 1` already applied (a transaction ended inside it).
    pub commands_done: i64,
    /// Tables in the snapshot (the progress bar's length).
    pub tables: u64,
    pub sequences: Vec<Sequence>,
    pub roles: Vec<Role>,
    pub memberships: Vec<Membership>,
    /// How the moment was found, for the narration.
    pub moment: String,
}

impl Snapshot {
    /// Ends the snapshot's transaction (after `pg_dump` is done with it).
    pub async fn finish(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// What `pg_locks` and `pg_stat_activity` say.
#[derive(Debug, PartialEq, Eq)]
struct Observation {
    /// Connections waiting to update `sqlpaxoslog` (not, say, another re-seed waiting for its
    /// own `EXCLUSIVE` lock: that one shows up as busy).
    waiters: i64,
    /// The first of them.
    waiter: Option<i32>,
    /// Table and sequence locks the waiters hold.
    waiter_locks: i64,
    /// Sequence locks held by others: transactions that drew from a sequence and have not ended.
    sequence_locks: i64,
    /// Other connections not idle, or whose state changed since the lock was taken.
    busy: i64,
}

impl Observation {
    /// The executor waits for the lock between two transactions, with no draw outstanding
    /// anywhere.
    fn frozen(&self) -> Option<i32> {
        (self.waiters == 1 && self.waiter_locks == 0 && self.sequence_locks == 0).then_some(self.waiter).flatten()
    }

    /// Nothing runs, and nothing ran since the lock was taken.
    fn idle(&self) -> bool {
        self.waiters == 0 && self.sequence_locks == 0 && self.busy == 0
    }
}

const OBSERVE: &str = "
WITH db AS (SELECT oid FROM pg_database WHERE datname = current_database()),
waiters AS (
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM db) AND NOT l.granted
      AND l.relation = 'public.sqlpaxoslog'::regclass AND l.mode = 'RowExclusiveLock')
SELECT
    (SELECT count(*) FROM waiters),
    (SELECT min(pid) FROM waiters),
    (SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
     WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM db) AND l.granted
       AND l.pid IN (SELECT pid FROM waiters) AND c.relnamespace <> 'pg_catalog'::regnamespace),
    (SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
     WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM db) AND l.granted AND c.relkind = 'S'
       AND l.pid <> ALL($1::int4[])),
    (SELECT count(*) FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.backend_type = 'client backend' AND a.pid <> ALL($1::int4[])
       AND (a.state IS DISTINCT FROM 'idle' OR a.state_change >= $2::text::timestamptz))";

async fn observe(observer: &Client, ours: &[i32], since: &str) -> anyhow::Result<Observation> {
    let row = observer.query_one(OBSERVE, &[&ours, &since]).await.context("reading pg_locks on the source")?;
    Ok(Observation {
        waiters: row.get(0),
        waiter: row.get(1),
        waiter_locks: row.get(2),
        sequence_locks: row.get(3),
        busy: row.get(4),
    })
}

/// Takes the snapshot of the source at `config` (see the module comment).
pub(super) async fn take(config: &tokio_postgres::Config) -> anyhow::Result<Snapshot> {
    let observer = connect(config, "the source database (--from-postgres)").await?;
    let barista: bool = observer
        .query_one("SELECT to_regclass('public.sqlpaxoslog') IS NOT NULL", &[])
        .await
        .context("reading the source database's catalog")?
        .get(0);
    if !barista {
        bail!("the source database has no public.sqlpaxoslog: it is not a Barista replica's database");
    }
    let mut backoff = BACKOFF;
    for _ in 0..ATTEMPTS {
        if let Some(snapshot) = attempt(config, &observer).await? {
            return Ok(snapshot);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    bail!(
        "the source's executor was never between transactions with no sequence draw outstanding in \
         {ATTEMPTS} attempts: a client transaction that draws from a sequence may be held open; retry when it ends"
    )
}

async fn pid(client: &Client) -> anyhow::Result<i32> {
    Ok(client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
}

/// One attempt: `None` if no safe moment was found.
async fn attempt(config: &tokio_postgres::Config, observer: &Client) -> anyhow::Result<Option<Snapshot>> {
    let lock = connect(config, "the source database (--from-postgres)").await?;
    let client = connect(config, "the source database (--from-postgres)").await?;
    let ours = [pid(observer).await?, pid(&lock).await?, pid(&client).await?];
    // Bounded: an open client transaction that updated AP holds a conflicting lock until it ends.
    lock.batch_execute("SET lock_timeout = '1s'; BEGIN").await?;
    if let Err(e) = lock.batch_execute("LOCK TABLE public.sqlpaxoslog IN EXCLUSIVE MODE").await {
        if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Ok(None);
        }
        return Err(e).context("locking public.sqlpaxoslog on the source");
    }
    let locked = Instant::now();
    let since: String = lock.query_one("SELECT clock_timestamp()::text", &[]).await?.get(0);
    let frozen = loop {
        let seen = observe(observer, &ours, &since).await?;
        if let Some(waiter) = seen.frozen() {
            break Some(waiter);
        }
        if seen.waiters > 0 {
            // Waiting inside a transaction: it cannot move on while the lock is held, so let it go
            // and try again once it has.
            return Ok(None);
        }
        if seen.idle() && locked.elapsed() >= IDLE_SETTLE {
            break None;
        }
        if locked.elapsed() > FREEZE_WAIT {
            return Ok(None); // dropping `lock` ends its transaction
        }
        tokio::time::sleep(POLL).await;
    };

    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let id: String = client.query_one("SELECT pg_export_snapshot()", &[]).await?.get(0);
    let row = client
        .query_one("SELECT lastseqnum, commands_done FROM public.sqlpaxoslog WHERE id = 1", &[])
        .await
        .context("reading AP in the snapshot")?;
    let (applied, commands_done): (i64, i64) = (row.get(0), row.get(1));
    let sequences = sequences(&client).await?;
    let seen = observe(observer, &ours, &since).await?;
    let paused = locked.elapsed();
    drop(lock); // releases the executor
    let (still, moment) = match frozen {
        Some(waiter) => (
            seen.frozen() == Some(waiter),
            format!("taken while the source's executor waited {} ms between two transactions", paused.as_millis()),
        ),
        None => (seen.idle(), "taken while the source was idle".to_string()),
    };
    if !still {
        return Ok(None);
    }
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'",
            &[],
        )
        .await?
        .get(0);
    let (roles, memberships) = roles(&client).await?;
    Ok(Some(Snapshot {
        client,
        id,
        applied: applied as Slot,
        commands_done,
        tables: tables as u64,
        sequences,
        roles,
        memberships,
        moment,
    }))
}

/// Every sequence outside the system schemas, as it is now (sequences are read unversioned).
async fn sequences(client: &Client) -> anyhow::Result<Vec<Sequence>> {
    let names = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1",
            &[],
        )
        .await
        .context("listing the source's sequences")?;
    let mut sequences = Vec::with_capacity(names.len());
    for row in names {
        let name: String = row.get(0);
        let state = client
            .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
            .await
            .with_context(|| format!("reading sequence {name}"))?;
        sequences.push(Sequence { name, last_value: state.get(0), is_called: state.get(1) });
    }
    Ok(sequences)
}

/// The roles made after `initdb` (object ids from 16384 on) and their memberships.
async fn roles(client: &Client) -> anyhow::Result<(Vec<Role>, Vec<Membership>)> {
    let superuser: bool =
        client.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await?.get(0);
    let (table, password) = if superuser { ("pg_authid", "rolpassword") } else { ("pg_roles", "NULL::text") };
    let rows = client
        .query(
            &format!(
                "SELECT rolname::text, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, \
                 rolbypassrls, rolconnlimit, rolvaliduntil::text, {password} FROM {table} WHERE oid >= 16384 ORDER BY oid"
            ),
            &[],
        )
        .await
        .context("reading the source's roles")?;
    let roles = rows
        .iter()
        .map(|r| {
            let flag = |i: usize, yes: &str| if r.get::<_, bool>(i) { yes.to_string() } else { format!("NO{yes}") };
            let mut options = [(1, "SUPERUSER"), (2, "INHERIT"), (3, "CREATEROLE"), (4, "CREATEDB"), (5, "LOGIN")]
                .iter()
                .chain(&[(6, "REPLICATION"), (7, "BYPASSRLS")])
                .map(|(i, yes)| flag(*i, yes))
                .collect::<Vec<_>>()
                .join(" ");
            options.push_str(&format!(" CONNECTION LIMIT {}", r.get::<_, i32>(8)));
            if let Some(until) = r.get::<_, Option<String>>(9) {
                options.push_str(&format!(" VALID UNTIL {}", string_literal(&until)));
            }
            Role { name: r.get(0), options, password: r.get(10) }
        })
        .collect();
    let members = client
        .query(
            "SELECT r.rolname::text, m.rolname::text, am.admin_option FROM pg_auth_members am \
             JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member \
             WHERE am.member >= 16384 ORDER BY 1, 2",
            &[],
        )
        .await
        .context("reading the source's role memberships")?
        .iter()
        .map(|r| Membership { role: r.get(0), member: r.get(1), admin: r.get(2) })
        .collect();
    Ok((roles, members))
}
