//! A transport wrapper that loses, duplicates, delays and reorders protocol messages.
//!
//! madsim's simulated TCP is, like TCP, reliable and ordered: a cut link delays messages rather
//! than losing them. Consensus must survive worse (a connection that breaks loses what was in
//! flight; a restarted peer never sees what was sent before), so the simulation injects
//! message-level faults here, with the simulator's deterministic RNG.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use barista_core::Envelope;
use barista_runtime::transport::Transport;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::mpsc;

use crate::config::Faults;

/// Wraps a transport; faults apply while `enabled` is set (the fault phase).
pub struct FaultyTransport<T: Transport> {
    inner: T,
    faults: Faults,
    enabled: Arc<AtomicBool>,
    /// Seeded from the run's seed: never from the OS, so the run replays.
    rng: StdRng,
    /// Held-back messages come back through here after their delay.
    delayed_tx: mpsc::UnboundedSender<Envelope>,
    delayed_rx: mpsc::UnboundedReceiver<Envelope>,
}

impl<T: Transport> FaultyTransport<T> {
    /// Wraps `inner`; `seed` drives its fault choices.
    pub fn new(inner: T, faults: Faults, enabled: Arc<AtomicBool>, seed: u64) -> FaultyTransport<T> {
        let (delayed_tx, delayed_rx) = mpsc::unbounded_channel();
        FaultyTransport { inner, faults, enabled, rng: StdRng::seed_from_u64(seed), delayed_tx, delayed_rx }
    }
}

impl<T: Transport> Transport for FaultyTransport<T> {
    fn send(&mut self, envelope: Envelope) {
        if !self.enabled.load(Ordering::Relaxed) {
            self.inner.send(envelope);
            return;
        }
        let rng = &mut self.rng;
        if rng.random_bool(self.faults.drop) {
            return;
        }
        if rng.random_bool(self.faults.duplicate) {
            self.inner.send(envelope.clone());
        }
        if rng.random_bool(self.faults.delay) {
            let delay = rng.random_range(std::time::Duration::ZERO..=self.faults.delay_max);
            let tx = self.delayed_tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(envelope);
            });
            return;
        }
        self.inner.send(envelope);
    }

    async fn recv(&mut self) -> Option<Envelope> {
        loop {
            tokio::select! {
                envelope = self.inner.recv() => return envelope,
                Some(envelope) = self.delayed_rx.recv() => self.inner.send(envelope),
            }
        }
    }
}
