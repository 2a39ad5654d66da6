//! `barista-core`: Barista's replication state machine, with no IO at all.
//!
//! A [`Replica`] is a plain struct. The driver (the runtime in production, the simulator in
//! tests) feeds it inputs and drains its outputs:
//!
//! ```text
//!            step(Envelope)   tick()   propose(payload)   applied(slot)
//!                  \            |            |               /
//!                   v           v            v              v
//!                 +------------------------------------------+
//!                 |                 Replica                  |
//!                 |  acceptor (Paxo per slot, onward promise)|
//!                 |  multi-paxos leader / paxos proposers    |
//!                 |  learner (decided prefix, catch-up)      |
//!                 +------------------------------------------+
//!                                     |
//!                                take_ready()
//!                                     v
//!   Ready { early (any time) | 1. persist -> 2. messages -> 3. decided (apply in order) }
//! ```
//!
//! The core never reads a clock (time is [`Replica::tick`]), never touches the OS random source
//! (a seeded RNG in [`Config::seed`]), and never blocks. Two replicas fed the same inputs produce
//! the same outputs, which is what makes the simulation replayable.
//!
//! Vocabulary follows the original design: a Paxos *instance* is a log [`Slot`]; an acceptor keeps
//! a [`Paxo`] `{ n_p, n_a, v_a, decided }` per slot; `Done` is the last slot a replica applied,
//! piggybacked on every [`Envelope`]; `Min()` is one more than the smallest `Done` and everything
//! below it is forgotten; `Max()` is the highest slot seen ([`Status::max_slot`]).

mod acceptor;
mod ballot;
mod config;
mod invariants;
mod learner;
mod message;
mod multi_paxos;
mod paxos;
#[cfg(madsim)]
pub mod planted;
mod ready;
mod rejoin;
mod replica;
pub mod testkit;

pub use acceptor::{AcceptorState, Paxo, Promise};
pub use ballot::{Ballot, NodeId, Slot};
pub use config::{BATCH_BYTES_MAX, Config, ConfigError, NODES_MAX, Protocol};
pub use message::{Envelope, Message, PromiseEntry};
pub use ready::{Persist, Ready};
pub use replica::{CommandId, InvariantViolation, ProposeError, RecoverError, Replica, RoleKind, Status};
pub use value::{Command, Value};

mod value;
