#!/usr/bin/env bash
# Run a throwaway PostgreSQL cluster in a directory of your choice.
#
#   scripts/pg.sh start DIR PORT   init DIR if needed, start, wait until it accepts connections
#   scripts/pg.sh stop DIR         stop the server whose postmaster.pid is in DIR (fast mode)
#   scripts/pg.sh crash DIR        stop it as a crash would (immediate mode: what was not yet
#                                  written out of PostgreSQL's WAL buffers is lost; tests only)
#   scripts/pg.sh status DIR       print its state; exit 0 running, 3 stopped, 4 no cluster
#   scripts/pg.sh conninfo DIR PORT  print the libpq connection string of the server `start DIR
#                                  PORT` runs: through its unix socket when it has one (a client
#                                  on this machine, such as a Barista replica, spends less CPU per
#                                  statement than over TCP), else 127.0.0.1:PORT
#
# DIR is the data directory itself. The server listens on 127.0.0.1:PORT only,
# with its unix socket in DIR, trust authentication for everyone (superuser
# `postgres`, database `postgres`), and PostgreSQL's default fsync settings.
# Connect with: psql -h 127.0.0.1 -p PORT -U postgres
# The server log is DIR/server.log. start and stop print nothing but errors;
# start on a running cluster on the same PORT, or stop on a stopped one, is a
# no-op.
#
# As root, the server runs as the `postgres` user (PostgreSQL refuses root):
# DIR is created if needed and handed to `postgres`, and every directory above
# it must be searchable by `postgres` (mktemp -d makes a 0700 directory: chmod
# it 0755, or 0711, before putting DIR inside). As another user, it runs as
# that user.
#
# Binaries: $PG_BINDIR if set, else Debian's /usr/lib/postgresql/15/bin, else
# pg_config --bindir, else the newest /usr/lib/postgresql/*/bin, else pg_ctl's
# directory on PATH. Debian's version directory comes before PATH on purpose:
# /usr/bin/psql is Debian's pg_wrapper (it picks a version from the system's
# cluster configuration), and a pg_ctl elsewhere on PATH (this kind of machine
# has /usr/local/bin/pg_ctl) may be another build or version; initdb, pg_ctl
# and postgres must all be the same version as the data directory.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

umask 022
# Settings from the caller's environment must not redirect our clients.
unset PGDATA PGPORT PGHOST PGHOSTADDR PGUSER PGDATABASE PGOPTIONS PGSERVICE

usage() {
    die "usage: $0 start DIR PORT | stop DIR | crash DIR | status DIR | conninfo DIR PORT"
}

# The live postmaster's PID from DIR/postmaster.pid, or fail.
running_pid() {
    pid_in_file "$DIR/postmaster.pid"
}

# The port a running server was started on (line 4 of postmaster.pid).
running_port() {
    sed -n 4p "$DIR/postmaster.pid" 2>/dev/null
}

