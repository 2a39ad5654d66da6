#!/usr/bin/env bash
# TPC-C side by side on this machine, in one invocation: the same warehouses, terminals, mode and
# durations against
#   single          one PostgreSQL
#   sync-rep        PostgreSQL with two synchronous streaming standbys (synchronous_commit = remote_apply)
#   pgpool          pgpool-II in native replication mode over three PostgreSQL servers (scripts/pgpool.sh)
#   multi-paxos     Barista, three replicas, --protocol multi-paxos, through its Thrift API (barista://)
#   paxos           Barista, three replicas, --protocol paxos, through its Thrift API
#   multi-paxos-pg  Barista, three replicas, --protocol multi-paxos, through its PostgreSQL port
#                   (postgres://, the very client code that measures the three systems above)
#   paxos-pg        Barista, three replicas, --protocol paxos, through its PostgreSQL port
# Every system is its own deployment, started, loaded (same seed) through its own target and
# checked; then the measured runs go round-robin over the systems for --rounds rounds
# (interleaved, so a noisy moment of the shared machine does not land on one system only); then
# `check` on every copy of the data, and one ratio table against the first system (barista-tpcc
# compare), saved with the chart and every report. Each measured run also prints how much CPU the
# system's processes spent per transaction, by component (PostgreSQL, pgpool-II, Barista,
# ZooKeeper), and each Barista run how many commands shared a log slot and how many reads were
# answered without the log.
#
# Each system is connected as it would be deployed: the driver talks to every system over TCP,
# and so do pgpool-II to its servers and the standbys to their primary (on separate hosts, as they
# would be); each Barista replica talks to its own PostgreSQL, which runs beside it, through
# PostgreSQL's unix socket (scripts/pg.sh conninfo).
#
#   scripts/tpcc-side-by-side.sh [--warehouses 1] [--terminals 8] [--warmup 10] [--duration 60]
#       [--mode procedures|interactive] [--rounds 1] [--dir target/tpcc-side-by-side]
#       [--systems single,sync-rep,pgpool,multi-paxos,paxos,multi-paxos-pg,paxos-pg]
#       [--bin target/release] [--test-divisor 1]
#
# Needs release builds (cargo build --release -p barista-server -p barista-tpcc), PostgreSQL and
# ZooKeeper (scripts/setup.sh), and for pgpool the Debian package pgpool2. Everything it starts
# runs on 127.0.0.1 and is stopped by PID (or its own script) on exit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SCRIPTS")

WAREHOUSES=1 TERMINALS=8 WARMUP=10 DURATION=60 MODE=procedures ROUNDS=1 DIVISOR=1
SYSTEMS=single,sync-rep,pgpool,multi-paxos,paxos,multi-paxos-pg,paxos-pg
DIR=$ROOT/target/tpcc-side-by-side
BIN=$ROOT/target/release
# The comment at the top of this file, without its `#`s.
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    esac
    (($# >= 2)) || die "$1 needs a value (see --help)"
    case $1 in
    --warehouses) WAREHOUSES=$2 ;;
    --terminals) TERMINALS=$2 ;;
    --warmup) WARMUP=$2 ;;
    --duration) DURATION=$2 ;;
    --mode) MODE=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --systems) SYSTEMS=$2 ;;
    --dir) DIR=$2 ;;
    --bin) BIN=$2 ;;
    --test-divisor) DIVISOR=$2 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift 2
done
TPCC=$BIN/barista-tpcc
BARISTA=$BIN/barista
[[ -x $TPCC && -x $BARISTA ]] || die "no $TPCC or $BARISTA: cargo build --release -p barista-server -p barista-tpcc"
PG_BIN=$(pg_bindir)
IFS=, read -r -a SYSTEM_LIST <<<"$SYSTEMS"
has() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
for s in "${SYSTEM_LIST[@]}"; do
    case $s in
    single | sync-rep | pgpool | multi-paxos | paxos | multi-paxos-pg | paxos-pg) ;;
    *) die "unknown system $s in --systems (see --help)" ;;
    esac
done
if has pgpool; then
    command -v pgpool >/dev/null || die "pgpool not found: apt-get install pgpool2 (or leave pgpool out of --systems)"
fi

rm -rf "$DIR"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
chmod 755 "$DIR"
SEED=${SEED:-20261202}
read -r -a PORTS <<<"$(free_ports 80 | tr '\n' ' ')"
next_port=0
p='' p0='' p1='' p2='' pp='' zk=''
# port VAR: the next free port into VAR (no subshell, so the counter moves on).
port() {
    printf -v "$1" '%s' "${PORTS[next_port]}"
    next_port=$((next_port + 1))
}

