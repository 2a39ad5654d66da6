#!/usr/bin/env bash
# pgpool-II in native replication mode over three (or more) throwaway PostgreSQL servers: the
# statement-replication system Barista is compared with (TPC-C side by side, pgbench_compare).
#
#   scripts/pgpool.sh start DIR PORT BACKEND_PORT...   backends DIR/backend0.. (scripts/pg.sh) on the
#                                                      given ports, then pgpool on 127.0.0.1:PORT;
#                                                      returns once pgpool accepts connections
#   scripts/pgpool.sh stop DIR                         stop pgpool, then its backends
#   scripts/pgpool.sh status DIR                       exit 0 pgpool running, 3 stopped, 4 none in DIR
#
# Connect with: psql -h 127.0.0.1 -p PORT -U postgres (trust, like pg.sh's servers). DIR holds
# pgpool.conf, pgpool.log, its PID file and sockets; DIR/backendN is backend N's data directory.
# Every write goes to every backend (the main one, backend 0, first); reads go to backend 0
# (no load balancing, so every system is measured on one server's reads). Errors and mismatches
# between backends are logged, never turned into a failover: a benchmark should see what
# pgpool-II does, not a degraded one-server pool.
#
# Environment:
#   PGPOOL_CHILDREN          num_init_children, the most concurrent client connections (default 32)
#   PGPOOL_WRITE_FUNCTIONS   write_function_list: functions whose SELECT goes to every backend
#                            (default empty: pgpool-II then treats volatile functions as writes)
#
# As root, pgpool and the backends run as `postgres` (see pg.sh for the directory rules).
# start and stop print nothing but errors; everything is stopped by its PID file.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

umask 022
unset PGDATA PGPORT PGHOST PGHOSTADDR PGUSER PGDATABASE PGOPTIONS PGSERVICE

usage() {
    die "usage: $0 start DIR PORT BACKEND_PORT... | stop DIR | status DIR"
}

# The live pgpool's PID from DIR/pgpool.pid, or fail.
running_pid() {
    pid_in_file "$DIR/pgpool.pid"
}

write_conf() { # PORT PCP_PORT BACKEND_PORT...
    local port=$1 pcp=$2 i=0 p
    shift 2
    {
        echo "backend_clustering_mode = 'native_replication'"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "pcp_listen_addresses = '127.0.0.1'"
        echo "pcp_port = $pcp"
        echo "unix_socket_directories = '$DIR'"
        echo "pcp_socket_dir = '$DIR'"
        echo "pid_file_name = '$DIR/pgpool.pid'"
        echo "logdir = '$DIR'"
        echo "num_init_children = ${PGPOOL_CHILDREN:-32}"
        echo "max_pool = 1"
        echo "enable_pool_hba = off"
        echo "load_balance_mode = off"
        echo "replicate_select = off"
        echo "insert_lock = off"
        echo "replication_stop_on_mismatch = off"
        echo "failover_on_backend_error = off"
        echo "health_check_period = 0"
        echo "sr_check_period = 0"
        echo "write_function_list = '${PGPOOL_WRITE_FUNCTIONS:-}'"
        echo "read_only_function_list = ''"
        for p in "$@"; do
            echo "backend_hostname$i = '127.0.0.1'"
            echo "backend_port$i = $p"
            echo "backend_weight$i = 1"
            echo "backend_data_directory$i = '$DIR/backend$i'"
            echo "backend_flag$i = 'DISALLOW_TO_FAILOVER'"
            i=$((i + 1))
        done
    } >"$DIR/pgpool.conf"
    : >"$DIR/pcp.conf"
}

start() { # PORT BACKEND_PORT...
    local port=$1 pcp i=0 p pg_bin
    shift
    (($# >= 1)) || usage
    command -v pgpool >/dev/null || die "pgpool not found: apt-get install pgpool2"
    if running_pid >/dev/null; then
        die "pgpool already runs in $DIR"
    fi
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    for p in "$@"; do
        "$SCRIPTS/pg.sh" start "$DIR/backend$i" "$p"
        i=$((i + 1))
    done
    pcp=$(free_ports 1)
    write_conf "$port" "$pcp" "$@"
    ((EUID != 0)) || chown postgres:postgres "$DIR" "$DIR/pgpool.conf" "$DIR/pcp.conf"
    # -n: stay in the foreground of its own background job (pgpool's daemon mode closes its log).
    as_pg pgpool -n -f "$DIR/pgpool.conf" -F "$DIR/pcp.conf" >"$DIR/pgpool.log" 2>&1 &
    pg_bin=$(pg_bindir)
    for _ in $(seq 100); do
        "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && return 0
        sleep 0.1
    done
    log_tail "$DIR/pgpool.log"
    die "pgpool did not accept connections on 127.0.0.1:$port within 10 s (log: $DIR/pgpool.log)"
}

stop() {
    local pid d
    if pid=$(running_pid); then
        as_pg pgpool -f "$DIR/pgpool.conf" -m fast stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        pid_alive "$pid" && die "pgpool (PID $pid) did not stop"
    fi
    for d in "$DIR"/backend*; do
        [[ -d $d ]] && "$SCRIPTS/pg.sh" stop "$d"
    done
    return 0
}

(($# >= 2)) || usage
CMD=$1 DIR=$2
shift 2
case $CMD in
start)
    (($# >= 2)) || usage
    start "$@"
    ;;
stop) stop ;;
status)
    if running_pid >/dev/null; then
        echo "pgpool running in $DIR"
    elif [[ -f $DIR/pgpool.conf ]]; then
        echo "pgpool stopped in $DIR"
        exit 3
    else
        echo "no pgpool in $DIR"
        exit 4
    fi
    ;;
*) usage ;;
esac
