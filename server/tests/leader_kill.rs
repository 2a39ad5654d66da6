//! kill -9 of the leader, three times, under a running write load (issues 4 and 6): clients of
//! `barista-client` keep incrementing one counter and fail over; each killed leader is restarted
//! from its ZooKeeper acceptor state and its database's AP, and must catch up. The outcome checks
//! are `support::load`'s: nothing lost, nothing applied twice, three identical databases.
//!
//! About 12 s: starting PostgreSQL and ZooKeeper, three elections, three restarts.
#![cfg(not(madsim))]

mod support;

use std::time::Duration;

use support::Cluster;
use support::load::CounterLoad;

const CLIENTS: u64 = 3;
const KILLS: usize = 3;

#[test]
fn killing_the_leader_under_load_loses_and_repeats_nothing_and_restarted_replicas_catch_up() {
    let mut cluster = Cluster::start("leader-kill", |_| Vec::new());
    let load = CounterLoad::start(&cluster, CLIENTS);
    for kill in 0..KILLS {
        load.wait_for_more("before the kill", 20);
        let leader = cluster.leader();
        cluster.kill_replica(leader);
        load.wait_for_more(&format!("after kill {kill} (replica {leader})"), 20);
        cluster.start_replica(leader).unwrap_or_else(|e| panic!("restart replica {leader}: {e}"));
        cluster.wait_ready(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    let (acked, failed, counter) = load.stop_and_check(&cluster);
    eprintln!("{KILLS} leader kills: {acked} increments acknowledged, {failed} failed, counter {counter}");
}
