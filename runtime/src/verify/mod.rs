//! Divergence detection: every replica checksums its database at the same log position, the
//! replicas publish their digests through the log, and every replica decides alike who diverged.
//!
//! ```text
//!  POST /verify, or the periodic check    slot s: Checksum         slots > s: ChecksumReport x N
//!  ----------------------------------->   every replica digests    every replica records every
//!          (Service::verify)              its tables at slot s     report; a majority digest
//!                                         and proposes a report    marks the others Diverged
//! ```
//!
//! - **Where**: a `Checksum` command is admitted like a `BEGIN`: never while a client transaction is
//!   open (it is answered `Busy` and retried), so the digest covers exactly the committed effects
//!   of every slot before it, the same on every replica. Its check id is its slot.
//! - **What**: every user table (schemas other than the system ones), the state of every sequence,
//!   and `barista_sessions` without its `outcome` column. Left out, because they may differ between
//!   healthy replicas: `sqlpaxoslog` (a position, equal by construction where the check runs),
//!   `barista_sessions.outcome` (it records read results, and a read may legitimately answer in a
//!   different row order, or with `random()`, on each replica: only the serving replica's answer
//!   reaches the client), and `barista_checks` (the checks' own records). See
//!   [`CHECKSUM_COVERAGE`](crate::executor::CHECKSUM_COVERAGE) and each backend's `checksum`.
//! - **How it is decided** ([`tally`]): a digest reported by a majority of the cluster is the
//!   reference; a replica whose report differs is diverged. Every replica applies the same reports
//!   in the same order, so every replica reaches the same verdict about every replica. A replica
//!   that finds itself diverged reports [`Health::Diverged`](crate::node::Health::Diverged): it
//!   stops serving clients and keeps applying the log, and a later check that finds it agreeing
//!   (after its database was repaired or re-seeded) makes it healthy again. The reports live in
//!   the replica's database (`barista_checks`), so the verdict survives a restart.
//! - **Cost**: the checksum reads every table inside the apply loop: the log waits while it runs
//!   (PostgreSQL reads every row once, with no sort). Schedule it accordingly (`verify_interval_ms`).
//!
//! A diverged replica remains a Paxos acceptor and may still lead: its acceptor state is intact,
//! and ordering the log never reads the database; it only stops answering clients.

pub mod periodic;
pub mod tally;
pub(crate) mod watch;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use tally::{CheckSummary, Checks, Divergence, Verdict, diverged_replicas};

/// A 128-bit digest (SHA-256, truncated): of one table, or of a whole database.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Digest(pub [u8; 16]);

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Builds a [`Digest`] from parts; each part is length-prefixed, so `("ab", "c")` and
/// `("a", "bc")` differ.
#[derive(Clone, Default)]
pub struct DigestBuilder(Sha256);

impl DigestBuilder {
    /// An empty builder.
    pub fn new() -> DigestBuilder {
        DigestBuilder::default()
    }

    /// Adds one part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut DigestBuilder {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// The digest of the parts added.
    pub fn finish(self) -> Digest {
        let full = self.0.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        Digest(out)
    }
}

/// One table's (or sequence's) digest in a checksum.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TableDigest {
    /// Its name as the backend lists it (`schema.table` in PostgreSQL).
    pub table: String,
    /// Its row count.
    pub rows: u64,
    /// Its columns and rows, digested.
    pub digest: Digest,
}

/// A replica's checksum at one log position: every table's digest and their combination.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DatabaseDigest {
    /// The whole database: what replicas are compared by.
    pub digest: Digest,
    /// Every covered table, by name: says where two replicas differ.
    pub tables: Vec<TableDigest>,
}

impl DatabaseDigest {
    /// Combines per-table digests (in any order) into the database's.
    pub fn from_tables(mut tables: Vec<TableDigest>) -> DatabaseDigest {
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        let mut builder = DigestBuilder::new();
        for t in &tables {
            builder.part(t.table.as_bytes()).part(&t.rows.to_le_bytes()).part(&t.digest.0);
        }
        DatabaseDigest { digest: builder.finish(), tables }
    }

    /// The tables that are not the same in `other` (different, or present in one only).
    pub fn differing_tables(&self, other: &DatabaseDigest) -> Vec<String> {
        let mine: std::collections::BTreeMap<&str, &TableDigest> =
            self.tables.iter().map(|t| (t.table.as_str(), t)).collect();
        let theirs: std::collections::BTreeMap<&str, &TableDigest> =
            other.tables.iter().map(|t| (t.table.as_str(), t)).collect();
        let mut names: Vec<&str> = mine.keys().chain(theirs.keys()).copied().collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter().filter(|n| mine.get(n) != theirs.get(n)).map(str::to_owned).collect()
    }
}

/// How a checksum treats one of Barista's own tables (in the bookkeeping schema); every other
/// table is covered whole.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Coverage {
    /// Left out.
    Skip,
    /// Only these columns.
    Columns(&'static [&'static str]),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rows: u64, seed: u8) -> TableDigest {
        TableDigest { table: name.into(), rows, digest: Digest([seed; 16]) }
    }

    #[test]
    fn database_digest_ignores_listing_order_and_names_differing_tables() {
        let a = DatabaseDigest::from_tables(vec![table("public.a", 1, 1), table("public.b", 2, 2)]);
        let b = DatabaseDigest::from_tables(vec![table("public.b", 2, 2), table("public.a", 1, 1)]);
        assert_eq!(a, b);
        let c = DatabaseDigest::from_tables(vec![table("public.a", 1, 9), table("public.c", 0, 0)]);
        assert_ne!(a.digest, c.digest);
        assert_eq!(a.differing_tables(&c), ["public.a", "public.b", "public.c"]);
        assert!(a.differing_tables(&b).is_empty());
    }

    #[test]
    fn parts_are_delimited() {
        let mut x = DigestBuilder::new();
        x.part(b"ab").part(b"c");
        let mut y = DigestBuilder::new();
        y.part(b"a").part(b"bc");
        assert_ne!(x.finish(), y.finish());
        assert_eq!(Digest([0xab; 16]).to_string(), "ab".repeat(16));
    }
}
