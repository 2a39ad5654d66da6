//! The client-facing service: what every front end (Thrift, later the PostgreSQL protocol, and
//! the simulation's clients) calls to open a connection and run statements.
//!
//! It stamps each command with this replica's clock, submits it to the local node (which forwards
//! it to the leader), waits until this replica applied it, and returns this replica's outcome. A
//! read of the session's own open transaction is answered by this replica without the log when
//! the executor may (see `executor::read`).
//! A command that met another session's open transaction (`Busy`) is resubmitted with the same
//! request sequence until it runs or the request times out. Errors say whether trying another
//! replica can help.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use crate::clock::Clock;
use crate::command::{ClientCommand, ConnId, Op};
use crate::determinism::{self, Refusal, TxnTimestamp};
use crate::executor::{Outcome, one_statement};
use crate::node::{Health, NodeHandle, NodeStatus, SubmitError};
use barista_core::Slot;

/// Why the service could not produce an outcome.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ServiceError {
    /// This replica cannot serve now (its store or database is down, or no decision came in
    /// time). Retry the same request, with the same sequence number, here later or at another
    /// replica; it runs at most once.
    #[error("replica not ready, try another replica: {0}")]
    NotReady(String),
    /// Too much work queued at this replica; back off.
    #[error("replica overloaded: {0}")]
    Overloaded(String),
    /// The statement could leave the replicas with different data; it was not proposed and ran
    /// nowhere. Retrying does not help: change the statement.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The request is too large to replicate; it ran nowhere. Retrying does not help: send less.
    #[error("{0}")]
    TooLarge(String),
}

/// Settings of the service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// How long one request may wait for its decision and execution.
    pub request_timeout: Duration,
    /// Wait before resubmitting a request that met another session's open transaction.
    pub busy_retry: Duration,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig { request_timeout: Duration::from_secs(10), busy_retry: Duration::from_millis(5) }
    }
}

/// The client-facing service of one replica.
pub struct Service<C: Clock> {
    node: NodeHandle,
    clock: C,
    cfg: ServiceConfig,
    rng: Mutex<SmallRng>,
    /// The determinism checks of the texts seen, shared by the front ends' threads. A text seen
    /// for the first time is parsed under the lock: another thread waits at most one parse.
    memo: Mutex<determinism::Memo>,
    /// The line of this replica's sessions waiting for another session's transaction to end
    /// (tokio's mutex is first come, first served).
    line: tokio::sync::Mutex<()>,
}

impl<C: Clock> Service<C> {
    /// A service over `node`. `seed` seeds the connection ids this replica picks (from the OS in
    /// production, from the run's seed in simulation).
    pub fn new(node: NodeHandle, clock: C, cfg: ServiceConfig, seed: u64) -> Service<C> {
        let rng = Mutex::new(SmallRng::seed_from_u64(seed));
        let memo = Mutex::new(determinism::Memo::default());
        Service { node, clock, cfg, rng, memo, line: tokio::sync::Mutex::new(()) }
    }

    /// The node behind this service.
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    /// A fresh connection id, for clients that do not bring their own.
    pub fn new_conn_id(&self) -> ConnId {
        let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        ConnId(rng.next_u64())
    }

    /// Opens the replicated session `conn` (request sequence 0) on every replica.
    pub async fn open(&self, conn: ConnId) -> Result<Outcome, ServiceError> {
        self.submit(conn, 0, Op::Open).await
    }

    /// Runs `op` as request `request_seq` of session `conn` and returns this replica's outcome.
    pub async fn submit(&self, conn: ConnId, request_seq: u64, op: Op) -> Result<Outcome, ServiceError> {
        match self.node.status().health {
            Health::Healthy => {}
            Health::Diverged(d) => {
                return Err(ServiceError::NotReady(format!(
                    "this replica's data diverged from the majority's (check at slot {}, tables {:?})",
                    d.check, d.tables
                )));
            }
            health => return Err(ServiceError::NotReady(format!("{health:?}"))),
        }
        let timestamp_us = self.clock.now_us();
        self.refuse_nondeterminism(&op, timestamp_us)?;
        let command = ClientCommand { conn, request_seq, timestamp_us, op };
        // A read of the session's own open transaction may skip the log (see `executor::read`).
        if one_statement(&command.op).is_some()
            && self.node.open_txn() == Some(conn)
            && let Some(outcome) = self.node.read(command.clone()).await
        {
            return Ok(outcome);
        }
        self.run(command).await
    }

