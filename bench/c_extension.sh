# Part of bench/run.sh: the C extension pg_background (vibhorkum/pg_background) as a baseline,
# measured in the same run. Both extensions install a library named pg_background.so, so the C
# one goes into a copy of the PostgreSQL 15 tree (its bin, lib and share directories, which
# find each other by relative paths) and runs as a second cluster beside ours.
#
# Its sources: BENCH_C_SOURCE, a checkout or a git directory of vibhorkum/pg_background; by
# default a shallow clone from GitHub. Without either, the comparison is left out. Building it
# needs the server's headers and libkrb5-dev.

# c_extension_tree DIR: build the C extension and lay out a server tree with it under DIR (a
# new directory, which the server's user must be able to reach); prints that tree's bin
# directory, or fails (with a reason on stderr).
c_extension_tree() {
    local dir=$1 src=$1/src source=${BENCH_C_SOURCE:-} pg_config=/usr/lib/postgresql/15/bin/pg_config
    mkdir -p "$src" "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
    chmod 755 "$dir"
    if [ -z "$source" ]; then
        git clone -q --depth 1 https://github.com/vibhorkum/pg_background "$src" 2>/dev/null || {
            echo "the C extension: no sources (no network to GitHub; set BENCH_C_SOURCE to a checkout of vibhorkum/pg_background)" >&2
            return 1
        }
    elif [ -f "$source/pg_background.c" ]; then
        cp -a "$source/." "$src"
    elif git --git-dir="$source" rev-parse -q --verify HEAD >/dev/null 2>&1; then
        git --git-dir="$source" archive HEAD | tar -x -C "$src"
    else
        echo "the C extension: $source is neither its source tree nor a git directory of it" >&2
        return 1
    fi
    dpkg -s libkrb5-dev >/dev/null 2>&1 || apt-get install -y -qq libkrb5-dev >/dev/null
    cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
    # (ours, if installed into the server this tree was copied from, is not part of it)
    rm -f "$dir/usr/lib/postgresql/15/lib/pg_background.so" \
        "$dir/usr/share/postgresql/15/extension/pg_background"*
    make -s -C "$src" USE_PGXS=1 PG_CONFIG="$pg_config" >/dev/null 2>"$dir/build.log" &&
        make -s -C "$src" install USE_PGXS=1 PG_CONFIG="$pg_config" DESTDIR="$dir" >/dev/null 2>>"$dir/build.log" || {
            echo "the C extension: the build failed (see $dir/build.log)" >&2
            return 1
        }
    echo "$dir/usr/lib/postgresql/15/bin"
}

# start_c_cluster BIN PORT [settings...]: a second throwaway cluster from the tree of
# c_extension_tree, with the C extension created; sets C_HOST and C_PORT.
start_c_cluster() {
    local bin=$1 port=$2 o opts
    shift 2
    C_CLUSTER_DIR=$(mktemp -d /tmp/pg_background-c-cluster.XXXXXX)
    C_BIN=$bin
    chmod 755 "$C_CLUSTER_DIR"
    chown postgres:postgres "$C_CLUSTER_DIR"
    runuser -u postgres -- "$bin/initdb" -D "$C_CLUSTER_DIR/data" -U postgres --auth=trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    opts="-p $port -k $C_CLUSTER_DIR -c listen_addresses=''"
    for o in "$@"; do opts="$opts -c $o"; done
    runuser -u postgres -- "$bin/pg_ctl" -D "$C_CLUSTER_DIR/data" -l "$C_CLUSTER_DIR/server.log" \
        -w -o "$opts" start >/dev/null || {
            echo "the C extension: its cluster did not start:" >&2
            tail -n 5 "$C_CLUSTER_DIR/server.log" >&2
            return 1
        }
    C_HOST=$C_CLUSTER_DIR C_PORT=$port
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$C_HOST" -p "$C_PORT" -U postgres -d postgres \
        -c "CREATE EXTENSION pg_background" >/dev/null
    echo "the C extension $("$bin/psql" -X -At -h "$C_HOST" -p "$C_PORT" -U postgres -d postgres \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'") on port $C_PORT"
}

stop_c_cluster() {
    if [ -n "${C_CLUSTER_DIR:-}" ] && [ -d "$C_CLUSTER_DIR/data" ]; then
        runuser -u postgres -- "$C_BIN/pg_ctl" -D "$C_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$C_CLUSTER_DIR"
    fi
}
