# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything here listens on / talks to 127.0.0.1 only.

# Print an error prefixed with the calling script's name and exit 1.
die() {
    printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

# True when PID names a live process. A zombie counts as dead: on machines
# whose PID 1 does not reap orphans (containers), a killed server stays a
# zombie forever and `kill -0` keeps succeeding on it.
pid_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z && $state != X ]]
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
# Uses bash's /dev/tcp, so it needs neither nc nor ss.
port_listening() {
    local port=$1
    # shellcheck disable=SC2016 # $1 expands in the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null
}

# Print the path of a python3 interpreter. Debian's /usr/bin/python3 first:
# the python3 first on PATH may be some other interpreter (pyenv shims).
find_python3() {
    local p
    for p in /usr/bin/python3 "$(command -v python3 2>/dev/null || true)"; do
        if [[ -n $p && -x $p ]]; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

# Print N (default 1) distinct free TCP ports on 127.0.0.1, one a line.
# All N sockets are held open until every port is chosen, so the N ports
# differ. A port is free when chosen; nothing reserves it after that, so
# bind it soon (and retry on "address in use" if you race other processes).
free_ports() {
    local n=${1:-1} py
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "free_ports: bad count '$n'"
    if py=$(find_python3); then
        "$py" - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
        return
    fi
    # Fallback without python3: random ports below the kernel's ephemeral
    # range (so no outgoing connection can be holding one), skipping ports
    # that something already listens on.
    local -a chosen=()
    local port tries=0 c dup
    while ((${#chosen[@]} < n)); do
        ((++tries < 10000)) || die "free_ports: no free port found"
        port=$((20000 + RANDOM % 12000))
        dup=0
        for c in "${chosen[@]}"; do [[ $c == "$port" ]] && dup=1; done
        ((dup == 0)) || continue
        port_listening "$port" && continue
        chosen+=("$port")
    done
    printf '%s\n' "${chosen[@]}"
}

# Print the last lines of a log file to stderr, framed.
log_tail() {
    local file=$1 lines=${2:-40}
    if [[ -f $file ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf -- '-----\n' >&2
    else
        printf '(no log file %s)\n' "$file" >&2
    fi
}

# Make DIR an absolute path (DIR need not exist yet).
abs_path() {
    local d=$1
    [[ $d == /* ]] || d="$PWD/$d"
    printf '%s\n' "$d"
}

# Print the directory of the PostgreSQL server binaries (see scripts/pg.sh
# for the order and why Debian's version directory comes before PATH).
pg_bindir() {
    local d
    if [[ -n ${PG_BINDIR:-} ]]; then
        [[ -x $PG_BINDIR/pg_ctl ]] || die "PG_BINDIR=$PG_BINDIR has no pg_ctl"
        printf '%s\n' "$PG_BINDIR"
        return
    fi
    if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
        printf '%s\n' /usr/lib/postgresql/15/bin
        return
    fi
    if d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/pg_ctl ]]; then
        printf '%s\n' "$d"
        return
    fi
    d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null |
        sort -V | tail -n 1)
    if [[ -n $d ]]; then
        dirname "$d"
        return
    fi
    if d=$(command -v pg_ctl); then
        dirname "$(readlink -f "$d")"
        return
    fi
    die "PostgreSQL binaries not found (run scripts/setup.sh, or set PG_BINDIR)"
}

# Send a ZooKeeper four-letter word (ruok, srvr, stat, mntr) to
# 127.0.0.1:PORT and print the answer.
zk_4lw() {
    local port=$1 word=$2
    # shellcheck disable=SC2016 # expands in the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf %s "$2" >&3 && cat <&3' \
        _ "$port" "$word" 2>/dev/null
}

# True when the ZooKeeper on 127.0.0.1:PORT serves requests. `ruok` is not
# enough: ZooKeeper answers `imok` as soon as its port is open, while `srvr`
# still says "This ZooKeeper instance is not currently serving requests"
# (for about 0.1 s, longer when it has data to load); a client that connects
# then is dropped.
zk_serving() {
    local port=$1 srvr
    [[ $(zk_4lw "$port" ruok) == imok ]] || return 1
    srvr=$(zk_4lw "$port" srvr) || return 1
    [[ $srvr == *$'\nMode: '* ]]
}
