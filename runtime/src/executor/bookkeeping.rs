//! Barista's own tables inside each replica's database, and the SQL that maintains them.
//!
//! - `sqlpaxoslog(lastseqnum, commands_done)`: AP, the last slot whose effects are committed, and
//!   how many commands of the next slot are (non-zero only after a transaction ended in the
//!   middle of a slot: its end is a point the replica must never replay across). Written in the
//!   same transaction as the slot's work, so after a crash the database says exactly where to
//!   resume.
//! - `barista_sessions(conn, request_seq, outcome, state)`: per replicated connection, the outcome
//!   of its last request, written in the same transaction as the request's effects, and whether
//!   the session is open, closed, or holds a transaction aborted by the idle timeout. A retried request
//!   finds its outcome here instead of running twice; a replica replaying after a crash skips the
//!   commands whose effects it already committed.
//! - `barista_checks(slot, replica, report)`: the divergence checks' reports (see
//!   [`crate::verify`]), written as each `ChecksumReport` is applied, so the verdict on this
//!   replica survives a restart. The most recent checks only.
//!
//! The SQL is the common subset of PostgreSQL and SQLite (the simulation's stand-in).

use crate::command::ConnId;
use crate::sql::{BackendFault, OwnWrite, SqlError, SqlSession, SqlValue};
use crate::verify::{Checks, Coverage, DatabaseDigest};
use barista_core::{NodeId, Slot};

use super::outcome::Outcome;

/// The statements below name Barista's tables as `{schema}name`; [`run`] fills in the session's
/// [`SqlSession::BOOKKEEPING_SCHEMA`].
pub(crate) const CREATE: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS {schema}sqlpaxoslog \
     (id integer PRIMARY KEY, lastseqnum bigint NOT NULL, commands_done bigint NOT NULL)",
    "INSERT INTO {schema}sqlpaxoslog (id, lastseqnum, commands_done) VALUES (1, 0, 0) ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS {schema}barista_sessions \
     (conn bigint PRIMARY KEY, request_seq bigint NOT NULL, outcome bytea NOT NULL, state smallint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}barista_checks \
     (slot bigint NOT NULL, replica integer NOT NULL, report bytea NOT NULL, PRIMARY KEY (slot, replica))",
];

/// What a divergence checksum reads of Barista's own tables (every other table is read whole).
/// `sqlpaxoslog` is a position, equal by construction where a check runs; `outcome` records read
/// results, which may legitimately differ between replicas (row order, `random()` in a read: only
/// the serving replica's answer reaches the client); `barista_checks` are the checks themselves.
pub const CHECKSUM_COVERAGE: [(&str, Coverage); 4] = [
    ("sqlpaxoslog", Coverage::Skip),
    ("barista_sessions", Coverage::Columns(&["conn", "request_seq", "state"])),
    ("barista_checks", Coverage::Skip),
    // The DDL epoch of the PostgreSQL backend's statement cache: it counts each server's own setup too.
    ("barista_ddl_epoch", Coverage::Skip),
];

const READ_AP: &str = "SELECT lastseqnum, commands_done FROM {schema}sqlpaxoslog WHERE id = 1";
const WRITE_POSITION: &str = "UPDATE {schema}sqlpaxoslog SET lastseqnum = $1, commands_done = $2 WHERE id = 1";
const RECORD_CHECK: &str =
    "INSERT INTO {schema}barista_checks (slot, replica, report) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const FORGET_CHECKS: &str = "DELETE FROM {schema}barista_checks WHERE slot < $1";
const READ_CHECKS: &str = "SELECT slot, replica, report FROM {schema}barista_checks ORDER BY slot, replica";
const READ_SESSIONS: &str = "SELECT conn, request_seq, outcome, state FROM {schema}barista_sessions";
const RECORD: &str = "INSERT INTO {schema}barista_sessions (conn, request_seq, outcome, state) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (conn) DO UPDATE SET request_seq = excluded.request_seq, outcome = excluded.outcome, state = excluded.state";

/// The `state` column of `barista_sessions`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SessionState {
    Closed = 0,
    Open = 1,
    /// Its transaction was rolled back by the idle timeout; until the client rolls back, every
    /// statement fails, as in a PostgreSQL transaction aborted by an error.
    IdleAborted = 2,
}

impl SessionState {
    fn from_sql(value: &SqlValue) -> SessionState {
        match value {
            SqlValue::Int(1) => SessionState::Open,
            SqlValue::Int(2) => SessionState::IdleAborted,
            _ => SessionState::Closed,
        }
    }
}

