//! Proof that the simulation's checkers can fail: with each bug planted, a sweep finds a failing
//! seed within 500 seeds, and the failure is of the class that bug breaks.
#![cfg(madsim)]

use barista_core::planted::Bug;
use barista_sim::run::FailureClass;
use barista_sim::sweep::{Options, sweep};

fn caught(bug: Bug) -> (u64, FailureClass) {
    let options = Options {
        exe: env!("CARGO_BIN_EXE_barista-sim").into(),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        bug: Some(bug),
        stop_at_first_failure: true,
    };
    let summary = sweep(0..500, options, |_| {}, |_| {});
    let first = summary.failures.first().unwrap_or_else(|| panic!("{bug:?} survived {} seeds", summary.seeds));
    eprintln!(
        "{bug:?} caught by seed {} after {} seeds: {}",
        first.seed,
        summary.seeds,
        first.message.lines().next().unwrap_or("")
    );
    (first.seed, first.class)
}

#[test]
fn a_replica_that_replies_before_persisting_is_caught() {
    caught(Bug::ReplyBeforePersist);
}

#[test]
fn an_executor_that_skips_the_ap_update_is_caught() {
    caught(Bug::SkipApUpdate);
}

#[test]
fn a_disabled_exactly_once_table_is_caught() {
    let (_, class) = caught(Bug::NoExactlyOnce);
    assert_eq!(class, FailureClass::Safety);
}

#[test]
fn a_leader_that_overrides_accepted_values_is_caught() {
    let (_, class) = caught(Bug::LeaderOverridesAccepted);
    assert_eq!(class, FailureClass::Safety);
}
