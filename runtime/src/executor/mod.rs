//! The executor: applies decided slots, in order, to this replica's database.
//!
//! Every replica runs every command; the one that took the client's request answers with its own
//! outcome. What keeps replicas identical and retries harmless:
//! - slots are applied strictly in order, and a slot is never skipped: a [`BackendFault`] stops the
//!   executor at that slot, and the caller calls [`Executor::recover`] and feeds it again from
//!   [`Executor::applied`] + 1;
//! - a slot's autocommit statements run in one transaction, the slot transaction, each in a
//!   savepoint, with their records (see `slot_txn`); other commands commit it first;
//! - AP (`sqlpaxoslog`) is written in the same transaction as the slot's work: in the slot
//!   transaction's commit, or in the commit of the slot's last command when that is another
//!   autocommit one (the last statement of a batch), with the record of the slot's last command
//!   inside the open client transaction
//!   (so it becomes durable with that transaction's `COMMIT`, and rolls back with it), or on its
//!   own after the slot's other work; the command that ends a transaction also moves AP to just
//!   past itself in the same transaction (past the slot when it is the slot's last), so a replay
//!   never starts inside a transaction that has durably ended (where commands that were busy
//!   would run);
//! - commits need not be on disk when a slot is answered: the replicated log holds the slot, and
//!   a database that crashes comes back at an earlier AP and applies the rest again. So
//!   PostgreSQL commits asynchronously, and [`Executor::flush`] waits for the disk once for many
//!   slots; only flushed slots count as `Done` ([`Executor::durable`]), which lets the log forget
//!   them;
//! - each request's outcome is written in the same transaction as its effects, so a retried or
//!   replayed `(conn, request_seq)` returns the recorded outcome and runs nothing;
//! - which command may run is decided by [`policy`], from the log alone.
//!
//! A divergence check (`Checksum`) digests the database where it stands in the log; the node takes
//! the digests with [`Executor::take_digests`] and proposes them as reports, which the executor
//! records in [`Executor::checks`] (see [`crate::verify`]).

mod bookkeeping;
pub mod outcome;
pub mod policy;
mod read;
mod slot_txn;

use std::collections::BTreeMap;

use barista_core::{Slot, Value};
use tracing::warn;

use crate::command::{ClientCommand, ConnId, Op, Statement};
use crate::determinism::{self, TxnTimestamp};
use crate::sql::{BackendFault, ResultSet, SqlBackend, SqlError, SqlSession};
use crate::verify::{Checks, DatabaseDigest};
pub use bookkeeping::CHECKSUM_COVERAGE;
use bookkeeping::{SessionState, Then};
pub use outcome::Outcome;
use policy::Admission;
pub use read::one_statement;
use slot_txn::SlotTxn;

/// The outcome of one command of an applied slot, for the replica that waits to answer it.
#[derive(Clone, PartialEq, Debug)]
pub struct Applied {
    /// The session.
    pub conn: ConnId,
    /// The request.
    pub request_seq: u64,
    /// What it produced.
    pub outcome: Outcome,
}

/// An explicit transaction's state in a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Txn {
    None,
    Open {
        /// The transaction's timestamp: what `now()` means in it, on every replica.
        timestamp_us: i64,
        /// A statement failed: everything but `ROLLBACK` fails until the end of the block.
        failed: bool,
    },
}

struct Session<S> {
    /// The session's own database connection, made on first use.
    db: Option<S>,
    /// Sequence and outcome of the last request: the exactly-once record.
    last: Option<(u64, Outcome)>,
    txn: Txn,
    state: SessionState,
    /// The last request answered by a read outside the log (see `read`), if later than `last`.
    read_seq: Option<u64>,
    /// When the session's last applied command was proposed (its timestamp in the log); unknown
    /// after a restart.
    logged_us: Option<i64>,
}

impl<S> Session<S> {
    fn new(last: Option<(u64, Outcome)>, state: SessionState) -> Session<S> {
        Session { db: None, last, txn: Txn::None, state, read_seq: None, logged_us: None }
    }
}

/// The SQLSTATE PostgreSQL uses for "current transaction is aborted".
const IN_FAILED_TXN: &str = "25P02";

/// Applies the decided log to one replica's database.
pub struct Executor<B: SqlBackend> {
    backend: B,
    /// Bookkeeping connection: AP and session records outside client transactions.
    book: B::Session,
    sessions: BTreeMap<ConnId, Session<B::Session>>,
    /// The session holding the cluster's one open transaction.
    open_txn: Option<ConnId>,
    /// AP as committed in the database: visible, but maybe not yet on disk (see
    /// [`Executor::flush`]).
    committed_ap: Slot,
    /// AP as of the last flush: on disk, so a crash of the database cannot take it back. This is
    /// the replica's `Done`.
    flushed_ap: Slot,
    /// AP written inside the open transaction, durable at its commit.
    pending_ap: Slot,
    /// Every slot up to here was executed (maybe not yet durable, inside an open transaction).
    executed: Slot,
    /// A fault interrupted `apply` or `recover`: the in-memory state may be half updated (or, after
    /// a failed `recover`, empty while AP is not), so `apply` refuses until `recover` succeeds.
    /// Without this, a caller that applied on after a failed `recover` would find every session
    /// unknown, reject their commands, and advance AP durably past work it never did.
    faulted: bool,
    /// The command being applied: its slot and its index in the slot.
    cursor: (Slot, usize),
    /// How many commands the slot being applied has.
    slot_len: usize,
    /// Commands of slot `executed + 1` already applied durably (the end of a transaction in the
    /// middle of a slot), as loaded from the database: the next `apply` answers them from the
    /// records instead of running them again.
    skip: usize,
    /// The divergence checks' reports, as recorded in `barista_checks`.
    checks: Checks,
    /// Digests computed by `Checksum` commands, by check slot, until the node takes them.
    digests: Vec<(Slot, DatabaseDigest)>,
    /// The determinism checks of the statement texts seen (the same answers as
    /// [`determinism::check`], without parsing a text again).
    memo: determinism::Memo,
    /// The slot's autocommit statements run so far, uncommitted (see `slot_txn`).
    slot_txn: Option<SlotTxn>,
    /// Statements run again each on its own, after their slot transaction failed to commit.
    alone: bool,
}