# What to stop on exit, in reverse order of start.
BARISTA_PIDS=()
declare -A BARISTA_OF # system -> its replicas' PIDs
PG_DIRS=()
ZK_DIR=
PGPOOL_DIR=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local pid
    for pid in "${BARISTA_PIDS[@]}"; do
        pid_alive "$pid" && kill "$pid" 2>/dev/null
    done
    [[ -z $PGPOOL_DIR ]] || "$SCRIPTS/pgpool.sh" stop "$PGPOOL_DIR" >/dev/null 2>&1 || true
    local d
    for d in "${PG_DIRS[@]}"; do
        "$SCRIPTS/pg.sh" stop "$d" >/dev/null 2>&1 || true
    done
    [[ -z $ZK_DIR ]] || "$SCRIPTS/zk.sh" stop "$ZK_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

pg_start() { # DIR PORT
    "$SCRIPTS/pg.sh" start "$1" "$2"
    PG_DIRS+=("$1")
}
psql_at() { # PORT SQL
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2" >/dev/null
}
url() { printf 'postgres://postgres@127.0.0.1:%s/postgres' "$1"; }

declare -A TARGET CHECK ADMIN
echo "== starting: $SYSTEMS (state in $DIR)"
if has single; then
    port p
    pg_start "$DIR/single" "$p"
    TARGET[single]=$(url "$p")
    CHECK[single]="--target $(url "$p")"
fi
if has sync-rep; then
    port p0 && port p1 && port p2
    pg_start "$DIR/sync0" "$p0"
    psql_at "$p0" "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 2 (s1, s2)'"
    psql_at "$p0" "ALTER SYSTEM SET synchronous_commit = 'remote_apply'"
    psql_at "$p0" "SELECT pg_reload_conf()"
    i=1
    for p in "$p1" "$p2"; do
        mkdir -p "$DIR/sync$i" && chown postgres:postgres "$DIR/sync$i" && chmod 700 "$DIR/sync$i"
        (cd / && runuser -u postgres -- "$PG_BIN/pg_basebackup" -D "$DIR/sync$i" -R -X stream -c fast \
            -d "host=127.0.0.1 port=$p0 user=postgres application_name=s$i")
        pg_start "$DIR/sync$i" "$p"
        i=$((i + 1))
    done
    TARGET[sync-rep]=$(url "$p0")
    CHECK[sync-rep]="--target $(url "$p0") --target $(url "$p1") --target $(url "$p2")"
fi
if has pgpool; then
    port pp && port p0 && port p1 && port p2
    PGPOOL_DIR=$DIR/pgpool
    # SELECT tpcc_...(...) writes: send it to every backend, not only the main one.
    PGPOOL_CHILDREN=$((TERMINALS + 8)) PGPOOL_WRITE_FUNCTIONS='tpcc_.*' \
        "$SCRIPTS/pgpool.sh" start "$PGPOOL_DIR" "$pp" "$p0" "$p1" "$p2"
    TARGET[pgpool]=$(url "$pp")
    CHECK[pgpool]="--target $(url "$p0") --target $(url "$p1") --target $(url "$p2")"
fi
if has multi-paxos || has paxos || has multi-paxos-pg || has paxos-pg; then
    ZK_DIR=$DIR/zk
    port zk
    # Every cluster keeps every log slot in this ZooKeeper (Barista purges only with retain_slots),
    # about 90 MB per loaded warehouse: zk.sh's default 512 MB heap ran out of breath under a full
    # warehouse (GC pauses, sessions expired, the load failed).
    export ZK_JAVA_OPTS=${ZK_JAVA_OPTS:--Xms256m -Xmx4g -XX:+UseSerialGC -XX:-UsePerfData}
    "$SCRIPTS/zk.sh" start "$ZK_DIR" "$zk"
