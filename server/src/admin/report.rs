//! One replica's status as `GET /status` serves it (JSON) and `barista status` reads it.

use barista_core::RoleKind;
use barista_runtime::node::{Health, NodeStatus};
use serde::{Deserialize, Serialize};

/// What one replica says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Node id.
    pub node: u32,
    /// `starting` (recovering its state), `healthy`, `store-unavailable` or
    /// `database-unavailable`.
    pub health: String,
    /// What is wrong, when not healthy.
    pub detail: Option<String>,
    /// `leader`, `follower`, `candidate` or `proposer` (paxos mode); absent while starting.
    pub role: Option<String>,
    /// The leader it follows, if it knows one.
    pub leader: Option<u32>,
    /// AP: committed in its database through this slot.
    pub applied: u64,
    /// Every slot up to this one is decided here.
    pub decided: u64,
    /// The highest slot it has seen.
    pub max_slot: u64,
    /// Commands submitted here, not yet decided.
    pub pending: usize,
    /// Slots below this one are purged here.
    #[serde(default)]
    pub floor: u64,
    /// Log slots held here (in ZooKeeper once persisted): what purging keeps bounded.
    #[serde(default)]
    pub retained: usize,
    /// It lost its acceptor state and does not vote until it has fenced every peer.
    #[serde(default)]
    pub rejoining: bool,
    /// A peer's log starts above this replica's next slot: it must be re-seeded.
    pub needs_reseed: bool,
}

impl Report {
    /// The report of node `node`, from its status (`None`: still recovering; `why` says from what).
    pub fn new(node: u32, status: Option<&NodeStatus>, why: Option<String>) -> Report {
        let Some(s) = status else {
            return Report {
                node,
                health: "starting".into(),
                detail: why,
                role: None,
                leader: None,
                applied: 0,
                decided: 0,
                max_slot: 0,
                pending: 0,
                floor: 0,
                retained: 0,
                rejoining: false,
                needs_reseed: false,
            };
        };
        let (health, detail) = match &s.health {
            Health::Healthy => ("healthy", None),
            Health::StoreUnavailable(e) => ("store-unavailable", Some(format!("ZooKeeper: {e}"))),
            Health::DatabaseUnavailable { slot, fault } => {
                ("database-unavailable", Some(format!("PostgreSQL, stopped at slot {slot}: {fault}")))
            }
        };
        Report {
            node,
            health: health.into(),
            detail,
            role: Some(
                match s.core.role {
                    RoleKind::Leader => "leader",
                    RoleKind::Follower => "follower",
                    RoleKind::Candidate => "candidate",
                    RoleKind::Proposer => "proposer",
                }
                .into(),
            ),
            leader: s.core.leader,
            applied: s.applied,
            decided: s.core.decided_upto,
            max_slot: s.core.max_slot,
            pending: s.core.pending,
            floor: s.core.floor,
            retained: s.core.retained,
            rejoining: s.core.rejoining,
            needs_reseed: s.core.needs_reseed,
        }
    }

    /// True if it votes and applies.
    pub fn is_healthy(&self) -> bool {
        self.health == "healthy" && !self.rejoining
    }
}
