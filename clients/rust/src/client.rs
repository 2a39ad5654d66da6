//! One replicated connection, with failover between replicas.
//!
//! Every request gets the next request sequence number of the connection *before* its first
//! attempt, and keeps it through every retry: the replicas run a request once per
//! `(connection, request_seq)` and answer a repeat with the first run's outcome. So when the
//! replica in use dies mid-request (the answer is lost) or says it cannot serve, the same request
//! can be sent to the next replica without risk of running twice.

use std::hash::{BuildHasher, RandomState};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{
    ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, TTcpChannel, WriteHalf,
};

use crate::error::{Error, try_elsewhere};
use crate::generated::{self as g, TBaristaSyncClient};
use crate::values::{Rows, Value};

/// The generated client over a buffered TCP connection (the server's transport).
type Link = g::BaristaSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<TTcpChannel>>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<TTcpChannel>>>,
>;

/// How hard the client tries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Longest wait to connect to one replica.
    pub connect_timeout: Duration,
    /// Longest wait for one answer; must exceed the servers' `request_timeout_ms`, or a slow
    /// answer is taken for a dead replica (safe, but wasteful).
    pub io_timeout: Duration,
    /// Passes over the whole replica list before giving up on a request.
    pub rounds: u32,
    /// Pause after a pass in which no replica answered; doubles each pass, up to 2 s.
    pub backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(30),
            rounds: 5,
            backoff: Duration::from_millis(100),
        }
    }
}

/// A connection to a Barista cluster: one replicated session, any replica.
pub struct Client {
    replicas: Vec<String>,
    cfg: ClientConfig,
    /// Index of the replica in use.
    current: usize,
    link: Option<Link>,
    /// The session, as `open_connection` returned it.
    con: g::Connection,
    /// The number the next request gets.
    next_seq: i64,
    closed: bool,
}

fn connect(addr: &str, cfg: &ClientConfig) -> Result<Link, String> {
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("resolving: {e}"))?
        .next()
        .ok_or_else(|| "resolves to no address".to_string())?;
    let stream = TcpStream::connect_timeout(&sock, cfg.connect_timeout).map_err(|e| format!("connecting: {e}"))?;
    stream.set_read_timeout(Some(cfg.io_timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(cfg.io_timeout)).map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (read, write) = TTcpChannel::with_stream(stream).split().map_err(|e| e.to_string())?;
    Ok(g::BaristaSyncClient::new(
        TBinaryInputProtocol::new(TBufferedReadTransport::new(read), true),
        TBinaryOutputProtocol::new(TBufferedWriteTransport::new(write), true),
    ))
}

/// A thrift error's text with its message (thrift's `Display` shows only the kind of some).
fn describe(error: &thrift::Error) -> String {
    match error {
        thrift::Error::Transport(e) => format!("{e}: {}", e.message),
        thrift::Error::Protocol(e) => format!("{e}: {}", e.message),
        thrift::Error::Application(e) => format!("{e}: {}", e.message),
        thrift::Error::User(e) => e.to_string(),
    }
}

impl Client {
    /// Opens a session on the first replica of `replicas` that answers.
    pub fn connect(replicas: &[impl AsRef<str>], cfg: ClientConfig) -> Result<Client, Error> {
        if replicas.is_empty() {
            return Err(Error::Unavailable(Vec::new()));
        }
        // Chosen here, not by the replica, so that an open retried elsewhere opens this one session.
        let id = (RandomState::new().hash_one(std::process::id()) >> 1).max(1) as i64;
        let mut client = Client {
            replicas: replicas.iter().map(|r| r.as_ref().to_string()).collect(),
            cfg,
            current: 0,
            link: None,
            con: g::Connection::new(None, None, None, None, Some(id), None),
            next_seq: 1,
            closed: false,
        };
        let params = g::ConnectionParams::new(None, None, None, None, None, Some(id));
        client.con = client.with_failover(|link| link.open_connection(params.clone()))?;
        client.con.request_seq = None;
        Ok(client)
    }

    /// The replica in use.
    pub fn replica(&self) -> &str {
        &self.replicas[self.current]
    }

    /// The replicated session's id.
    pub fn connection_id(&self) -> i64 {
        self.con.connection_id.unwrap_or_default()
    }

