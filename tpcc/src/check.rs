//! `barista-tpcc check`: TPC-C's consistency conditions (clause 3.3.2) on each database given,
//! read directly from PostgreSQL (for Barista: each replica's own PostgreSQL), and a comparison
//! showing that all of them hold identical data (row count and an md5 of every table's rows in
//! key order).
//!
//! Each condition is one query counting the rows or groups that violate it; 0 passes. Sums that
//! can be over no rows are wrapped in COALESCE. Condition 11 holds only right after a load
//! (every delivered order leaves the new-order table), so it runs only with `--after-load`.

use anyhow::Context as _;

use crate::schema::{META_TABLE, TABLES};
use crate::target::{Session, Target};

/// One consistency condition: its number, what it states, and the query counting violations.
pub struct Condition {
    /// Its number in clause 3.3.2.
    pub number: u32,
    /// What it states.
    pub states: &'static str,
    /// A query returning the number of violations.
    pub sql: &'static str,
}

/// Delivered order-line amounts per customer (conditions 10 and 12).
macro_rules! delivered_per_customer {
    () => {
        "(SELECT o_w_id AS w, o_d_id AS d, o_c_id AS c, sum(ol_amount) AS amount
          FROM orders JOIN order_line ON ol_w_id = o_w_id AND ol_d_id = o_d_id AND ol_o_id = o_id
          WHERE ol_delivery_d IS NOT NULL GROUP BY o_w_id, o_d_id, o_c_id)"
    };
}

