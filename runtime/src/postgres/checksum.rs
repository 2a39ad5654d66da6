//! The divergence checksum of a PostgreSQL database ([`crate::verify`]), computed by the server.
//!
//! In one `REPEATABLE READ READ ONLY` transaction: the catalog lists every ordinary table
//! (partitions and inheritance children included, each read `ONLY` once; partitioned parents,
//! views, materialized views, foreign and temporary tables left out) and every sequence, outside
//! `pg_catalog`, `information_schema` and the toast and temporary schemas, in name order (`"C"`
//! collation, so the server's locale does not matter). Per table the server returns its row count
//! and the sums of the two 64-bit halves of each row's `md5(row::text)`: order-independent (equal
//! data digests alike whatever the physical order, with no sort), bounded in memory, and no row
//! crosses the network. Row text is PostgreSQL's output under the pinned session settings, the
//! same on every replica. A table's digest also covers its column names and types. A sequence's
//! is its `last_value` and `is_called` (the state `nextval` continues from; `log_cnt` is WAL
//! bookkeeping that differs between servers): so a sequence that jumped after a crash of one
//! server is found too.

use tokio_postgres::SimpleQueryMessage;

use super::PgSession;
use crate::sql::BackendFault;
use crate::verify::{Coverage, DatabaseDigest, DigestBuilder, TableDigest};

/// The schema of Barista's own tables (`PgSession::BOOKKEEPING_SCHEMA` without its dot).
const BOOKKEEPING_SCHEMA: &str = "public";

const LIST: &str = r#"SELECT n.nspname, c.relname, c.relkind::text,
       coalesce((SELECT string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ', '
                                   ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'S') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C""#;

/// `"name"`, quoted as an identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every row of the answer, each as its columns' text (NULL as `None`).
fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect()),
            _ => None,
        })
        .collect()
}

impl PgSession {
    /// See [`crate::sql::SqlSession::checksum`]. Any error closes the session: its transaction
    /// state is then unknown.
    pub(super) async fn checksum_now(
        &mut self,
        bookkeeping: &'static [(&'static str, Coverage)],
    ) -> Result<DatabaseDigest, BackendFault> {
        if let Some(fault) = &self.broken {
            return Err(BackendFault(format!("session closed after an earlier fault ({})", fault.0)));
        }
        let result = self.digest_tables(bookkeeping).await;
        if let Err(fault) = &result {
            self.close(fault.clone());
        }
        result
    }

    async fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, BackendFault> {
        let messages = self.client.simple_query(sql).await.map_err(|e| BackendFault(format!("checksum: {e}")))?;
        Ok(rows(&messages))
    }

    async fn digest_tables(
        &mut self,
        bookkeeping: &'static [(&'static str, Coverage)],
    ) -> Result<DatabaseDigest, BackendFault> {
        self.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        let mut tables = Vec::new();
        for row in self.query(LIST).await? {
            let [Some(schema), Some(name), Some(kind), Some(columns)] = row.as_slice() else {
                return Err(BackendFault(format!("checksum: unexpected catalog row {row:?}")));
            };
            let coverage =
                bookkeeping.iter().find(|(table, _)| schema == BOOKKEEPING_SCHEMA && table == name).map(|(_, c)| *c);
            let relation = format!("{}.{}", quote(schema), quote(name));
            let (row, columns) = match (kind.as_str(), coverage) {
                (_, Some(Coverage::Skip)) => continue,
                ("S", _) => ("ROW(t.last_value, t.is_called)".to_owned(), "last_value, is_called".to_owned()),
                (_, Some(Coverage::Columns(only))) => {
                    let picked: Vec<String> = only.iter().map(|c| format!("t.{}", quote(c))).collect();
                    (format!("ROW({})", picked.join(", ")), only.join(", "))
                }
                (_, None) => ("t".to_owned(), columns.clone()),
            };
            let sql = format!(
                "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0), \
                 coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0) \
                 FROM (SELECT md5({row}::text) AS h FROM ONLY {relation} t) s"
            );
            let answer = self.query(&sql).await?;
            let [count, first, second] = answer.first().map(Vec::as_slice).unwrap_or_default() else {
                return Err(BackendFault(format!("checksum of {relation}: unexpected answer {answer:?}")));
            };
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let mut builder = DigestBuilder::new();
            builder.part(columns.as_bytes()).part(text(first).as_bytes()).part(text(second).as_bytes());
            tables.push(TableDigest {
                table: format!("{schema}.{name}"),
                rows: text(count).parse().unwrap_or(0),
                digest: builder.finish(),
            });
        }
        self.query("COMMIT").await?;
        Ok(DatabaseDigest::from_tables(tables))
    }
}
