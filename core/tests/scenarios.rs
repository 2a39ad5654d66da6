//! Scripted scenarios that assert the exact outputs of the state machine, one protocol situation
//! per test: steady-state accept, prepare ahead of time, failover with a half-accepted slot,
//! duelling proposers, restart from persisted state, forgetting below Min, and the round trips a
//! slot costs in each protocol.

use barista_core::testkit::Cluster;
use barista_core::{Ballot, Command, Envelope, Message, Protocol, Replica, RoleKind, Value};
use bytes::Bytes;

/// Ticks only `node` until it campaigns, then delivers everything: `node` leads.
fn elect(c: &mut Cluster, node: u32) {
    for _ in 0..100 {
        if c.replica(node).status().role != RoleKind::Follower {
            break;
        }
        c.tick(node);
    }
    c.deliver_all(1000);
    assert_eq!(c.leader(), Some(node), "node {node} should lead");
}

fn batch(origin: u32, id: u64, payload: &'static str) -> Value {
    Value::batch(vec![Command { origin, id, payload: Bytes::from_static(payload.as_bytes()) }])
}

fn kinds(messages: &[Envelope]) -> Vec<(&'static str, u32)> {
    messages.iter().map(|m| (m.message.kind(), m.to)).collect()
}

#[test]
fn steady_state_accept_is_one_round_trip_with_exact_messages() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 1);
    elect(&mut c, 0);
    let ballot = c.replica(0).status().promised;
    let slot = c.replica(0).status().max_slot + 1;
    let decided_upto = c.replica(0).status().decided_upto;

    // Drive replica 0 by hand to see its exact output.
    let leader = c.replica_mut(0);
    leader.propose(Bytes::from_static(b"x")).expect("propose");
    let ready = leader.take_ready();
    let value = batch(0, 0, "x");
    // The leader's own accept is persisted while the accepts go out (they carry no vote).
    assert_eq!(ready.persist.slots.len(), 1);
    assert_eq!(ready.persist.slots[0].0, slot);
    assert_eq!(ready.persist.slots[0].1.n_a, ballot);
    let accept = |to| Envelope {
        from: 0,
        to,
        done: decided_upto,
        message: Message::Accept { ballot, slot, value: value.clone(), decided_upto },
    };
    assert_eq!(ready.early, vec![accept(1), accept(2)]);
    assert!(ready.messages.is_empty());
    assert!(ready.decided.is_empty());

    // A follower persists the vote, then answers.
    let follower = c.replica_mut(1);
    follower.step(accept(1));
    let ready = follower.take_ready();
    assert_eq!(ready.persist.slots.iter().map(|(s, p)| (*s, p.n_a)).collect::<Vec<_>>(), vec![(slot, ballot)]);
    let accepted = Envelope { from: 1, to: 0, done: decided_upto, message: Message::Accepted { ballot, slot } };
    assert_eq!(ready.messages, vec![accepted.clone()], "the vote waits for the persist");
    assert!(ready.early.is_empty());

    // One accepted plus the leader's own vote is a majority of three: decided, and broadcast.
    let leader = c.replica_mut(0);
    leader.step(accepted);
    let ready = leader.take_ready();
    assert_eq!(ready.decided, vec![(slot, value)]);
    assert_eq!(kinds(&ready.early), vec![("heartbeat", 1), ("heartbeat", 2)]);
    assert!(matches!(ready.early[0].message, Message::Heartbeat { decided_upto, .. } if decided_upto == slot));
}

#[test]
fn prepare_runs_once_per_term_not_once_per_slot() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 2);
    elect(&mut c, 1);
    let prepares = c.sent.get("prepare").copied().unwrap_or(0);
    assert_eq!(prepares, 2, "one prepare to each peer");
    for i in 0..50 {
        c.propose(1, format!("c{i}")).expect("propose");
        c.deliver_all(1000);
    }
    assert_eq!(c.sent.get("prepare").copied().unwrap_or(0), prepares, "no prepare for later slots");
    assert!(c.settle(50).is_some());
    assert_eq!(c.replica(0).status().applied, c.replica(1).status().applied);
}

