#!/usr/bin/env bash
# Barista's whole test suite: the README's test command, and all that .ci/run calls.
#
# Runs, in order: formatting check, clippy with warnings as errors, then every test of the normal
# build (unit, scenario, property and integration tests). The simulation build (--cfg madsim)
# joins here when the simulator lands.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Barista needs a Rust toolchain >= 1.85 (install it with rustup)." >&2
  exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (normal build)"
cargo test --workspace
