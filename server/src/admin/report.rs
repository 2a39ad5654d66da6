//! One replica's status as `GET /status` serves it (JSON) and `barista status` reads it.

use barista_core::RoleKind;
use barista_runtime::node::{Health, NodeStatus};
use barista_runtime::verify::{CheckSummary, Verdict, diverged_replicas};
use serde::{Deserialize, Serialize};

/// What one replica says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Node id.
    pub node: u32,
    /// `starting` (recovering its state), `healthy`, `store-unavailable`, `database-unavailable`
    /// or `diverged` (a divergence check found its data different from the majority's).
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
    /// The replicas the divergence checks mark diverged, as this replica applied their reports.
    #[serde(default)]
    pub diverged_replicas: Vec<u32>,
    /// The newest divergence check this replica applied.
    #[serde(default)]
    pub last_check: Option<CheckReport>,
}

/// One divergence check, as `GET /checks` and `/status` show it and `barista verify` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's id: the slot of its `Checksum` command.
    pub check: u64,
    /// `pending`, `agreed`, `diverged` or `no-majority`.
    pub verdict: String,
    /// The digest a majority reported, once there is one.
    pub majority: Option<String>,
    /// Every report applied so far, by replica.
    pub reports: Vec<ReplicaDigest>,
}

/// One replica's report in a [`CheckReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDigest {
    /// The replica.
    pub replica: u32,
    /// Its digest (hex).
    pub digest: String,
    /// Whether it is the majority's (`None` while there is no majority).
    pub agrees: Option<bool>,
    /// The tables that differ from the majority's, when it does not agree.
    #[serde(default)]
    pub differing_tables: Vec<String>,
}

impl CheckReport {
    /// The report of one check.
    pub fn new(summary: &CheckSummary) -> CheckReport {
        let (verdict, majority) = match &summary.verdict {
            Verdict::Pending => ("pending", None),
            Verdict::Agreed(d) => ("agreed", Some(*d)),
            Verdict::Diverged { majority, .. } => ("diverged", Some(*majority)),
            Verdict::NoMajority => ("no-majority", None),
        };
        CheckReport {
            check: summary.check,
            verdict: verdict.into(),
            majority: majority.map(|d| d.to_string()),
            reports: summary
                .reports
                .iter()
                .map(|(replica, digest)| ReplicaDigest {
                    replica: *replica,
                    digest: digest.to_string(),
                    agrees: majority.map(|m| m == *digest),
                    differing_tables: summary.differing.get(replica).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// What `GET /checks` answers: every divergence check this replica keeps, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksReport {
    /// The answering replica.
    pub node: u32,
    /// The cluster's size: how many reports a check gets when every replica reports.
    pub nodes: u32,
    /// The checks.
    pub checks: Vec<CheckReport>,
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
                diverged_replicas: Vec::new(),
                last_check: None,
            };
        };
        let (health, detail) = match &s.health {
            Health::Healthy => ("healthy", None),
            Health::StoreUnavailable(e) => ("store-unavailable", Some(format!("ZooKeeper: {e}"))),
            Health::DatabaseUnavailable { slot, fault } => {
                ("database-unavailable", Some(format!("PostgreSQL, stopped at slot {slot}: {fault}")))
            }
            Health::Diverged(d) => (
                "diverged",
                Some(format!(
                    "the divergence check at slot {} found this replica's data different from the majority's \
                     (digest {}, majority {}; tables {}): it serves no client until a later check finds it \
                     agreeing; repair or re-seed its database, then run `barista verify`",
                    d.check,
                    d.digest,
                    d.majority,
                    d.tables.join(", ")
                )),
            ),
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
            diverged_replicas: diverged_replicas(&s.checks),
            last_check: s.checks.last().map(CheckReport::new),
        }
    }

    /// True if it votes and applies.
    pub fn is_healthy(&self) -> bool {
        self.health == "healthy" && !self.rejoining
    }
}
