#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server, e.g.
#   bash scripts/with-postgres.sh .venv/bin/pytest tests/storage -q
# Starts a private server (127.0.0.1 on a free port, data in a fresh temp dir, trust
# auth), exports RISK_TUI_TEST_PG_URL=postgresql+asyncpg://USER@127.0.0.1:PORT/risktui_test,
# runs the command, stops the server on exit and returns the command's exit code. If the
# server cannot start, prints its log and exits non-zero: the tests never run without it.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

PG_SUPERUSER=risktui
PG_DATABASE=risktui_test
TMP_PREFIX=risktui-pg.

log() { echo "with-postgres: $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

find_pg_bin() {
    local dir
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        # Through symlinks to the real bin dir, which also holds postgres and psql.
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Debian/Ubuntu keep the server binaries off PATH; take the newest version.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

PG_BIN=$(find_pg_bin || true)
if [ -z "$PG_BIN" ]; then
    if ! is_root; then
        log "PostgreSQL (initdb, pg_ctl) not found; install it (e.g. apt-get install postgresql)"
        exit 1
    fi
    log "PostgreSQL not found: installing it with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    PG_BIN=$(find_pg_bin || true)
    if [ -z "$PG_BIN" ]; then
        log "PostgreSQL installed but initdb/pg_ctl still not found"
        exit 1
    fi
fi

# PostgreSQL refuses to run as root: then the server runs as an unprivileged user.
RUN_AS=""
if is_root; then
    if id -u postgres >/dev/null 2>&1; then
        RUN_AS=postgres
    else
        if ! id -u risktui-pg >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin risktui-pg
        fi
        RUN_AS=risktui-pg
    fi
fi

# as_server CMD...: run a PostgreSQL tool as the server's user, from a directory it can read.
as_server() {
    if [ -z "$RUN_AS" ]; then
        (cd "$WORK" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd "$WORK" && runuser -u "$RUN_AS" -- "$@")
    elif command -v setpriv >/dev/null 2>&1; then
        (cd "$WORK" && setpriv --reuid="$RUN_AS" --regid="$(id -g "$RUN_AS")" --init-groups -- "$@")
    else
        (cd "$WORK" && su -s /bin/sh "$RUN_AS" -c "$(printf '%q ' "$@")")
    fi
}

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
    PYTHON=$(command -v python3 || command -v python || true)
fi
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# A previous run killed before its trap ran leaves a server and a temp dir behind:
# stop and remove those whose owning script is gone.
TMP_ROOT=/tmp
if ! is_root; then
    TMP_ROOT=${TMPDIR:-/tmp}
fi
for stale in "$TMP_ROOT"/"$TMP_PREFIX"*; do
    [ -d "$stale" ] || continue
    owner=$(cat "$stale/owner.pid" 2>/dev/null || echo "")
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null &&
        ! grep -q '^[0-9]* (.*) Z' "/proc/$owner/stat" 2>/dev/null; then
        continue  # another run, still going (a zombie is not)
    fi
    if [ -f "$stale/data/postmaster.pid" ]; then
        WORK=$stale as_server "$PG_BIN/pg_ctl" -D "$stale/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$stale"
done

WORK=$(mktemp -d "$TMP_ROOT/${TMP_PREFIX}XXXXXX")
echo "$$" >"$WORK/owner.pid"
DATA=$WORK/data
SOCKETS=$WORK/sockets
SERVER_LOG=$WORK/server.log
mkdir -p "$SOCKETS"
touch "$SERVER_LOG"
if [ -n "$RUN_AS" ]; then
    chown -R "$RUN_AS" "$WORK"
    chmod 0755 "$WORK"  # the server's user must traverse it; the data dir itself is 0700
fi

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$DATA/postmaster.pid" ]; then
        as_server "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 20 stop >/dev/null 2>&1 ||
            as_server "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! as_server "$PG_BIN/initdb" -D "$DATA" --auth=trust --username="$PG_SUPERUSER" \
    --encoding=UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1; then
    log "initdb failed:"
    cat "$WORK/initdb.log" >&2
    exit 1
fi

started=""
for attempt in 1 2 3; do
    PORT=$(free_port)
    # fsync off: the server and its data are thrown away after the run.
    if as_server "$PG_BIN/pg_ctl" -D "$DATA" -l "$SERVER_LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCKETS -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
        started=yes
        break
    fi
    log "server did not start on port $PORT (attempt $attempt)"
done
if [ -z "$started" ]; then
    log "PostgreSQL failed to start; server log:"
    cat "$SERVER_LOG" >&2
    exit 1
fi

if ! as_server "$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$PG_SUPERUSER" -d postgres \
    -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $PG_DATABASE" >"$WORK/createdb.log" 2>&1; then
    log "could not create database $PG_DATABASE:"
    cat "$WORK/createdb.log" "$SERVER_LOG" >&2
    exit 1
fi

export RISK_TUI_TEST_PG_URL="postgresql+asyncpg://$PG_SUPERUSER@127.0.0.1:$PORT/$PG_DATABASE"
log "PostgreSQL $("$PG_BIN/pg_ctl" --version | awk '{print $3}') at $RISK_TUI_TEST_PG_URL"

set +e
"$@"
status=$?
set -e
exit "$status"
