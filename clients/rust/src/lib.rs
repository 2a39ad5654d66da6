//! `barista-client`: the Rust client for Barista's Thrift API (`clients/barista.thrift`).
//!
//! A [`Client`] is one replicated connection. It takes the list of replica addresses, talks to
//! one at a time, and when that replica dies or says it cannot serve (`ERR_NOT_READY`,
//! `ERR_OVERLOADED`) it moves to the next and retries the request in flight with the same request
//! sequence number, so the request runs at most once whichever replica ends up answering. Errors
//! keep PostgreSQL's SQLSTATE ([`Error::sqlstate`]).
//!
//! ```no_run
//! use barista_client::{Client, ClientConfig, Value};
//! # fn main() -> Result<(), barista_client::Error> {
//! let mut db = Client::connect(&["10.0.0.1:9090", "10.0.0.2:9090", "10.0.0.3:9090"], ClientConfig::default())?;
//! db.execute("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY, v text)", &[])?;
//! db.execute("INSERT INTO t VALUES ($1, $2)", &[Value::Int(1), Value::Null])?;
//! let rows = db.execute("SELECT k, v FROM t", &[])?;
//! assert_eq!(rows.rows[0][1], None);
//! # Ok(()) }
//! ```

mod client;
mod error;
mod values;

/// The Thrift-generated types and client. The one copy of the generated code lives in the
/// server crate (`scripts/gen-thrift.sh` writes it, a test keeps it fresh); it is included here by
/// path rather than duplicated, so client and server can never disagree on the protocol.
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, missing_docs)]
#[rustfmt::skip]
#[path = "../../../server/src/api/generated.rs"]
pub mod generated;

pub use client::{Client, ClientConfig};
pub use error::Error;
pub use values::{Rows, Value};
