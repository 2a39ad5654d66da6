//! Statement metadata from this replica's own PostgreSQL: the types of a statement's parameters
//! and result columns, which the extended protocol's Describe must answer before anything runs.
//!
//! Each front-end connection that uses the extended protocol gets a side connection to the
//! replica's PostgreSQL (opened on first use) and prepares its statements there, unnamed, which
//! plans nothing and changes nothing; the statement itself then runs through the replicated log
//! like any other. Nothing done on the side connection is replicated, and nothing needs to be:
//! it only reads the catalog.
//!
//! The side connection sees committed schema only: a statement on a table created earlier in
//! the client's still-open transaction cannot be described there. Describing its portal then
//! runs it (see `handler`); describing the statement itself (before any parameters are bound)
//! answers PostgreSQL's error, although the statement would run.

use std::str::FromStr;
use std::time::Duration;

use barista_runtime::sql::SqlError;
use pgwire::api::Type;
use tokio::task::JoinHandle;
use tokio_postgres::types::Kind;
use tokio_postgres::{Client, Config, NoTls};
use tracing::debug;

/// How long connecting to the replica's PostgreSQL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLSTATE `connection_failure`.
const CONNECTION_FAILURE: &str = "08006";

/// What Describe answers for a statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Description {
    /// Parameter types, `$1` first.
    pub params: Vec<Type>,
    /// Result columns: name and type (empty for a statement that returns no rows).
    pub columns: Vec<(String, Type)>,
}

/// Where side connections go: the replica's PostgreSQL.
#[derive(Clone, Debug)]
pub struct Describer {
    config: Config,
}

impl Describer {
    /// A describer for the replica's connection string (validated with the configuration).
    pub fn new(connection_string: &str) -> Result<Describer, tokio_postgres::Error> {
        let mut config = Config::from_str(connection_string)?;
        config.application_name("barista-describe");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(Describer { config })
    }

    /// A side connection, not yet connected.
    pub fn side(&self) -> SideConnection {
        SideConnection { config: self.config.clone(), client: None }
    }

    /// The server's `server_version`, which clients read to choose their catalog queries (psql's
    /// `\d`), so the front end reports the replica's own.
    pub async fn server_version(&self) -> Result<String, SqlError> {
        let mut side = self.side();
        let client = side.client().await?;
        let rows = client.simple_query("SHOW server_version").await.map_err(|e| sql_error(&e))?;
        rows.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .ok_or_else(|| SqlError { sqlstate: "XX000".into(), message: "SHOW server_version returned no row".into() })
    }
}

/// One front-end connection's side connection to the replica's PostgreSQL.
pub struct SideConnection {
    config: Config,
    client: Option<(Client, JoinHandle<()>)>,
}

impl Drop for SideConnection {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.client {
            task.abort();
        }
    }
}

impl SideConnection {
    async fn client(&mut self) -> Result<&Client, SqlError> {
        if self.client.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let (client, connection) = self.config.connect(NoTls).await.map_err(|e| SqlError {
                sqlstate: CONNECTION_FAILURE.into(),
                message: format!("describing the statement on this replica's PostgreSQL: {e}"),
            })?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    debug!("describe connection ended: {e}");
                }
            });
            self.client = Some((client, task));
        }
        match &self.client {
            Some((client, _)) => Ok(client),
            None => Err(SqlError { sqlstate: CONNECTION_FAILURE.into(), message: "no describe connection".into() }),
        }
    }

    /// Prepares `sql` (with the parameter types the client declared; `None`: infer) and returns
    /// what PostgreSQL inferred.
    pub async fn describe(&mut self, sql: &str, declared: &[Option<Type>]) -> Result<Description, SqlError> {
        // Oid 0 asks the server to infer the type, as a client's unspecified parameter does.
        let unspecified = Type::new(String::new(), 0, Kind::Simple, String::new());
        let types: Vec<Type> = declared.iter().map(|t| t.clone().unwrap_or_else(|| unspecified.clone())).collect();
        let client = self.client().await?;
        let statement = client.prepare_typed(sql, &types).await.map_err(|e| sql_error(&e))?;
        Ok(Description {
            params: statement.params().to_vec(),
            columns: statement.columns().iter().map(|c| (c.name().to_owned(), c.type_().clone())).collect(),
        })
    }
}

/// PostgreSQL's error as the client should see it; a lost connection as a connection failure.
fn sql_error(e: &tokio_postgres::Error) -> SqlError {
    match e.as_db_error() {
        Some(db) => SqlError { sqlstate: db.code().code().to_owned(), message: db.message().to_owned() },
        None => SqlError {
            sqlstate: CONNECTION_FAILURE.into(),
            message: format!("describing the statement on this replica's PostgreSQL: {e}"),
        },
    }
}
