//! Node identities, log slots and ballots.
//!
//! A ballot is `(round, node)`, compared round first. Because the proposing node's id is part of
//! the ballot, two nodes can never use the same ballot, which is what Paxos needs; and because
//! rounds only come from counting (never from a clock), ballots are the same in every run of a
//! simulation seed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A replica's index in the cluster, `0..nodes`.
pub type NodeId = u32;

/// A position in the replicated log (a Paxos instance). Slot numbering starts at 1; slot 0 means
/// "nothing", so `applied == 0` is a replica that has applied nothing.
pub type Slot = u64;

/// A unique, totally ordered proposal number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Ballot {
    /// Compared first. Round 0 is reserved for [`Ballot::ZERO`].
    pub round: u64,
    /// Breaks ties between nodes that picked the same round.
    pub node: NodeId,
}

impl Ballot {
    /// Lower than every ballot a node can propose with: "never promised / never accepted".
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// The smallest ballot owned by `node` that is higher than every ballot of round `round`.
    pub fn after_round(round: u64, node: NodeId) -> Ballot {
        Ballot { round: round + 1, node }
    }

    /// True for [`Ballot::ZERO`].
    pub fn is_zero(self) -> bool {
        self == Ballot::ZERO
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        let a = Ballot { round: 1, node: 2 };
        let b = Ballot { round: 2, node: 0 };
        let c = Ballot { round: 2, node: 1 };
        assert!(Ballot::ZERO < a && a < b && b < c);
        assert_eq!(Ballot::after_round(c.round, 0), Ballot { round: 3, node: 0 });
    }
}
