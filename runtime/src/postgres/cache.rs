//! Client statements kept prepared per connection, guarded by a DDL epoch.
//!
//! A command outside a transaction costs three round trips on a fresh statement: `BEGIN` with
//! the statement's Parse, its Bind and Execute, and the record with `COMMIT`. With the statement
//! already prepared on the connection, its Bind and Execute go out with the `BEGIN`: two round
//! trips, and no Parse or Close at all (issue 8's note has the TPC-C A/B).
//!
//! # Why a kept statement needs a guard
//! A prepared statement keeps the parameter types PostgreSQL inferred when it was prepared, and
//! its result type: after DDL, PostgreSQL plans it again but with the old parameter types, and
//! fails it ("cached plan must not change result type") if its columns changed. A replica that
//! restarted prepares afresh. So after DDL the same statement could answer differently on two
//! replicas, depending on their history. DDL can hide anywhere (in a function a statement calls),
//! so the text of the log cannot tell when.
//!
//! PostgreSQL can: an event trigger on `ddl_command_end` (which fires for DDL inside functions
//! too) advances the sequence `barista_ddl_epoch`. A statement is kept with the epoch it was
//! prepared in; a kept statement is used only in a transaction whose `BEGIN` script first checks
//! that the epoch has not moved, and the check fails if it has. The error aborts the
//! transaction before the pipelined Bind runs (it fails with "current transaction is aborted"),
//! so nothing ran: the session rolls back, forgets every kept statement, and runs the statement
//! the fresh way. A kept statement therefore answers exactly as a freshly prepared one would.
//!
//! Only statements that begin an autocommit transaction use kept statements (the one place where
//! a stale one can be retried without losing a client's transaction), and only statements whose
//! result columns all come back in binary (see `values`) and whose parameter count matches.
//!
//! Creating an event trigger needs a superuser. Without one, or without the objects, connections
//! keep nothing and every statement is prepared afresh, as before. The epoch differs between
//! replicas (it counts Barista's own setup too), so the divergence checksum skips it. A statement
//! that disables event triggers (`session_replication_role`, `ALTER EVENT TRIGGER`, dropping it)
//! takes the guard away from the connections that still keep statements: do not.

use std::collections::HashMap;

use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use crate::sql::BackendFault;

/// What the epoch check's error says: a kept statement may be stale.
const STALE: &str = "barista: DDL ran since this statement was prepared";

/// At most this many statements are kept per connection; when full, the cache starts over (the
/// statements an application repeats come back at once).
const CAPACITY: usize = 256;

/// True on a connection that can keep statements: the epoch exists, its trigger is enabled,
/// and this user may read it (a superuser may have set it up for another). One row, one column
/// (`t` or `f`); runs at connect, with the recovery check.
pub(super) const READY: &str = "SELECT coalesce(pg_catalog.has_sequence_privilege(\
     to_regclass('public.barista_ddl_epoch')::oid, 'SELECT'), false) \
     AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'barista_ddl_epoch' AND evtenabled <> 'D')";

/// Creates the epoch's objects. Idempotent; the advisory lock (its key is arbitrary) serializes
/// connections that try at once. Anyone may read the epoch.
const SETUP: &str = r#"BEGIN;
SELECT pg_catalog.pg_advisory_xact_lock(113615377893729);
CREATE SEQUENCE IF NOT EXISTS public.barista_ddl_epoch;
GRANT SELECT ON SEQUENCE public.barista_ddl_epoch TO PUBLIC;
CREATE OR REPLACE FUNCTION public.barista_ddl_epoch_bump() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
    AS $$BEGIN PERFORM nextval('public.barista_ddl_epoch'); END$$;
DO $$BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'barista_ddl_epoch') THEN
        CREATE EVENT TRIGGER barista_ddl_epoch ON ddl_command_end
            EXECUTE FUNCTION public.barista_ddl_epoch_bump();
    END IF;
END$$;
COMMIT"#;

/// Creates the epoch's objects on `client`'s database. `Ok(false)`: not allowed (not a
/// superuser), so connections keep nothing; any other error is a fault.
pub(super) async fn set_up(client: &Client) -> Result<bool, BackendFault> {
    match client.batch_execute(SETUP).await {
        Ok(()) => Ok(true),
        Err(e) if e.code().is_some_and(|c| c.code() == "42501") => {
            // Leave the connection outside the failed transaction.
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(|e| BackendFault(format!("after the DDL epoch setup: {e}")))?;
            Ok(false)
        }
        Err(e) => Err(BackendFault(format!("setting up the DDL epoch: {e}"))),
    }
}

/// The statement appended to a `BEGIN` script that reads the epoch: its answer is the script's
/// last row.
pub(super) const READ_EPOCH: &str = "SELECT last_value FROM public.barista_ddl_epoch";

/// The statement appended to a `BEGIN` script before a kept statement runs in its transaction:
/// it fails if the epoch moved since `epoch` (see [`is_stale`]). Plain SQL, no function call: it
/// runs once per command on every replica. The failing branch depends on the sequence, so the
/// planner cannot fold it into an error that fires every time.
pub(super) fn check_epoch(epoch: i64) -> String {
    format!(
        "SELECT CASE WHEN last_value = {epoch} THEN 0 \
         ELSE ('{STALE} (epoch ' || last_value || ')')::int END FROM public.barista_ddl_epoch"
    )
}

/// Whether `error`, from a `BEGIN` script ending in [`check_epoch`], is the check's.
pub(super) fn is_stale(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|e| e.code().code() == "22P02" && e.message().contains(STALE))
}

/// The last row's first column of a simple query's answer, as the epoch.
pub(super) fn epoch_in(messages: &[SimpleQueryMessage]) -> Option<i64> {
    messages
        .iter()
        .rev()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .and_then(|v| v.parse().ok())
}

/// One connection's kept statements, all prepared in `epoch`.
#[derive(Default)]
pub(super) struct StatementCache {
    epoch: i64,
    statements: HashMap<String, Statement>,
}

impl StatementCache {
    /// `sql`'s kept statement and the epoch it needs.
    pub(super) fn get(&self, sql: &str) -> Option<(Statement, i64)> {
        self.statements.get(sql).map(|s| (s.clone(), self.epoch))
    }

    /// Keeps `statement`, prepared in `epoch`; statements of another epoch are forgotten.
    pub(super) fn keep(&mut self, sql: &str, statement: Statement, epoch: i64) {
        if epoch != self.epoch || self.statements.len() >= CAPACITY {
            self.statements.clear();
            self.epoch = epoch;
        }
        self.statements.insert(sql.to_owned(), statement);
    }

    /// Forgets every kept statement (the epoch moved).
    pub(super) fn clear(&mut self) {
        self.statements.clear();
    }
}