#[test]
fn new_leader_re_proposes_a_half_accepted_value_not_its_own() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 3);
    elect(&mut c, 0);
    c.replica_mut(0).propose(Bytes::from_static(b"old")).expect("propose");
    c.process(0);
    // Only replica 1 gets the accept; then the leader dies.
    let to_1 = c.network.iter().position(|m| m.to == 1 && m.message.kind() == "accept").expect("accept to 1");
    let slot = match &c.network[to_1].message {
        Message::Accept { slot, .. } => *slot,
        _ => unreachable!(),
    };
    c.deliver(to_1);
    c.crash(0);
    c.network.clear();
    // Replica 2 gets a command of its own; time passes for the survivors until one takes over.
    c.replica_mut(2).propose(Bytes::from_static(b"new")).expect("propose");
    c.process(2);
    let mut rounds = 0;
    while c.leader().is_none() {
        c.tick_all();
        c.deliver_all(1000);
        rounds += 1;
        assert!(rounds < 100, "no leader elected");
    }
    let leader = c.leader().expect("leader");
    assert_eq!(c.replica(leader).decided(slot), Some(&batch(0, 0, "old")), "the accepted value wins its slot");
    assert!(c.settle(100).is_some());
    let applied = &c.disks[2].applied;
    let position =
        |p: &str| applied.iter().position(|(_, v)| v.commands().iter().any(|c| c.payload.as_ref() == p.as_bytes()));
    assert!(position("old") < position("new"), "new command lands in a later slot: {applied:?}");
}

#[test]
fn duelling_paxos_proposers_both_get_their_commands_decided() {
    let mut c = Cluster::new(3, Protocol::Paxos, 4);
    c.propose(0, "from-0").expect("propose");
    c.propose(1, "from-1").expect("propose");
    // Both chose slot 1.
    let prepares: Vec<(u32, u64)> = c
        .network
        .iter()
        .filter_map(|m| match m.message {
            Message::Prepare { slot, .. } => Some((m.from, slot)),
            _ => None,
        })
        .collect();
    assert_eq!(prepares, vec![(0, 1), (0, 1), (1, 1), (1, 1)]);
    assert!(c.settle(200).is_some(), "duel resolves: {:?}", c.replica(0).status());
    let decided: Vec<Value> = c.disks[0].applied.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(decided.len(), 2);
    assert!(decided.contains(&batch(0, 0, "from-0")) && decided.contains(&batch(1, 0, "from-1")));
    assert!(c.sent.get("nack").copied().unwrap_or(0) > 0 || c.sent.get("decide").copied().unwrap_or(0) >= 4);
}

#[test]
fn restart_from_persisted_state_keeps_votes_and_counts_only_applied_slots_as_decided() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 5);
    elect(&mut c, 0);
    for i in 0..5 {
        c.propose(0, format!("c{i}")).expect("propose");
    }
    assert!(c.settle(50).is_some());
    let before = c.replica(1).acceptor_state().clone();
    let applied = c.replica(1).status().applied;
    c.crash(1);
    c.restart(1);
    let r = c.replica(1);
    assert_eq!(r.acceptor_state(), &before, "acceptor state rebuilt exactly from disk");
    assert_eq!(r.status().applied, applied);
    assert_eq!(r.status().promised, before.promise.ballot, "a promise survives the restart");

    // A replica recovered at an AP two slots earlier (its database lost two commits that were
    // not flushed, so not yet its `Done`) holds those slots' values but not that they were
    // decided: only an applied slot counts as decided on restart, since a decision alone is not
    // written when the store holds the value already. It hands nothing out until it learns them
    // again (the simulation's database crashes cover the learning).
    let mut cfg = c.replica(2).config().clone();
    cfg.seed += 100;
    let state = c.disks[2].acceptor.clone();
    assert!(state.slots.range(applied - 1..=applied).all(|(_, p)| p.v_a.is_some()));
    let mut r = Replica::recover(cfg, state, applied - 2).expect("recover");
    assert_eq!(r.status().decided_upto, applied - 2);
    assert!(r.take_ready().decided.is_empty());
}

