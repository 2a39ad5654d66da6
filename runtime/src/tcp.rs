//! The TCP peer transport: the same code over real sockets in production and over madsim's
//! simulated TCP in the simulation.
//!
//! Each connection starts with a hello frame naming the sender's node id and cluster size, then
//! carries length-delimited frames, each one encoded [`Envelope`]. Per peer, one task owns a
//! bounded queue and the outbound connection: it connects (and reconnects, with a pause) and
//! writes frames; when the queue is full the message is dropped, which the protocol's
//! retransmissions repair, so a slow or dead peer can never stall consensus. Inbound, a frame
//! that is too large or does not decode closes that connection and nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use barista_core::{Envelope, NodeId};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::{debug, warn};

use crate::transport::Transport;

/// Encoding version of hello and envelope frames.
const WIRE_VERSION: u8 = 1;

/// Settings of the TCP transport.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Largest frame accepted or sent; larger ones close the connection (inbound) or are dropped
    /// (outbound).
    pub max_frame_bytes: usize,
    /// Messages queued per peer before new ones are dropped.
    pub queue: usize,
    /// Pause before reconnecting to a peer.
    pub reconnect: Duration,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig { max_frame_bytes: 64 << 20, queue: 4096, reconnect: Duration::from_millis(100) }
    }
}

/// A frame that is not a message of this cluster.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Empty frame.
    #[error("empty frame")]
    Empty,
    /// Another wire version.
    #[error("wire version {0} is not supported (this build speaks {WIRE_VERSION})")]
    Version(u8),
    /// Does not decode.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The hello does not fit this cluster.
    #[error("peer says it is node {node} of {nodes}; this cluster has {expected} nodes")]
    Stranger {
        /// Claimed id.
        node: NodeId,
        /// Claimed cluster size.
        nodes: u32,
        /// Our cluster size.
        expected: u32,
    },
    /// The envelope's sender is not the connection's peer.
    #[error("message from node {claimed} on node {peer}'s connection")]
    Spoofed {
        /// The connection's peer.
        peer: NodeId,
        /// The envelope's `from`.
        claimed: NodeId,
    },
}

#[derive(Serialize, Deserialize)]
struct Hello {
    node: NodeId,
    nodes: u32,
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    let mut out = vec![WIRE_VERSION];
    // Plain data into a Vec: cannot fail.
    out.extend(postcard::to_allocvec(value).unwrap_or_default());
    Bytes::from(out)
}

fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, WireError> {
    let (version, body) = frame.split_first().ok_or(WireError::Empty)?;
    if *version != WIRE_VERSION {
        return Err(WireError::Version(*version));
    }
    postcard::from_bytes(body).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Encodes an envelope as one frame body.
pub fn encode_envelope(envelope: &Envelope) -> Bytes {
    encode(envelope)
}

/// Decodes one frame body into an envelope.
pub fn decode_envelope(frame: &[u8]) -> Result<Envelope, WireError> {
    decode(frame)
}

/// One node's TCP transport.
pub struct TcpTransport {
    outbound: Vec<Option<mpsc::Sender<Bytes>>>,
    inbound: mpsc::Receiver<Envelope>,
    max_frame_bytes: usize,
}

impl TcpTransport {
    /// Starts accepting on `listener` and connecting to `peers` (indexed by node id; this node's
    /// own entry is ignored).
    pub fn start(me: NodeId, listener: TcpListener, peers: Vec<SocketAddr>, cfg: TcpConfig) -> TcpTransport {
        let nodes = peers.len() as u32;
        let (inbound_tx, inbound) = mpsc::channel(cfg.queue);
        tokio::spawn(accept_loop(listener, nodes, cfg.max_frame_bytes, inbound_tx));
        let outbound = peers
            .into_iter()
            .enumerate()
            .map(|(peer, addr)| {
                (peer as NodeId != me).then(|| {
                    let (tx, rx) = mpsc::channel(cfg.queue);
                    tokio::spawn(peer_loop(me, nodes, addr, rx, cfg.clone()));
                    tx
                })
            })
            .collect();
        TcpTransport { outbound, inbound, max_frame_bytes: cfg.max_frame_bytes }
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, envelope: Envelope) {
        let frame = encode_envelope(&envelope);
        if frame.len() > self.max_frame_bytes {
            warn!(to = envelope.to, bytes = frame.len(), "message larger than the frame limit; dropped");
            return;
        }
        if let Some(Some(tx)) = self.outbound.get(envelope.to as usize) {
            // Full queue: drop. Retransmission repairs a lost message; blocking would stall us.
            let _ = tx.try_send(frame);
        }
    }

    async fn recv(&mut self) -> Option<Envelope> {
        self.inbound.recv().await
    }
}

fn codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(max_frame_bytes).new_codec()
}

/// Owns the connection to one peer: connect, say hello, write queued frames; on any error,
/// pause and reconnect. Ends when the transport is dropped.
async fn peer_loop(me: NodeId, nodes: u32, addr: SocketAddr, mut rx: mpsc::Receiver<Bytes>, cfg: TcpConfig) {
    loop {
        let stream = match TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(e) => {
                debug!(%addr, "connect failed: {e}");
                tokio::time::sleep(cfg.reconnect).await;
                // Messages queued meanwhile are stale; the protocol re-sends what matters.
                while rx.try_recv().is_ok() {}
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, codec(cfg.max_frame_bytes));
        if framed.send(encode(&Hello { node: me, nodes })).await.is_err() {
            tokio::time::sleep(cfg.reconnect).await;
            continue;
        }
        loop {
            let Some(frame) = rx.recv().await else { return };
            if let Err(e) = framed.send(frame).await {
                debug!(%addr, "send failed, reconnecting: {e}");
                break;
            }
        }
        tokio::time::sleep(cfg.reconnect).await;
    }
}

async fn accept_loop(listener: TcpListener, nodes: u32, max_frame_bytes: usize, inbound: mpsc::Sender<Envelope>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                tokio::spawn(read_connection(stream, from, nodes, max_frame_bytes, inbound.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if inbound.is_closed() {
            return;
        }
    }
}

/// Reads one inbound connection until it ends or misbehaves.
async fn read_connection(
    stream: TcpStream,
    from: SocketAddr,
    nodes: u32,
    max_frame_bytes: usize,
    inbound: mpsc::Sender<Envelope>,
) {
    let mut framed = Framed::new(stream, codec(max_frame_bytes));
    let peer = match framed.next().await {
        Some(Ok(frame)) => match decode::<Hello>(&frame) {
            Ok(Hello { node, nodes: theirs }) if theirs == nodes && node < nodes => node,
            Ok(Hello { node, nodes: theirs }) => {
                warn!(%from, "{}", WireError::Stranger { node, nodes: theirs, expected: nodes });
                return;
            }
            Err(e) => {
                warn!(%from, "bad hello: {e}");
                return;
            }
        },
        _ => return,
    };
    while let Some(frame) = framed.next().await {
        let envelope = match frame.map_err(|e| WireError::Malformed(e.to_string())).and_then(|f| decode_envelope(&f)) {
            Ok(envelope) if envelope.from == peer => envelope,
            Ok(envelope) => {
                warn!(%from, "{}", WireError::Spoofed { peer, claimed: envelope.from });
                return;
            }
            Err(e) => {
                warn!(%from, peer, "closing connection: {e}");
                return;
            }
        };
        if inbound.send(envelope).await.is_err() {
            return; // the node stopped
        }
    }
}
