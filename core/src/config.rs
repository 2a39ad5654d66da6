//! Static configuration of one replica: cluster size, protocol, timers (in ticks) and limits.

use thiserror::Error;

use crate::ballot::NodeId;

/// Which consensus protocol decides slots. Both are always built and tested.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    /// Classic Paxos per slot: prepare/promise then accept/accepted (two round trips); any
    /// replica proposes; duelling proposers back off for a random, seeded number of ticks.
    Paxos,
    /// One leader runs phase 1 once for every slot from its first undecided one onwards, then each
    /// slot costs one accept/accepted round trip. Followers forward commands to the leader.
    MultiPaxos,
}

/// Largest cluster the ack bitmaps can describe.
pub const NODES_MAX: u32 = 64;

/// Most doublings of a timer that backs off (accept retransmission, paxos-mode proposal timeout
/// and back-off): it stops growing at 16 times its configured value.
pub(crate) const MAX_BACKOFF_SHIFT: u32 = 4;

/// Default of [`Config::batch_bytes_max`]: a slot's record then stays under ZooKeeper's default
/// request limit (`jute.maxbuffer`, 1 MiB - 1) with room for the request's own bytes.
pub const BATCH_BYTES_MAX: usize = 900_000;

/// Configuration of one replica. Times are in ticks; the driver decides how long a tick is.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica's id, `0..nodes`.
    pub id: NodeId,
    /// Number of replicas in the cluster.
    pub nodes: u32,
    /// Consensus protocol.
    pub protocol: Protocol,
    /// A multi-paxos leader heartbeats this often.
    pub heartbeat_ticks: u64,
    /// A follower that heard no leader for this long (plus a random extra of up to the same again)
    /// campaigns; a leader that heard from no majority for this long steps down; a replica that
    /// heard its leader within this time refuses to promise to a challenger. In paxos mode, a
    /// replica asks a peer this often how far the decided log goes (there is no leader to tell it).
    pub election_ticks: u64,
    /// A leader re-sends an accept that a peer has not acknowledged after this long, then after
    /// twice as long each time, up to 16 times as long.
    pub retransmit_ticks: u64,
    /// A replica re-sends a command it submitted but has not seen decided after this long.
    pub forward_retry_ticks: u64,
    /// A replica that knows it is missing decided slots asks a peer again after this long.
    pub learn_retry_ticks: u64,
    /// A paxos-mode proposal that got no majority in this long is abandoned and retried. Each
    /// lost ballot doubles it (up to 16 times), each chosen proposal halves the doublings.
    pub proposal_timeout_ticks: u64,
    /// A paxos-mode proposer that lost a ballot waits a random `1..=backoff_ticks_max` ticks,
    /// the range doubling with the losses like the proposal timeout.
    pub backoff_ticks_max: u64,
    /// Most commands in one slot.
    pub batch_max: usize,
    /// Most bytes of commands in one slot, counted as [`crate::Command::size`]: a slot is stored as one
    /// record, and ZooKeeper refuses a request over about 1 MB. A larger command is refused by
    /// [`crate::Replica::propose`].
    pub batch_bytes_max: usize,
    /// Most undecided slots one proposer has in flight (pipelining).
    pub window: usize,
    /// A multi-paxos leader holds new commands back while this many of the slots it proposed
    /// are not yet executed here, so that they share a later slot (`0`: never). While the
    /// executor is behind, deciding a slot sooner does not execute it sooner, and a slot costs a
    /// consensus round and a store write on every replica whatever it holds. The hold lasts only
    /// while the executor keeps moving (it executed a slot within the last tick): a leader whose
    /// database stalls proposes as if the limit were off.
    pub executor_ahead_max: u64,
    /// Most submitted-but-undecided commands a replica holds before refusing more (backpressure).
    pub pending_max: usize,
    /// Most decided slots in one catch-up reply.
    pub learn_batch_max: usize,
    /// Log retention while a peer lags: `0` keeps every slot until every replica applied it
    /// (`Min`), so a replica that is down holds the whole log back for as long as it is down.
    /// `n > 0` also forgets the slots more than `n` below this replica's own applied slot, so it
    /// holds at most about `n` applied slots (plus the undecided ones) whatever its peers do; a
    /// peer that falls further behind than that cannot catch up from the log any more and reports
    /// [`crate::Status::needs_reseed`].
    pub retain_slots: u64,
    /// Seed of the replica's random number generator (election jitter, back-off).
    pub seed: u64,
}

