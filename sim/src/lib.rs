//! `barista-sim`: deterministic simulation of whole Barista clusters with madsim.
//!
//! Every replica runs the production node loop, executor and client service over madsim's
//! simulated TCP; ZooKeeper and PostgreSQL are replaced by stand-ins that keep their data across a
//! replica crash (an in-memory acceptor store; SQLite with real transactions). One `u64` seed
//! derives the whole run ([`config::SimConfig`]); a failure names its class and prints the command
//! that replays it.
//!
//! The simulation itself only builds with `RUSTFLAGS="--cfg madsim"`; in a normal build this
//! crate holds the seed-derived configuration alone.

pub mod config;
pub mod linearizability;

#[cfg(madsim)]
pub mod applied;
#[cfg(madsim)]
pub mod check;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod faulty;
#[cfg(madsim)]
pub mod rpc;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod sweep;
#[cfg(madsim)]
pub mod workload;
#[cfg(madsim)]
pub mod zk;

/// Runs seed `seed` in a fresh madsim runtime on a fresh thread (madsim is deterministic only
/// so), turning panics into crash or safety failures.
#[cfg(madsim)]
pub fn run_seed(seed: u64) -> Result<run::Report, run::Failure> {
    run_seed_with(seed, None)
}

/// The command-line name of a planted bug.
#[cfg(madsim)]
pub fn planted_name(bug: barista_core::planted::Bug) -> &'static str {
    use barista_core::planted::Bug;
    match bug {
        Bug::ReplyBeforePersist => "reply-before-persist",
        Bug::SkipApUpdate => "skip-ap-update",
        Bug::NoExactlyOnce => "no-exactly-once",
        Bug::LeaderOverridesAccepted => "leader-overrides-accepted",
        Bug::DoneBeforeFlush => "done-before-flush",
        Bug::ReadOutOfTurn => "read-out-of-turn",
    }
}

/// The planted bug with command-line name `name`.
#[cfg(madsim)]
pub fn planted_by_name(name: &str) -> Result<barista_core::planted::Bug, String> {
    use barista_core::planted::Bug;
    [
        Bug::ReplyBeforePersist,
        Bug::SkipApUpdate,
        Bug::NoExactlyOnce,
        Bug::LeaderOverridesAccepted,
        Bug::DoneBeforeFlush,
        Bug::ReadOutOfTurn,
    ]
    .into_iter()
    .find(|b| planted_name(*b) == name)
    .ok_or_else(|| format!("unknown bug {name}"))
}

/// Like [`run_seed`], with `bug` planted (see [`barista_core::planted`]).
#[cfg(madsim)]
pub fn run_seed_with(seed: u64, bug: Option<barista_core::planted::Bug>) -> Result<run::Report, run::Failure> {
    let cfg = config::SimConfig::from_seed(seed);
    let outcome = std::thread::spawn(move || {
        barista_core::planted::plant(bug);
        let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        runtime.block_on(run::simulate(cfg))
    })
    .join();
    match outcome {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            let class = if message.contains("invariant violated") || message.contains("SAFETY") {
                run::FailureClass::Safety
            } else {
                run::FailureClass::Crash
            };
            Err(run::Failure { seed, class, message })
        }
    }
}
