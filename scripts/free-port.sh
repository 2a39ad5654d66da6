#!/usr/bin/env bash
# Print N (default 1) distinct TCP ports that are free on 127.0.0.1, one a line.
#
#   scripts/free-port.sh        -> 41873
#   scripts/free-port.sh 4      -> four different ports
#
# Tests pick their own ports with this instead of fixed numbers, so that runs
# (and other engineers' runs on the same machine) do not collide.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# <= 1)) || die "usage: $0 [COUNT]"
free_ports "${1:-1}"
