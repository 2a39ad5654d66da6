#!/usr/bin/env bash
# The README's first command: install what is missing, build barista, and run `barista demo`.
#
#   scripts/demo.sh                   # the tour, then the cluster stays up until Ctrl-C
#   scripts/demo.sh --no-wait         # the tour, then stop everything and exit
#   scripts/demo.sh --dir DIR         # state directory (default target/demo)
#
# Arguments go to `barista demo` (see `target/release/barista demo --help`). On Debian 12 as
# root, scripts/setup.sh installs PostgreSQL, ZooKeeper and the rest first (quiet when all is
# present); as another user it says what is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 ||
    die "cargo not found. Barista needs a Rust toolchain >= 1.85 (install it with rustup)."

scripts/setup.sh

echo "demo.sh: building barista (cargo build --release -p barista-server; a few minutes the first time)"
cargo build --release --quiet -p barista-server

exec target/release/barista demo "$@"