# The unix socket's directory: DIR, unless the socket's path would not fit in
# sun_path (107 bytes); then nothing (the server serves TCP only).
socket_dir() {
    if ((${#DIR} + ${#PORT} + 10 <= 107)); then
        echo "$DIR"
    fi
}

# Explain which directory above DIR `postgres` cannot get through.
check_reachable() {
    local d=$DIR
    as_pg test -x "$d" -a -w "$d" && return 0
    while [[ $d != / ]]; do
        d=$(dirname "$d")
        if ! as_pg test -x "$d"; then
            die "user postgres cannot enter $d (mode $(stat -c %a "$d"), owner $(stat -c %U "$d")); make it searchable, e.g. chmod o+x '$d'"
        fi
    done
    die "user postgres cannot write to $DIR"
}

# Escape a value for a single-quoted postgresql.conf string.
conf_quote() {
    printf "'%s'" "${1//\'/\'\'}"
}

cmd_start() {
    if ! [[ $PORT =~ ^[0-9]+$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
        die "bad port '$PORT'"
    fi

    local pid
    if pid=$(running_pid); then
        local port
        port=$(running_port)
        [[ $port == "$PORT" ]] && return 0
        die "cluster in $DIR already runs (pid $pid) on port $port, not $PORT"
    fi
    # A postmaster killed hard leaves its lock files; if its PID is still a
    # zombie (PID 1 of a container may reap late or never), `kill -0`
    # succeeds on it and PostgreSQL refuses to start ("lock file
    # postmaster.pid already exists"). It is dead: remove the stale locks.
    # (Backends still attached to its shared memory make the new postmaster
    # refuse to start, so this cannot run two servers on one directory.)
    if [[ -f $DIR/postmaster.pid ]]; then
        rm -f "$DIR/postmaster.pid" "$DIR"/.s.PGSQL.*.lock
    fi

    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || die "no user postgres (run scripts/setup.sh)"
        mkdir -p "$DIR"
        if [[ ! -f $DIR/PG_VERSION ]]; then
            # A new cluster: hand the (empty) directory to postgres.
            chown postgres:postgres "$DIR"
        elif [[ $(stat -c %U "$DIR") != postgres ]]; then
            die "$DIR holds a cluster not owned by postgres"
        fi
    else
        mkdir -p "$DIR"
    fi
    chmod 700 "$DIR"
    check_reachable

    if [[ ! -f $DIR/PG_VERSION ]]; then
        if [[ -n $(ls -A "$DIR") ]]; then
            die "$DIR is neither empty nor a PostgreSQL data directory"
        fi
        local out
        if ! out=$(as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 2>&1); then
            printf '%s\n' "$out" >&2
            die "initdb failed in $DIR"
        fi
        # Our per-start settings live in barista.conf, so that a plain
        # `pg_ctl start` or `postgres -D DIR` later uses them too.
        printf "\n# Barista scripts/pg.sh\ninclude_if_exists = 'barista.conf'\n" \
            >>"$DIR/postgresql.conf"
    fi

    local sockdir
    sockdir=$(socket_dir)
    cat >"$DIR/barista.conf" <<EOF
# Written by Barista scripts/pg.sh at each start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = $(conf_quote "$sockdir")
EOF
    if ((EUID == 0)); then chown postgres:postgres "$DIR/barista.conf"; fi

    if port_listening "$PORT"; then
        die "port $PORT on 127.0.0.1 is already in use"
    fi

    if ! as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t "${PG_START_TIMEOUT:-60}" \
        start >/dev/null 2>&1; then
        log_tail "$DIR/server.log"
        die "PostgreSQL in $DIR did not start on port $PORT"
    fi
    # pg_ctl -w waits for the server to report itself ready; check TCP too.
    if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -t 30; then
        log_tail "$DIR/server.log"
        die "PostgreSQL in $DIR started but does not accept connections on 127.0.0.1:$PORT"
    fi
}

cmd_stop() {
    local mode=$1
    running_pid >/dev/null || return 0
    if ! as_pg "$BIN/pg_ctl" -D "$DIR" -m "$mode" -w -t "${PG_STOP_TIMEOUT:-60}" stop \
        >/dev/null 2>&1; then
        running_pid >/dev/null || return 0
        log_tail "$DIR/server.log"
        die "PostgreSQL in $DIR did not stop"
    fi
}

cmd_status() {
    if [[ ! -f $DIR/PG_VERSION ]]; then
        echo "no cluster in $DIR"
        return 4
    fi
    local pid
    if pid=$(running_pid); then
        echo "running: pid $pid, port $(running_port), data $DIR"
        return 0
    fi
    echo "stopped: data $DIR"
    return 3
}

# The server's connection string (see the header).
cmd_conninfo() {
    local host
    host=$(socket_dir)
    host=${host:-127.0.0.1}
    # Quoted as libpq reads a value: a directory may hold spaces, quotes or backslashes.
    host=${host//\\/\\\\}
    host=${host//\'/\\\'}
    echo "host='$host' port=$PORT user=postgres dbname=postgres"
}

(($# >= 2)) || usage
CMD=$1
DIR=$(abs_path "$2")
DIR=${DIR%/}
BIN=$(pg_bindir)
case $CMD in
start)
    (($# == 3)) || usage
    PORT=$3
    cmd_start
    ;;
stop)
    (($# == 2)) || usage
    cmd_stop fast
    ;;
crash)
    (($# == 2)) || usage
    cmd_stop immediate
    ;;
status)
    (($# == 2)) || usage
    cmd_status
    ;;
conninfo)
    (($# == 3)) || usage
    PORT=$3
    cmd_conninfo
    ;;
*) usage ;;
esac
