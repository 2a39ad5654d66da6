//! [`check`](super::check) without parsing the same text again.
//!
//! Applications send the same few statement texts over and over (parameters change, the text
//! does not), and every statement is checked once on the replica that proposes it and once more
//! on every replica that executes it. Parsing was a fifth of a replica's CPU under TPC-C. What a
//! check finds in a text (its kind, the time functions to rewrite, or its refusal) depends on the
//! text alone; only the rewrite's timestamp changes from call to call. So [`Memo`] keeps that
//! finding per text and applies each call's timestamp to it: the answer is exactly `check`'s.

use std::collections::HashMap;

use super::{Analysis, Checked, Refusal, Scope, TxnTimestamp, analyze, checked};

/// Texts longer than this are checked every time: long statements are rarely repeated (bulk
/// inserts with literal rows), and keeping them would let a few fill the memory bound.
const MAX_TEXT_BYTES: usize = 4096;

/// How many texts are kept, at most [`MAX_TEXT_BYTES`] each: a few MiB in the worst case.
const CAPACITY: usize = 1024;

/// Remembered check findings, by statement text.
#[derive(Default)]
pub struct Memo {
    findings: HashMap<String, Result<Analysis, Refusal>>,
}

impl Memo {
    /// Exactly [`check`](super::check)`(sql, timestamp)`, parsing `sql` only the first time.
    pub fn check(&mut self, sql: &str, timestamp: TxnTimestamp) -> Result<Checked, Refusal> {
        let finding = match self.findings.get(sql) {
            Some(finding) => finding.clone(),
            None => {
                let finding = analyze(sql, Scope::Statement);
                if sql.len() <= MAX_TEXT_BYTES {
                    // Full: start over rather than track recency. The texts an application
                    // repeats come back at once, and the ones it sent once (a load's literal
                    // rows) are gone, which keeping the first texts forever would not do.
                    if self.findings.len() >= CAPACITY {
                        self.findings.clear();
                    }
                    self.findings.insert(sql.to_owned(), finding.clone());
                }
                finding
            }
        };
        checked(sql, finding?, timestamp)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.findings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CASE_TIMESTAMP_US, CASES, check};
    use super::*;

    fn at(unix_us: i64) -> TxnTimestamp {
        TxnTimestamp::from_unix_micros(unix_us).expect("in range")
    }

    /// Every documented case, asked twice (remembered the second time) and at another timestamp
    /// (a remembered rewrite must take the new one), answers exactly as `check` does.
    #[test]
    fn answers_exactly_as_check_for_every_case_and_timestamp() {
        let mut memo = Memo::default();
        for ts in [at(CASE_TIMESTAMP_US), at(CASE_TIMESTAMP_US), at(CASE_TIMESTAMP_US + 86_400_000_000)] {
            for case in CASES {
                assert_eq!(memo.check(case.sql, ts), check(case.sql, ts), "case {}: {}", case.id, case.sql);
            }
        }
        let distinct: std::collections::HashSet<&str> = CASES.iter().map(|c| c.sql).collect();
        assert_eq!(memo.len(), distinct.len());
    }

    #[test]
    fn stays_within_its_bound_and_skips_long_texts() {
        let mut memo = Memo::default();
        let ts = at(0);
        for i in 0..CAPACITY + 10 {
            let sql = format!("SELECT {i}");
            assert_eq!(memo.check(&sql, ts), check(&sql, ts));
            assert!(memo.len() <= CAPACITY);
        }
        assert_eq!(memo.len(), 10, "started over when full");
        let long = format!("SELECT '{}'", "x".repeat(MAX_TEXT_BYTES));
        assert_eq!(memo.check(&long, ts), check(&long, ts));
        assert_eq!(memo.len(), 10, "a long text is not kept");
    }
}
