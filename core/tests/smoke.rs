//! First light: a three-replica cluster decides commands under both protocols.
use barista_core::Protocol;
use barista_core::testkit::Cluster;

#[test]
fn three_replicas_decide_commands() {
    for protocol in [Protocol::MultiPaxos, Protocol::Paxos] {
        let mut c = Cluster::new(3, protocol, 7);
        c.settle(100);
        for i in 0..20u32 {
            c.propose(i % 3, format!("cmd{i}")).expect("propose");
        }
        let rounds = c.settle(200);
        assert!(
            rounds.is_some(),
            "{protocol:?} did not settle: {:?}",
            c.replicas.iter().flatten().map(|r| r.status()).collect::<Vec<_>>()
        );
        c.check_applied_prefixes().expect("same sequence");
        let commands: usize = c.disks[0].applied.iter().map(|(_, v)| v.commands().len()).sum();
        assert!(commands >= 20, "{protocol:?}: {commands} commands applied");
    }
}