    /// Runs one statement (autocommit, or in the open transaction) with parameters `$1..`.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        let mut results = self.batch(&[(sql, params)], false)?;
        results.pop().unwrap_or_else(|| Err(Error::Rejected("the replica returned no result".into())))
    }

    /// Runs statements as one request. `atomic`: in one transaction, all or nothing (the failing
    /// statement's error is the call's error). Otherwise each on its own, one result each.
    pub fn batch(&mut self, statements: &[(&str, &[Value])], atomic: bool) -> Result<Vec<Result<Rows, Error>>, Error> {
        let wire: Vec<g::Statement> = statements
            .iter()
            .map(|(sql, params)| {
                g::Statement::new(sql.to_string(), params.iter().map(Value::to_thrift).collect::<Vec<_>>())
            })
            .collect();
        let results = self.request(|link, con| link.execute_sql_batch(con, wire.clone(), atomic))?;
        Ok(results
            .into_iter()
            .map(|rs| match (rs.status, rs.error.clone()) {
                (false, Some(ex)) => Err(Error::from_exception(ex)),
                _ => Ok(Rows::from_thrift(rs)),
            })
            .collect())
    }

    /// Starts a transaction.
    pub fn begin(&mut self) -> Result<(), Error> {
        self.request(|link, con| link.begin_txn(con))
    }

    /// Commits the open transaction.
    pub fn commit(&mut self) -> Result<(), Error> {
        self.request(|link, con| link.commit_txn(con))
    }

    /// Rolls back the open transaction.
    pub fn rollback(&mut self) -> Result<(), Error> {
        self.request(|link, con| link.rollback_txn(con))
    }

    /// Closes the session on every replica (an open transaction rolls back).
    pub fn close(&mut self) -> Result<(), Error> {
        let result = self.request(|link, con| link.close_connection(con));
        self.closed = true;
        self.link = None;
        result
    }

    /// One request under the next sequence number, retried with that number until answered.
    fn request<T>(&mut self, call: impl Fn(&mut Link, g::Connection) -> thrift::Result<T>) -> Result<T, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let con = g::Connection { request_seq: Some(self.next_seq), ..self.con.clone() };
        // Used up whatever happens: a replica may have recorded it even if no answer came back.
        self.next_seq += 1;
        self.with_failover(|link| call(link, con.clone()))
    }

    /// Tries `call` on the replica in use, then on the next ones, for `rounds` passes.
    fn with_failover<T>(&mut self, mut call: impl FnMut(&mut Link) -> thrift::Result<T>) -> Result<T, Error> {
        let n = self.replicas.len();
        let mut errors: Vec<(String, String)> = self.replicas.iter().map(|r| (r.clone(), "not tried".into())).collect();
        let mut backoff = self.cfg.backoff;
        for attempt in 0..(self.cfg.rounds.max(1) as usize * n) {
            if attempt > 0 && attempt % n == 0 {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            let i = self.current;
            let link = match self.link.take() {
                Some(link) => Ok(link),
                None => connect(&self.replicas[i], &self.cfg),
            };
            // Why this replica did not answer (every success or answer returns).
            let why: String = match link {
                Err(e) => e,
                Ok(mut link) => match call(&mut link) {
                    Ok(value) => {
                        self.link = Some(link);
                        return Ok(value);
                    }
                    Err(thrift::Error::User(e)) => match e.downcast::<g::DBException>() {
                        Ok(ex) if try_elsewhere(&ex) => ex.message.unwrap_or_default(),
                        Ok(ex) => {
                            self.link = Some(link);
                            return Err(Error::from_exception(*ex));
                        }
                        Err(other) => other.to_string(),
                    },
                    // Transport, protocol or application error: this connection's state is
                    // unknown; drop it and go on to the next replica.
                    Err(e) => describe(&e),
                },
            };
            errors[i].1 = why;
            self.current = (i + 1) % n;
        }
        Err(Error::Unavailable(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_replica_answering_is_unavailable_with_each_reason() {
        // Nothing listens on port 1 of loopback: refused at once.
        let cfg = ClientConfig { rounds: 2, backoff: Duration::from_millis(1), ..ClientConfig::default() };
        match Client::connect(&["127.0.0.1:1", "127.0.0.1:1"], cfg) {
            Err(Error::Unavailable(errors)) => {
                assert_eq!(errors.len(), 2);
                assert!(errors.iter().all(|(_, why)| why.starts_with("connecting:")), "{errors:?}");
            }
            Err(other) => panic!("expected Unavailable, got {other}"),
            Ok(_) => panic!("connected to nothing"),
        }
        assert!(matches!(Client::connect(&[] as &[&str], ClientConfig::default()), Err(Error::Unavailable(_))));
    }

    #[test]
    fn exceptions_keep_their_sqlstate() {
        let ex =
            g::DBException::new(Some(g::ERR_SQL), Some("duplicate key".to_string()), None, Some("23505".to_string()));
        let err = Error::from_exception(ex);
        assert_eq!(err.sqlstate(), Some("23505"));
        assert_eq!(err.to_string(), "duplicate key (SQLSTATE 23505)");
        let busy = g::DBException::new(Some(g::ERR_OVERLOADED), None, None, None);
        assert!(try_elsewhere(&busy));
    }
}
