//! The simulation in `cargo test`: a fixed seed set, determinism, and every seed that ever failed.
//! Simulation build only: `RUSTFLAGS="--cfg madsim" cargo test -p barista-sim`.
#![cfg(madsim)]

use barista_sim::sweep::{Options, sweep};

/// Seeds run by every `cargo test` of the simulation build (about a minute in release on 2 cores).
const FIXED_SEEDS: std::ops::Range<u64> = 0..500;

fn options() -> Options {
    Options {
        exe: env!("CARGO_BIN_EXE_barista-sim").into(),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        bug: None,
        stop_at_first_failure: false,
        timeout: barista_sim::sweep::DEFAULT_TIMEOUT,
    }
}

#[test]
fn fixed_seed_set_passes() {
    let summary = sweep(FIXED_SEEDS, options(), |f| eprintln!("FAIL {f}"), |_| {});
    let report: Vec<String> = summary.failures.iter().map(ToString::to_string).collect();
    assert!(report.is_empty(), "{} of {} seeds failed:\n{}", report.len(), summary.seeds, report.join("\n\n"));
    eprintln!(
        "{} seeds, {:.0} simulated s in {:.1} wall s ({:.1}x)",
        summary.seeds,
        summary.simulated_s,
        summary.wall_s,
        summary.simulated_s / summary.wall_s
    );
}

/// Runs `seed` in a fresh process, as a replay would, and returns what it printed.
fn replay(seed: u64) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_barista-sim"))
        .args(["run", &seed.to_string(), "--report"])
        .output()
        .expect("run the simulator");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_same_seed_replays_exactly() {
    for seed in [3, 5, 17] {
        let first = replay(seed);
        assert!(first.contains("fingerprint"), "seed {seed} did not finish: {first}");
        assert_eq!(first, replay(seed), "seed {seed} is not deterministic");
    }
}

/// Runs one seed as the sweep does (its own process, the same wall-clock limit) and fails with
/// the seed's report if it fails.
fn passes(seed: u64) {
    let summary = sweep(seed..seed + 1, options(), |_| {}, |_| {});
    if let Some(failure) = summary.failures.first() {
        panic!("{failure}");
    }
}

/// Every seed that ever failed, named after what it found; they stay whatever the fixed set
/// becomes. `cargo test -p barista-sim --release --test seeds regression_` runs them alone.
macro_rules! regressions {
    ($($(#[$doc:meta])* $name:ident: $($seed:literal),+;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                for seed in [$($seed),+] {
                    passes(seed);
                }
            }
        )*
    };
}

regressions! {
    /// Multi-paxos, no crash or partition, only loss, duplication and delay: followers re-forwarded
    /// commands faster than slots were decided, the leader proposed every copy, batches of a
    /// hundred duplicates were retransmitted every 30 ms, and the links stayed congested long
    /// after the faults stopped (fixed: the leader holds each command once, retransmissions back
    /// off, the node steps every waiting message before one persist).
    regression_multi_paxos_congestion_collapse: 19, 101, 1, 18, 26, 49, 50, 57;
    /// Paxos mode: the log stalled after healing. These failed before all of the fixes named here
    /// went in; which one cured each seed was not isolated.
    regression_paxos_stalled_after_healing: 23, 36, 37, 56, 59;
    /// Paxos mode, five replicas, no faults: all five filled the same hole with a no-op at the
    /// same tick and duelled forever (fixed: replicas take turns; the back-off doubles per loss).
    regression_paxos_hole_filling_duel: 225, 229;
    /// Paxos mode: every replica proposed the idle-transaction abort at once, and proposals that
    /// lost phase 1 left a hole behind each one, faster than no-ops filled them (fixed: turns for
    /// the abort; a proposal takes the lowest slot with nothing accepted).
    regression_paxos_holes_outran_filling: 156, 199, 246, 256, 122, 174, 226, 242, 253, 321, 402, 459, 476, 489, 492;
    /// Paxos mode with a slow store: every proposal timed out before its second round trip,
    /// forever (fixed: the proposal timeout grows with the losses).
    regression_paxos_timeout_below_store_latency: 0, 216, 289, 436, 444;
    /// Lost acceptor state, three replicas: a write the killed incarnation left in flight landed
    /// in the ZooKeeper stand-in after the replica's state was deleted, so its restart found a
    /// fragment (one slot, no promise) and recovered instead of rejoining; the harness, seeing no
    /// rejoin, let a second replica lose its state while the third was down, and the two deletions
    /// took the only copies of the slots the third still had to apply (it ended `needs_reseed`, a
    /// liveness failure that looked like purging past its `Done`). Fixed in the stand-in: deleting
    /// a replica's state fences off the writes issued before it, as deleting the promise node
    /// does in ZooKeeper.
    regression_write_in_flight_resurrected_deleted_acceptor_state: 1797;
    /// Lost acceptor state, three replicas: replica 2 lost its state and rejoined while replica 1
    /// lagged far behind; then replica 0 lost its own. The slots replica 1 still needed were now
    /// in no log (two databases had applied them), so it could only be re-seeded, and the other
    /// two could not elect a leader while it lagged. A second fault while the first still
    /// mattered: the harness now counts a loss as in effect until every replica has applied what
    /// the lost log held. (Showed up as schedules changed: 200 ms flushes, then the line of
    /// sessions waiting for a transaction.)
    regression_second_lost_state_while_a_replica_lagged_behind_the_first: 119;
    /// Paxos, lost acceptor state and ZooKeeper outages: replica 0 finished its rejoin, but the
    /// persist that ends it waited on the stand-in, which was down, when replica 0 crashed; with
    /// its store still empty it rejoined again. The harness had taken the report "rejoined" for
    /// done and let replica 2 lose its state too, and two rejoining replicas wait for each other.
    /// A second fault while the first still mattered: a replica now reports `rejoining` until the
    /// persist that ends its rejoin has landed.
    regression_second_lost_state_before_the_first_rejoin_was_persisted: 3983;
}
