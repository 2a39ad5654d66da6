//! Peer transport: how a node's protocol messages reach the other replicas.
//!
//! Delivery is best effort, as the protocol assumes: messages may be lost, duplicated, delayed
//! or reordered, and the core copes with all of it. What a transport must not do is block the
//! node: `send` queues and returns; a peer that cannot keep up loses messages (backpressure by
//! dropping, which the protocol's retransmissions repair), rather than stalling consensus.

use std::future::Future;

use barista_core::Envelope;

/// A node's link to its peers.
pub trait Transport: Send + 'static {
    /// Queues `envelope` for `envelope.to`. Never blocks.
    fn send(&mut self, envelope: Envelope);

    /// The next message addressed to this node. `None` once the transport is closed for good.
    fn recv(&mut self) -> impl Future<Output = Option<Envelope>> + Send;
}

/// An in-process network of channels, for tests: every node gets a [`ChannelTransport`]; links
/// can be cut and restored.
#[cfg(feature = "testkit")]
pub mod channel {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use barista_core::{Envelope, NodeId};
    use tokio::sync::mpsc;

    use super::Transport;

    #[derive(Default)]
    struct Links {
        senders: Vec<Option<mpsc::UnboundedSender<Envelope>>>,
        cut: BTreeSet<(NodeId, NodeId)>,
    }

    /// The network: hands out transports and cuts links.
    #[derive(Clone, Default)]
    pub struct ChannelNet {
        links: Arc<Mutex<Links>>,
    }

    impl ChannelNet {
        /// A network with no nodes.
        pub fn new() -> ChannelNet {
            ChannelNet::default()
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Links> {
            self.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Attaches `node` (replacing an earlier attachment, as a restarted node would).
        pub fn attach(&self, node: NodeId) -> ChannelTransport {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut links = self.lock();
            let index = node as usize;
            if links.senders.len() <= index {
                links.senders.resize(index + 1, None);
            }
            links.senders[index] = Some(tx);
            ChannelTransport { net: self.clone(), rx }
        }

        /// Drops every message between `node` and the others until [`ChannelNet::heal`].
        pub fn isolate(&self, node: NodeId) {
            let mut links = self.lock();
            for other in 0..links.senders.len() as NodeId {
                links.cut.insert((node, other));
                links.cut.insert((other, node));
            }
        }

        /// Restores every link.
        pub fn heal(&self) {
            self.lock().cut.clear();
        }
    }

    /// One node's end of a [`ChannelNet`].
    pub struct ChannelTransport {
        net: ChannelNet,
        rx: mpsc::UnboundedReceiver<Envelope>,
    }

    impl Transport for ChannelTransport {
        fn send(&mut self, envelope: Envelope) {
            let links = self.net.lock();
            if links.cut.contains(&(envelope.from, envelope.to)) {
                return;
            }
            if let Some(Some(tx)) = links.senders.get(envelope.to as usize) {
                let _ = tx.send(envelope); // a stopped node drops it, as a dead host would
            }
        }

        async fn recv(&mut self) -> Option<Envelope> {
            self.rx.recv().await
        }
    }
}