fi
# A three-replica Barista cluster measured through FRONT: `thrift` (barista://, barista-client
# fails over between the replicas) or `pg` (postgres:// listing every replica's pg_listen; the
# driver's PostgreSQL client, like libpq, connects to the first that answers).
start_barista() { # NAME PROTOCOL FRONT
    local name=$1 protocol=$2 front=$3 i peers=() clients=() admins=() pgs=() listens=() checks='' a b c d e
    for i in 0 1 2; do
        port a && port b && port c && port d && port e
        peers+=("127.0.0.1:$a")
        clients+=("127.0.0.1:$b")
        admins+=("127.0.0.1:$c")
        pgs+=("$d")
        listens+=("127.0.0.1:$e")
    done
    for i in 0 1 2; do
        pg_start "$DIR/$name-pg$i" "${pgs[i]}"
        checks+=" --target $(url "${pgs[i]}")"
    done
    local peer_list
    peer_list=$(
        IFS=,
        echo "${peers[*]}"
    )
    for i in 0 1 2; do
        "$BARISTA" serve --node-id "$i" --peers "$peer_list" --client-listen "${clients[i]}" \
            --admin-listen "${admins[i]}" --pg-listen "${listens[i]}" --postgres "$("$SCRIPTS/pg.sh" conninfo "$DIR/$name-pg$i" "${pgs[i]}")" \
            --zookeeper "127.0.0.1:$zk" --zookeeper-root "/tpcc-$name" --protocol "$protocol" \
            >"$DIR/$name-barista$i.log" 2>&1 &
        BARISTA_PIDS+=($!)
        BARISTA_OF[$name]+=" $!"
    done
    local admin_list
    admin_list=$(
        IFS=,
        echo "${admins[*]}"
    )
    for _ in $(seq 300); do
        "$BARISTA" status --admin "$admin_list" >/dev/null 2>&1 && break
        sleep 0.2
    done
    "$BARISTA" status --admin "$admin_list" || die "Barista $name did not become healthy (logs: $DIR/$name-barista*.log)"
    local list
    if [[ $front == pg ]]; then
        list=$(
            IFS=,
            echo "${listens[*]}"
        )
        TARGET[$name]="postgres://postgres@$list/postgres"
    else
        list=$(
            IFS=,
            echo "${clients[*]}"
        )
        TARGET[$name]="barista://$list"
    fi
    CHECK[$name]=$checks
    ADMIN[$name]="${admins[*]}"
}

# Barista counter NAME (without the barista_ prefix) from the /metrics of the replica at ADDR;
# every replica applies every slot, so any one tells how many commands shared a slot.
metric() { # ADDR NAME
    local value
    exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3
    value=$(awk -v m="barista_$2" '{ split($1, name, "{") } name[1] == m { print $2 }' <&3)
    exec 3>&-
    echo "${value:-0}"
}
# The sum of Barista counter NAME over the replicas at ADDR...: reads outside the log are counted
# by the replica that answered them.
metric_sum() { # NAME ADDR...
    local name=$1 total=0 addr
    shift
    for addr; do total=$((total + $(metric "$addr" "$name"))); done
    echo "$total"
}
# Where each system spends the machine's CPU. cpu_roots SYSTEM prints its processes as
# "COMPONENT PID" lines; cpu_ticks SYSTEM prints "COMPONENT TICKS" with every process's own CPU,
# its exited children's (which it reaped) and its live children's: PostgreSQL's and pgpool-II's
# backends, whose CPU is the larger part. ZooKeeper is shared by the Barista systems: all of it is
# counted for the one being measured, the idle clusters' heartbeat-time share included.
postmasters() { # DIR...
    local d
    for d in "$@"; do
        printf 'postgres %s\n' "$(pid_in_file "$d/postmaster.pid")"
    done
}
cpu_roots() { # SYSTEM
    local pid
    case $1 in
    single) postmasters "$DIR/single" ;;
    sync-rep) postmasters "$DIR/sync0" "$DIR/sync1" "$DIR/sync2" ;;
    pgpool)
        printf 'pgpool %s\n' "$(pid_in_file "$PGPOOL_DIR/pgpool.pid")"
        postmasters "$PGPOOL_DIR/backend0" "$PGPOOL_DIR/backend1" "$PGPOOL_DIR/backend2"
        ;;
    *)
        postmasters "$DIR/$1-pg0" "$DIR/$1-pg1" "$DIR/$1-pg2"
        for pid in ${BARISTA_OF[$1]}; do
            printf 'barista %s\n' "$pid"
        done
        printf 'zookeeper %s\n' "$(pid_in_file "$ZK_DIR/zk.pid")"
        ;;
    esac
}
cpu_ticks() { # SYSTEM
    # Fields after the command name: 2 ppid, 12 utime, 13 stime, 14 cutime, 15 cstime.
    # (A process that exits while cat reads is skipped; that is no error here.)
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '
        NR == FNR { component[$2] = $1; next }
        {
            pid = $1
            sub(/^.*\) /, "")
            if (pid in component) ticks[component[pid]] += $12 + $13 + $14 + $15
            else if ($2 in component) ticks[component[$2]] += $12 + $13
        }
        END { for (c in ticks) print c, ticks[c] }' <(cpu_roots "$1") -
}
# cpu_report SYSTEM BEFORE AFTER REPORT: CPU milliseconds per transaction by component, from two
# cpu_ticks outputs around the measured interval and the run's JSON report.
cpu_report() {
    local per_min measured
    per_min=$(sed -n 's/^  "tpm_total": \([0-9.]*\),$/\1/p' "$4")
    measured=$(sed -n 's/^  "measured_s": \([0-9.]*\),$/\1/p' "$4")
    awk -v hz="$(getconf CLK_TCK)" -v txns="$(awk -v m="$per_min" -v s="$measured" 'BEGIN { print m * s / 60 }')" \
        -v name="$1" '
        FILENAME == ARGV[1] { before[$1] = $2; next }
        { ms[$1] = ($2 - before[$1]) * 1000 / hz; total += ms[$1] }
        END {
            if (txns == 0) exit
            line = ""
            n = split("postgres pgpool barista zookeeper", order, " ")
            for (i = 1; i <= n; i++)
                if (order[i] in ms) line = line sprintf("%s %.2f ms, ", order[i], ms[order[i]] / txns)
            printf "-- %s: CPU per transaction in the measured interval: %stotal %.2f ms (the driver not counted)\n",
                name, line, total / txns
        }' "$2" "$3"
}

