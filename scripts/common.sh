# Shared by scripts/demo.sh, scripts/test.sh and bench/run.sh: set-up of a fresh machine of this
# kind (Debian 12, root) and a throwaway PostgreSQL cluster. Source it; everything is idempotent.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# cargo-pgrx must match the pgrx crate of Cargo.lock.
PGRX_VERSION=$(awk '/^name = "pgrx"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config

log() { printf '\n== %s\n' "$*"; }

# Debian packages, cargo-pgrx at the version pgrx is pinned to, and pgrx's config for PG 15.
ensure_deps() {
    local need=(postgresql-15 postgresql-contrib postgresql-server-dev-15 libclang-dev clang
                build-essential pkg-config libssl-dev sudo)
    local missing=() p
    for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (about 5 minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -qs "^pg15 = \"/usr/lib/postgresql/15/bin/pg_config\"" "$HOME/.pgrx/config.toml"; then
        # `init` rewrites the file: keep any other versions already registered.
        local args=(--pg15 /usr/lib/postgresql/15/bin/pg_config) v path
        for v in 13 14 16 17 18; do
            path=$(sed -n "s/^pg$v = \"\(.*\)\"/\1/p" "$HOME/.pgrx/config.toml" 2>/dev/null || true)
            [ -n "$path" ] && [ -x "$path" ] && args+=("--pg$v" "$path")
        done
        cargo pgrx init "${args[@]}" >/dev/null
    fi
}

# Build the extension and install it into the local PostgreSQL (debug build unless RELEASE=1).
install_extension() {
    log "building and installing pg_background into PostgreSQL $PG_MAJOR"
    local flags=()
    [ "${RELEASE:-0}" = 1 ] && flags+=(--release)
    (cd "$ROOT" && cargo pgrx install "${flags[@]}" --pg-config "$PG_CONFIG" >/dev/null)
}

# start_cluster PORT [extra postgres -c options...]: a new cluster owned by `postgres` in a
# temporary directory, on a private socket directory; sets PGHOST, PGPORT, PGUSER, CLUSTER_DIR.
start_cluster() {
    local port=$1; shift
    CLUSTER_DIR=$(mktemp -d /tmp/pg_background-cluster.XXXXXX)
    chmod 755 "$CLUSTER_DIR"
    chown postgres:postgres "$CLUSTER_DIR"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    local opts="-p $port -k $CLUSTER_DIR -c listen_addresses='' -c max_worker_processes=32"
    local o
    for o in "$@"; do opts="$opts -c $o"; done
    # RUST_BACKTRACE in the server's environment makes pgrx attach backtraces to error details.
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" \
        -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -o "$opts" start >/dev/null
    export PGHOST=$CLUSTER_DIR PGPORT=$port PGUSER=postgres
    trap stop_cluster EXIT
}

stop_cluster() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$CLUSTER_DIR"
    fi
    CLUSTER_DIR=
}

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