/// Conditions 1 to 12.
pub const CONDITIONS: [Condition; 12] = [
    Condition {
        number: 1,
        states: "W_YTD = sum(D_YTD) for each warehouse",
        sql: "SELECT count(*) FROM warehouse w
              WHERE w.w_ytd <> (SELECT COALESCE(sum(d_ytd), 0) FROM district WHERE d_w_id = w.w_id)",
    },
    Condition {
        number: 2,
        states: "D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID) for each district",
        sql: "SELECT count(*) FROM district d
              WHERE d.d_next_o_id - 1 IS DISTINCT FROM (SELECT max(o_id) FROM orders WHERE o_w_id = d.d_w_id AND o_d_id = d.d_id)
                 OR (EXISTS (SELECT 1 FROM new_order WHERE no_w_id = d.d_w_id AND no_d_id = d.d_id)
                     AND d.d_next_o_id - 1 <> (SELECT max(no_o_id) FROM new_order WHERE no_w_id = d.d_w_id AND no_d_id = d.d_id))",
    },
    Condition {
        number: 3,
        states: "max(NO_O_ID) - min(NO_O_ID) + 1 = rows in NEW-ORDER for each district",
        sql: "SELECT count(*) FROM (SELECT max(no_o_id) - min(no_o_id) + 1 AS span, count(*) AS n
              FROM new_order GROUP BY no_w_id, no_d_id) g WHERE span <> n",
    },
    Condition {
        number: 4,
        states: "sum(O_OL_CNT) = rows in ORDER-LINE for each district",
        sql: "SELECT count(*) FROM
                (SELECT o_w_id AS w, o_d_id AS d, sum(o_ol_cnt) AS n FROM orders GROUP BY o_w_id, o_d_id) o
                FULL JOIN (SELECT ol_w_id AS w, ol_d_id AS d, count(*) AS n FROM order_line GROUP BY ol_w_id, ol_d_id) l
                ON o.w = l.w AND o.d = l.d
              WHERE o.n IS DISTINCT FROM l.n",
    },
    Condition {
        number: 5,
        states: "O_CARRIER_ID is null exactly for the orders that have a NEW-ORDER row",
        sql: "SELECT (SELECT count(*) FROM orders o
                      LEFT JOIN new_order n ON n.no_w_id = o.o_w_id AND n.no_d_id = o.o_d_id AND n.no_o_id = o.o_id
                      WHERE (o.o_carrier_id IS NULL) <> (n.no_o_id IS NOT NULL))
                   + (SELECT count(*) FROM new_order n WHERE NOT EXISTS
                      (SELECT 1 FROM orders WHERE o_w_id = n.no_w_id AND o_d_id = n.no_d_id AND o_id = n.no_o_id))",
    },
    Condition {
        number: 6,
        states: "O_OL_CNT = rows in ORDER-LINE for each order",
        sql: "SELECT count(*) FROM orders o
              LEFT JOIN (SELECT ol_w_id, ol_d_id, ol_o_id, count(*) AS n FROM order_line
                         GROUP BY ol_w_id, ol_d_id, ol_o_id) l
                ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id AND l.ol_o_id = o.o_id
              WHERE o.o_ol_cnt IS DISTINCT FROM l.n",
    },
    Condition {
        number: 7,
        states: "OL_DELIVERY_D is null exactly when its order's O_CARRIER_ID is null",
        sql: "SELECT count(*) FROM order_line l
              JOIN orders o ON o.o_w_id = l.ol_w_id AND o.o_d_id = l.ol_d_id AND o.o_id = l.ol_o_id
              WHERE (l.ol_delivery_d IS NULL) <> (o.o_carrier_id IS NULL)",
    },
    Condition {
        number: 8,
        states: "W_YTD = sum(H_AMOUNT) for each warehouse",
        sql: "SELECT count(*) FROM warehouse w
              LEFT JOIN (SELECT h_w_id, sum(h_amount) AS amount FROM history GROUP BY h_w_id) h ON h.h_w_id = w.w_id
              WHERE w.w_ytd <> COALESCE(h.amount, 0)",
    },
    Condition {
        number: 9,
        states: "D_YTD = sum(H_AMOUNT) for each district",
        sql: "SELECT count(*) FROM district d
              LEFT JOIN (SELECT h_w_id, h_d_id, sum(h_amount) AS amount FROM history GROUP BY h_w_id, h_d_id) h
                ON h.h_w_id = d.d_w_id AND h.h_d_id = d.d_id
              WHERE d.d_ytd <> COALESCE(h.amount, 0)",
    },
    Condition {
        number: 10,
        states: "C_BALANCE = sum(delivered OL_AMOUNT) - sum(H_AMOUNT) for each customer",
        sql: concat!(
            "SELECT count(*) FROM customer c LEFT JOIN ",
            delivered_per_customer!(),
            " o ON o.w = c.c_w_id AND o.d = c.c_d_id AND o.c = c.c_id
              LEFT JOIN (SELECT h_c_w_id AS w, h_c_d_id AS d, h_c_id AS c, sum(h_amount) AS amount FROM history
                         GROUP BY h_c_w_id, h_c_d_id, h_c_id) h ON h.w = c.c_w_id AND h.d = c.c_d_id AND h.c = c.c_id
              WHERE c.c_balance <> COALESCE(o.amount, 0) - COALESCE(h.amount, 0)"
        ),
    },
    Condition {
        number: 11,
        states: "rows in ORDER - rows in NEW-ORDER = 2100 for each district (right after a load; fewer in a divided test database)",
        sql: "SELECT count(*) FROM district d
              LEFT JOIN (SELECT o_w_id AS w, o_d_id AS d, count(*) AS n FROM orders GROUP BY o_w_id, o_d_id) o
                ON o.w = d.d_w_id AND o.d = d.d_id
              LEFT JOIN (SELECT no_w_id AS w, no_d_id AS d, count(*) AS n FROM new_order GROUP BY no_w_id, no_d_id) n
                ON n.w = d.d_w_id AND n.d = d.d_id
              WHERE COALESCE(o.n, 0) - COALESCE(n.n, 0) <>
                    (SELECT c - (c * 3) / 10 FROM (SELECT COALESCE(
                        (SELECT value FROM tpcc_meta WHERE name = 'customers'), 3000) AS c) s)",
    },
    Condition {
        number: 12,
        states: "C_BALANCE + C_YTD_PAYMENT = sum(delivered OL_AMOUNT) for each customer",
        sql: concat!(
            "SELECT count(*) FROM customer c LEFT JOIN ",
            delivered_per_customer!(),
            " o ON o.w = c.c_w_id AND o.d = c.c_d_id AND o.c = c.c_id
              WHERE c.c_balance + c.c_ytd_payment <> COALESCE(o.amount, 0)"
        ),
    },
];