impl Config {
    /// A configuration with default timers and limits.
    pub fn new(id: NodeId, nodes: u32, protocol: Protocol) -> Config {
        Config {
            id,
            nodes,
            protocol,
            heartbeat_ticks: 1,
            election_ticks: 10,
            retransmit_ticks: 3,
            forward_retry_ticks: 6,
            learn_retry_ticks: 3,
            proposal_timeout_ticks: 6,
            backoff_ticks_max: 6,
            batch_max: 256,
            batch_bytes_max: BATCH_BYTES_MAX,
            window: 64,
            executor_ahead_max: 1,
            pending_max: 100_000,
            learn_batch_max: 1024,
            retain_slots: 0,
            seed: u64::from(id),
        }
    }

    /// Checks the limits the state machine relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes == 0 || self.nodes > NODES_MAX {
            return Err(ConfigError::Nodes(self.nodes));
        }
        if self.id >= self.nodes {
            return Err(ConfigError::Id { id: self.id, nodes: self.nodes });
        }
        let positive = [
            ("heartbeat_ticks", self.heartbeat_ticks),
            ("election_ticks", self.election_ticks),
            ("retransmit_ticks", self.retransmit_ticks),
            ("forward_retry_ticks", self.forward_retry_ticks),
            ("learn_retry_ticks", self.learn_retry_ticks),
            ("proposal_timeout_ticks", self.proposal_timeout_ticks),
            ("backoff_ticks_max", self.backoff_ticks_max),
            ("batch_max", self.batch_max as u64),
            ("batch_bytes_max", self.batch_bytes_max as u64),
            ("window", self.window as u64),
            ("pending_max", self.pending_max as u64),
            ("learn_batch_max", self.learn_batch_max as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        if self.heartbeat_ticks >= self.election_ticks {
            return Err(ConfigError::HeartbeatNotBelowElection);
        }
        Ok(())
    }

    /// Number of replicas that make a majority.
    pub fn majority(&self) -> u32 {
        self.nodes / 2 + 1
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Cluster size out of range.
    #[error("cluster size {0} is not in 1..={NODES_MAX}")]
    Nodes(u32),
    /// The replica id is not a member.
    #[error("replica id {id} is not in 0..{nodes}")]
    Id {
        /// The configured id.
        id: NodeId,
        /// The configured cluster size.
        nodes: u32,
    },
    /// A timer or limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Followers would time out between two heartbeats.
    #[error("heartbeat_ticks must be smaller than election_ticks")]
    HeartbeatNotBelowElection,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_setting() {
        assert_eq!(Config::new(0, 3, Protocol::Paxos).validate(), Ok(()));
        assert_eq!(Config::new(3, 3, Protocol::Paxos).validate(), Err(ConfigError::Id { id: 3, nodes: 3 }));
        assert_eq!(Config::new(0, 65, Protocol::Paxos).validate(), Err(ConfigError::Nodes(65)));
        let mut c = Config::new(0, 3, Protocol::MultiPaxos);
        c.window = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("window")));
        c.window = 1;
        c.heartbeat_ticks = 10;
        assert_eq!(c.validate(), Err(ConfigError::HeartbeatNotBelowElection));
        assert_eq!(Config::new(0, 5, Protocol::Paxos).majority(), 3);
    }
}
