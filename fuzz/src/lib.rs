//! Barista's fuzz targets (issue 9), as plain functions of `&[u8]` that panic on a finding.
//!
//! Each module is one target; its `run` is what the libFuzzer binary in `fuzz_targets/` calls,
//! and what `tests/replay.rs` calls for every file of `corpus/<target>/` on the stable toolchain,
//! so CI replays the corpora (seeds and every regression input) without a fuzzer. Each module's
//! `seeds` builds its seed inputs from real values (encoded messages, the SQL policy's cases, ...);
//! `BARISTA_WRITE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml --no-default-features`
//! writes them into the corpus directories.
//!
//! - [`core_cluster`]: schedules of network events, stale and forged messages, ticks, proposals,
//!   crashes and restarts against three replicas, with the testkit's cluster-wide safety oracle.
//! - [`wire`]: every wire and storage format: decoding arbitrary bytes is an error or a value,
//!   never a panic, and a decoded value encodes and decodes back to itself.
//! - [`thrift_api`]: arbitrary bytes into the server's Thrift processor and handler.
//! - [`sql`]: the SQL determinism checker: no panic, idempotent rewriting, untouched text.

pub mod core_cluster;
pub mod sql;
pub mod thrift_api;
pub mod wire;

/// A target: its name (the binary and the corpus directory) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] =
    &[("core_cluster", core_cluster::run), ("wire", wire::run), ("thrift_api", thrift_api::run), ("sql", sql::run)];

/// Named inputs: a file name (without the `seed-` prefix) and the bytes.
pub type Inputs = Vec<(String, Vec<u8>)>;

/// Every target's seed inputs, by target name.
pub fn seeds() -> Vec<(&'static str, Inputs)> {
    vec![
        ("core_cluster", core_cluster::seeds()),
        ("wire", wire::seeds()),
        ("thrift_api", thrift_api::seeds()),
        ("sql", sql::seeds()),
    ]
}