/// One row of `barista_sessions`.
pub(crate) struct SessionRecord {
    pub(crate) conn: ConnId,
    pub(crate) request_seq: u64,
    pub(crate) outcome: Outcome,
    pub(crate) state: SessionState,
}

/// Runs bookkeeping SQL, where a statement error means the schema is not what Barista wrote:
/// a replica fault, not a client-visible result.
pub(crate) async fn run<S: SqlSession>(
    session: &mut S,
    sql: &str,
    params: &[SqlValue],
) -> Result<crate::sql::ResultSet, BackendFault> {
    let sql = sql.replace("{schema}", S::BOOKKEEPING_SCHEMA);
    session.execute(&sql, params).await?.map_err(|e: SqlError| BackendFault(format!("bookkeeping `{sql}`: {e}")))
}

/// Runs one of the writes below ([`SqlSession::write_own`]: one round trip on PostgreSQL).
async fn write<S: SqlSession>(session: &mut S, sql: &str, params: &[SqlValue]) -> Result<(), BackendFault> {
    let sql = sql.replace("{schema}", S::BOOKKEEPING_SCHEMA);
    session.write_own(&sql, params).await?.map_err(|e: SqlError| BackendFault(format!("bookkeeping `{sql}`: {e}")))
}

pub(crate) async fn create<S: SqlSession>(session: &mut S) -> Result<(), BackendFault> {
    for sql in CREATE {
        run(session, sql, &[]).await?;
    }
    Ok(())
}

/// Whether Barista's tables are in this database (it served as a replica before), creating
/// nothing.
pub(crate) async fn exists<S: SqlSession>(session: &mut S) -> Result<bool, BackendFault> {
    let sql = READ_AP.replace("{schema}", S::BOOKKEEPING_SCHEMA);
    match session.execute(&sql, &[]).await? {
        Ok(_) => Ok(true),
        Err(e) if e.sqlstate == "42P01" => Ok(false), // undefined_table
        Err(e) => Err(BackendFault(format!("bookkeeping `{sql}`: {e}"))),
    }
}

/// AP and how many commands of slot AP + 1 are applied.
pub(crate) async fn read_ap<S: SqlSession>(session: &mut S) -> Result<(Slot, usize), BackendFault> {
    let rs = run(session, READ_AP, &[]).await?;
    match rs.rows.first().map(Vec::as_slice) {
        Some([SqlValue::Int(ap), SqlValue::Int(done)]) => Ok((*ap as Slot, *done as usize)),
        other => Err(BackendFault(format!("sqlpaxoslog holds no AP (found {other:?})"))),
    }
}

/// Slot `slot` is applied, all of it.
pub(crate) async fn write_ap<S: SqlSession>(session: &mut S, slot: Slot) -> Result<(), BackendFault> {
    write_position(session, slot, 0).await
}

/// Every slot through `slot` is applied, and the first `commands_done` commands of the next one.
pub(crate) async fn write_position<S: SqlSession>(
    session: &mut S,
    slot: Slot,
    commands_done: usize,
) -> Result<(), BackendFault> {
    write(session, WRITE_POSITION, &position_params(slot, commands_done)).await
}

fn position_params(slot: Slot, commands_done: usize) -> [SqlValue; 2] {
    [SqlValue::Int(slot as i64), SqlValue::Int(commands_done as i64)]
}

pub(crate) async fn read_sessions<S: SqlSession>(session: &mut S) -> Result<Vec<SessionRecord>, BackendFault> {
    let rs = run(session, READ_SESSIONS, &[]).await?;
    rs.rows
        .iter()
        .map(|row| match row.as_slice() {
            [SqlValue::Int(conn), SqlValue::Int(seq), SqlValue::Bytes(outcome), state] => Ok(SessionRecord {
                conn: ConnId(*conn as u64),
                request_seq: *seq as u64,
                outcome: Outcome::decode(outcome),
                state: SessionState::from_sql(state),
            }),
            other => Err(BackendFault(format!("unexpected barista_sessions row {other:?}"))),
        })
        .collect()
}

/// What follows the writes of [`record_at`].
pub(crate) enum Then {
    /// `COMMIT`, in the same round trip on PostgreSQL; the result is the `COMMIT`'s.
    Commit,
    /// Nothing: the writes are inside a client transaction, durable with its commit.
    StayOpen,
}

