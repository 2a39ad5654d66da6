//! The database under test, behind one small trait: a [`Session`] runs SQL text with `$n`
//! parameters, and transaction control. Two kinds of target, the same SQL for both:
//!
//! - `postgres://user@host:port[,host:port...]/db`: PostgreSQL directly (tokio-postgres), or
//!   anything that speaks its protocol (a synchronous-replication primary, a pgpool-II front,
//!   Barista's PostgreSQL port). A session whose connection is lost connects again, to the first
//!   host that accepts, before its next transaction, as an application on libpq would.
//! - `barista://host:port[,host:port...]`: a Barista cluster through `barista-client`.
//!
//! Parameters travel as text and the server reads them as whatever type it inferred for them,
//! which is what Barista does with its own parameters; results come back as text. So one SQL
//! string and one set of parameter values behave the same on both targets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

pub use barista_client::Value;

/// How long a `postgres://` session whose connection was lost keeps trying to connect again
/// before it reports the failure (a Barista replica refuses connections while an election runs).
const RECONNECT_FOR: Duration = Duration::from_secs(10);

/// The pause between two failed attempts to connect again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// A statement's rows, each cell as text (`None`: NULL).
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// The rows.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows inserted, updated or deleted (or returned).
    pub affected: u64,
}

impl Rows {
    /// The cell at `row`, `column` (NULL and missing cells are `None`).
    pub fn get(&self, row: usize, column: usize) -> Option<&str> {
        self.rows.get(row)?.get(column)?.as_deref()
    }

    /// The cell at `row`, `column` as an integer.
    pub fn int(&self, row: usize, column: usize) -> Result<i64, DbError> {
        let cell =
            self.get(row, column).ok_or_else(|| DbError::other(format!("no value at row {row}, column {column}")))?;
        cell.parse().map_err(|_| DbError::other(format!("not an integer: {cell:?}")))
    }
}

/// A failed call: an SQL error with its SQLSTATE, or a failure to reach the database.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}{}", .sqlstate.as_ref().map(|s| format!(" (SQLSTATE {s})")).unwrap_or_default())]
pub struct DbError {
    /// PostgreSQL's SQLSTATE, when the database answered with one.
    pub sqlstate: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl DbError {
    /// An error without an SQLSTATE.
    pub fn other(message: impl Into<String>) -> DbError {
        DbError { sqlstate: None, message: message.into() }
    }

    /// A serialization failure or deadlock: the transaction may simply be run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self.sqlstate.as_deref(), Some("40001" | "40P01"))
    }
}

/// One connection to the database under test.
pub trait Session: Send {
    /// Runs one statement (autocommit, or inside the open transaction).
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Rows, DbError>;
    /// Starts a transaction.
    fn begin(&mut self) -> Result<(), DbError>;
    /// Commits the open transaction.
    fn commit(&mut self) -> Result<(), DbError>;
    /// Rolls back the open transaction.
    fn rollback(&mut self) -> Result<(), DbError>;
}

/// Where to connect, parsed from `--target`.
#[derive(Clone)]
pub enum Target {
    /// PostgreSQL (or its protocol): the URL as tokio-postgres takes it, and the runtime its
    /// connections run on.
    Postgres {
        /// The `postgres://` URL.
        url: String,
        /// Shared by every session of this target; each session's calls block on it.
        runtime: Arc<tokio::runtime::Runtime>,
    },
    /// Barista: the replicas' Thrift addresses.
    Barista(Vec<String>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Target {
    /// Parses `postgres://...` (or `postgresql://...`) or `barista://host:port[,host:port...]`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        if let Some(rest) = url.strip_prefix("barista://") {
            let replicas: Vec<String> =
                rest.trim_end_matches('/').split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
            anyhow::ensure!(!replicas.is_empty(), "{url}: no replica address (barista://host:port[,host:port...])");
            for r in &replicas {
                anyhow::ensure!(r.contains(':'), "{url}: {r} is not host:port");
            }
            return Ok(Target::Barista(replicas));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.parse::<tokio_postgres::Config>().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| anyhow::anyhow!("starting the PostgreSQL client runtime: {e}"))?;
            return Ok(Target::Postgres { url: url.to_string(), runtime: Arc::new(runtime) });
        }
        anyhow::bail!("{url}: a target is postgres://user@host:port/db or barista://host:port[,host:port...]")
    }

    /// The target as given (for reports).
    pub fn describe(&self) -> String {
        match self {
            Target::Postgres { url, .. } => url.clone(),
            Target::Barista(replicas) => format!("barista://{}", replicas.join(",")),
        }
    }

    /// Whether this is a Barista cluster.
    pub fn is_barista(&self) -> bool {
        matches!(self, Target::Barista(_))
    }

    /// Opens a new session.
    pub fn connect(&self) -> Result<Box<dyn Session>, DbError> {
        match self {
            Target::Postgres { url, runtime } => Ok(Box::new(PostgresSession {
                client: pg_connect(url, runtime)?,
                url: url.clone(),
                runtime: runtime.clone(),
                statements: HashMap::new(),
                in_transaction: false,
            })),
            Target::Barista(replicas) => {
                let cfg = barista_client::ClientConfig {
                    io_timeout: std::time::Duration::from_secs(120),
                    ..barista_client::ClientConfig::default()
                };
                let client = barista_client::Client::connect(replicas, cfg).map_err(barista_error)?;
                Ok(Box::new(BaristaSession { client }))
            }
        }
    }
}

