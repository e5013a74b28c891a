# A throwaway PostgreSQL server for the tests (sourced by .ci/run; also usable by hand:
# `source .ci/postgres.sh && pg_start && ... && pg_stop`).
#
# pg_start installs Debian's postgresql package when no server binaries are present, runs
# initdb into a new temporary directory, starts the server on a free loopback port (as the
# `postgres` user when run as root: the server refuses to run as root) and exports
# LIBRARYCACHE_TEST_PG. pg_stop stops it and removes the directory.

pg_start() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    PG_BIN=$bin
    PG_DIR=$(mktemp -d /tmp/librarycache-pg.XXXXXX)
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    fi
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log"; return 1; }
    local port
    for port in $(seq 55432 55532); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue # in use
        fi
        if "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null; then
            PG_PORT=$port
            export LIBRARYCACHE_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
            echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_DIR)"
            return 0
        fi
    done
    cat "$PG_DIR/server.log"
    return 1
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
