#!/usr/bin/env bash
# Build a Debian package of pg_background for one PostgreSQL major:
#
#   bash scripts/package.sh MAJOR [--pg-config PATH]
#
# writes dist/postgresql-MAJOR-pg-background-rs_VERSION_amd64.deb, which installs into the layout
# of Debian's and the PGDG's PostgreSQL packages (/usr/lib/postgresql/MAJOR/lib,
# /usr/share/postgresql/MAJOR/extension) and depends on postgresql-MAJOR. Its name tells it apart
# from the C extension's postgresql-MAJOR-pg-background; both own pg_background.so and the
# control file, so each conflicts with and replaces the other.
#
# The library is built against the headers of PATH (default: Debian's
# /usr/lib/postgresql/MAJOR/bin/pg_config, else the build of MAJOR that scripts/common.sh sets
# up) by scripts/install.sh --destdir, with what that needs. Needs dpkg-deb.
source "$(dirname "$0")/common.sh"

MAJOR=${1:-}
case $MAJOR in 15|16|17|18) shift ;; *) echo "usage: bash scripts/package.sh MAJOR [--pg-config PATH]" >&2; exit 2 ;; esac
pg_config=
if [ "${1:-}" = --pg-config ] && [ $# -ge 2 ]; then pg_config=$2; fi
if [ -z "$pg_config" ]; then
    pg_config=/usr/lib/postgresql/$MAJOR/bin/pg_config
    [ -x "$pg_config" ] || pg_config=$(pg_config_for "$MAJOR")
fi
case $("$pg_config" --version) in
    "PostgreSQL $MAJOR."*) ;;
    *) echo "package.sh: $pg_config is not PostgreSQL $MAJOR" >&2; exit 1 ;;
esac

name=postgresql-$MAJOR-pg-background-rs
arch=$(dpkg --print-architecture)
deb=$ROOT/dist/${name}_${EXT_VERSION}_$arch.deb
work=$(mktemp -d /tmp/pg_background-package.XXXXXX)
trap 'rm -rf "$work"' EXIT

log "building the release library for $("$pg_config" --version) ($pg_config)"
bash "$ROOT/scripts/install.sh" --pg-config "$pg_config" --destdir "$work/built" >/dev/null

# The files cargo-pgrx laid out under the build server's paths, moved to Debian's.
stage=$work/stage
lib=$stage/usr/lib/postgresql/$MAJOR/lib
ext=$stage/usr/share/postgresql/$MAJOR/extension
doc=$stage/usr/share/doc/$name
mkdir -p "$lib" "$ext" "$doc" "$stage/DEBIAN"
find "$work/built" -name pg_background.so -exec install -m 644 {} "$lib/" \;
find "$work/built" \( -name pg_background.control -o -name 'pg_background--*.sql' \) \
    -exec install -m 644 {} "$ext/" \;
[ -f "$lib/pg_background.so" ] && [ -f "$ext/pg_background.control" ] \
    && [ -f "$ext/pg_background--$EXT_VERSION.sql" ] \
    || { echo "package.sh: cargo pgrx package did not produce the library, control file and install script" >&2; exit 1; }
install -m 644 "$ROOT/LICENSE" "$doc/copyright"
install -m 644 "$ROOT/README.md" "$doc/README.md"
gzip -9n < "$ROOT/CHANGELOG.md" > "$doc/changelog.gz"

# Run-time dependencies: the server, and the package of every shared library the library
# links (libc6 at least at the newest glibc symbol version it uses).
depends="postgresql-$MAJOR"
glibc=$(objdump -T "$lib/pg_background.so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
declare -A seen=()
for needed in $(objdump -p "$lib/pg_background.so" | awk '$1 == "NEEDED" {print $2}'); do
    path=$(ldconfig -p | awk -v n="$needed" '$1 == n && /x86-64/ && !found {print $NF; found = 1}')
    [ -n "$path" ] || continue
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
    pkg=$(printf '%s\n' "$pkg" | sed -n '1s/:.*//p')
    [ -n "$pkg" ] && [ -z "${seen[$pkg]:-}" ] || continue
    seen[$pkg]=1
    if [ "$pkg" = libc6 ]; then depends+=", libc6 (>= $glibc)"; else depends+=", $pkg"; fi
done

cat > "$stage/DEBIAN/control" <<EOF
Package: $name
Source: pg-background-rs
Version: $EXT_VERSION
Architecture: $arch
Maintainer: The pg_background (Rust) developers <pg-background-rs@users.noreply.invalid>
Installed-Size: $(du -sk "$stage/usr" | cut -f1)
Depends: $depends
Conflicts: postgresql-$MAJOR-pg-background
Replaces: postgresql-$MAJOR-pg-background
Section: database
Priority: optional
Description: run SQL commands in PostgreSQL $MAJOR background workers (Rust implementation)
 pg_background launches any SQL command in a background worker of the same
 server: read its typed rows later, or detach and let it finish on its own
 (autonomous transactions, VACUUM or CREATE INDEX CONCURRENTLY from a
 function, fan-out, fire-and-forget jobs).
 .
 This implementation, written in Rust, has the SQL names, results and errors
 of the C extension pg_background 1.x and updates an installation of it with
 ALTER EXTENSION pg_background UPDATE.
EOF
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
mkdir -p "$ROOT/dist"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
log "wrote ${deb#"$ROOT"/}"
dpkg-deb --field "$deb" Package Version Depends Conflicts Replaces