#[test]
fn slots_below_min_are_forgotten_everywhere_and_purged() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 6);
    elect(&mut c, 0);
    for i in 0..10 {
        c.propose(0, format!("c{i}")).expect("propose");
        c.deliver_all(1000);
    }
    // Done travels on every message; a couple of heartbeats spread everyone's.
    assert!(c.settle(50).is_some());
    c.tick_all();
    c.deliver_all(1000);
    c.tick_all();
    c.deliver_all(1000);
    let applied = c.replica(0).status().applied;
    for node in 0..3 {
        let r = c.replica(node);
        assert_eq!(r.min(), applied + 1, "replica {node} knows every Done");
        assert_eq!(r.status().floor, applied + 1);
        assert!(r.acceptor_state().slots.keys().all(|s| *s > applied), "replica {node} forgot applied slots");
        assert!(c.disks[node as usize].acceptor.slots.keys().all(|s| *s > applied), "replica {node} purged its store");
    }

    // A replica that is down holds Min back for everyone.
    c.crash(2);
    for i in 0..5 {
        c.propose(0, format!("d{i}")).expect("propose");
    }
    assert!(c.settle(50).is_some());
    assert_eq!(c.replica(0).min(), applied + 1, "Min waits for the crashed replica");
    assert!(c.disks[0].acceptor.slots.len() >= 5);
}

/// Slots kept by `retain_slots` in [`left_behind`].
const RETAIN: u64 = 5;

/// Three replicas that keep `RETAIN` slots; replica 0 leads, and replica 2 is down (crashed)
/// while 40 slots are decided, one command per slot. Returns the cluster and where replica 2
/// stopped.
fn left_behind() -> (Cluster, u64) {
    let mut c = Cluster::with_config(3, Protocol::MultiPaxos, 13, |cfg| cfg.retain_slots = RETAIN);
    elect(&mut c, 0);
    c.propose(0, "before").expect("propose");
    assert!(c.settle(50).is_some());
    let left_at = c.replica(2).status().applied;
    c.crash(2);
    for i in 0..40 {
        c.propose(0, format!("c{i}")).expect("propose");
        c.deliver_all(1000);
    }
    assert!(c.settle(50).is_some());
    (c, left_at)
}

#[test]
fn with_retain_slots_a_down_replica_no_longer_holds_the_log_back_and_comes_back_needing_a_reseed() {
    let (mut c, left_at) = left_behind();
    let applied = c.replica(0).status().applied;
    assert!(applied >= left_at + 40);
    for node in [0, 1] {
        let r = c.replica(node);
        assert!(r.min() <= left_at + 1, "replica {node}: Min still waits for replica 2");
        assert_eq!(r.status().floor, applied + 1 - RETAIN, "replica {node}: the retention bound, not Min");
        assert_eq!(r.status().retained, RETAIN as usize, "replica {node} holds the last {RETAIN} slots");
        assert_eq!(c.disks[node as usize].acceptor.slots.len(), RETAIN as usize, "replica {node} purged its store");
    }

    // Replica 2 comes back: the slot it needs next is gone everywhere, so it says it must be
    // re-seeded, applies nothing it cannot have, and never leads (even once the leader dies).
    c.restart(2);
    for _ in 0..30 {
        c.tick_all();
        c.deliver_all(10_000);
    }
    let lagging = c.replica(2).status();
    assert!(lagging.needs_reseed, "{lagging:?}");
    assert_eq!(lagging.applied, left_at);
    assert_eq!(c.disks[2].applied.last().map(|(s, _)| *s), Some(left_at));
    c.crash(0);
    for _ in 0..100 {
        c.tick_all();
        c.deliver_all(10_000);
        assert_ne!(c.replica(2).status().role, RoleKind::Leader, "a replica behind the purge point led");
    }
    assert_eq!(c.leader(), Some(1), "the up-to-date replica took over");
    // The cluster still decides with replica 2 voting as an acceptor, and no slot got two values.
    c.propose(1, "after").expect("propose");
    for _ in 0..10 {
        c.tick_all();
        c.deliver_all(10_000);
    }
    assert_eq!(c.replica(1).status().applied, applied + 1);
    assert_eq!(times_decided(&c, 1, "after"), 1);
    assert_eq!(c.replica(2).status().applied, left_at);
    c.check_safety().expect("safety");
}

