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

# The live process whose PID is the first line of FILE, or fail. NUL bytes are dropped (pgpool
# pads its PID file with them).
pid_in_file() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(tr -d '\0' <"$1" 2>/dev/null | head -n 1) || return 1
    pid_alive "$pid" || return 1
    printf '%s\n' "$pid"
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
#
# A port that is merely free when chosen can be gone when the server binds it:
# the kernel hands out ports of its ephemeral range to outgoing connections,
# and a test that starts two clusters at once opens many (seen: "Address
# already in use" for a replica's port). So the ports come from below the
# ephemeral range, and each is leased for ten minutes by an atomic mkdir under
# ${TMPDIR:-/tmp}/barista-port-leases, so that two callers never get the same
# one. A lease only keeps other callers of this function away; an expired one
# is taken over.
free_ports() {
    local n=${1:-1} py
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "free_ports: bad count '$n'"
    py=$(find_python3) || die "free_ports needs python3 (run scripts/setup.sh as root)"
    "$py" - "$n" "${TMPDIR:-/tmp}/barista-port-leases" <<'EOF'
import os, random, socket, sys, time

count, leases = int(sys.argv[1]), sys.argv[2]
LEASE_SECONDS = 600
os.makedirs(leases, exist_ok=True)
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 32768
low, high = 10000, max(ephemeral_low, 20000)


def lease(port):
    path = os.path.join(leases, str(port))
    try:
        os.mkdir(path)
        return True
    except FileExistsError:
        pass
    try:
        if time.time() - os.stat(path).st_mtime < LEASE_SECONDS:
            return False
        os.rmdir(path)  # expired: whoever removes it first may take it
        os.mkdir(path)
        return True
    except OSError:
        return False


def free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


rng = random.SystemRandom()
chosen = []
tries = 0
while len(chosen) < count:
    tries += 1
    if tries > 100000:
        sys.exit("free_ports: no free port found")
    port = rng.randrange(low, high)
    if port in chosen or not lease(port):
        continue
    if free(port):
        chosen.append(port)
    else:
        os.rmdir(os.path.join(leases, str(port)))
print("\n".join(map(str, chosen)))
EOF
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

# Run a command as PostgreSQL's user when we are root (PostgreSQL and pgpool refuse root), from /
# (as `postgres`, a current directory it cannot read makes initdb, pg_ctl and pgpool fail).
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
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
