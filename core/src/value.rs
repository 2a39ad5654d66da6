//! What the log agrees on: batches of opaque client commands, or a no-op that fills a hole.
//!
//! The core never looks inside a command's payload; the runtime encodes `{conn, request_seq, op}`
//! there. A command carries the node that first received it (`origin`) and a per-origin id so the
//! origin can tell when its command has been decided and stop re-sending it.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ballot::NodeId;

/// One client command, as submitted with [`crate::Replica::propose`]. Ordered (by origin, id,
/// then payload) so a leader can keep a set of the commands it holds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Command {
    /// The replica the client submitted this command to.
    pub origin: NodeId,
    /// Unique among the commands `origin` submitted since it last started.
    pub id: u64,
    /// Opaque to the core.
    pub payload: Bytes,
}

impl Command {
    /// What the command counts for against [`crate::Config::batch_bytes_max`]: its payload plus
    /// an upper bound on the bytes its origin and id take in a stored record.
    pub fn size(&self) -> usize {
        self.payload.len() + 32
    }
}

/// The commands going into one slot: at most `batch_max` of them and `batch_bytes_max` bytes,
/// and always the first one offered (`propose` refused any command no slot could hold).
pub(crate) struct BatchLimit {
    count: usize,
    bytes: usize,
    count_max: usize,
    bytes_max: usize,
}

impl BatchLimit {
    pub(crate) fn new(cfg: &crate::Config) -> BatchLimit {
        BatchLimit { count: 0, bytes: 0, count_max: cfg.batch_max, bytes_max: cfg.batch_bytes_max }
    }

    /// Whether `command` joins the slot; if it does, it is counted.
    pub(crate) fn admit(&mut self, command: &Command) -> bool {
        let bytes = self.bytes + command.size();
        if self.count > 0 && (self.count == self.count_max || bytes > self.bytes_max) {
            return false;
        }
        (self.count, self.bytes) = (self.count + 1, bytes);
        true
    }
}

/// The value of one slot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Value {
    /// Fills a slot that must be decided but has no command, e.g. a hole a new leader found.
    Noop,
    /// One or more commands, applied in order. Shared: a slot's value is cloned into every
    /// accept, persist record and decision, and with a `Vec` each clone touched every command's
    /// payload reference count (half the core's time at batch 256). Encoded as a plain sequence,
    /// exactly like the `Vec` it replaced.
    Batch(Arc<[Command]>),
}

impl Value {
    /// A batch of `commands`.
    pub fn batch(commands: impl Into<Arc<[Command]>>) -> Value {
        Value::Batch(commands.into())
    }

    /// The commands in this value (none for a no-op).
    pub fn commands(&self) -> &[Command] {
        match self {
            Value::Noop => &[],
            Value::Batch(commands) => commands,
        }
    }
}