/// A session on PostgreSQL, with its prepared statements by SQL text.
struct PostgresSession {
    client: tokio_postgres::Client,
    url: String,
    runtime: Arc<tokio::runtime::Runtime>,
    statements: HashMap<String, tokio_postgres::Statement>,
    /// Between BEGIN and COMMIT or ROLLBACK. A connection lost there is not replaced: the
    /// transaction went with it, and the statements after it must not run outside it.
    in_transaction: bool,
}

/// A new connection (the first host of the URL that accepts), driven on `runtime`.
fn pg_connect(url: &str, runtime: &tokio::runtime::Runtime) -> Result<tokio_postgres::Client, DbError> {
    let (client, connection) =
        runtime.block_on(tokio_postgres::connect(url, tokio_postgres::NoTls)).map_err(|e| pg_error(&e))?;
    runtime.spawn(async move {
        // Ends when the client is dropped; an error then has nobody to go to.
        let _ = connection.await;
    });
    Ok(client)
}

fn pg_error(e: &tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError { sqlstate: Some(db.code().code().to_string()), message: db.message().to_string() },
        None => DbError::other(e.to_string()),
    }
}

/// A parameter in PostgreSQL's text format; the server reads it as the type it inferred.
#[derive(Debug)]
struct TextParam(Option<String>);

impl ToSql for TextParam {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            None => Ok(IsNull::Yes),
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    to_sql_checked!();
}

fn text_param(value: &Value) -> TextParam {
    TextParam(match value {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Bytes(b) => Some(b.iter().fold(String::from("\\x"), |s, byte| s + &format!("{byte:02x}"))),
    })
}

/// A result cell read from PostgreSQL's binary format into text, for the types the kit reads.
struct TextCell(Option<String>);