#[test]
fn a_candidate_behind_the_purge_point_is_told_so_and_learns_it_needs_a_reseed() {
    let (mut c, left_at) = left_behind();
    let floor = c.replica(1).status().floor;
    assert!(floor > left_at + 1, "replica 1 forgot what replica 2 needs");
    // No leader: replica 0 is down, and replica 1 no longer hears it.
    c.crash(0);
    for _ in 0..c.replica(1).config().election_ticks {
        c.tick(1);
    }
    c.network.clear();
    c.restart(2);
    c.network.clear();
    // Replica 2 campaigns from the slot after its own: replica 1 refuses to promise, and says
    // where its log starts.
    let promised = c.replica(1).status().promised;
    let ballot = Ballot { round: promised.round + 1, node: 2 };
    let prepare = Message::Prepare { ballot, slot: left_at + 1, onward: true };
    c.replica_mut(1).step(Envelope { from: 2, to: 1, done: left_at, message: prepare });
    let ready = c.replica_mut(1).take_ready();
    let refusals: Vec<&Envelope> =
        ready.messages.iter().chain(&ready.early).filter(|m| m.message.kind() != "heartbeat").collect();
    assert!(
        matches!(refusals.as_slice(), [Envelope { to: 2, message: Message::LearnReply { entries, floor: f, .. }, .. }]
            if entries.is_empty() && *f == floor),
        "{refusals:?}"
    );
    // Replica 2 now asks the other peer, which (restarted) tells it the same: only a re-seed helps.
    let reply = refusals[0].clone();
    c.replica_mut(2).step(reply);
    let asks = c.replica_mut(2).take_ready();
    let ask = asks
        .messages
        .iter()
        .chain(&asks.early)
        .find(|m| m.to == 0 && m.message.kind() == "learn_request")
        .cloned()
        .unwrap_or_else(|| panic!("replica 2 did not ask replica 0: {asks:?}"));
    c.restart(0);
    c.network.clear();
    c.replica_mut(0).step(ask);
    let answer = c.replica_mut(0).take_ready();
    for m in answer.messages.into_iter().chain(answer.early).filter(|m| m.to == 2) {
        c.replica_mut(2).step(m);
    }
    assert!(c.replica(2).status().needs_reseed, "{:?}", c.replica(2).status());
}

/// Counts network hops (one hop = deliver every message in flight) until `node` decides.
fn hops_to_decide(c: &mut Cluster, node: u32) -> usize {
    let target = c.replica(node).status().decided_upto + 1;
    c.propose(node, "x").expect("propose");
    let mut hops = 0;
    while c.replica(node).status().decided_upto < target {
        assert!(c.deliver_hop() > 0, "stalled");
        hops += 1;
    }
    hops
}

#[test]
fn a_slot_costs_one_round_trip_in_multi_paxos_and_two_in_paxos() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 7);
    elect(&mut c, 0);
    c.sent.clear();
    assert_eq!(hops_to_decide(&mut c, 0), 2, "accept, accepted");
    assert_eq!(c.sent.get("accept"), Some(&2));
    assert_eq!(c.sent.get("accepted"), Some(&2));
    assert_eq!(c.sent.get("prepare"), None);

    let mut c = Cluster::new(3, Protocol::Paxos, 7);
    c.sent.clear();
    assert_eq!(hops_to_decide(&mut c, 0), 4, "prepare, promise, accept, accepted");
    for kind in ["prepare", "promise", "accept", "accepted"] {
        assert_eq!(c.sent.get(kind), Some(&2), "{kind}");
    }
}

