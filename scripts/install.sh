#!/usr/bin/env bash
# Build pg_background (release) and install it into the PostgreSQL that a pg_config names: the
# library into its pkglibdir; the control file, the install script and every update script into
# its extension directory. Nothing else is touched: no packages, no cluster, no settings.
#
#   bash scripts/install.sh --pg-config /usr/lib/postgresql/17/bin/pg_config
#
# Needs Rust (cargo), cargo-pgrx at the version of pgrx in Cargo.lock, a C toolchain with
# libclang, and the server's development headers (what `pg_config --includedir-server` names);
# not `cargo pgrx init`. Run it as a user who may write to those directories, or it asks sudo
# for the copy. With --destdir DIR the same files are laid out under DIR instead (their paths as
# pg_config names them, below DIR), for packaging.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    sed -n 's/^#   //p' "${BASH_SOURCE[0]}" >&2
    echo "options: --pg-config PATH (default: pg_config on PATH), --debug (a debug build)," >&2
    echo "         --destdir DIR (lay the files out under DIR instead of installing them)" >&2
    exit 2
}
fail() { echo "install.sh: $*" >&2; exit 1; }

PG_CONFIG=
PROFILE=--release
DESTDIR=
while [ $# -gt 0 ]; do
    case $1 in
        --pg-config) [ $# -ge 2 ] || usage; PG_CONFIG=$2; shift 2 ;;
        --pg-config=*) PG_CONFIG=${1#*=}; shift ;;
        --destdir) [ $# -ge 2 ] || usage; DESTDIR=$2; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --debug) PROFILE=; shift ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config || true)
[ -n "$PG_CONFIG" ] || fail "no pg_config on PATH; name the server with --pg-config /path/to/pg_config"
[ -x "$PG_CONFIG" ] || fail "$PG_CONFIG is not an executable pg_config"
# (the build runs in the source tree: make the paths absolute first)
PG_CONFIG=$(cd "$(dirname "$PG_CONFIG")" && pwd)/$(basename "$PG_CONFIG")
if [ -n "$DESTDIR" ]; then mkdir -p "$DESTDIR"; DESTDIR=$(cd "$DESTDIR" && pwd); fi

version=$("$PG_CONFIG" --version) || fail "$PG_CONFIG --version failed"
major=$(echo "$version" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
case $major in
    15|16|17|18) ;;
    *) fail "$version is not supported: pg_background builds for PostgreSQL 15, 16, 17 and 18" ;;
esac
server_include=$("$PG_CONFIG" --includedir-server)
[ -f "$server_include/postgres.h" ] || fail "no server headers in $server_include
  install the server's development package, e.g. postgresql-server-dev-$major (Debian, Ubuntu)
  or postgresql$major-devel (RHEL-like systems with the PGDG repository)"

command -v cargo >/dev/null || fail "cargo not found: install Rust (https://rustup.rs)"
pgrx=$(awk '/^name = "pgrx"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")
if [ "$(cargo pgrx --version 2>/dev/null)" != "cargo-pgrx $pgrx" ]; then
    fail "cargo-pgrx $pgrx not found; install it with
  cargo install cargo-pgrx --version $pgrx --locked"
fi

# pgrx builds against the pg_config that `cargo pgrx init` registered for this major, if any:
# unless that is this one, name this one for the build.
pgrx_config=${PGRX_HOME:-$HOME/.pgrx}/config.toml
if ! grep -qsx "pg$major = \"$PG_CONFIG\"" "$pgrx_config"; then
    export PGRX_PG_CONFIG_PATH=$PG_CONFIG
fi

echo "building pg_background for $version ($PG_CONFIG)"
cd "$ROOT"
if [ -n "$DESTDIR" ]; then
    flags=(--pg-config "$PG_CONFIG" --out-dir "$DESTDIR")
    [ -n "$PROFILE" ] || flags+=(--debug)   # (package builds release unless told)
    cargo pgrx package "${flags[@]}" >/dev/null
    echo "laid out under $DESTDIR: $(cd "$DESTDIR" && find . -type f | sort | tr '\n' ' ')"
    exit 0
fi
pkglibdir=$("$PG_CONFIG" --pkglibdir)
extdir="$("$PG_CONFIG" --sharedir)/extension"
sudo=()
if [ ! -w "$pkglibdir" ] || [ ! -w "$extdir" ]; then
    command -v sudo >/dev/null || fail "cannot write to $pkglibdir or $extdir, and there is no sudo"
    sudo=(sudo)
fi
# Built and laid out in a staging directory first, then each file moved into place with a
# rename: a server that loads the library meanwhile (a new session, a worker) finds the old file
# or the new one, never one half written; sessions that have loaded the old one keep it.
stage=$(mktemp -d "${TMPDIR:-/tmp}/pg_background-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
flags=(--pg-config "$PG_CONFIG" --out-dir "$stage")
[ -n "$PROFILE" ] || flags+=(--debug)
cargo pgrx package "${flags[@]}" >/dev/null
put() {  # put FILE DIRECTORY MODE: FILE of the staging directory into DIRECTORY, in one rename
    local name
    name=$(basename "$1")
    "${sudo[@]}" install -m "$3" "$1" "$2/.$name.new"
    "${sudo[@]}" mv -f "$2/.$name.new" "$2/$name"
}
[ -f "$stage$pkglibdir/pg_background.so" ] || fail "the build left no pg_background.so in $stage$pkglibdir"
# the library first, the control file (which names the version CREATE EXTENSION installs) last
put "$stage$pkglibdir/pg_background.so" "$pkglibdir" 755
for f in "$stage$extdir"/pg_background*.sql; do put "$f" "$extdir" 644; done
put "$stage$extdir/pg_background.control" "$extdir" 644
echo "installed $(ls "$extdir"/pg_background*.sql | wc -l) SQL scripts into $extdir and pg_background.so into $pkglibdir"
echo "next: CREATE EXTENSION pg_background;   (see README.md, Install, for shared_preload_libraries)"
