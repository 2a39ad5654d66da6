//! The PostgreSQL wire protocol front end: psql, pgbench and PostgreSQL drivers connect to a
//! replica as to a PostgreSQL server, and every statement goes through the same client-facing
//! [`Service`] as the Thrift API's.
//!
//! ```text
//!  socket ──► pgwire (framing, startup, portals) ──► auth::Startup ──► handler::Connection
//!                                                                        │  statements: split, classify, tag
//!                                                                        │  copy: COPY FROM STDIN rows -> INSERTs
//!                                                                        │  describe: side connection (metadata only)
//!                                                                        ▼
//!                                                   session::Session ──► Service::submit (the replicated log)
//! ```
//!
//! - One protocol connection is one replicated session (a fresh connection id), opened with its
//!   first statement and closed through the log when the socket goes away.
//! - Runs on the server's tokio runtime; connections beyond `workers` are refused (53300).
//! - Limits: `max_statement_bytes` per statement and `max_batch_len` statements per simple
//!   query, as for Thrift.
//!
//! - `COPY ... FROM STDIN`: the rows become INSERT statements in the front end (`copy`), so the
//!   log and the executor see ordinary statements.
//!
//! Not supported: `COPY ... TO STDOUT` and COPY with files (the determinism policy refuses
//! them), TLS (clients must not require it: `sslmode=prefer`, libpq's default, falls back to
//! plain), cancel requests (ignored), and notices (a `BEGIN` inside a transaction succeeds
//! without PostgreSQL's warning).

mod auth;
mod copy;
mod describe;
mod handler;
mod session;
mod statements;
mod values;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use barista_runtime::clock::SystemClock;
use barista_runtime::service::Service;
use pgwire::api::auth::StartupHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, ErrorHandler, METADATA_USER, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::ErrorResponse;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::admin::Metrics;
use crate::config::{Limits, PgAuth, PgConfig};
use describe::Describer;

/// How often to try reading the replica's PostgreSQL version before reporting a default.
const VERSION_ATTEMPTS: u32 = 5;

/// What every connection of the front end shares.
pub struct Shared {
    service: OnceLock<Arc<Service<SystemClock>>>,
    /// The replica's PostgreSQL `server_version`, reported to clients.
    server_version: OnceLock<String>,
    settings: PgConfig,
    /// SCRAM salt and salted password, when `settings.auth` is SCRAM.
    scram: Option<(Vec<u8>, Vec<u8>)>,
    limits: Limits,
    max_connections: usize,
    connections: AtomicUsize,
    metrics: Arc<Metrics>,
    describer: Describer,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The PostgreSQL front end of one replica. Cheap to clone.
#[derive(Clone)]
pub struct PgFrontend {
    shared: Arc<Shared>,
}

impl PgFrontend {
    /// A front end for `settings`, describing statements on the replica's PostgreSQL at
    /// `postgres`; it refuses clients ("not ready") until [`PgFrontend::set_service`].
    pub fn new(
        settings: PgConfig,
        postgres: &str,
        limits: Limits,
        max_connections: usize,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<PgFrontend> {
        let describer = Describer::new(postgres)?;
        let scram = match &settings.auth {
            PgAuth::Trust => None,
            PgAuth::ScramSha256 { password } => Some(auth::scram_secret(password)),
        };
        Ok(PgFrontend {
            shared: Arc::new(Shared {
                service: OnceLock::new(),
                server_version: OnceLock::new(),
                settings,
                scram,
                limits,
                max_connections,
                connections: AtomicUsize::new(0),
                metrics,
                describer,
            }),
        })
    }

    /// Starts serving clients with `service`, once the replica's PostgreSQL told its version.
    pub async fn set_service(&self, service: Arc<Service<SystemClock>>) {
        let mut version = None;
        for attempt in 1..=VERSION_ATTEMPTS {
            match self.shared.describer.server_version().await {
                Ok(v) => {
                    version = Some(v);
                    break;
                }
                Err(e) => {
                    warn!("reading the PostgreSQL version (attempt {attempt} of {VERSION_ATTEMPTS}): {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let _ = self.shared.server_version.set(version.unwrap_or_else(|| "15.0".into()));
        let _ = self.shared.service.set(service);
    }

    /// Accepts connections on `listener` until the runtime stops.
    pub async fn serve(self, listener: TcpListener) {
        let addr = listener.local_addr().map_or_else(|_| "?".into(), |a: SocketAddr| a.to_string());
        info!(pg_listen = %addr, auth = ?self.shared.settings.auth, "serving the PostgreSQL protocol");
        loop {
            match listener.accept().await {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    tokio::spawn(serve_connection(self.shared.clone(), socket, peer));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    warn!("accepting a PostgreSQL-protocol connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Counts a connection in, and out when dropped.
struct ConnectionSlot(Arc<Shared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection(shared: Arc<Shared>, mut socket: TcpStream, peer: SocketAddr) {
    let count = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let _slot = ConnectionSlot(shared.clone());
    if count > shared.max_connections {
        debug!(%peer, "refusing a PostgreSQL-protocol connection: {count} open");
        refuse(&mut socket, shared.max_connections).await;
        return;
    }
    let handlers = Handlers {
        connection: Arc::new(handler::Connection::new(shared.clone())),
        startup: Arc::new(auth::Startup::new(shared)),
    };
    let connection = handlers.connection.clone();
    if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
        debug!(%peer, "PostgreSQL-protocol connection ended: {e}");
    }
    connection.close().await;
}

/// Answers a connection beyond the limit with PostgreSQL's "too many connections" and closes it.
async fn refuse(socket: &mut TcpStream, max: usize) {
    let info = ErrorInfo::new(
        "FATAL".into(),
        "53300".into(),
        format!("sorry, too many clients already: this Barista replica serves {max} connections (`workers`)"),
    );
    let message = PgWireBackendMessage::ErrorResponse(ErrorResponse::from(info));
    let mut buf = bytes::BytesMut::new();
    if message.encode(&mut buf).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(&buf)).await;
    }
}

/// The handlers of one connection.
struct Handlers {
    connection: Arc<handler::Connection>,
    startup: Arc<auth::Startup>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.connection.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.connection.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.connection.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors)
    }
}

/// Rewords pgwire's own errors where clients (and people) expect PostgreSQL's words.
struct Errors;

impl ErrorHandler for Errors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::InvalidPassword(_) = error {
            let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
            *error = PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28P01".into(),
                format!("password authentication failed for user \"{user}\""),
            )));
        }
    }
}