/// A table's row count and the md5 of its rows in key order.
pub fn table_digest_sql(table: &str, order: &str) -> String {
    format!("SELECT count(*), md5(COALESCE(string_agg({table}::text, E'\\n' ORDER BY {order}), '')) FROM {table}")
}

/// One database's results.
#[derive(Clone, Debug)]
pub struct DatabaseCheck {
    /// The database.
    pub target: String,
    /// (condition number, violations).
    pub violations: Vec<(u32, i64)>,
    /// (table, rows, md5).
    pub digests: Vec<(String, i64, String)>,
}

/// Runs the conditions and digests on one database.
pub fn check_database(session: &mut dyn Session, target: &str, after_load: bool) -> anyhow::Result<DatabaseCheck> {
    let mut violations = Vec::new();
    for c in CONDITIONS.iter().filter(|c| after_load || c.number != 11) {
        let rows = session.execute(c.sql, &[]).with_context(|| format!("{target}: condition {}", c.number))?;
        violations.push((c.number, rows.int(0, 0)?));
    }
    let mut digests = Vec::new();
    for (table, order) in TABLES.iter().copied().chain([(META_TABLE, "name")]) {
        let rows = session
            .execute(&table_digest_sql(table, order), &[])
            .with_context(|| format!("{target}: digest of {table}"))?;
        digests.push((table.to_string(), rows.int(0, 0)?, rows.get(0, 1).unwrap_or_default().to_string()));
    }
    Ok(DatabaseCheck { target: target.to_string(), violations, digests })
}

/// Checks every target; returns the printed report and whether everything passed.
pub fn check(targets: &[String], after_load: bool) -> anyhow::Result<(String, bool)> {
    use std::fmt::Write as _;
    anyhow::ensure!(!targets.is_empty(), "give at least one --target postgres://...");
    let mut results = Vec::new();
    for url in targets {
        let target = Target::parse(url)?;
        anyhow::ensure!(
            !target.is_barista(),
            "{url}: check reads each PostgreSQL directly; give every replica's postgres:// URL instead of barista://"
        );
        let mut session = target.connect().with_context(|| format!("connecting to {url}"))?;
        results.push(check_database(session.as_mut(), url, after_load)?);
    }
    let mut out = String::new();
    let mut ok = true;
    for r in &results {
        let failed: Vec<&(u32, i64)> = r.violations.iter().filter(|(_, n)| *n != 0).collect();
        let _ = writeln!(
            out,
            "{}: consistency conditions {} {}",
            r.target,
            r.violations.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>().join(","),
            if failed.is_empty() { "hold" } else { "FAIL" }
        );
        for (number, n) in failed {
            ok = false;
            let states = CONDITIONS.iter().find(|c| c.number == *number).map_or("", |c| c.states);
            let _ = writeln!(out, "  condition {number} violated {n} time(s): {states}");
        }
    }
    if let Some(first) = results.first() {
        let _ = writeln!(
            out,
            "{:<12} {:>10}  md5 (rows in key order){}",
            "table",
            "rows",
            if results.len() > 1 { ", per database" } else { "" }
        );
        for (i, (table, rows, md5)) in first.digests.iter().enumerate() {
            let same = results.iter().all(|r| r.digests.get(i).is_some_and(|(_, n, m)| n == rows && m == md5));
            let _ = writeln!(
                out,
                "{table:<12} {rows:>10}  {md5}{}",
                if results.len() > 1 && same { "  identical on all" } else { "" }
            );
            if !same {
                ok = false;
                for r in &results[1..] {
                    if let Some((_, n, m)) = r.digests.get(i) {
                        let _ = writeln!(out, "  DIFFERS on {}: {n} rows, {m}", r.target);
                    }
                }
            }
        }
    }
    if results.len() > 1 {
        let _ = writeln!(
            out,
            "{}",
            if results.iter().all(|r| r.digests == results[0].digests) {
                format!("all {} databases hold identical data", results.len())
            } else {
                "the databases DIFFER".to_string()
            }
        );
    }
    let _ = writeln!(out, "{}", if ok { "check passed" } else { "check FAILED" });
    Ok((out, ok))
}