#[test]
fn a_follower_that_hears_its_leader_does_not_help_a_challenger() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 8);
    elect(&mut c, 0);
    let term = c.replica(0).status().promised;
    // Replica 2 is cut off and campaigns again and again.
    c.isolate(2);
    for _ in 0..60 {
        c.tick_all();
        c.deliver_all(1000);
    }
    c.heal();
    let challenger = c.replica(2).status().promised;
    assert!(challenger > term, "the cut-off replica raised its ballot");
    // It reconnects: its prepare reaches replica 1, which still hears replica 0.
    let prepare =
        Envelope { from: 2, to: 1, done: 0, message: Message::Prepare { ballot: challenger, slot: 1, onward: true } };
    c.replica_mut(1).step(prepare);
    let ready = c.replica_mut(1).take_ready();
    assert!(ready.messages.is_empty() && ready.early.is_empty(), "no promise, no nack: {ready:?}");
    assert_eq!(c.replica(1).status().promised, term);
    // Once it rejoins, the leader re-elects itself above the challenger's ballot and keeps leading.
    assert!(c.settle(100).is_some());
    assert_eq!(c.leader(), Some(0));
    assert!(c.replica(0).status().promised > challenger);
}

#[test]
fn a_candidate_asks_again_and_wins_once_the_old_leaders_lease_ends_elsewhere() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 8);
    elect(&mut c, 0);
    c.tick(0); // its first heartbeat: the followers know their leader
    c.deliver_all(1000);
    c.crash(0);
    // Replica 1 notices first; replica 2 still hears the dead leader and ignores the prepare.
    while c.replica(1).status().role == RoleKind::Follower {
        c.tick(1);
    }
    let ballot = c.replica(1).status().promised;
    c.deliver_all(1000);
    assert_eq!(c.replica(1).status().role, RoleKind::Candidate, "no promise while replica 2 hears a leader");
    // Replica 2's lease runs out: it has heard nothing for `election_ticks`, not yet campaigning.
    let lease = c.replica(2).config().election_ticks;
    for _ in 0..lease {
        c.tick(2);
    }
    assert_eq!(c.replica(2).status().role, RoleKind::Follower, "seed 8: replica 2's own timeout is later");
    // The candidate's next retransmission wins, in the same campaign: no second election timeout.
    for _ in 0..c.replica(1).config().retransmit_ticks {
        c.tick(1);
        c.deliver_all(1000);
    }
    assert_eq!(c.leader(), Some(1));
    assert_eq!(c.replica(1).status().promised, ballot, "won with the first campaign's ballot");
}

#[test]
fn a_lagging_replica_catches_up_from_its_peers() {
    let mut c = Cluster::with_config(3, Protocol::MultiPaxos, 9, |cfg| cfg.learn_batch_max = 7);
    elect(&mut c, 0);
    c.crash(2);
    for i in 0..100 {
        c.propose(0, format!("c{i}")).expect("propose");
        c.deliver_all(1000);
    }
    assert!(c.settle(50).is_some());
    let target = c.replica(0).status().applied;
    c.restart(2);
    assert!(c.settle(100).is_some());
    assert_eq!(c.replica(2).status().applied, target);
    assert!(c.sent.get("learn_request").copied().unwrap_or(0) >= target / 7, "caught up in chunks");
    c.check_applied_prefixes().expect("same sequence");
}

#[test]
fn single_replica_cluster_decides_alone() {
    for protocol in [Protocol::MultiPaxos, Protocol::Paxos] {
        let mut c = Cluster::new(1, protocol, 10);
        assert!(c.settle(50).is_some());
        c.propose(0, "solo").expect("propose");
        assert!(c.settle(5).is_some(), "{protocol:?}");
        assert_eq!(c.disks[0].applied.len(), 1);
    }
    let _ = Ballot::ZERO;
}