impl<B: SqlBackend> Executor<B> {
    /// Connects, creates the bookkeeping tables if this is a fresh database, and loads AP and the
    /// session records.
    pub async fn open(backend: B) -> Result<Executor<B>, BackendFault> {
        let mut book = backend.connect().await?;
        bookkeeping::create(&mut book).await?;
        // On disk before anything is applied: a database that lost its bookkeeping to a power
        // failure would look wiped, and the replica would refuse to serve until re-seeded.
        book.flush().await?;
        let mut executor = Executor {
            backend,
            book,
            sessions: BTreeMap::new(),
            open_txn: None,
            committed_ap: 0,
            flushed_ap: 0,
            pending_ap: 0,
            executed: 0,
            faulted: false,
            cursor: (0, 0),
            slot_len: 0,
            skip: 0,
            checks: Checks::default(),
            digests: Vec::new(),
            memo: determinism::Memo::default(),
            slot_txn: None,
            alone: false,
        };
        executor.load().await?;
        Ok(executor)
    }

    /// Whether `backend`'s database holds Barista's bookkeeping already, i.e. it served as this
    /// replica before; creates nothing (see `Node::start`, which tells a brand-new replica from
    /// one that lost its acceptor state by it).
    pub async fn ran_before(backend: &B) -> Result<bool, BackendFault> {
        let mut book = backend.connect().await?;
        bookkeeping::exists(&mut book).await
    }

    /// Drops every connection (the database aborts their open transactions) and reloads AP and
    /// the session records: the state the database committed. Feed slots again from
    /// [`Executor::applied`] + 1.
    pub async fn recover(&mut self) -> Result<(), BackendFault> {
        self.faulted = true;
        self.sessions.clear();
        self.slot_txn = None; // rolled back with the connection it was open on
        self.alone = false;
        self.digests.clear(); // their slots are applied again
        self.book = self.backend.connect().await?;
        self.load().await?;
        self.faulted = false;
        Ok(())
    }

    async fn load(&mut self) -> Result<(), BackendFault> {
        (self.committed_ap, self.skip) = bookkeeping::read_ap(&mut self.book).await?;
        // What a crash of the database could still take back is made durable before it counts
        // as `Done`: after a restart of the replica process alone, commits that were not yet on
        // disk are visible here.
        self.book.flush().await?;
        self.flushed_ap = self.committed_ap;
        self.pending_ap = self.committed_ap;
        self.executed = self.committed_ap;
        self.open_txn = None;
        self.sessions = bookkeeping::read_sessions(&mut self.book)
            .await?
            .into_iter()
            .map(|r| (r.conn, Session::new(Some((r.request_seq, r.outcome)), r.state)))
            .collect();
        self.checks = bookkeeping::read_checks(&mut self.book).await?;
        Ok(())
    }

    /// The divergence checks' reports applied so far (the most recent checks).
    pub fn checks(&self) -> &Checks {
        &self.checks
    }

    /// The digests computed by the checks applied since the last call, by check slot: this
    /// replica's reports to propose.
    pub fn take_digests(&mut self) -> Vec<(Slot, DatabaseDigest)> {
        std::mem::take(&mut self.digests)
    }

    /// AP: every slot through this one is committed in the database (a crash of the database
    /// may still take back what [`Executor::flush`] has not made durable; the log has it).
    pub fn applied(&self) -> Slot {
        self.committed_ap
    }

    /// AP as of the last [`Executor::flush`]: every slot through this one is on disk. This is the
    /// replica's `Done`, which lets the other replicas forget the slots: it must never count a
    /// slot that the database could lose, since no log would hold it any more.
    pub fn durable(&self) -> Slot {
        self.flushed_ap
    }

    /// Makes every commit so far durable, and so [`Executor::applied`] the new
    /// [`Executor::durable`]. Slots are applied with asynchronous commits (see
    /// [`SqlSession::flush`]): what a client is answered from is safe in the replicated log, and
    /// a database that crashes before the flush comes back at an earlier AP and replays the
    /// rest, which the log still holds because `Done` never passed the flushed AP. One flush
    /// covers every commit before it, on every connection: a group commit.
    pub async fn flush(&mut self) -> Result<(), BackendFault> {
        if self.committed_ap > self.flushed_ap {
            let ap = self.committed_ap;
            self.book.flush().await?;
            self.flushed_ap = ap;
        }
        Ok(())
    }

