//! Invariants a replica checks about itself after every input in debug builds (and so in every
//! test and simulation run). Cross-replica safety (one value per slot across the cluster) is
//! checked by the tests and the simulation, which see all replicas.

use crate::multi_paxos::Role;
use crate::paxos::Phase;
use crate::replica::{InvariantViolation, Replica};

impl Replica {
    /// Checks this replica's internal invariants.
    ///
    /// - no slot was ever told two different decided values;
    /// - per slot, the accepted ballot is at most the promised one, and an accepted or decided
    ///   slot holds a value;
    /// - every slot from the floor through `decided_upto` is held and decided;
    /// - `applied <= emitted <= decided_upto`, and `Min() <= applied + 1`;
    /// - a leader's in-flight slots are undecided and counted its own vote; a candidate counted
    ///   its own promise; paxos-mode proposals are for undecided slots.
    pub fn invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |what: String| Err(InvariantViolation { node: self.cfg.id, what });
        if let Some(what) = &self.violation {
            return fail(what.clone());
        }
        for (slot, p) in &self.acceptor.state.slots {
            if p.n_a > p.n_p {
                return fail(format!("slot {slot}: accepted ballot {} above promised {}", p.n_a, p.n_p));
            }
            if (p.decided || !p.n_a.is_zero()) && p.v_a.is_none() {
                return fail(format!("slot {slot}: accepted or decided without a value"));
            }
            if *slot < self.floor {
                return fail(format!("slot {slot} held below the floor {}", self.floor));
            }
        }
        if let Some(slot) = (self.floor..=self.decided_upto).find(|s| self.decided(*s).is_none()) {
            return fail(format!("slot {slot} within the decided prefix {} is not decided", self.decided_upto));
        }
        if !(self.applied <= self.emitted_upto && self.emitted_upto <= self.decided_upto) {
            return fail(format!(
                "applied {} <= emitted {} <= decided {} broken",
                self.applied, self.emitted_upto, self.decided_upto
            ));
        }
        if self.min() > self.applied + 1 {
            return fail(format!("Min {} above own Done {} + 1", self.min(), self.applied));
        }
        let me = Replica::bit(self.cfg.id);
        match &self.mp.role {
            Role::Leader(l) => {
                if let Some((slot, _)) =
                    l.in_flight.iter().find(|(s, f)| self.decided(**s).is_some() || f.acks & me == 0)
                {
                    return fail(format!("in-flight slot {slot} is decided or lacks the leader's vote"));
                }
                if l.in_flight.keys().next_back().is_some_and(|s| *s >= l.next_slot) {
                    return fail(format!("in-flight slot at or above next slot {}", l.next_slot));
                }
            }
            Role::Candidate(c) if c.promised & me == 0 => {
                return fail("candidate without its own promise".into());
            }
            Role::Candidate(_) | Role::Follower => {}
        }
        for (slot, p) in &self.px.proposals {
            if self.decided(*slot).is_some() {
                return fail(format!("proposal for decided slot {slot}"));
            }
            let own_vote = match &p.phase {
                Phase::Preparing { promised, .. } => promised & me,
                Phase::Accepting { acks, .. } => acks & me,
            };
            if own_vote == 0 {
                return fail(format!("proposal for slot {slot} lacks its own vote"));
            }
        }
        if self.pending.len() > self.cfg.pending_max {
            return fail(format!("{} pending commands above the limit", self.pending.len()));
        }
        Ok(())
    }
}
