#!/usr/bin/env bash
# Barista's whole test suite: the README's test command, and all that .ci/run calls.
#
# Runs, in order: formatting check, clippy with warnings as errors (both builds), every test of
# the normal build (unit, scenario, property and integration tests), the fuzz corpus replay, then
# the simulation build (--cfg madsim): a fixed set of seeds through whole simulated clusters, and determinism.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Barista needs a Rust toolchain >= 1.85 (install it with rustup)." >&2
  exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

# The system packages the integration tests start servers from (PostgreSQL, ZooKeeper, ...):
# silent when all are present, installs what is missing when run as root, fails saying what is
# missing otherwise. Before the cargo steps, so a missing package is reported as such.
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# fuzz/ is outside the workspace; without libFuzzer (the replay build), in the same target
# directory so the workspace crates it uses are built once.
CARGO_TARGET_DIR=target cargo clippy --manifest-path fuzz/Cargo.toml --no-default-features --all-targets --quiet -- -D warnings

step "cargo test (normal build)"
cargo test --workspace

# Every committed fuzz input (seeds and regressions) through its target function, stable
# toolchain, no fuzzer (fuzz/README.md).
step "cargo test (fuzz corpus replay)"
CARGO_TARGET_DIR=target cargo test --manifest-path fuzz/Cargo.toml --no-default-features

# The simulation build gets its own target directory: both builds produce a `barista-sim`
# binary at the same path otherwise, and the simulation's tests run that binary.
sim() { RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo "$@"; }

step "cargo clippy (simulation build)"
sim clippy -p barista-sim --all-targets --quiet -- -D warnings

# Release: a seed runs in a fraction of a second instead of several, and the planted-bug
# searches run hundreds of seeds.
step "cargo test (simulation build, release: fixed seed set, determinism, planted bugs)"
sim test --release -p barista-sim