    /// Every slot through this one was executed; those above [`Executor::applied`] are inside the
    /// open transaction.
    pub fn executed(&self) -> Slot {
        self.executed
    }

    /// The session holding the open transaction, if any.
    pub fn open_transaction(&self) -> Option<ConnId> {
        self.open_txn
    }

    /// The sequence of the last request `conn` ran (what an idle-abort must name).
    pub fn last_request(&self, conn: ConnId) -> Option<u64> {
        self.sessions.get(&conn).and_then(|s| s.last.as_ref()).map(|(seq, _)| *seq)
    }

    /// Applies `slot`, which must be [`Executor::executed`] + 1.
    pub async fn apply(&mut self, slot: Slot, value: &Value) -> Result<Vec<Applied>, BackendFault> {
        if slot != self.executed + 1 {
            return Err(BackendFault(format!("slot {slot} fed out of order (executed through {})", self.executed)));
        }
        if self.faulted {
            return Err(BackendFault("an earlier fault interrupted this executor: recover() first".into()));
        }
        // Cleared only when the whole slot is applied: any `?` below leaves it set.
        self.faulted = true;
        let skip = std::mem::take(&mut self.skip);
        let mut applied = Vec::with_capacity(value.commands().len());
        self.slot_len = value.commands().len();
        for (index, command) in value.commands().iter().enumerate() {
            self.cursor = (slot, index);
            match ClientCommand::decode(&command.payload) {
                Ok(cmd) => {
                    if self.slot_txn.is_some() && self.joins_slot_txn(&cmd).is_none() {
                        self.commit_slot_txn((slot - 1, index), value, &mut applied).await?;
                    }
                    let outcome = if index < skip { self.answer_applied(&cmd) } else { self.run(&cmd).await? };
                    // The client's own requests only: an idle abort's is another replica's clock.
                    let internal = matches!(cmd.op, Op::AbortIdle { .. } | Op::Checksum | Op::ChecksumReport { .. });
                    if let Some(session) = self.sessions.get_mut(&cmd.conn).filter(|_| !internal) {
                        session.logged_us = Some(cmd.timestamp_us);
                    }
                    applied.push(Applied { conn: cmd.conn, request_seq: cmd.request_seq, outcome });
                }
                // The same bytes are in every replica's log, so skipping them is deterministic.
                Err(e) => warn!(slot, origin = command.origin, "skipping undecodable command: {e}"),
            }
        }
        self.commit_slot_txn((slot, 0), value, &mut applied).await?;
        // The slot's last command may have moved AP already: in its own commit, in the slot
        // transaction's, or inside the open transaction.
        if self.committed_ap != slot && self.pending_ap != slot {
            self.write_ap(slot).await?;
        }
        self.executed = slot;
        self.faulted = false;
        Ok(applied)
    }

    async fn write_ap(&mut self, slot: Slot) -> Result<(), BackendFault> {
        if planted!(SkipApUpdate) {
            return Ok(());
        }
        match self.open_txn.and_then(|owner| self.sessions.get_mut(&owner).map(|s| (s.txn, &mut s.db))) {
            Some((Txn::Open { failed: false, .. }, Some(db))) => {
                // Rides in the open transaction: committed with it, rolled back with it.
                bookkeeping::write_ap(db, slot).await?;
                self.pending_ap = slot;
            }
            // A failed transaction can only roll back; AP stays where it was durably.
            Some(_) => {}
            None => {
                bookkeeping::write_ap(&mut self.book, slot).await?;
                self.committed_ap = slot;
                self.pending_ap = slot;
            }
        }
        Ok(())
    }

    /// The answer to a command that an earlier run of this slot applied durably (it comes before
    /// the end of a transaction recorded in the middle of the slot): from its record when it has
    /// one; otherwise it ran nothing then (it was busy, or refused), and running it now would
    /// decide it against a different state (the transaction is no longer open), so the client is
    /// told to retry, which is safe for a command that was not recorded.
    fn answer_applied(&self, cmd: &ClientCommand) -> Outcome {
        match cmd.op {
            Op::AbortIdle { .. } | Op::ChecksumReport { .. } => return Outcome::Done,
            // The state it digested is gone; the requester checks again.
            Op::Checksum => return Outcome::Busy,
            _ => {}
        }
        match self.sessions.get(&cmd.conn).and_then(|s| s.last.as_ref()) {
            Some((seq, outcome)) if *seq == cmd.request_seq => outcome.clone(),
            Some((seq, _)) if cmd.request_seq < *seq => Outcome::Rejected(format!(
                "request {} is older than the connection's last request {seq}",
                cmd.request_seq
            )),
            _ => Outcome::Busy,
        }
    }

