#!/usr/bin/env bash
# Install everything Barista needs to build, test and demo on Debian 12, as root.
#
#   scripts/setup.sh          # quiet when everything is present
#
# Idempotent: each need is checked by the file it provides; apt-get update and
# install run only when something is missing, and the script prints what it
# installs. Non-interactive. It never starts a system service: Debian's
# postgresql packages would create and start a default cluster on port 5432;
# we tell them not to, forbid service starts while installing, and stop by its
# PID file any cluster that was started anyway.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# need PACKAGE TEST...: PACKAGE is missing when the command TEST fails.
missing=()
need() {
    local pkg=$1
    shift
    "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
have_file() { [[ -e $1 ]]; }
have_cmd() { command -v "$1"; }

PG_BIN=/usr/lib/postgresql/15/bin

# PostgreSQL 15 server: each replica's database; initdb, pg_ctl and postgres
# are used from $PG_BIN by scripts/pg.sh.
need postgresql-15 have_file "$PG_BIN/postgres"
# psql and pg_isready for tests, the demo and scripts/test-services.sh
# (a dependency of postgresql-15, listed because we call them directly).
need postgresql-client-15 have_file "$PG_BIN/psql"
# ZooKeeper 3.8 server classes (/usr/share/java/zookeeper.jar and the jars it
# needs), run by scripts/zk.sh. Not the `zookeeper` package: it adds only
# wrapper scripts and depends on the full default-jre with its X11/GUI libraries.
need libzookeeper-java have_file /usr/share/java/zookeeper.jar
# slf4j-simple.jar: the logging binding on ZooKeeper's classpath (without a
# binding ZooKeeper logs nothing, and a failed start is impossible to debug).
need libslf4j-java have_file /usr/share/java/slf4j-simple.jar
# The JVM that runs ZooKeeper (headless: no GUI libraries). Any java on PATH will do.
need default-jre-headless have_cmd java
# Thrift IDL compiler 0.17 (matches the thrift 0.17 crate): regenerates the
# client/server code from clients/barista.thrift.
need thrift-compiler have_cmd thrift
# Debian's python3: scripts/lib.sh picks free ports with it; Python sample client.
need python3 have_file /usr/bin/python3
# Thrift runtime for the Python sample client (visible to /usr/bin/python3 only).
need python3-thrift have_file /usr/lib/python3/dist-packages/thrift/__init__.py
# The sample clients of clients/ (issue 5), built and run against a live cluster by the tests:
# Go with Debian's Thrift library for Go (GOPATH-style, under /usr/share/gocode),
need golang-go have_cmd go
need golang-thrift-dev have_file /usr/share/gocode/src/github.com/apache/thrift/lib/go/thrift/client.go
# C++ with the Thrift C++ library,
need g++ have_cmd g++
need make have_cmd make
need libthrift-dev have_file /usr/include/thrift/Thrift.h
# whose headers include Boost's (boost/numeric/conversion/cast.hpp, ...) without the package
# depending on it.
need libboost-dev have_file /usr/include/boost/numeric/conversion/cast.hpp
# Java (a JDK, not only the JRE that runs ZooKeeper) with Debian's Thrift jar,
need default-jdk-headless have_cmd javac
need libthrift-java have_file /usr/share/java/thrift.jar
# and Node.js with npm (the npm package `thrift` is installed by the JavaScript sample's own
# package.json). A machine that has node from elsewhere keeps it.
need nodejs have_cmd node
need npm have_cmd npm
# psycopg 3 for /usr/bin/python3: a PostgreSQL driver nobody here wrote, run through Barista's
# PostgreSQL-protocol port by server/tests/pg_clients.rs.
need python3-psycopg have_file /usr/lib/python3/dist-packages/psycopg/__init__.py
# Lints scripts/ in CI.
need shellcheck have_cmd shellcheck

((${#missing[@]} == 0)) && exit 0

((EUID == 0)) || die "missing packages: ${missing[*]}; run this script as root to install them"

echo "setup.sh: installing: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# Keep our (or any existing) config files when a package ships its own.
export UCF_FORCE_CONFFOLD=1

installs_postgres=0
for p in "${missing[@]}"; do
    [[ $p == postgresql-15 ]] && installs_postgres=1
done

# Tell postgresql-common not to create (and start) the default "main" cluster
# on port 5432: its createcluster.conf includes this drop-in directory. Only on
# a first install: an existing installation is left exactly as it is.
if ((installs_postgres)) && [[ ! -d /etc/postgresql/15 ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    cat >/etc/postgresql-common/createcluster.d/barista.conf <<'EOF'
# Written by Barista's scripts/setup.sh: Barista runs its own clusters
# (scripts/pg.sh), so the package must not create or start a default one.
create_main_cluster = false
EOF
fi

# Forbid maintainer scripts to start services (invoke-rc.d and
# deb-systemd-invoke honour policy-rc.d). Keep one that is already there.
policy=/usr/sbin/policy-rc.d
tmp_log=$(mktemp)
cleanup() {
    rm -f "$tmp_log"
    if [[ -n ${policy_created:-} ]]; then rm -f "$policy"; fi
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from Barista scripts/setup.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    policy_created=1
fi

apt_get() {
    # Wait for the dpkg lock instead of failing when another apt runs.
    if ! apt-get -y -o DPkg::Lock::Timeout=600 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" >"$tmp_log" 2>&1; then
        log_tail "$tmp_log" 60
        die "apt-get $* failed"
    fi
}

apt_get update
apt_get install --no-install-recommends "${missing[@]}"

# If a PostgreSQL cluster was started by the packages despite all that, stop it
# through its own PID file (never by process name).
if ((installs_postgres)); then
    for pidfile in /var/lib/postgresql/*/*/postmaster.pid; do
        [[ -f $pidfile ]] || continue
        datadir=$(dirname "$pidfile")
        pid=$(head -n 1 "$pidfile")
        pid_alive "$pid" || continue
        ver=$(basename "$(dirname "$datadir")")
        echo "setup.sh: stopping PostgreSQL cluster the package started in $datadir (pid $pid)"
        runuser -u postgres -- "/usr/lib/postgresql/$ver/bin/pg_ctl" -D "$datadir" \
            -m fast -w stop >/dev/null
    done
fi

# Check, so that a wrong assumption above shows here and not in a test.
if port_listening 5432; then
    echo "setup.sh: warning: something listens on 127.0.0.1:5432 (not started by this script)" >&2
fi
still=()
for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || still+=("$p")
done
((${#still[@]} == 0)) || die "not installed after apt-get: ${still[*]}"
echo "setup.sh: done"