    /// Starts a divergence check ([`crate::verify`]) and waits until this replica applied it;
    /// returns the check's id, its slot. Allowed on a diverged replica (a check that finds it
    /// agreeing is what makes it healthy again), not while its store or database is down.
    pub async fn verify(&self) -> Result<Slot, ServiceError> {
        match self.node.status().health {
            Health::Healthy | Health::Diverged(_) => {}
            health => return Err(ServiceError::NotReady(format!("{health:?}"))),
        }
        let command = ClientCommand {
            conn: self.new_conn_id(),
            request_seq: 0,
            timestamp_us: self.clock.now_us(),
            op: Op::Checksum,
        };
        match self.run(command).await? {
            Outcome::Checksum { check } => Ok(check),
            other => Err(ServiceError::NotReady(format!("the check did not run: {other:?}"))),
        }
    }

    /// Submits `command` until it is not `Busy`, within the request timeout.
    async fn run(&self, command: ClientCommand) -> Result<Outcome, ServiceError> {
        let conn = command.conn;
        let free_of = move |open: Option<ConnId>| open.is_none_or(|owner| owner == conn);
        let free = move |s: &NodeStatus| free_of(s.open_txn);
        let attempt = async {
            if free_of(self.node.open_txn()) {
                match self.submit_once(&command).await? {
                    Outcome::Busy => {}
                    outcome => return Ok(outcome),
                }
            }
            // Another session's transaction is open: wait in line. Only the first in line waits
            // for the transaction to end and submits, so that the end of a transaction does not
            // send every waiting session's command into the log at once, where one wins and the
            // rest are answered `Busy`; which one won depended on scheduling, and with sixteen
            // pgbench clients some lost every round until their requests timed out. (The
            // executor's rule is what makes this safe; the node's view may be slightly stale,
            // which costs one `Busy` at most.)
            let _turn = self.line.lock().await;
            loop {
                let _ = self.node.wait_for(free).await;
                match self.submit_once(&command).await? {
                    Outcome::Busy => tokio::time::sleep(self.cfg.busy_retry).await,
                    outcome => return Ok(outcome),
                }
            }
        };
        match tokio::time::timeout(self.cfg.request_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ServiceError::NotReady(format!(
                "no decision within {:?}; the request may still run once: retry it with the same sequence number",
                self.cfg.request_timeout
            ))),
        }
    }

    /// One submission to the node.
    async fn submit_once(&self, command: &ClientCommand) -> Result<Outcome, ServiceError> {
        match self.node.submit(command.clone()).await {
            Ok(outcome) => Ok(outcome),
            Err(SubmitError::Overloaded(why)) => Err(ServiceError::Overloaded(why)),
            Err(SubmitError::TooLarge(why)) => Err(ServiceError::TooLarge(why)),
            Err(SubmitError::Stopped) => Err(ServiceError::NotReady("replica stopped".into())),
        }
    }

    /// Refuses, before anything enters the log, a statement the replicas could not all execute
    /// alike. The executor checks again (with the transaction's own timestamp) and rewrites time.
    fn refuse_nondeterminism(&self, op: &Op, timestamp_us: i64) -> Result<(), Refusal> {
        let statements = match op {
            Op::Execute(stmt) => std::slice::from_ref(stmt),
            Op::ExecuteBatch { statements, .. } => statements.as_slice(),
            _ => return Ok(()),
        };
        let Ok(ts) = TxnTimestamp::from_unix_micros(timestamp_us) else {
            return Err(Refusal {
                construct: "this statement".into(),
                advice: "the replica's clock is out of range".into(),
                sqlstate: determinism::FEATURE_NOT_SUPPORTED,
            });
        };
        let mut memo = self.memo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        statements.iter().try_for_each(|stmt| memo.check(&stmt.sql, ts).map(|_| ()))
    }
}