    /// Runs one command, exactly once.
    async fn run(&mut self, cmd: &ClientCommand) -> Result<Outcome, BackendFault> {
        let conn = cmd.conn;
        match &cmd.op {
            Op::AbortIdle { since_request } => {
                self.abort_idle(conn, *since_request).await?;
                return Ok(Outcome::Done);
            }
            Op::Checksum => return self.checksum(conn, &cmd.op).await,
            Op::ChecksumReport { check, replica, digest } => {
                if policy::admit(self.open_txn, conn, &cmd.op) == Admission::Busy {
                    return Ok(Outcome::Busy);
                }
                bookkeeping::record_check(&mut self.book, *check, *replica, digest).await?;
                if let Some(oldest_kept) = self.checks.record(*check, *replica, digest.clone()) {
                    bookkeeping::forget_checks(&mut self.book, oldest_kept).await?;
                }
                return Ok(Outcome::Done);
            }
            _ => {}
        }
        let last = self.sessions.get(&conn).and_then(|s| s.last.as_ref()).filter(|_| !planted!(NoExactlyOnce));
        if let Some((seq, outcome)) = last {
            if cmd.request_seq == *seq && !self.interrupted_batch(conn, &cmd.op, outcome) {
                return Ok(outcome.clone()); // a retry: answer as the first time
            }
            if cmd.request_seq < *seq {
                return Ok(Outcome::Rejected(format!(
                    "request {} is older than the connection's last request {seq}",
                    cmd.request_seq
                )));
            }
        }
        if policy::admit(self.open_txn, conn, &cmd.op) == Admission::Busy {
            return Ok(Outcome::Busy);
        }
        // The proposer's clock, as recorded in the log: the same on every replica and in every
        // replay. (Not clamped to be monotonic: a clamp would depend on what this replica saw
        // before a restart, and replicas must agree.)
        let timestamp_us = cmd.timestamp_us;
        if let Some((stmt, batch)) = self.joins_slot_txn(cmd) {
            return self.slot_statement(conn, cmd.request_seq, timestamp_us, stmt, batch).await;
        }
        match (&cmd.op, self.sessions.get(&conn).map(|s| s.state)) {
            (Op::Open, None) => {
                self.sessions.insert(conn, Session::new(None, SessionState::Open));
                self.finish_autocommit(conn, cmd.request_seq, Outcome::Opened, SessionState::Open).await
            }
            (Op::Open, Some(_)) => Ok(Outcome::Rejected(format!("connection {conn} already exists"))),
            (_, None | Some(SessionState::Closed)) => Ok(Outcome::Rejected(format!("unknown connection {conn}"))),
            (Op::Execute(stmt), Some(_)) => self.execute(conn, cmd.request_seq, timestamp_us, stmt).await,
            (Op::ExecuteBatch { statements, atomic }, Some(_)) => {
                self.execute_batch(conn, cmd.request_seq, timestamp_us, statements, *atomic).await
            }
            (Op::Begin, Some(_)) => self.begin(conn, cmd.request_seq, timestamp_us).await,
            (Op::Commit, Some(_)) => self.end_txn(conn, cmd.request_seq, true).await,
            (Op::Rollback, Some(_)) => self.end_txn(conn, cmd.request_seq, false).await,
            (Op::Close, Some(_)) => self.close(conn, cmd.request_seq).await,
            // Handled above.
            (Op::AbortIdle { .. } | Op::Checksum | Op::ChecksumReport { .. }, Some(_)) => Ok(Outcome::Done),
        }
    }

    /// Digests the database at this point of the log, once per slot (the check's id is its slot,
    /// so a second `Checksum` in the same slot is answered by the first).
    async fn checksum(&mut self, conn: ConnId, op: &Op) -> Result<Outcome, BackendFault> {
        if policy::admit(self.open_txn, conn, op) == Admission::Busy {
            return Ok(Outcome::Busy);
        }
        let slot = self.cursor.0;
        if !self.digests.iter().any(|(check, _)| *check == slot) {
            let digest = self.book.checksum(&CHECKSUM_COVERAGE).await?;
            self.digests.push((slot, digest));
        }
        Ok(Outcome::Checksum { check: slot })
    }

    /// The session's connection, made on first use.
    async fn db(&mut self, conn: ConnId) -> Result<&mut B::Session, BackendFault> {
        let session = self.sessions.get_mut(&conn).ok_or_else(|| BackendFault(format!("no session {conn}")))?;
        if session.db.is_none() {
            session.db = Some(self.backend.connect().await?);
        }
        session.db.as_mut().ok_or_else(|| BackendFault("connection vanished".into()))
    }

    fn txn(&self, conn: ConnId) -> Txn {
        self.sessions.get(&conn).map_or(Txn::None, |s| s.txn)
    }

    /// Whether `recorded`, the record of this very request, is the progress of a non-atomic batch
    /// that a crash or fault interrupted, rather than its answer: then the batch must resume, not
    /// be answered. A non-atomic batch outside a transaction records its progress after every
    /// statement and always finishes with one result per statement, so a shorter record can only
    /// be an interrupted run. (Without this check a replayed batch returned the partial record and
    /// never ran its remaining statements: that replica's data diverged.) Inside a transaction, or
    /// once the idle timeout aborted it, a short batch outcome is a final answer (it stopped at an
    /// error).
    fn interrupted_batch(&self, conn: ConnId, op: &Op, recorded: &Outcome) -> bool {
        let Some(session) = self.sessions.get(&conn) else { return false };
        match (op, recorded) {
            (Op::ExecuteBatch { statements, atomic: false }, Outcome::Batch(done)) => {
                done.len() < statements.len() && session.txn == Txn::None && session.state == SessionState::Open
            }
            _ => false,
        }
    }

    /// Whether the command being applied is its slot's last, so its own commit can move AP past
    /// the slot (one write and one commit less per slot than AP on its own).
    fn ends_slot(&self) -> bool {
        self.cursor.1 + 1 == self.slot_len && !planted!(SkipApUpdate)
    }

