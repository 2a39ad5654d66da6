//! The admin endpoint: a minimal HTTP/1.1 responder on tokio for `GET /metrics` (Prometheus
//! text format), `GET /status` (JSON, see [`Report`]), `GET /checks` (the divergence checks, see
//! [`ChecksReport`]) and `POST /verify` (starts a divergence check and answers its id once this
//! replica applied it). One request per connection; a request that is too large or too slow gets
//! an error status and the connection is closed. No HTTP library: four endpoints without request
//! bodies do not justify one, and the bounds stay visible here.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use barista_runtime::clock::SystemClock;
use barista_runtime::node::NodeHandle;
use barista_runtime::service::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use super::metrics::Metrics;
use super::report::{CheckReport, ChecksReport, Report};

/// Longest request head read.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// A client gets this long to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoint reports on.
pub struct AdminState {
    /// This replica.
    pub node_id: u32,
    /// The cluster's size.
    pub nodes: u32,
    /// The node, once it recovered and runs.
    pub node: OnceLock<NodeHandle>,
    /// The client service over the node (`POST /verify` starts a check through it).
    pub service: OnceLock<Arc<Service<SystemClock>>>,
    /// Why the node has not started yet (the last recovery error).
    pub starting: Mutex<Option<String>>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

impl AdminState {
    /// This replica's report.
    pub fn report(&self) -> Report {
        let status = self.node.get().map(NodeHandle::status);
        let why = self.starting.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Report::new(self.node_id, status.as_ref(), why)
    }
}

/// Serves `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = respond(stream, &state).await {
                        debug!(%peer, "admin request: {e}");
                    }
                });
            }
            // Out of file descriptors, most likely: wait rather than spin.
            Err(e) => {
                debug!("admin accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn respond(mut stream: TcpStream, state: &AdminState) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return write(&mut stream, "408 Request Timeout", "text/plain", "request timeout\n").await,
    };
    let Some(head) = head else {
        return write(&mut stream, "431 Request Header Fields Too Large", "text/plain", "request too large\n").await;
    };
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let status = state.node.get().map(NodeHandle::status);
            let body = state.metrics.render(status.as_ref());
            write(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        ("GET", "/status") => {
            let body = serde_json::to_string(&state.report()).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            write(&mut stream, "200 OK", "application/json", &body).await
        }
        ("GET", "/checks") => {
            let summaries = state.node.get().map(|n| n.status().checks).unwrap_or_default();
            let checks = ChecksReport {
                node: state.node_id,
                nodes: state.nodes,
                checks: summaries.iter().map(CheckReport::new).collect(),
            };
            let body = serde_json::to_string(&checks).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            write(&mut stream, "200 OK", "application/json", &body).await
        }
        ("POST", "/verify") => {
            let Some(service) = state.service.get() else {
                return write(&mut stream, "503 Service Unavailable", "text/plain", "starting\n").await;
            };
            match service.verify().await {
                Ok(check) => {
                    let body = serde_json::json!({ "node": state.node_id, "check": check }).to_string();
                    write(&mut stream, "200 OK", "application/json", &body).await
                }
                Err(e) => write(&mut stream, "503 Service Unavailable", "text/plain", &format!("{e}\n")).await,
            }
        }
        ("GET", _) => write(&mut stream, "404 Not Found", "text/plain", "try /metrics, /status or /checks\n").await,
        _ => write(&mut stream, "405 Method Not Allowed", "text/plain", "GET, or POST /verify\n").await,
    }
}

/// Reads up to the end of the request head; `None` if it is longer than the limit.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        if n == 0 || buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
    }
}

async fn write(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
