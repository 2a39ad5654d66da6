//! End-of-run checkers: after the healed phase every replica must hold exactly the same data, the
//! bank's money must be conserved, and every acknowledged insert must be there.
//!
//! They read each replica's database directly through the same `SqlBackend` trait the executor
//! uses, as an operator with `psql` would.

use std::collections::BTreeSet;
use std::sync::Arc;

use barista_runtime::sql::{SqlBackend, SqlSession, SqlValue};
use barista_runtime::testkit::sqlite::SqliteDb;

use crate::workload::{ACCOUNTS, OPENING_BALANCE};

/// The tables compared across replicas, each in a canonical order.
const CANONICAL: [&str; 5] = [
    "SELECT id, client FROM ins ORDER BY id",
    "SELECT id, balance FROM accounts ORDER BY id",
    "SELECT k, v FROM reg ORDER BY k",
    "SELECT lastseqnum FROM sqlpaxoslog",
    "SELECT conn, request_seq, state FROM barista_sessions ORDER BY conn",
];

async fn query(db: &SqliteDb, sql: &str) -> Result<Vec<Vec<SqlValue>>, String> {
    let mut session = db.backend().connect().await.map_err(|e| e.to_string())?;
    let rows = session.execute(sql, &[]).await.map_err(|e| e.to_string())?;
    rows.map(|rs| rs.rows).map_err(|e| format!("{sql}: {e}"))
}

/// A canonical rendering of everything a replica holds.
pub async fn snapshot(db: &SqliteDb) -> Result<String, String> {
    let mut out = String::new();
    for sql in CANONICAL {
        out.push_str(&format!("{sql}\n{:?}\n", query(db, sql).await?));
    }
    Ok(out)
}

/// All replicas hold the same data.
pub async fn identical(dbs: &[Arc<SqliteDb>]) -> Result<(), String> {
    let first = snapshot(&dbs[0]).await?;
    for (i, db) in dbs.iter().enumerate().skip(1) {
        let other = snapshot(db).await?;
        if other != first {
            return Err(format!(
                "replica {i} differs from replica 0:\n--- replica 0\n{first}\n--- replica {i}\n{other}"
            ));
        }
    }
    Ok(())
}

/// The bank's total is what it opened with, on every replica.
pub async fn money_conserved(dbs: &[Arc<SqliteDb>]) -> Result<(), String> {
    for (i, db) in dbs.iter().enumerate() {
        let rows = query(db, "SELECT balance FROM accounts").await?;
        let total: i64 =
            rows.iter().filter_map(|r| if let Some(SqlValue::Int(b)) = r.first() { Some(*b) } else { None }).sum();
        if total != ACCOUNTS * OPENING_BALANCE {
            return Err(format!("replica {i}: the bank holds {total}, not {}", ACCOUNTS * OPENING_BALANCE));
        }
    }
    Ok(())
}

/// Every acknowledged insert is present on every replica.
pub async fn no_acked_insert_lost(dbs: &[Arc<SqliteDb>], acked: &[i64]) -> Result<(), String> {
    for (i, db) in dbs.iter().enumerate() {
        let rows = query(db, "SELECT id FROM ins").await?;
        let present: BTreeSet<i64> = rows
            .iter()
            .filter_map(|r| if let Some(SqlValue::Int(id)) = r.first() { Some(*id) } else { None })
            .collect();
        if let Some(lost) = acked.iter().find(|id| !present.contains(id)) {
            return Err(format!("replica {i} lost acknowledged insert {lost}"));
        }
    }
    Ok(())
}