    fn remember(&mut self, conn: ConnId, request_seq: u64, outcome: &Outcome) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.last = Some((request_seq, outcome.clone()));
        }
    }

    /// Records `outcome` on its own, outside any transaction, and returns it.
    async fn finish_autocommit(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        outcome: Outcome,
        state: SessionState,
    ) -> Result<Outcome, BackendFault> {
        bookkeeping::record(&mut self.book, conn, request_seq, &outcome, state).await?;
        self.remember(conn, request_seq, &outcome);
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.state = state;
        }
        Ok(outcome)
    }

    /// Records `outcome` of the command that ended `conn`'s transaction without committing it
    /// (ROLLBACK, a failed COMMIT, Close, the idle timeout), together with the durable position
    /// just past this command, in one transaction; returns the outcome. (A successful COMMIT
    /// writes the same position inside the transaction it commits.)
    ///
    /// Why the position: AP is written at the end of each slot, and the rolled-back transaction's
    /// AP writes rolled back with it, so without this a fault between this record and the slot's
    /// AP made the replica replay from before the transaction's BEGIN. Its commands were then
    /// stale, no transaction was open during the replay, and other sessions' commands that had been
    /// busy ran at a different point of the log than on every other replica: data diverged.
    /// Resuming just past the end, the replica replays from the same state the others had there.
    async fn finish_txn_end(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        outcome: Outcome,
        state: SessionState,
    ) -> Result<Outcome, BackendFault> {
        let position = self.position_past_command();
        let book = &mut self.book;
        begin_or_fault(book.execute("BEGIN", &[]).await?)?;
        let committed =
            bookkeeping::record_at(book, conn, request_seq, &outcome, state, Some(position), Then::Commit).await?;
        committed.map_err(|e| BackendFault(format!("committing the record of a transaction's end: {e}")))?;
        self.committed_ap = position.0;
        self.pending_ap = position.0;
        self.remember(conn, request_seq, &outcome);
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.state = state;
        }
        Ok(outcome)
    }

    /// The durable position just past the command being applied, which ends a transaction: past
    /// its whole slot when it is the slot's last (then the slot needs no AP write of its own).
    fn position_past_command(&self) -> (Slot, usize) {
        let (slot, index) = self.cursor;
        if self.ends_slot() { (slot, 0) } else { (slot - 1, index + 1) }
    }

    /// Records `outcome` inside the session's open transaction, and returns it. When the command
    /// ends its slot, AP moves past the slot in the same round trip (durable with the
    /// transaction's commit, rolled back with it).
    async fn finish_in_txn(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        outcome: Outcome,
    ) -> Result<Outcome, BackendFault> {
        let ap = self.ends_slot().then_some(self.cursor.0);
        let db = self.db(conn).await?;
        let position = ap.map(|ap| (ap, 0));
        let recorded =
            bookkeeping::record_at(db, conn, request_seq, &outcome, SessionState::Open, position, Then::StayOpen)
                .await?;
        recorded.map_err(|e| BackendFault(format!("bookkeeping record or position: {e}")))?;
        if let Some(ap) = ap {
            self.pending_ap = ap;
        }
        self.remember(conn, request_seq, &outcome);
        Ok(outcome)
    }

    async fn statement(
        &mut self,
        conn: ConnId,
        timestamp_us: i64,
        stmt: &Statement,
    ) -> Result<Result<ResultSet, SqlError>, BackendFault> {
        self.statement_begun(conn, timestamp_us, stmt, None).await
    }

    /// [`Executor::statement`], with `begin` (the transaction's `BEGIN`) sent together with it
    /// (see [`SqlSession::execute_begun`]). A statement the policy refuses begins nothing, and
    /// the caller's `ROLLBACK` after it is then a no-op.
    async fn statement_begun(
        &mut self,
        conn: ConnId,
        timestamp_us: i64,
        stmt: &Statement,
        begin: Option<&[&str]>,
    ) -> Result<Result<ResultSet, SqlError>, BackendFault> {
        match self.checked(stmt, timestamp_us) {
            Ok(checked) => {
                let db = self.db(conn).await?;
                match begin {
                    Some(begin) => db.execute_begun(begin, checked.sql(&stmt.sql), &stmt.params).await,
                    None => db.execute(checked.sql(&stmt.sql), &stmt.params).await,
                }
            }
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// What the determinism policy makes of `stmt` at `timestamp_us`; a refusal is the
    /// statement's error. (The service refuses before proposing; a refusal here is the same on
    /// every replica.)
    fn checked(&mut self, stmt: &Statement, timestamp_us: i64) -> Result<determinism::Checked, SqlError> {
        TxnTimestamp::from_unix_micros(timestamp_us)
            .map_err(|e| SqlError { sqlstate: determinism::FEATURE_NOT_SUPPORTED.into(), message: e.to_string() })
            .and_then(|ts| {
                self.memo
                    .check(&stmt.sql, ts)
                    .map_err(|r| SqlError { sqlstate: r.sqlstate.into(), message: r.to_string() })
            })
    }

    /// Begins a transaction on `conn` whose `now()` is `timestamp_us`, in one round trip.
    async fn begin_pinned(&mut self, conn: ConnId, timestamp_us: i64) -> Result<(), BackendFault> {
        let pin = pin_timestamp(timestamp_us);
        let db = self.db(conn).await?;
        let begun = db.execute_all(&begin_script::<B::Session>(&pin)).await?;
        begun.map_err(|e| BackendFault(format!("transaction control failed: {e}")))
    }

    async fn control(&mut self, conn: ConnId, sql: &str) -> Result<Result<ResultSet, SqlError>, BackendFault> {
        self.db(conn).await?.execute(sql, &[]).await
    }

    async fn execute(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        timestamp_us: i64,
        stmt: &Statement,
    ) -> Result<Outcome, BackendFault> {
        match self.txn(conn) {
            Txn::Open { failed: true, .. } => Ok(self.failed_txn_error(conn, request_seq)),
            Txn::Open { timestamp_us, failed: false } => match self.statement(conn, timestamp_us, stmt).await? {
                Ok(rows) => self.finish_in_txn(conn, request_seq, Outcome::Rows(rows)).await,
                Err(e) => Ok(self.fail_txn(conn, request_seq, e)),
            },
            Txn::None if self.sessions.get(&conn).is_some_and(|s| s.state == SessionState::IdleAborted) => {
                self.idle_aborted_error(conn, request_seq).await
            }
            Txn::None if determinism::is_maintenance(&stmt.sql) => self.maintenance(conn, request_seq, stmt).await,
            Txn::None => {
                let batch = std::slice::from_ref(stmt);
                let single = |r: &[Result<ResultSet, SqlError>]| match r {
                    [Ok(rows)] => Outcome::Rows(rows.clone()),
                    _ => Outcome::Batch(r.to_vec()),
                };
                let mut results = self.autocommit_batch(conn, request_seq, timestamp_us, batch, single, true).await?;
                let outcome = match results.pop() {
                    Some(Ok(rows)) => Outcome::Rows(rows),
                    Some(Err(e)) => Outcome::Error(e),
                    None => Outcome::Rows(ResultSet::default()),
                };
                if matches!(outcome, Outcome::Error(_)) {
                    return self.finish_autocommit(conn, request_seq, outcome, SessionState::Open).await;
                }
                self.remember(conn, request_seq, &outcome);
                Ok(outcome)
            }
        }
    }

    /// Runs a maintenance statement (`VACUUM`, `ANALYZE`) sent outside a transaction without
    /// one: PostgreSQL refuses `VACUUM` in a transaction block, and neither changes logical data
    /// nor reads the pinned timestamp. The outcome is recorded after it ran, in a transaction of
    /// its own; a crash in between makes the replay run it again, which changes nothing a client
    /// can observe.
    async fn maintenance(&mut self, conn: ConnId, request_seq: u64, stmt: &Statement) -> Result<Outcome, BackendFault> {
        let outcome = match self.db(conn).await?.execute(&stmt.sql, &stmt.params).await? {
            Ok(rows) => Outcome::Rows(rows),
            Err(e) => Outcome::Error(e),
        };
        self.finish_autocommit(conn, request_seq, outcome, SessionState::Open).await
    }

    /// Runs `statements` in one transaction and, when all succeed, records `recorded(results)` as
    /// the request's outcome inside it (and AP, when this transaction is the last of its slot:
    /// `ends_command` says it is the command's last). Returns the results; after an error the
    /// transaction was rolled back and the caller records the outcome.
    async fn autocommit_batch(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        timestamp_us: i64,
        statements: &[Statement],
        recorded: impl FnOnce(&[Result<ResultSet, SqlError>]) -> Outcome,
        ends_command: bool,
    ) -> Result<Vec<Result<ResultSet, SqlError>>, BackendFault> {
        let pin = pin_timestamp(timestamp_us);
        let begin = begin_script::<B::Session>(&pin);
        if statements.is_empty() {
            self.begin_pinned(conn, timestamp_us).await?;
        }
        let mut results = Vec::with_capacity(statements.len());
        for (i, stmt) in statements.iter().enumerate() {
            let begin = (i == 0).then_some(begin.as_slice());
            let result = self.statement_begun(conn, timestamp_us, stmt, begin).await?;
            let failed = result.is_err();
            results.push(result);
            if failed {
                begin_or_fault(self.control(conn, "ROLLBACK").await?)?;
                return Ok(results);
            }
        }
        let outcome = recorded(&results);
        // Not after a part of a command: a replay must still run the rest of it.
        let ap = (ends_command && self.ends_slot()).then_some(self.cursor.0);
        let db = self.db(conn).await?;
        let position = ap.map(|ap| (ap, 0));
        match bookkeeping::record_at(db, conn, request_seq, &outcome, SessionState::Open, position, Then::Commit)
            .await?
        {
            Ok(()) => {
                if let Some(ap) = ap {
                    self.committed_ap = ap;
                    self.pending_ap = ap;
                }
            }
            // A deferred constraint or serialization failure at commit: rolled back.
            Err(e) => results.push(Err(e)),
        }
        Ok(results)
    }

    async fn execute_batch(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        timestamp_us: i64,
        statements: &[Statement],
        atomic: bool,
    ) -> Result<Outcome, BackendFault> {
        if let Txn::Open { .. } = self.txn(conn) {
            // Inside a transaction a batch is just its statements in a row.
            let mut results = Vec::new();
            for stmt in statements {
                let Txn::Open { timestamp_us, failed: false } = self.txn(conn) else {
                    return Ok(self.failed_txn_error(conn, request_seq));
                };
                match self.statement(conn, timestamp_us, stmt).await? {
                    Ok(rows) => results.push(Ok(rows)),
                    Err(e) => {
                        results.push(Err(e.clone()));
                        self.fail_txn(conn, request_seq, e);
                        let outcome = Outcome::Batch(results);
                        self.remember(conn, request_seq, &outcome);
                        return Ok(outcome);
                    }
                }
            }
            return self.finish_in_txn(conn, request_seq, Outcome::Batch(results)).await;
        }
        if self.sessions.get(&conn).is_some_and(|s| s.state == SessionState::IdleAborted) {
            return self.idle_aborted_error(conn, request_seq).await;
        }
        if atomic {
            let whole = |r: &[Result<ResultSet, SqlError>]| Outcome::Batch(r.to_vec());
            let results = self.autocommit_batch(conn, request_seq, timestamp_us, statements, whole, true).await?;
            let committed = results.len() == statements.len() && results.iter().all(Result::is_ok);
            let outcome = Outcome::Batch(results);
            if committed {
                self.remember(conn, request_seq, &outcome);
                return Ok(outcome);
            }
            return self.finish_autocommit(conn, request_seq, outcome, SessionState::Open).await;
        }
        // Not atomic: each statement commits on its own, together with the outcome so far, so a
        // replay resumes after the last committed statement instead of running it twice. The
        // outcome recorded with the last statement is the whole batch's, so nothing is written
        // after it, and its commit moves AP when the batch ends the slot: one transaction per
        // statement, as for `Execute` (the Rust client sends every statement as a batch of one).
        let mut results = match self.sessions.get(&conn).and_then(|s| s.last.as_ref()) {
            Some((seq, Outcome::Batch(done))) if *seq == request_seq => done.clone(),
            _ => Vec::new(),
        };
        let mut outcome = None;
        for (i, stmt) in statements.iter().enumerate().skip(results.len()) {
            let prefix = results.clone();
            let progress =
                move |r: &[Result<ResultSet, SqlError>]| Outcome::Batch(prefix.iter().chain(r).cloned().collect());
            let stmt = std::slice::from_ref(stmt);
            let last = i + 1 == statements.len();
            let one = self.autocommit_batch(conn, request_seq, timestamp_us, stmt, progress, last).await?;
            let result = one.into_iter().last().unwrap_or_else(|| Ok(ResultSet::default()));
            results.push(result);
            let progress = Outcome::Batch(results.clone());
            outcome = Some(if results.last().is_some_and(Result::is_err) {
                // Rolled back with its record: recorded on its own.
                self.finish_autocommit(conn, request_seq, progress, SessionState::Open).await?
            } else {
                self.remember(conn, request_seq, &progress);
                progress
            });
        }
        match outcome {
            Some(outcome) => Ok(outcome),
            // Nothing ran (an empty batch): the answer still needs its record.
            None => self.finish_autocommit(conn, request_seq, Outcome::Batch(results), SessionState::Open).await,
        }
    }

    async fn begin(&mut self, conn: ConnId, request_seq: u64, timestamp_us: i64) -> Result<Outcome, BackendFault> {
        match self.txn(conn) {
            // In an aborted block PostgreSQL refuses BEGIN like any statement but the block's end
            // (an earlier version answered Done, contradicting `Txn::Open::failed`'s contract).
            Txn::Open { failed: true, .. } => return Ok(self.failed_txn_error(conn, request_seq)),
            Txn::None if self.sessions.get(&conn).is_some_and(|s| s.state == SessionState::IdleAborted) => {
                return self.idle_aborted_error(conn, request_seq).await;
            }
            Txn::Open { failed: false, .. } => {
                // PostgreSQL only warns about a BEGIN inside a transaction; so does nothing here.
                let outcome = Outcome::Done;
                self.remember(conn, request_seq, &outcome);
                return Ok(outcome);
            }
            Txn::None => {}
        }
        self.begin_pinned(conn, timestamp_us).await?;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.txn = Txn::Open { timestamp_us, failed: false };
        }
        self.open_txn = Some(conn);
        self.finish_in_txn(conn, request_seq, Outcome::Done).await
    }

    async fn end_txn(&mut self, conn: ConnId, request_seq: u64, commit: bool) -> Result<Outcome, BackendFault> {
        let idle_aborted = self.sessions.get(&conn).is_some_and(|s| s.state == SessionState::IdleAborted);
        let outcome = match self.txn(conn) {
            Txn::None if idle_aborted && commit => {
                aborted_error("the transaction was idle too long and has been rolled back")
            }
            Txn::None => Outcome::Done,
            Txn::Open { failed, .. } => {
                let committing = commit && !failed;
                let result = if committing {
                    self.commit_txn(conn, request_seq).await?
                } else {
                    self.control(conn, "ROLLBACK").await?.map(drop)
                };
                self.open_txn = None;
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.txn = Txn::None;
                }
                let outcome = match (committing, result) {
                    (true, Ok(_)) => {
                        self.committed_ap = self.pending_ap;
                        self.remember(conn, request_seq, &Outcome::Done);
                        return Ok(Outcome::Done);
                    }
                    // A deferred constraint or serialization failure: PostgreSQL rolled back.
                    (true, Err(e)) => Outcome::Error(e),
                    (false, Ok(_)) if commit => {
                        aborted_error("the transaction was aborted by an earlier error and has been rolled back")
                    }
                    (false, Ok(_)) => Outcome::Done,
                    (false, Err(e)) => return Err(BackendFault(format!("ROLLBACK failed: {e}"))),
                };
                return self.finish_txn_end(conn, request_seq, outcome, SessionState::Open).await;
            }
        };
        self.pending_ap = self.committed_ap;
        self.finish_autocommit(conn, request_seq, outcome, SessionState::Open).await
    }

    /// Records the `COMMIT`'s outcome and the durable position just past it (see
    /// `finish_txn_end`) in `conn`'s transaction, and commits it, in one round trip; the result
    /// is the `COMMIT`'s.
    async fn commit_txn(&mut self, conn: ConnId, request_seq: u64) -> Result<Result<(), SqlError>, BackendFault> {
        let position = self.position_past_command();
        let db = self.db(conn).await?;
        let done = Outcome::Done;
        let committed =
            bookkeeping::record_at(db, conn, request_seq, &done, SessionState::Open, Some(position), Then::Commit)
                .await?;
        self.pending_ap = position.0;
        Ok(committed)
    }

    async fn close(&mut self, conn: ConnId, request_seq: u64) -> Result<Outcome, BackendFault> {
        let in_txn = matches!(self.txn(conn), Txn::Open { .. });
        if in_txn {
            let _ = self.control(conn, "ROLLBACK").await?;
            self.open_txn = None;
            self.pending_ap = self.committed_ap;
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.db = None; // closing the connection
            s.txn = Txn::None;
        }
        if in_txn {
            return self.finish_txn_end(conn, request_seq, Outcome::Done, SessionState::Closed).await;
        }
        self.finish_autocommit(conn, request_seq, Outcome::Done, SessionState::Closed).await
    }

    /// Rolls back `conn`'s transaction if it is still open and made no progress since the idle
    /// timeout fired at `since_request`.
    async fn abort_idle(&mut self, conn: ConnId, since_request: u64) -> Result<(), BackendFault> {
        let Some(last) = self.sessions.get(&conn).map(|s| s.last.clone()) else { return Ok(()) };
        let idle = self.open_txn == Some(conn) && last.as_ref().map(|(seq, _)| *seq) == Some(since_request);
        if !idle {
            return Ok(());
        }
        let _ = self.control(conn, "ROLLBACK").await?;
        self.open_txn = None;
        self.pending_ap = self.committed_ap;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.txn = Txn::None;
        }
        let (seq, outcome) = last.unwrap_or((since_request, Outcome::Done));
        self.finish_txn_end(conn, seq, outcome, SessionState::IdleAborted).await?;
        Ok(())
    }

    fn fail_txn(&mut self, conn: ConnId, request_seq: u64, error: SqlError) -> Outcome {
        if let Some(s) = self.sessions.get_mut(&conn) {
            if let Txn::Open { timestamp_us, .. } = s.txn {
                s.txn = Txn::Open { timestamp_us, failed: true };
            }
        }
        let outcome = Outcome::Error(error);
        self.remember(conn, request_seq, &outcome);
        outcome
    }

    /// The answer to a session whose transaction the idle timeout aborted, until it ends the block.
    /// Recorded, not only remembered: no transaction is open, so AP moves past this slot durably
    /// and the slot is never replayed. Remembered only, a replica that restarted would hold the
    /// older record and answer a retry of this request, or of the one before, unlike the replicas
    /// that did not restart.
    async fn idle_aborted_error(&mut self, conn: ConnId, request_seq: u64) -> Result<Outcome, BackendFault> {
        let outcome = aborted_error("current transaction is aborted, commands ignored until end of transaction block");
        self.finish_autocommit(conn, request_seq, outcome, SessionState::IdleAborted).await
    }

    fn failed_txn_error(&mut self, conn: ConnId, request_seq: u64) -> Outcome {
        let outcome = aborted_error("current transaction is aborted, commands ignored until end of transaction block");
        self.remember(conn, request_seq, &outcome);
        outcome
    }
}

fn aborted_error(message: &str) -> Outcome {
    Outcome::Error(SqlError { sqlstate: IN_FAILED_TXN.into(), message: message.into() })
}

/// `BEGIN`/`ROLLBACK` issued by the executor itself cannot fail as statements; if they do, the
/// database is not in the state Barista left it in.
/// The statement that pins a transaction's timestamp for stored expressions that read it (column
/// defaults, views and function bodies rewritten by the determinism policy); none for an
/// out-of-range timestamp, which statements refuse themselves.
fn pin_timestamp(timestamp_us: i64) -> Option<String> {
    TxnTimestamp::from_unix_micros(timestamp_us).ok().map(determinism::pin_timestamp_sql)
}

/// `BEGIN`, the backend's [`SqlSession::BEGIN_LOCK`], and the timestamp's pin.
fn begin_script<S: SqlSession>(pin: &Option<String>) -> Vec<&str> {
    ["BEGIN"].into_iter().chain(S::BEGIN_LOCK).chain(pin.as_deref()).collect()
}

fn begin_or_fault(result: Result<ResultSet, SqlError>) -> Result<(), BackendFault> {
    result.map(|_| ()).map_err(|e| BackendFault(format!("transaction control failed: {e}")))
}
