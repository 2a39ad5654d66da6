//! The TCP transport over real loopback sockets: delivery, and that bad input closes only the
//! offending connection.

use std::time::Duration;

use barista_core::{Envelope, Message};
use barista_runtime::tcp::{TcpConfig, TcpTransport, encode_envelope};
use barista_runtime::transport::Transport;
use futures::SinkExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

fn envelope(from: u32, to: u32, slot: u64) -> Envelope {
    Envelope { from, to, done: 0, message: Message::LearnRequest { slot } }
}

async fn pair(cfg: TcpConfig) -> (TcpTransport, TcpTransport, std::net::SocketAddr) {
    let l0 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peers = vec![l0.local_addr().expect("addr"), l1.local_addr().expect("addr")];
    let addr1 = peers[1];
    let t0 = TcpTransport::start(0, l0, peers.clone(), cfg.clone());
    let t1 = TcpTransport::start(1, l1, peers, cfg);
    (t0, t1, addr1)
}

async fn recv(t: &mut TcpTransport) -> Envelope {
    tokio::time::timeout(Duration::from_secs(10), t.recv()).await.expect("message within 10 s").expect("open")
}

#[tokio::test]
async fn messages_arrive_in_order_both_ways() {
    let (mut t0, mut t1, _) = pair(TcpConfig::default()).await;
    for slot in 0..100 {
        t0.send(envelope(0, 1, slot));
    }
    for slot in 0..100 {
        assert_eq!(recv(&mut t1).await, envelope(0, 1, slot));
    }
    t1.send(envelope(1, 0, 7));
    assert_eq!(recv(&mut t0).await, envelope(1, 0, 7));
}

/// A raw connection to `addr` that said hello as node 0 of 2.
async fn raw_connection(addr: std::net::SocketAddr) -> Framed<TcpStream, LengthDelimitedCodec> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    // Version 1, then postcard's varints for node 0 and cluster size 2.
    framed.send(bytes::Bytes::from(vec![1u8, 0, 2])).await.expect("hello");
    framed
}

#[tokio::test]
async fn garbage_and_spoofed_frames_close_only_that_connection() {
    let (mut t0, mut t1, addr1) = pair(TcpConfig::default()).await;
    let mut bad = raw_connection(addr1).await;
    bad.send(bytes::Bytes::from(vec![1u8, 0xff, 0xff, 0xff])).await.expect("send garbage");
    let mut spoof = raw_connection(addr1).await;
    spoof.send(encode_envelope(&envelope(5, 1, 1))).await.expect("send spoofed");
    let mut wrong_version = raw_connection(addr1).await;
    wrong_version.send(bytes::Bytes::from(vec![9u8, 1, 2])).await.expect("send");
    // The legitimate peer is unaffected.
    t0.send(envelope(0, 1, 42));
    assert_eq!(recv(&mut t1).await, envelope(0, 1, 42));
    // A well-formed frame on a raw connection that said hello properly is delivered.
    let mut good = raw_connection(addr1).await;
    good.send(encode_envelope(&envelope(0, 1, 43))).await.expect("send");
    assert_eq!(recv(&mut t1).await, envelope(0, 1, 43));
}

#[tokio::test]
async fn oversized_frames_are_refused_and_the_peer_recovers() {
    let cfg = TcpConfig { max_frame_bytes: 64, ..TcpConfig::default() };
    let (mut t0, mut t1, addr1) = pair(cfg).await;
    let mut big = raw_connection(addr1).await;
    big.send(bytes::Bytes::from(vec![0u8; 10_000])).await.expect("send");
    // Outbound: a message over the limit is dropped at the sender; the next one goes through.
    let value = barista_core::Value::batch(vec![barista_core::Command {
        origin: 0,
        id: 0,
        payload: bytes::Bytes::from(vec![7u8; 1000]),
    }]);
    t0.send(Envelope { from: 0, to: 1, done: 0, message: Message::Decide { slot: 1, value } });
    t0.send(envelope(0, 1, 2));
    assert_eq!(recv(&mut t1).await, envelope(0, 1, 2));
}

#[tokio::test]
async fn a_peer_that_starts_late_gets_later_messages() {
    let l0 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // Reserve an address for node 1, then free it so nothing listens there yet.
    let addr1 = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let peers = vec![l0.local_addr().expect("addr"), addr1];
    let cfg = TcpConfig { reconnect: Duration::from_millis(20), ..TcpConfig::default() };
    let mut t0 = TcpTransport::start(0, l0, peers.clone(), cfg.clone());
    t0.send(envelope(0, 1, 1)); // may be lost: nobody listens yet
    let l1 = TcpListener::bind(addr1).await.expect("rebind");
    let mut t1 = TcpTransport::start(1, l1, peers, cfg);
    // Keep sending until one arrives: the transport reconnects on its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        t0.send(envelope(0, 1, 2));
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(50), t1.recv()).await {
            if e.message == (Message::LearnRequest { slot: 2 }) {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never reconnected");
    }
}