#[test]
fn a_paxos_replica_that_missed_the_decisions_learns_it_is_behind_once_traffic_stops() {
    let mut c = Cluster::new(3, Protocol::Paxos, 11);
    c.isolate(2);
    for i in 0..10 {
        c.propose(0, format!("c{i}")).expect("propose");
        c.tick_all();
        c.deliver_all(1000);
    }
    let target = c.replica(0).status().decided_upto;
    assert!(target >= 1 && c.replica(2).status().decided_upto == 0);
    // No more commands: only the periodic progress messages can tell replica 2 it is behind.
    c.heal();
    assert!(c.settle(50).is_some(), "replica 2 stuck at {:?}", c.replica(2).status());
    assert_eq!(c.replica(2).status().decided_upto, target);
}

#[test]
fn paxos_replicas_that_never_talk_to_each_other_still_forget_below_min() {
    // Only replica 0 proposes, so replicas 1 and 2 hear each other's Done only through progress.
    let mut c = Cluster::new(3, Protocol::Paxos, 12);
    for i in 0..20 {
        c.propose(0, format!("c{i}")).expect("propose");
        c.deliver_all(1000);
    }
    assert!(c.settle(50).is_some());
    c.tick_all();
    c.deliver_all(1000);
    let applied = c.replica(1).status().applied;
    for node in 0..3 {
        assert_eq!(c.replica(node).status().floor, applied + 1, "replica {node} forgot what all applied");
    }
}

/// How many times a command with `payload` was decided, over `node`'s applied log.
fn times_decided(c: &Cluster, node: u32, payload: &str) -> usize {
    c.disks[node as usize]
        .applied
        .iter()
        .flat_map(|(_, v)| v.commands())
        .filter(|cmd| cmd.payload.as_ref() == payload.as_bytes())
        .count()
}

#[test]
fn a_leader_proposes_a_command_its_origin_forwarded_twice_only_once() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 11);
    elect(&mut c, 0);
    c.tick(0); // a heartbeat: the followers learn who leads
    c.deliver_all(100);
    // Replica 1 forwards a command; the leader queues and proposes it, but the accepts to the
    // followers are held back, so replica 1 does not see it decided and forwards it again.
    c.propose(1, "twice").expect("propose");
    assert_eq!(kinds(&c.network), vec![("forward", 0)]);
    c.deliver(0);
    let held: Vec<Envelope> = std::mem::take(&mut c.network);
    assert!(held.iter().all(|m| matches!(m.message, Message::Accept { .. })), "{:?}", kinds(&held));
    for _ in 0..20 {
        c.tick(1);
        c.network.retain(|m| matches!(m.message, Message::Forward { .. }));
        if !c.network.is_empty() {
            break;
        }
    }
    assert_eq!(kinds(&c.network), vec![("forward", 0)], "replica 1 re-forwards");
    c.deliver(0);
    c.network.extend(held);
    assert!(c.settle(100).is_some());
    assert_eq!(times_decided(&c, 2, "twice"), 1, "the re-forwarded copy was not proposed again");
}

#[test]
fn a_leader_retransmits_to_a_silent_peer_less_and_less_often() {
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 12);
    elect(&mut c, 0);
    c.isolate(2);
    c.propose(0, "x").expect("propose");
    // Replica 2 is cut off and replica 1's answers are lost below: the slot stays in flight, and
    // the test counts when the leader re-sends its accept.
    c.network.clear();
    let mut resent_at = Vec::new();
    for tick in 0..60 {
        c.tick(0);
        let accepts = c.network.iter().filter(|m| matches!(m.message, Message::Accept { .. })).count();
        if accepts > 0 {
            resent_at.push(tick);
        }
        // Heartbeat replies keep the leader in office; accepted answers are lost.
        c.network.retain(|m| matches!(m.message, Message::Heartbeat { .. }));
        c.deliver_all(100);
        c.network.retain(|m| matches!(m.message, Message::HeartbeatReply { .. }));
        c.deliver_all(100);
    }
    let gaps: Vec<u64> = resent_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 3, "retransmitted at ticks {resent_at:?}");
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "gaps never shrink: {gaps:?}");
    assert!(gaps.last() > gaps.first(), "gaps grow: {gaps:?}");
}