has multi-paxos && start_barista multi-paxos multi-paxos thrift
has paxos && start_barista paxos paxos thrift
has multi-paxos-pg && start_barista multi-paxos-pg multi-paxos pg
has paxos-pg && start_barista paxos-pg paxos pg

echo "== loading $WAREHOUSES warehouse(s) into each system (seed $SEED)"
for s in "${SYSTEM_LIST[@]}"; do
    echo "-- $s: ${TARGET[$s]}"
    "$TPCC" load --target "${TARGET[$s]}" --warehouses "$WAREHOUSES" --seed "$SEED" \
        --test-divisor "$DIVISOR" --workers 4 --quiet
done

echo "== measuring: $ROUNDS round(s) of $MODE mode, $TERMINALS terminal(s), ${WARMUP} s warm-up + ${DURATION} s each, systems interleaved"
reports=()
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${SYSTEM_LIST[@]}"; do
        out=$DIR/$s-round$r.json
        if [[ -n ${ADMIN[$s]:-} ]]; then
            read -ra admins <<<"${ADMIN[$s]}"
            slots=$(metric "${admins[0]}" slots_applied_total) commands=$(metric "${admins[0]}" commands_applied_total)
            reads=$(metric_sum reads_outside_log_total "${admins[@]}")
        fi
        # The CPU counters at the end of the warm-up, in the background; the run's at its end.
        (sleep "$WARMUP" && cpu_ticks "$s" >"$DIR/$s-round$r.cpu-start") &
        cpu_start=$!
        "$TPCC" run --target "${TARGET[$s]}" --terminals "$TERMINALS" --warmup "$WARMUP" --duration "$DURATION" \
            --mode "$MODE" --label "$s" --seed "$((SEED + r))" --quiet --report "$out" --chart "$DIR/$s-round$r.svg"
        cpu_ticks "$s" >"$DIR/$s-round$r.cpu-end"
        wait "$cpu_start"
        cpu_report "$s" "$DIR/$s-round$r.cpu-start" "$DIR/$s-round$r.cpu-end" "$out"
        reports+=("$out")
        if [[ -n ${ADMIN[$s]:-} ]]; then
            slots=$(($(metric "${admins[0]}" slots_applied_total) - slots))
            commands=$(($(metric "${admins[0]}" commands_applied_total) - commands))
            reads=$(($(metric_sum reads_outside_log_total "${admins[@]}") - reads))
            echo "-- $s: $commands commands in $slots log slots, and $reads reads answered outside the log," \
                "during the run (warm-up included)"
        fi
    done
done

echo "== checking every copy of the data"
status=0
for s in "${SYSTEM_LIST[@]}"; do
    echo "-- $s"
    # shellcheck disable=SC2086 # CHECK holds several --target arguments
    "$TPCC" check ${CHECK[$s]} || status=1
done

echo "== side by side"
"$TPCC" compare "${reports[@]}" --baseline "${SYSTEM_LIST[0]}" --json "$DIR/side-by-side.json" --chart "$DIR/side-by-side.svg"
exit $status
