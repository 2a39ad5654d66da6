//! Proof that the simulation's checkers can fail: with each bug planted, a sweep finds, within
//! 500 seeds, a seed that fails with the bug and passes without it (so the failure is the bug's,
//! not a failure of the seed that a later change of the simulation might bring).
#![cfg(madsim)]

use barista_core::planted::Bug;
use barista_sim::sweep::{Options, sweep};

const SEEDS: u64 = 500;

fn options(bug: Option<Bug>) -> Options {
    Options {
        exe: env!("CARGO_BIN_EXE_barista-sim").into(),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        bug,
        stop_at_first_failure: bug.is_some(),
        timeout: barista_sim::sweep::DEFAULT_TIMEOUT,
    }
}

/// One planted-bug search at a time: each already runs a child per core, and four at once on a
/// small CI machine only make each slower.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn caught(bug: Bug) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut from = 0;
    while from < SEEDS {
        let found = sweep(from..SEEDS, options(Some(bug)), |_| {}, |_| {});
        let Some(first) = found.failures.first() else { break };
        let clean = sweep(first.seed..first.seed + 1, options(None), |_| {}, |_| {});
        if clean.failures.is_empty() {
            eprintln!("{bug:?} caught by seed {}: {}", first.seed, first.message.lines().next().unwrap_or(""));
            return;
        }
        from = first.seed + 1; // that seed fails without the bug too: not evidence
    }
    panic!("{bug:?} survived {SEEDS} seeds");
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
    caught(Bug::NoExactlyOnce);
}

#[test]
fn a_leader_that_overrides_accepted_values_is_caught() {
    caught(Bug::LeaderOverridesAccepted);
}
