#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other, on one core
# and at low priority: `fuzz/run-all.sh SECONDS [TARGET...]`. Works on the stable toolchain
# (see README.md). New inputs go to fuzz/work/<target>/ (not committed), crashes to
# fuzz/artifacts/<target>/, each run's log to fuzz/logs/<target>.log; the last lines printed are
# each target's executions, executions per second and run time. Exits non-zero if a target
# found something.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]   (targets: $(cargo fuzz list | tr '\n' ' '))" >&2
  exit 2
fi
seconds=$1
shift
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 1
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# No sanitizer: the project's code forbids `unsafe`, and without ASan the targets run about
# twice as fast and build on stable rustc with no -Z flag. Debug assertions and overflow checks
# stay on (cargo-fuzz's default), so the replicas check their own invariants after every input.
fuzz=(cargo fuzz run --sanitizer none)
nice cargo fuzz build --sanitizer none

mkdir -p logs
failed=()
summary=()
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "artifacts/$target"
  echo "==> $target for ${seconds}s"
  started=$(date +%s)
  status=0
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: 2 GiB is a leak or a bomb.
  nice "${fuzz[@]}" "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"logs/$target.log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - started))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$target.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$target.log" | tail -1)
  line="$target: ${runs:-?} execs, ${rate:-?} execs/s, ${elapsed}s"
  if [[ $status -ne 0 ]]; then
    line="$line, FOUND SOMETHING (exit $status): see logs/$target.log and artifacts/$target/"
    failed+=("$target")
  fi
  echo "$line"
  summary+=("$line")
done
printf '\n%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