/// [`record`], with the durable position moved to `position` when given (see
/// [`write_position`]), and then `then`: one round trip on PostgreSQL.
pub(crate) async fn record_at<S: SqlSession>(
    session: &mut S,
    conn: ConnId,
    request_seq: u64,
    outcome: &Outcome,
    state: SessionState,
    position: Option<(Slot, usize)>,
    then: Then,
) -> Result<Result<(), SqlError>, BackendFault> {
    let writes = record_writes::<S>(conn, request_seq, outcome, state, position);
    match then {
        Then::Commit => session.write_own_and_commit(&borrowed(&writes)).await,
        Then::StayOpen => session.write_own_all(&borrowed(&writes)).await,
    }
}

/// The writes of a record and, when given, of the durable position, for `S`'s schema.
fn record_writes<S: SqlSession>(
    conn: ConnId,
    request_seq: u64,
    outcome: &Outcome,
    state: SessionState,
    position: Option<(Slot, usize)>,
) -> Vec<(String, Vec<SqlValue>)> {
    let schema = |sql: &str| sql.replace("{schema}", S::BOOKKEEPING_SCHEMA);
    // `Vec::from` moves the parameters (the encoded outcome may be large); `to_vec` would copy.
    let mut writes = vec![(schema(RECORD), Vec::from(record_params(conn, request_seq, outcome, state)))];
    if let Some((slot, commands_done)) = position {
        writes.push((schema(WRITE_POSITION), Vec::from(position_params(slot, commands_done))));
    }
    writes
}

/// The records of a slot transaction's statements (see `slot_txn`), the durable position
/// `position` with the last of them, and `COMMIT`: one round trip on PostgreSQL.
pub(crate) async fn record_all_and_commit<S: SqlSession>(
    session: &mut S,
    records: &[(ConnId, u64, &Outcome)],
    position: (Slot, usize),
) -> Result<Result<(), SqlError>, BackendFault> {
    let writes: Vec<_> = records
        .iter()
        .enumerate()
        .flat_map(|(i, &(conn, request_seq, outcome))| {
            let position = (i + 1 == records.len()).then_some(position);
            record_writes::<S>(conn, request_seq, outcome, SessionState::Open, position)
        })
        .collect();
    session.write_own_and_commit(&borrowed(&writes)).await
}

fn borrowed(writes: &[(String, Vec<SqlValue>)]) -> Vec<OwnWrite<'_>> {
    writes.iter().map(|(sql, params)| (sql.as_str(), params.as_slice())).collect()
}

fn record_params(conn: ConnId, request_seq: u64, outcome: &Outcome, state: SessionState) -> [SqlValue; 4] {
    [
        SqlValue::Int(conn.0 as i64),
        SqlValue::Int(request_seq as i64),
        SqlValue::Bytes(outcome.encode()),
        SqlValue::Int(state as i64),
    ]
}

pub(crate) async fn record<S: SqlSession>(
    session: &mut S,
    conn: ConnId,
    request_seq: u64,
    outcome: &Outcome,
    state: SessionState,
) -> Result<(), BackendFault> {
    write(session, RECORD, &record_params(conn, request_seq, outcome, state)).await
}

/// Records `replica`'s report for the check at `check` (the first one wins, as in [`Checks`]).
pub(crate) async fn record_check<S: SqlSession>(
    session: &mut S,
    check: Slot,
    replica: NodeId,
    digest: &DatabaseDigest,
) -> Result<(), BackendFault> {
    // Serializing plain data into a Vec cannot fail.
    let report = postcard::to_allocvec(digest).unwrap_or_default();
    let params = [SqlValue::Int(check as i64), SqlValue::Int(i64::from(replica)), SqlValue::Bytes(report)];
    write(session, RECORD_CHECK, &params).await
}

/// Deletes the reports of checks before `oldest_kept`.
pub(crate) async fn forget_checks<S: SqlSession>(session: &mut S, oldest_kept: Slot) -> Result<(), BackendFault> {
    write(session, FORGET_CHECKS, &[SqlValue::Int(oldest_kept as i64)]).await
}

/// The recorded reports. A report this build cannot read is left out (it would only be one
/// replica's digest of an old check).
pub(crate) async fn read_checks<S: SqlSession>(session: &mut S) -> Result<Checks, BackendFault> {
    let rs = run(session, READ_CHECKS, &[]).await?;
    let mut checks = Checks::default();
    for row in &rs.rows {
        match row.as_slice() {
            [SqlValue::Int(slot), SqlValue::Int(replica), SqlValue::Bytes(report)] => {
                if let Ok(digest) = postcard::from_bytes(report) {
                    checks.record(*slot as Slot, *replica as NodeId, digest);
                }
            }
            other => return Err(BackendFault(format!("unexpected barista_checks row {other:?}"))),
        }
    }
    Ok(checks)
}
