//! A replica whose acceptor state is deleted from ZooKeeper (issue 6, item 2) rejoins without
//! contradicting a vote it may have given, under a running write load:
//!
//! 1. a follower is killed (SIGKILL) and its ZooKeeper nodes are deleted; it restarts with an
//!    empty acceptor state and AP > 0 in its database, so it knows it lost its votes, reports
//!    `rejoining`, and does not vote until it has fenced every peer and learned every slot they
//!    had seen (core/src/rejoin.rs);
//! 2. writes go on the whole time (the other two are a majority);
//! 3. once it rejoined, the leader is killed: the remaining majority includes the rejoined
//!    replica, so writes going on proves it votes again;
//! 4. the outcome checks of `support::load`: nothing lost, nothing applied twice, three identical
//!    databases.
//!
//! About 15 s.
#![cfg(not(madsim))]

mod support;

use std::time::Duration;

use barista_server::local_cluster::LocalCluster;
use support::load::CounterLoad;
use support::{Cluster, wait_for};
use zookeeper_client::Client as ZkClient;

/// Deletes replica `node`'s acceptor state: `{root}/paxos/{node}` and everything below it.
fn delete_acceptor_state(zk_port: u16, root: &str, node: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let zk = ZkClient::connect(&format!("127.0.0.1:{zk_port}")).await.expect("connect to ZooKeeper");
        let base = format!("{root}/paxos/{node}");
        let store = format!("{base}/store");
        let slots = zk.list_children(&store).await.expect("list the slots");
        assert!(!slots.is_empty(), "replica {node} had no slots stored: nothing to lose");
        for slot in &slots {
            zk.delete(&format!("{store}/{slot}"), None).await.expect("delete a slot");
        }
        for path in [store, format!("{base}/promise"), base] {
            zk.delete(&path, None).await.unwrap_or_else(|e| panic!("delete {path}: {e}"));
        }
    });
}

#[test]
fn a_replica_whose_zookeeper_state_was_deleted_rejoins_and_votes_again() {
    let mut cluster = Cluster::start("lost-acceptor-state", |_| Vec::new());
    let load = CounterLoad::start(&cluster, 3);
    load.wait_for_more("before the loss", 20);

    let leader = cluster.leader();
    let follower = (leader + 1) % support::REPLICAS;
    cluster.kill_replica(follower);
    delete_acceptor_state(cluster.zk_port, "/barista-test", follower);
    load.wait_for_more("while the follower is down", 20);
    cluster.start_replica(follower).unwrap_or_else(|e| panic!("restart replica {follower}: {e}"));
    load.wait_for_more("while the follower rejoins", 20);
    // Healthy means voting again: `is_healthy` is false while rejoining.
    wait_for("the follower to rejoin", Duration::from_secs(30), || {
        LocalCluster::report(&cluster, follower).ok().filter(|r| r.is_healthy()).map(|_| ())
    });
    let log = std::fs::read_to_string(&cluster.replicas[follower].log).expect("the follower's log");
    assert!(log.contains("acceptor state lost"), "the follower did not notice it lost its state:\n{log}");

    // The rejoined replica must vote: kill the leader, so writes need it.
    let leader = cluster.leader();
    assert_ne!(leader, follower, "the rejoined replica leads (possible, but then this test proves less)");
    cluster.kill_replica(leader);
    load.wait_for_more("with the rejoined replica in the majority", 20);
    cluster.start_replica(leader).unwrap_or_else(|e| panic!("restart replica {leader}: {e}"));
    cluster.wait_ready(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let (acked, failed, counter) = load.stop_and_check(&cluster);
    eprintln!("lost acceptor state: {acked} increments acknowledged, {failed} failed, counter {counter}");
}
