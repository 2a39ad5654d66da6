//! The scheduling policy: which decided command may run now, on which session.
//!
//! Policy 1 (this one): at most one explicit transaction is open across the cluster. While session
//! `T` holds an open transaction, every other session's statement gets [`Admission::Busy`]: it is
//! not executed and not recorded, and the client retries it with the same request sequence.
//! Running it could block on `T`'s row locks, and `T`'s `COMMIT` sits later in the log, behind the
//! blocked statement: every replica would hang. The decision depends only on the log, so every
//! replica makes the same one.
//!
//! The next policy (many open transactions, dispatched in log order, waiting before each dispatch
//! until every running statement finished or waits on a lock) replaces this module only.

use crate::command::{ConnId, Op};

/// What the executor does with a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Admission {
    /// Run it.
    Run,
    /// Do not run it; tell the client to retry (not recorded, so the retry runs it).
    Busy,
}

/// Decides whether `op` of session `conn` may run while `open_txn` holds the open transaction.
pub fn admit(open_txn: Option<ConnId>, conn: ConnId, op: &Op) -> Admission {
    match open_txn {
        None => Admission::Run,
        Some(owner) if owner == conn => Admission::Run,
        // An idle-abort aimed at another session is a no-op; letting it through is harmless.
        Some(_) if matches!(op, Op::AbortIdle { .. }) => Admission::Run,
        // Everything else waits, even opening a session: then the open transaction's connection
        // is the only one that writes, so no statement can ever wait on another's locks. So do
        // the divergence check's commands: a checksum must digest committed state only, the same
        // on every replica; a report writes `barista_checks` (its replica proposes it again).
        Some(_) => Admission::Busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Statement;

    #[test]
    fn only_the_owner_runs_while_a_transaction_is_open() {
        let (a, b) = (ConnId(1), ConnId(2));
        let stmt = Op::Execute(Statement { sql: "select 1".into(), params: vec![] });
        assert_eq!(admit(None, b, &stmt), Admission::Run);
        assert_eq!(admit(Some(a), a, &stmt), Admission::Run);
        assert_eq!(admit(Some(a), b, &stmt), Admission::Busy);
        assert_eq!(admit(Some(a), b, &Op::Begin), Admission::Busy);
        assert_eq!(admit(Some(a), b, &Op::Open), Admission::Busy);
        assert_eq!(admit(Some(a), b, &Op::AbortIdle { since_request: 1 }), Admission::Run);
        assert_eq!(admit(Some(a), b, &Op::Checksum), Admission::Busy);
        let digest = crate::verify::DatabaseDigest::from_tables(Vec::new());
        assert_eq!(admit(Some(a), b, &Op::ChecksumReport { check: 1, replica: 0, digest }), Admission::Busy);
        assert_eq!(admit(None, b, &Op::Checksum), Admission::Run);
    }
}
