#!/usr/bin/env bash
# Run a throwaway standalone ZooKeeper 3.8 in a directory of your choice.
#
#   scripts/zk.sh start DIR PORT   write DIR/zoo.cfg, start, wait until it serves requests
#                                  (`ruok` answers `imok` and `srvr` reports a Mode)
#   scripts/zk.sh stop DIR         stop the server whose PID is in DIR/zk.pid, wait for its exit
#   scripts/zk.sh status DIR       print its state; exit 0 running, 3 stopped
#
# Listens on 127.0.0.1:PORT only (no admin server, no other port). Data in
# DIR/data, log in DIR/zk.log, PID in DIR/zk.pid. The server runs in its own
# session with no terminal and its output in the log, so a caller that reads
# this script's output through a pipe is not held open by it. start on a
# server already running on the same PORT, or stop on a stopped one, is a
# no-op. start and stop print nothing but errors.
#
# Environment (all optional):
#   JAVA               java binary (default: java on PATH)
#   ZK_CLASSPATH       default /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
#                      (zookeeper.jar's manifest names the other jars it needs)
#   ZK_JAVA_OPTS       JVM options (default: small heap, serial GC)
#   ZK_TICK_TIME       tickTime in ms (default 2000; sessions may last 2..20 ticks)
#   ZK_START_TIMEOUT   seconds to wait for imok (default 60)
#   ZK_STOP_TIMEOUT    seconds to wait for exit after SIGTERM before SIGKILL (default 10)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

umask 022

usage() {
    die "usage: $0 start DIR PORT | stop DIR | status DIR"
}

# The PID in DIR/zk.pid if it is a live ZooKeeper started on this DIR's
# zoo.cfg; a recycled PID of some other process does not count.
running_pid() {
    local pid
    [[ -f $PIDFILE ]] || return 1
    pid=$(<"$PIDFILE")
    pid_alive "$pid" || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -Fqx "$CFG" || return 1
    printf '%s\n' "$pid"
}

configured_port() {
    sed -n 's/^clientPort=//p' "$CFG" 2>/dev/null
}

# Wait until PID is gone, up to SECONDS; fail if it is still there.
wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    while pid_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

kill_and_wait() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" "${ZK_STOP_TIMEOUT:-10}"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$pid" 10 || die "ZooKeeper (pid $pid) did not exit after SIGKILL"
    fi
}

cmd_start() {
    if ! [[ $PORT =~ ^[0-9]+$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
        die "bad port '$PORT'"
    fi
    local pid
    if pid=$(running_pid); then
        local port
        port=$(configured_port)
        [[ $port == "$PORT" ]] || die "ZooKeeper in $DIR already runs (pid $pid) on port $port, not $PORT"
        zk_serving "$PORT" || die "ZooKeeper in $DIR (pid $pid) runs but does not serve requests"
        return 0
    fi

    local java=${JAVA:-}
    if [[ -z $java ]]; then
        java=$(command -v java) || die "java not found (run scripts/setup.sh, or set JAVA)"
    fi
    local cp=${ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar}
    local jar
    local -a jars
    IFS=: read -ra jars <<<"$cp"
    for jar in "${jars[@]}"; do
        [[ -e $jar ]] || die "$jar not found (run scripts/setup.sh, or set ZK_CLASSPATH)"
    done

    if port_listening "$PORT"; then
        die "port $PORT on 127.0.0.1 is already in use"
    fi

    mkdir -p "$DIR/data"
    cat >"$CFG" <<EOF
# Written by Barista scripts/zk.sh at each start; edits are overwritten.
tickTime=${ZK_TICK_TIME:-2000}
dataDir=$DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
# The admin server would listen on 8080 on all addresses.
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr
# Tests open many sessions from 127.0.0.1: no per-address limit.
maxClientCnxns=0
EOF
    rm -f "$PIDFILE"

    local -a opts
    # shellcheck disable=SC2206 # ZK_JAVA_OPTS is a list of words by design
    opts=(${ZK_JAVA_OPTS:--Xms32m -Xmx512m -XX:+UseSerialGC -XX:-UsePerfData})
    {
        printf '\n===== %s: scripts/zk.sh start port %s =====\n' "$(date '+%F %T')" "$PORT"
    } >>"$LOG"
    # The inner bash writes its own PID, then becomes java (exec keeps the
    # PID), so the PID file is java's whether or not setsid had to fork.
    # shellcheck disable=SC2016 # expands in the inner bash
    setsid bash -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && shift && exec "$@"' _ "$PIDFILE" \
        "$java" "${opts[@]}" -Djava.net.preferIPv4Stack=true \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        '-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS' \
        -cp "$cp" org.apache.zookeeper.server.ZooKeeperServerMain "$CFG" \
        </dev/null >>"$LOG" 2>&1 &

    local launcher=$! pid=
    # The PID file appears within milliseconds (before java even loads).
    local deadline=$((SECONDS + 10))
    until [[ -s $PIDFILE ]]; do
        if ((SECONDS >= deadline)) || ! pid_alive "$launcher"; then
            [[ -s $PIDFILE ]] && break
            pid_alive "$launcher" && kill_and_wait "$launcher"
            die "ZooKeeper launcher did not write $PIDFILE"
        fi
        sleep 0.02
    done
    pid=$(<"$PIDFILE")

    deadline=$((SECONDS + ${ZK_START_TIMEOUT:-60}))
    while true; do
        if ! pid_alive "$pid"; then
            log_tail "$LOG"
            rm -f "$PIDFILE"
            die "ZooKeeper in $DIR exited during start"
        fi
        if zk_serving "$PORT"; then
            return 0
        fi
        ((SECONDS < deadline)) || break
        sleep 0.1
    done
    log_tail "$LOG"
    kill_and_wait "$pid"
    rm -f "$PIDFILE"
    die "ZooKeeper in $DIR did not serve requests on 127.0.0.1:$PORT within ${ZK_START_TIMEOUT:-60} s"
}

cmd_stop() {
    local pid
    if pid=$(running_pid); then
        kill_and_wait "$pid"
    fi
    rm -f "$PIDFILE"
}

cmd_status() {
    local pid port
    if pid=$(running_pid); then
        port=$(configured_port)
        local mode
        mode=$(zk_4lw "$port" srvr | sed -n 's/^Mode: //p') || true
        echo "running: pid $pid, port $port, ruok: $(zk_4lw "$port" ruok || true), mode: ${mode:-not serving}, dir $DIR"
        return 0
    fi
    echo "stopped: dir $DIR"
    return 3
}

(($# >= 2)) || usage
CMD=$1
DIR=$(abs_path "$2")
DIR=${DIR%/}
CFG=$DIR/zoo.cfg
PIDFILE=$DIR/zk.pid
LOG=$DIR/zk.log
case $CMD in
start)
    (($# == 3)) || usage
    PORT=$3
    cmd_start
    ;;
stop)
    (($# == 2)) || usage
    cmd_stop
    ;;
status)
    (($# == 2)) || usage
    cmd_status
    ;;
*) usage ;;
esac
