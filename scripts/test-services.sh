#!/usr/bin/env bash
# Self-test of scripts/pg.sh, scripts/zk.sh and the free-port helper: start 3
# PostgreSQL clusters and 1 ZooKeeper on free ports in a temporary directory,
# query each, restart them (data must survive), stop them all by PID file, and
# check that nothing is left running or listening. Prints timings and a
# closing "N passed, N failed" line; exits non-zero on any failure. Cleans up
# after itself, also when interrupted.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/lib.sh"

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    printf 'ok   %s\n' "$*"
}
fail() {
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$*"
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}
T0=$(now_ms)
phase_start=$T0
phase() { # print how long the phase just finished took
    local t
    t=$(now_ms)
    printf 'time %-34s %5d ms\n' "$1" $((t - phase_start))
    phase_start=$t
}

PG_BIN=$(pg_bindir)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/barista-services.XXXXXX")
# mktemp -d makes a 0700 directory: the postgres user could not reach the
# clusters inside it.
chmod 755 "$TMP"

cleanup() {
    local rc=$?
    local i
    trap '' INT TERM
    # Interrupted during a start: let the pg.sh/zk.sh still running finish
    # (each is bounded by its own timeout). Stopping now would miss a server
    # that comes up a moment later, and rm -rf would race with initdb.
    wait || true
    for i in 1 2 3; do
        "$HERE/pg.sh" stop "$TMP/pg$i" 2>/dev/null || true
    done
    "$HERE/zk.sh" stop "$TMP/zk" 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t PORTS < <(free_ports 4)
PG_PORTS=("${PORTS[@]:0:3}")
ZK_PORT=${PORTS[3]}
echo "temp dir $TMP; PostgreSQL ports ${PG_PORTS[*]}; ZooKeeper port $ZK_PORT"

# Start everything in parallel; report each failure.
start_all() {
    local -a pids=() what=()
    local i
    for i in 1 2 3; do
        "$HERE/pg.sh" start "$TMP/pg$i" "${PG_PORTS[i - 1]}" &
        pids+=($!)
        what+=("start PostgreSQL pg$i on ${PG_PORTS[i - 1]}")
    done
    "$HERE/zk.sh" start "$TMP/zk" "$ZK_PORT" &
    pids+=($!)
    what+=("start ZooKeeper on $ZK_PORT")
    for i in "${!pids[@]}"; do
        if wait "${pids[i]}"; then ok "${what[i]}"; else fail "${what[i]}"; fi
    done
}

psql_at() { # psql_at PORT SQL: print the result, unaligned, tuples only
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -Atc "$2"
}
pg_answers() { [[ $(psql_at "$1" 'select 1') == 1 ]]; }
pg_only_loopback() { [[ $(psql_at "$1" 'show listen_addresses') == 127.0.0.1 ]]; }
zk_ok() { [[ $(zk_4lw "$1" ruok) == imok && $(zk_4lw "$1" srvr) == *$'\nMode: standalone\n'* ]]; }
exit_code_is() { # exit_code_is CODE COMMAND...
    local want=$1 rc=0
    shift
    "$@" >/dev/null || rc=$?
    ((rc == want))
}
# The server answers through the connection string `pg.sh conninfo` prints for it, which names
# its unix socket (the data directory's path here is short enough for one).
pg_conninfo_answers() { # pg_conninfo_answers DIR PORT
    local conninfo
    conninfo=$("$HERE/pg.sh" conninfo "$1" "$2")
    [[ $conninfo == "host='$1' "* ]] || return 1
    [[ $("$PG_BIN/psql" -X -q -d "$conninfo" -Atc 'select 1') == 1 ]]
}
not_listening() { ! port_listening "$1"; }
dead() { ! pid_alive "$1"; }

start_all
phase "init + start (3 pg, 1 zk, parallel)"

for i in 1 2 3; do
    check "pg$i answers select 1" pg_answers "${PG_PORTS[i - 1]}"
done
check "pg1 listens on 127.0.0.1 only" pg_only_loopback "${PG_PORTS[0]}"
check "pg1 answers on its unix socket (pg.sh conninfo)" pg_conninfo_answers "$TMP/pg1" "${PG_PORTS[0]}"
check "zk answers imok, standalone" zk_ok "$ZK_PORT"
check "pg1 write" psql_at "${PG_PORTS[0]}" \
    'create table t (k int primary key); insert into t values (42)'
phase "queries"

stop_all() {
    local i
    for i in 1 2 3; do
        check "stop pg$i" "$HERE/pg.sh" stop "$TMP/pg$i"
    done
    check "stop zk" "$HERE/zk.sh" stop "$TMP/zk"
}

# Restart on the same directories: existing clusters and ZooKeeper data.
stop_all
phase "stop"
start_all
phase "restart (existing dirs, parallel)"
check "pg1 kept its data" test "$(psql_at "${PG_PORTS[0]}" 'select k from t')" == 42
check "zk answers after restart" zk_ok "$ZK_PORT"

# Final stop, remembering the PIDs to check that they are gone.
PIDS=()
for i in 1 2 3; do
    PIDS+=("$(head -n 1 "$TMP/pg$i/postmaster.pid")")
done
PIDS+=("$(<"$TMP/zk/zk.pid")")
phase "checks"
stop_all
phase "stop"

for p in "${PORTS[@]}"; do
    check "nothing listens on 127.0.0.1:$p" not_listening "$p"
done
for p in "${PIDS[@]}"; do
    check "process $p has exited" dead "$p"
done
check "pg.sh status says stopped" exit_code_is 3 "$HERE/pg.sh" status "$TMP/pg1"
check "zk.sh status says stopped" exit_code_is 3 "$HERE/zk.sh" status "$TMP/zk"
phase "final checks"

printf 'time %-34s %5d ms\n' "total" $(($(now_ms) - T0))
echo "test-services: $passed passed, $failed failed"
((failed == 0))
