# Shared helpers for running a private PostgreSQL cluster. Sourced by bin/db, bin/test and bin/bench.
#
# A cluster is a folder holding:  data/ (the cluster), socket/ (its Unix socket), log, port, password.
# It listens on 127.0.0.1 only, with SCRAM passwords over TCP; the superuser is "shop".
# PostgreSQL refuses to run as root, so when we are root every server command runs as the "postgres" user.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONTEXTS=(catalog ordering billing)

die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

pg_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(readlink -f "$(command -v initdb)")"; return; }
    die "PostgreSQL server binaries (initdb, pg_ctl) not found: run bin/setup first"
}

# Runs a command as the user that owns the cluster.
as_pg() {
    # From /, which the server's user can always enter (it may not be able to enter ours).
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Can the server's user enter this folder (and so every folder above it)?
pg_can_enter() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- test -x "$1" 2>/dev/null; else test -x "$1"; fi
}

# Makes an empty folder owned by the server's user, private to it.
pg_make_dir() {
    mkdir -p "$1"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$1"; fi
    chmod 700 "$1"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# First free port at or after $1.
free_port() {
    local port=$1 limit=$(($1 + 200))
    while [ "$port" -lt "$limit" ]; do
        port_in_use "$port" || { echo "$port"; return; }
        port=$((port + 1))
    done
    die "no free TCP port between $1 and $limit"
}

# cluster_init DIR PORT MODE: creates the cluster; MODE is "durable" (the default settings) or
# "throwaway" (fsync off: for test clusters that are deleted afterwards).
cluster_init() {
    local dir=$1 port=$2 mode=$3 bin
    bin=$(pg_bindir)
    pg_make_dir "$dir"
    pg_make_dir "$dir/socket"
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$dir/password"
    chmod 600 "$dir/password"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/password"
    echo "$port" > "$dir/port"
    as_pg "$bin/initdb" -D "$dir/data" -U shop --pwfile="$dir/password" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir/data"; }
    {
        echo "# Written by bin/lib/pg.sh"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir/socket'"
        echo "max_connections = 300"
        echo "shared_buffers = 256MB"
        # A session left idle inside a transaction holds back every reader of all events in its database (they
        # wait for what it may still commit): end it before the views' lag makes a service not ready (30 s).
        echo "idle_in_transaction_session_timeout = '20s'"
        # A client whose host vanished (no FIN, no RST) is noticed within about 25 s: its session ends, and with it the
        # saga locks it held, which another Ordering instance then takes over (docs/deploy.md).
        echo "tcp_keepalives_idle = 10"
        echo "tcp_keepalives_interval = 5"
        echo "tcp_keepalives_count = 3"
        echo "tcp_user_timeout = 25000"
        if [ "$mode" = throwaway ]; then
            # The test suite runs its tests at once, each with a database and services (and pools) of its own.
            echo "max_connections = 1000"
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
}

cluster_port() { cat "$1/port"; }
cluster_running() { [ -f "$1/data/postmaster.pid" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$1/data" status >/dev/null 2>&1; }

# cluster_start DIR [PORT]: starts it on PORT (default: the port it last ran on), and remembers PORT once
# the server runs on it.
cluster_start() {
    local dir=$1 port=${2:-$(cluster_port "$1")}
    if cluster_running "$dir"; then return 0; fi
    if port_in_use "$port"; then
        die "port $port is already in use by another program: set SHOP_PG_PORT to a free port"
    fi
    as_pg "$(pg_bindir)/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "-p $port" start >/dev/null \
        || { tail -20 "$dir/log" >&2; die "PostgreSQL did not start (log: $dir/log)"; }
    echo "$port" > "$dir/port"
}

cluster_stop() {
    cluster_running "$1" || return 0
    as_pg "$(pg_bindir)/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null
}

# cluster_url DIR DATABASE
cluster_url() {
    printf 'postgres://shop:%s@127.0.0.1:%s/%s\n' "$(cat "$1/password")" "$(cluster_port "$1")" "$2"
}

# cluster_create_database DIR NAME: creates it unless it exists.
cluster_create_database() {
    local url
    url=$(cluster_url "$1" postgres)
    if [ -z "$(psql "$url" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$2'")" ]; then
        psql "$url" -qc "CREATE DATABASE \"$2\"" >/dev/null
    fi
}

# The built shop-admin, building it when it is missing or stale.
# The folder of the built executables: $SHOP_BIN_DIR when set (nothing is built then), else the debug build.
bin_dir() {
    if [ -n "${SHOP_BIN_DIR:-}" ]; then echo "$SHOP_BIN_DIR"; else (cd "$ROOT" && swift build --show-bin-path); fi
}

shop_admin() {
    if [ -z "${SHOP_BIN_DIR:-}" ]; then
        (cd "$ROOT" && swift build --product shop-admin -q >&2) || die "build of shop-admin failed"
    fi
    "$(bin_dir)/shop-admin" "$@"
}
