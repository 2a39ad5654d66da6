//! How simulated clients reach a replica's client-facing service: request/response messages over
//! madsim's simulated network (the production front end is Thrift over TCP; the service behind it
//! is the same).
//!
//! A client knows every replica. A request that times out, or that the replica answers with "not
//! ready", goes to the next replica with the same request sequence number, which is exactly what
//! the production clients do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use barista_runtime::clock::SystemClock;
use barista_runtime::command::{ConnId, Op};
use barista_runtime::executor::Outcome;
use barista_runtime::service::{Service, ServiceError};
use madsim::net::Endpoint;
use tracing::debug;

/// Tag on which replicas receive client requests.
const REQUEST_TAG: u64 = 1;

/// A client request.
#[derive(Clone, Debug)]
pub struct Request {
    /// Session.
    pub conn: ConnId,
    /// Per-session sequence; a retry reuses it.
    pub request_seq: u64,
    /// What to do.
    pub op: Op,
}

type Response = Result<Outcome, ServiceError>;

/// Serves client requests addressed to `addr` until the node dies.
pub async fn serve(service: Arc<Service<SystemClock>>, addr: SocketAddr) {
    let Ok(ep) = Endpoint::bind(addr).await else { return };
    let ep = Arc::new(ep);
    loop {
        let Ok((payload, from)) = ep.recv_from_raw(REQUEST_TAG).await else { return };
        let Ok(call) = payload.downcast::<(u64, Request)>() else { continue };
        let (reply_tag, request) = *call;
        let (service, ep) = (service.clone(), ep.clone());
        tokio::spawn(async move {
            let response: Response = service.submit(request.conn, request.request_seq, request.op).await;
            let _ = ep.send_to_raw(from, reply_tag, Box::new(response)).await;
        });
    }
}

/// Why a client call did not produce an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No replica answered in time; the request may or may not have run.
    GaveUp,
}

/// A client with failover.
pub struct Client {
    ep: Endpoint,
    replicas: Vec<SocketAddr>,
    current: usize,
    next_tag: u64,
    /// One attempt's timeout.
    pub attempt_timeout: Duration,
}

impl Client {
    /// A client bound on this (client) node, starting at replica `first`.
    pub async fn new(bind: SocketAddr, replicas: Vec<SocketAddr>, first: usize) -> Client {
        let ep = Endpoint::bind(bind).await.expect("client endpoint binds in the simulation");
        let current = first % replicas.len().max(1);
        Client { ep, replicas, current, next_tag: 1 << 32, attempt_timeout: Duration::from_secs(2) }
    }

    /// Sends the following requests to the next replica, as a client behind a load balancer
    /// would: that replica may not have applied the previous request yet.
    pub fn hop(&mut self) {
        self.current = (self.current + 1) % self.replicas.len();
    }

    /// Runs `request`, failing over between replicas, until `deadline`.
    pub async fn call(&mut self, request: Request, deadline: tokio::time::Instant) -> Result<Outcome, CallError> {
        while tokio::time::Instant::now() < deadline {
            self.next_tag += 1;
            let tag = self.next_tag;
            let to = self.replicas[self.current];
            if self.ep.send_to_raw(to, REQUEST_TAG, Box::new((tag, request.clone()))).await.is_ok() {
                match tokio::time::timeout(self.attempt_timeout, self.ep.recv_from_raw(tag)).await {
                    Ok(Ok((payload, _))) => match payload.downcast::<Response>().map(|r| *r) {
                        Ok(Ok(outcome)) => return Ok(outcome),
                        Ok(Err(ServiceError::Overloaded(_))) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        Ok(Err(e)) => debug!(?to, "replica not ready: {e}"),
                        Err(_) => debug!(?to, "unexpected reply"),
                    },
                    _ => debug!(?to, "no answer"),
                }
            }
            // Try the next replica with the same request sequence.
            self.current = (self.current + 1) % self.replicas.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(CallError::GaveUp)
    }
}