impl<'a> FromSql<'a> for TextCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = match *ty {
            Type::INT2 => i16::from_sql(ty, raw)?.to_string(),
            Type::INT4 => i32::from_sql(ty, raw)?.to_string(),
            Type::INT8 => i64::from_sql(ty, raw)?.to_string(),
            Type::FLOAT4 => f32::from_sql(ty, raw)?.to_string(),
            Type::FLOAT8 => f64::from_sql(ty, raw)?.to_string(),
            Type::BOOL => if bool::from_sql(ty, raw)? { "t" } else { "f" }.to_string(),
            Type::NUMERIC => numeric_text(raw)?,
            // Microseconds since 2000-01-01: the kit only carries timestamps, never reads them.
            Type::TIMESTAMP | Type::TIMESTAMPTZ => i64::from_sql(&Type::INT8, raw)?.to_string(),
            Type::VOID => String::new(),
            _ => String::from_utf8(raw.to_vec())?,
        };
        Ok(TextCell(Some(text)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(TextCell(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A `numeric` in PostgreSQL's binary format (base-10000 digits) as its text form.
pub fn numeric_text(raw: &[u8]) -> Result<String, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
        let b = raw.get(2 * i..2 * i + 2).ok_or("numeric value too short")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Result<_, _>>()?;
    // Digit i is worth 10000^(weight - i).
    let digit = |i: i64| if i >= 0 && (i as usize) < digits.len() { digits[i as usize] } else { 0 };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit(0).to_string());
        for i in 1..=weight {
            out.push_str(&format!("{:04}", digit(i)));
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

impl PostgresSession {
    fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        self.runtime.block_on(self.client.batch_execute(sql)).map_err(|e| pg_error(&e))
    }

    /// Outside a transaction, replaces a lost connection (its prepared statements went with it),
    /// trying for up to [`RECONNECT_FOR`].
    fn reconnect_if_lost(&mut self) -> Result<(), DbError> {
        if self.in_transaction || !self.client.is_closed() {
            return Ok(());
        }
        let deadline = Instant::now() + RECONNECT_FOR;
        let client = loop {
            match pg_connect(&self.url, &self.runtime) {
                Ok(client) => break client,
                Err(e) if Instant::now() >= deadline => {
                    return Err(DbError::other(format!("connection lost; connecting again: {e}")));
                }
                Err(_) => std::thread::sleep(RECONNECT_PAUSE),
            }
        };
        self.client = client;
        self.statements.clear();
        Ok(())
    }
}

impl Session for PostgresSession {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        self.reconnect_if_lost()?;
        let statement = match self.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = self.runtime.block_on(self.client.prepare(sql)).map_err(|e| pg_error(&e))?;
                // Bulk-load statements are used once: only the driver's few are worth keeping.
                if sql.len() < 4096 {
                    self.statements.insert(sql.to_string(), s.clone());
                }
                s
            }
        };
        let params: Vec<TextParam> = params.iter().map(text_param).collect();
        let client = &self.client;
        self.runtime.block_on(async {
            use futures::TryStreamExt as _;
            let stream =
                client.query_raw(&statement, params.iter().map(|p| p as &dyn ToSql)).await.map_err(|e| pg_error(&e))?;
            let mut stream = std::pin::pin!(stream);
            let mut rows = Vec::new();
            while let Some(row) = stream.try_next().await.map_err(|e| pg_error(&e))? {
                let mut cells = Vec::with_capacity(row.len());
                for i in 0..row.len() {
                    cells.push(row.try_get::<_, TextCell>(i).map_err(|e| DbError::other(e.to_string()))?.0);
                }
                rows.push(cells);
            }
            let affected = stream.rows_affected().unwrap_or(rows.len() as u64);
            Ok(Rows { rows, affected })
        })
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.reconnect_if_lost()?;
        self.simple("BEGIN")?;
        self.in_transaction = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), DbError> {
        // Ends the transaction whatever the answer: a failed COMMIT rolls back.
        self.in_transaction = false;
        self.simple("COMMIT")
    }

    fn rollback(&mut self) -> Result<(), DbError> {
        self.in_transaction = false;
        self.simple("ROLLBACK")
    }
}

/// A session on Barista.
struct BaristaSession {
    client: barista_client::Client,
}

fn barista_error(e: barista_client::Error) -> DbError {
    DbError { sqlstate: e.sqlstate().map(str::to_string), message: e.to_string() }
}

impl Session for BaristaSession {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        let rows = self.client.execute(sql, params).map_err(barista_error)?;
        let affected = rows.rows_affected;
        Ok(Rows {
            rows: rows
                .rows
                .into_iter()
                .map(|r| r.into_iter().map(|c| c.map(|b| String::from_utf8_lossy(&b).into_owned())).collect())
                .collect(),
            affected,
        })
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.client.begin().map_err(barista_error)
    }

    fn commit(&mut self) -> Result<(), DbError> {
        self.client.commit().map_err(barista_error)
    }

    fn rollback(&mut self) -> Result<(), DbError> {
        self.client.rollback().map_err(barista_error)
    }
}

impl Drop for BaristaSession {
    fn drop(&mut self) {
        // Frees the session on every replica; a failure leaves it to the idle timeout.
        let _ = self.client.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_read_as_postgres_prints_them() {
        let text = |raw: Vec<u8>| numeric_text(&raw).expect("valid numeric");
        assert_eq!(text(numeric(2, 0, 0, 2, &[12, 3400])), "12.34");
        assert_eq!(text(numeric(1, 1, 0, 2, &[30])), "300000.00");
        assert_eq!(text(numeric(1, -1, 0x4000, 2, &[1000])), "-0.10");
        assert_eq!(text(numeric(0, 0, 0, 2, &[])), "0.00");
        assert_eq!(text(numeric(1, -2, 0, 6, &[5000])), "0.000050");
        assert_eq!(text(numeric(2, 1, 0, 0, &[1, 2])), "10002");
    }

    #[test]
    fn targets_parse_from_urls() {
        assert!(matches!(Target::parse("barista://127.0.0.1:1,127.0.0.1:2"), Ok(Target::Barista(r)) if r.len() == 2));
        assert!(Target::parse("postgres://postgres@127.0.0.1:5432/postgres").is_ok_and(|t| !t.is_barista()));
        assert!(Target::parse("barista://").is_err());
        assert!(Target::parse("mysql://x").is_err());
    }
}