#[test]
fn a_paxos_proposal_takes_the_lowest_slot_with_nothing_accepted() {
    let mut c = Cluster::new(3, Protocol::Paxos, 13);
    // Replica 0 prepares slot 1; replicas 1 and 2 promise, but the promises are lost: slot 1 is
    // known everywhere and has nothing accepted anywhere.
    c.propose(0, "lost").expect("propose");
    c.deliver_hop();
    c.network.clear();
    assert_eq!(c.replica(1).status().max_slot, 1);
    // Replica 1 proposes into slot 1, not after it: a proposal that lost phase 1 must not leave
    // a hole that only a no-op could fill.
    c.propose(1, "next").expect("propose");
    let slots: Vec<u64> = c
        .network
        .iter()
        .filter_map(|m| match m.message {
            Message::Prepare { slot, .. } => Some(slot),
            _ => None,
        })
        .collect();
    assert_eq!(slots, vec![1, 1]);
    assert!(c.settle(300).is_some());
    assert_eq!(times_decided(&c, 0, "lost"), 1);
    assert_eq!(times_decided(&c, 0, "next"), 1);
    assert_eq!(c.replica(0).status().decided_upto, 2, "no hole, no no-op: two commands, two slots");
}

#[test]
fn a_slot_holds_at_most_batch_bytes_max_and_a_larger_command_is_refused() {
    let mut c = Cluster::with_config(3, Protocol::MultiPaxos, 14, |cfg| cfg.batch_bytes_max = 1_000);
    elect(&mut c, 0);
    let big = "x".repeat(1_000);
    assert_eq!(
        c.propose(0, big.clone()),
        Err(barista_core::ProposeError::TooLarge { bytes: 1_032, max: 1_000 }),
        "a command no slot can hold is refused, not proposed"
    );
    // Ten commands of 300 bytes (332 counted) queued at once: three fit in a slot, not all ten.
    let leader = c.replica_mut(0);
    for i in 0..10 {
        leader.propose(Bytes::from(format!("{i}{}", "y".repeat(299)))).expect("propose");
    }
    c.process(0);
    assert!(c.settle(100).is_some());
    let sizes: Vec<usize> =
        c.disks[1].applied.iter().map(|(_, v)| v.commands().iter().map(Command::size).sum()).collect();
    assert!(sizes.iter().all(|&bytes| bytes <= 1_000), "{sizes:?}");
    assert_eq!(c.disks[1].applied.iter().map(|(_, v)| v.commands().len()).sum::<usize>(), 10);
}

#[test]
fn a_replica_that_lost_its_votes_does_not_vote_until_every_peer_fenced_it() {
    // Slot `slot` is chosen by {0, 2}: replica 1 never saw it. Replica 2 then loses its acceptor
    // state and the leader dies. Were replica 2 to promise as if it had never voted, replica 1
    // could win with it and fill the slot with a no-op: the slot decided twice.
    let mut c = Cluster::new(3, Protocol::MultiPaxos, 21);
    elect(&mut c, 0);
    c.propose(0, "warm-up").expect("propose");
    assert!(c.settle(50).is_some());
    c.replica_mut(0).propose(Bytes::from_static(b"chosen")).expect("propose");
    c.process(0);
    let to_2 = c.network.iter().position(|m| m.to == 2 && m.message.kind() == "accept").expect("accept to 2");
    let slot = match &c.network[to_2].message {
        Message::Accept { slot, .. } => *slot,
        _ => unreachable!(),
    };
    c.deliver(to_2);
    let accepted = c.network.iter().position(|m| m.to == 0 && m.message.kind() == "accepted").expect("accepted");
    c.deliver(accepted);
    assert!(c.replica(0).decided(slot).is_some(), "chosen by {{0, 2}}");
    c.crash(0);
    c.network.clear();
    c.lose_acceptor_state(2);
    c.restart(2);
    assert!(c.replica(2).status().rejoining);

    // Replica 0 is down, so replica 2 cannot hear from every peer: it stays out, and replica 1
    // alone cannot decide anything.
    for _ in 0..200 {
        c.tick_all();
        c.deliver_all(1000);
    }
    assert!(c.replica(2).status().rejoining, "rejoined without hearing from replica 0");
    assert!(c.replica(1).decided(slot).is_none(), "replica 1 decided the slot without replica 0");
    assert!(c.disks[2].acceptor == Default::default(), "a rejoining replica persisted state");

    // Replica 0 returns: the fence goes up everywhere, the slot keeps its value, replica 2 votes
    // again and the cluster moves on with it.
    c.restart(0);
    assert!(c.settle(200).is_some(), "did not settle: {:?}", c.replica(2).status());
    assert!(!c.replica(2).status().rejoining);
    for node in 0..3 {
        let applied = c.disks[node].applied.iter().find(|(s, _)| *s == slot).map(|(_, v)| v);
        assert_eq!(applied, Some(&batch(0, 1, "chosen")), "replica {node}");
    }
    c.crash(1);
    c.propose(2, "after").expect("propose");
    assert!(c.settle(200).is_some());
    assert_eq!(times_decided(&c, 2, "after"), 1, "replicas 0 and 2 decide without replica 1");
    c.check_safety().expect("safe");
}

