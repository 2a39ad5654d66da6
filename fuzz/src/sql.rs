//! The SQL determinism checker (`runtime/src/determinism/`) on arbitrary text: the gate every
//! client statement passes before it enters the log.
//!
//! The first byte picks the transaction timestamp (from a few that reach the edges of what
//! renders), the rest is the statement (inputs that are not UTF-8 are skipped: the Thrift layer
//! refuses them first). Checked: a verdict or a refusal, never a panic; a statement accepted as
//! it is comes back as the very same text; a rewrite differs from the statement, and checking
//! the rewrite accepts it unchanged with the same kind (rewriting is idempotent; one exception,
//! for text PostgreSQL refuses anyway, is explained where it is made); and the
//! timestamp changes only the rendered time, never what kind of statement it is or whether it
//! is rewritten.

use barista_runtime::determinism::{CASE_TIMESTAMP_US, CASES, FIXTURE, SYNTAX_ERROR, TxnTimestamp, Verdict, check};

/// Timestamps tried, by the first byte: the policy cases' one, the epoch, a negative one, and
/// far ends of the range.
const TIMESTAMPS_US: [i64; 5] =
    [CASE_TIMESTAMP_US, 0, -1_234_567, TxnTimestamp::MAX_UNIX_US, TxnTimestamp::MIN_UNIX_US];

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Some((pick, text)) = data.split_first() else { return };
    let Ok(sql) = std::str::from_utf8(text) else { return };
    let Some(ts) = timestamp(usize::from(*pick)) else { return };
    let Ok(checked) = check(sql, ts) else { return };
    match &checked.verdict {
        Verdict::Deterministic => {
            assert!(std::ptr::eq(checked.sql(sql), sql), "an accepted statement must reach PostgreSQL as sent");
        }
        Verdict::Rewritten { sql: rewritten } => {
            assert_ne!(rewritten, sql, "a rewrite that changes nothing must be Deterministic");
            let again = match check(rewritten, ts) {
                Ok(again) => again,
                // sqlparser takes postfix syntax after a function call that it refuses after the
                // cast the rewrite puts there: `SELECT now() .AS` parses (a field access), its
                // rewrite `SELECT '...'::timestamptz .AS` does not (found by this target:
                // `corpus/sql/regression-postfix-after-time-call`). PostgreSQL refuses both, so
                // such a statement fails alike on every replica; only that refusal is tolerated.
                Err(r) if r.sqlstate == SYNTAX_ERROR => return,
                Err(r) => panic!("rewrite {rewritten:?} of {sql:?} refused: {r}"),
            };
            assert_eq!(again.verdict, Verdict::Deterministic, "rewriting {rewritten:?} (of {sql:?}) again changed it");
            assert_eq!(again.kind, checked.kind, "the rewrite {rewritten:?} of {sql:?} is another kind of statement");
        }
    }
    // Another timestamp: only the rendered time may differ.
    if let Some(other) = timestamp(usize::from(*pick) + 1)
        && let Ok(second) = check(sql, other)
    {
        assert_eq!(second.kind, checked.kind, "{sql:?}: the kind depends on the timestamp");
        assert_eq!(
            matches!(second.verdict, Verdict::Deterministic),
            matches!(checked.verdict, Verdict::Deterministic),
            "{sql:?}: whether it is rewritten depends on the timestamp"
        );
    }
}

fn timestamp(pick: usize) -> Option<TxnTimestamp> {
    TxnTimestamp::from_unix_micros(TIMESTAMPS_US[pick % TIMESTAMPS_US.len()]).ok()
}

/// The policy table's example statements (accepted, rewritten and refused ones), and the
/// fixture's schema statements.
pub fn seeds() -> crate::Inputs {
    let cases = CASES.iter().map(|case| (format!("case_{}", case.id), case.sql));
    let fixture = FIXTURE.iter().enumerate().map(|(i, sql)| (format!("fixture_{i}"), *sql));
    cases
        .chain(fixture)
        .map(|(name, sql)| {
            let mut input = vec![0u8];
            input.extend(sql.as_bytes());
            (name, input)
        })
        .collect()
}