/// The payloads of the commands in each slot `node` applied after `after`.
fn applied_batches(c: &Cluster, node: u32, after: u64) -> Vec<Vec<String>> {
    c.disks[node as usize]
        .applied
        .iter()
        .filter(|(slot, _)| *slot > after)
        .map(|(_, value)| value.commands().iter().map(|c| String::from_utf8_lossy(&c.payload).into_owned()).collect())
        .collect()
}

/// A leader with two elected replicas, `executor_ahead_max` 2, one command applied (so its
/// executor has just moved), then its executor stalled. Returns the slot applied.
fn leader_with_a_stalled_executor() -> (Cluster, u64) {
    let mut c = Cluster::with_config(3, Protocol::MultiPaxos, 1, |cfg| cfg.executor_ahead_max = 2);
    elect(&mut c, 0);
    c.propose(0, "warm").expect("propose");
    c.deliver_all(1000);
    let warm = c.replica(0).status().applied;
    assert_eq!(applied_batches(&c, 0, warm - 1), vec![vec!["warm"]]);
    c.stall_executor(0, true);
    (c, warm)
}

#[test]
fn a_leader_whose_executor_is_behind_puts_the_commands_that_wait_into_one_slot() {
    let (mut c, warm) = leader_with_a_stalled_executor();
    for payload in ["a", "b", "c", "d", "e"] {
        c.propose(0, payload).expect("propose");
        c.deliver_all(1000);
    }
    // "a" and "b" took a slot each; then two proposed slots waited for the executor, and the
    // others waited for a later slot rather than take one each.
    assert_eq!(c.replica(0).status().decided_upto, warm + 2);
    assert_eq!(c.replica(0).status().pending, 3);
    // The executor executes one slot: the three waiting commands share the next.
    c.execute_next(0);
    c.deliver_all(1000);
    c.stall_executor(0, false);
    c.deliver_all(1000);
    let batches = applied_batches(&c, 0, warm);
    assert_eq!(batches, vec![vec!["a"], vec!["b"], vec!["c", "d", "e"]]);
    assert_eq!(applied_batches(&c, 1, warm), batches);
}

#[test]
fn a_leader_whose_executor_stopped_moving_proposes_without_waiting_for_it() {
    let (mut c, warm) = leader_with_a_stalled_executor();
    for payload in ["a", "b", "c"] {
        c.propose(0, payload).expect("propose");
        c.deliver_all(1000);
    }
    assert_eq!(c.replica(0).status().decided_upto, warm + 2, "\"c\" waits while the executor moves");
    // Two ticks without an executed slot: the executor is stuck (its database down, say), and
    // holding commands back for it would stall the cluster, so "c" gets its slot.
    for _ in 0..2 {
        c.tick(0);
        c.deliver_all(1000);
    }
    assert_eq!(c.replica(0).status().decided_upto, warm + 3);
    assert_eq!(c.replica(0).status().applied, warm, "still stalled");
    assert_eq!(applied_batches(&c, 1, warm), vec![vec!["a"], vec!["b"], vec!["c"]]);
}
