# Part of scripts/test.sh: the README's install command into the selected PostgreSQL (Debian's
# 15, which our scripts did not build, with `scripts/install.sh --pg-config …`; the 17 that they
# assemble, with `make install PG_CONFIG=…`, which calls the same script): what it installs,
# CREATE EXTENSION in a cluster that does not preload the library (a WARNING before 17) and in
# one that does, and a job. The command runs as on a machine where `cargo pgrx init` never ran
# (an empty PGRX_HOME), and must change nothing but the extension's files. Prints "install: N
# passed, N failed".

# What the install command may not change: the packages, and every file of the server's
# directories but the extension's own (the directories themselves change as those come and go).
install_footprint() {
    dpkg -l | md5sum
    find "$("$PG_CONFIG" --bindir)" "$("$PG_CONFIG" --pkglibdir)" "$("$PG_CONFIG" --sharedir)" \
        "$("$PG_CONFIG" --includedir-server)" ! -type d ! -name 'pg_background*' \
        -printf '%p %s %T@\n' | sort | md5sum
}

# A psql session in the background (output in $CLUSTER_DIR/session.out) that has loaded the
# library and launched two jobs: one that runs SECONDS (:running) and one that is over, unread
# (:unread). Returns once both are launched.
start_loaded_session() {
    local i
    rm -f "$CLUSTER_DIR/session.out"
    coproc LOADED_SESSION { psql_ -At -d postgres > "$CLUSTER_DIR/session.out" 2>&1; }
    LOADED_SESSION_PROCESS=$LOADED_SESSION_PID
    echo "SELECT pg_background_launch('SELECT 6 FROM pg_sleep($1)') AS running \\gset
SELECT pg_background_launch('SELECT 7') AS unread \\gset
SELECT 'launched';" >&"${LOADED_SESSION[1]}"
    for i in $(seq 1 300); do grep -q launched "$CLUSTER_DIR/session.out" && break; sleep 0.1; done
}

# end_loaded_session SQL: run SQL in that session, then end it and wait until it has ended.
end_loaded_session() {
    printf '%s\n\\q\n' "$1" >&"${LOADED_SESSION[1]}"
    wait "$LOADED_SESSION_PROCESS" 2>/dev/null || true
}

# The install command again while the server uses the library (not preloaded: each session and
# each worker loads it): a session that loaded it and has a job running and another unread,
# sessions starting meanwhile. The library is replaced by a new file, not rewritten in place, so
# every process keeps what it mapped; the jobs end and are read, no process dies.
install_again_under_load() {
    local inode log_lines i loop_pid
    inode=$(stat -c %i "$pkglibdir/pg_background.so")
    log_lines=$(wc -l < "$CLUSTER_DIR/server.log")
    start_loaded_session 0.5
    check "$PG_MAJOR: under load: a session with a running job and an unread one" launched \
        "$(cat "$CLUSTER_DIR/session.out")"
    # new sessions load the library all along the install
    ( for i in $(seq 1 400); do
        psql_ -At -d postgres -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int)" \
            >/dev/null 2>&1 || echo "a new session failed" >> "$CLUSTER_DIR/under_load.out"
        [ -f "$CLUSTER_DIR/installed" ] && break
      done ) &
    loop_pid=$!
    PGRX_HOME=/tmp/pg_background-pgrx-home bash "$ROOT/scripts/install.sh" --pg-config "$PG_CONFIG" >/dev/null
    check "$PG_MAJOR: under load: install.sh succeeds" 0 $?
    touch "$CLUSTER_DIR/installed"
    wait "$loop_pid"
    check "$PG_MAJOR: under load: the library is a new file" t \
        "$([ "$(stat -c %i "$pkglibdir/pg_background.so")" != "$inode" ] && echo t)"
    end_loaded_session "SELECT * FROM pg_background_result(:running) AS (r int);
SELECT * FROM pg_background_result(:unread) AS (r int);
SELECT * FROM pg_background_result(pg_background_launch('SELECT 8')) AS (r int);"
    check "$PG_MAJOR: under load: the session reads both jobs, and launches another" "launched 6 7 8" \
        "$(tr '\n' ' ' < "$CLUSTER_DIR/session.out" | sed 's/ $//')"
    check "$PG_MAJOR: under load: every new session ran its job" 0 \
        "$(cat "$CLUSTER_DIR/under_load.out" 2>/dev/null | wc -l)"
    check "$PG_MAJOR: under load: no process died" 0 \
        "$(tail -n +"$((log_lines + 1))" "$CLUSTER_DIR/server.log" | grep -c 'terminated by signal')"
}

# The inode of the pg_background.so that the process running SQL (a session, or a job's worker)
# has mapped: which build it runs. (An old file renamed over stays mapped, "(deleted)".)
LIBRARY_INODE_SQL="SELECT string_agg(DISTINCT (regexp_match(l, '^\\S+ \\S+ \\S+ \\S+ (\\d+)'))[1], ',')
  FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\\n') l WHERE l ~ '/pg_background\\.so'"

# A newer release installed while a session of the old one has a job running and another unread,
# the extension updated from another session, then the way back: this tree built as the next
# patch version, with an update script each way (the new version adds a function, going back
# drops it). Sessions keep the library they loaded; workers and new sessions load the file
# installed when they start. Run without preloading (with it, every process keeps the library
# the server started with until a restart).
newer_version_and_back() {
    local next newer old_inode new_inode back_inode log_lines status
    next=${EXT_VERSION%.*}.$(( ${EXT_VERSION##*.} + 1 ))
    newer=$(mktemp -d /tmp/pg_background-newer.XXXXXX)
    tar -C "$ROOT" --exclude=./target --exclude=./.git --exclude=./dist -cf - . | tar -C "$newer" -xf -
    sed -i "0,/^version = \"$EXT_VERSION\"\$/s//version = \"$next\"/" "$newer/Cargo.toml"
    sed -i "/^name = \"pg_background\"\$/{n;s/^version = .*/version = \"$next\"/}" "$newer/Cargo.lock"
    echo "CREATE FUNCTION pg_background_release() RETURNS text LANGUAGE sql AS \$\$ SELECT '$next' \$\$;" \
        > "$newer/sql/pg_background--$EXT_VERSION--$next.sql"
    echo "DROP FUNCTION pg_background_release();" > "$newer/sql/pg_background--$next--$EXT_VERSION.sql"
    old_inode=$(stat -c %i "$pkglibdir/pg_background.so")
    log_lines=$(wc -l < "$CLUSTER_DIR/server.log")

    start_loaded_session 1

    CARGO_TARGET_DIR="$ROOT/target" PGRX_HOME=/tmp/pg_background-pgrx-home \
        bash "$newer/scripts/install.sh" --pg-config "$PG_CONFIG" >/dev/null
    status=$?
    new_inode=$(stat -c %i "$pkglibdir/pg_background.so")
    check "$PG_MAJOR: newer: version $next installs while a session of $EXT_VERSION has jobs" 0 $status
    check "$PG_MAJOR: newer: its control file names $next" "default_version = '$next'" \
        "$(grep '^default_version' "$extdir/pg_background.control")"
    check "$PG_MAJOR: newer: ALTER EXTENSION UPDATE from another session" "$next $next" \
        "$(psql_ -At -F ' ' -d postgres -c "ALTER EXTENSION pg_background UPDATE" \
            -c "SELECT extversion, pg_background_release() FROM pg_extension WHERE extname = 'pg_background'")"
    check "$PG_MAJOR: newer: a new session's job's worker and the session run the new library" \
        "$new_inode $new_inode" \
        "$(psql_ -At -d postgres \
            -c "SELECT * FROM pg_background_result(pg_background_launch(\$q\$$LIBRARY_INODE_SQL\$q\$)) AS (r text)" \
            -c "$LIBRARY_INODE_SQL" | tr '\n' ' ' | sed 's/ $//')"
    # the old session: its jobs, then one more, whose worker loads the new file
    end_loaded_session "SELECT * FROM pg_background_result(:running) AS (r int);
SELECT * FROM pg_background_result(:unread) AS (r int);
$LIBRARY_INODE_SQL;
SELECT * FROM pg_background_result(pg_background_launch(\$q\$$LIBRARY_INODE_SQL\$q\$)) AS (r text);"
    check "$PG_MAJOR: newer: the old session reads its jobs and keeps its library; its new worker runs the new one" \
        "launched 6 7 $old_inode $new_inode" "$(tr '\n' ' ' < "$CLUSTER_DIR/session.out" | sed 's/ $//')"

    # the way back: the older build installed again, its version selected
    PGRX_HOME=/tmp/pg_background-pgrx-home bash "$ROOT/scripts/install.sh" --pg-config "$PG_CONFIG" >/dev/null
    status=$?
    back_inode=$(stat -c %i "$pkglibdir/pg_background.so")
    check "$PG_MAJOR: back: version $EXT_VERSION installs again" 0 $status
    check "$PG_MAJOR: back: its control file names $EXT_VERSION" "default_version = '$EXT_VERSION'" \
        "$(grep '^default_version' "$extdir/pg_background.control")"
    check "$PG_MAJOR: back: ALTER EXTENSION UPDATE TO '$EXT_VERSION' drops what $next added" \
        "$EXT_VERSION 0" \
        "$(psql_ -At -F ' ' -d postgres -c "ALTER EXTENSION pg_background UPDATE TO '$EXT_VERSION'" \
            -c "SELECT extversion, (SELECT count(*) FROM pg_proc WHERE proname = 'pg_background_release')
                  FROM pg_extension WHERE extname = 'pg_background'")"
    check "$PG_MAJOR: back: a new session's job's worker and the session run the library installed again" \
        "$back_inode $back_inode" \
        "$(psql_ -At -d postgres \
            -c "SELECT * FROM pg_background_result(pg_background_launch(\$q\$$LIBRARY_INODE_SQL\$q\$)) AS (r text)" \
            -c "$LIBRARY_INODE_SQL" | tr '\n' ' ' | sed 's/ $//')"
    check "$PG_MAJOR: newer and back: no process died" 0 \
        "$(tail -n +"$((log_lines + 1))" "$CLUSTER_DIR/server.log" | grep -c 'terminated by signal')"
    rm -f "$extdir/pg_background--$next.sql" "$extdir/pg_background--$EXT_VERSION--$next.sql" \
        "$extdir/pg_background--$next--$EXT_VERSION.sql"
    rm -rf "$newer"
}

run_install_test() {
    local pkglibdir extdir out from files before status
    checks_reset
    pkglibdir=$("$PG_CONFIG" --pkglibdir)
    extdir="$("$PG_CONFIG" --sharedir)/extension"
    rm -f "$pkglibdir/pg_background.so" "$extdir"/pg_background*
    before=$(install_footprint)
    # the same empty PGRX_HOME as the package test, so that both share one release build
    mkdir -p /tmp/pg_background-pgrx-home
    if [ "$PG_MAJOR" = 17 ]; then
        PGRX_HOME=/tmp/pg_background-pgrx-home make -C "$ROOT" install PG_CONFIG="$PG_CONFIG"
        status=$?
        check "$PG_MAJOR: make install succeeds without cargo pgrx init" 0 $status
    else
        PGRX_HOME=/tmp/pg_background-pgrx-home bash "$ROOT/scripts/install.sh" --pg-config "$PG_CONFIG"
        status=$?
        check "$PG_MAJOR: install.sh succeeds without cargo pgrx init" 0 $status
    fi
    check "$PG_MAJOR: nothing but the extension's files changed" "$before" "$(install_footprint)"
    check "$PG_MAJOR: the library is installed" t "$([ -f "$pkglibdir/pg_background.so" ] && echo t)"
    check "$PG_MAJOR: the control file names this version" "default_version = '$EXT_VERSION'" \
        "$(grep '^default_version' "$extdir/pg_background.control")"
    check "$PG_MAJOR: the install script is installed" t \
        "$([ -s "$extdir/pg_background--$EXT_VERSION.sql" ] && echo t)"
    files=0
    for from in "$ROOT"/sql/pg_background--*--*.sql; do
        cmp -s "$from" "$extdir/$(basename "$from")" && files=$((files + 1))
    done
    check "$PG_MAJOR: every committed update script is installed as committed" \
        "$(ls "$ROOT"/sql/pg_background--*--*.sql | wc -l)" "$files"

    start_cluster "${PGBG_TEST_PORT:-55433}"
    out=$(psql_ -d postgres -c "CREATE EXTENSION pg_background" 2>&1)
    if [ "$PG_MAJOR" -lt 17 ]; then
        check "$PG_MAJOR: without preloading, CREATE EXTENSION says so" \
            "WARNING:  pg_background is not in shared_preload_libraries" "$(echo "$out" | head -n1)"
        check "$PG_MAJOR: … and names the line to add" t \
            "$(echo "$out" | grep -q "^HINT:  .*shared_preload_libraries = 'pg_background'" && echo t)"
    else
        check "$PG_MAJOR: CREATE EXTENSION without preloading needs no warning" "" "$out"
    fi
    check "$PG_MAJOR: a job runs" 42 "$(psql_ -At -d postgres -c \
        "SELECT * FROM pg_background_result(pg_background_launch('SELECT 41 + 1')) AS (r int)")"
    install_again_under_load
    [ "$PG_MAJOR" != 17 ] || newer_version_and_back
    stop_cluster

    start_cluster "${PGBG_TEST_PORT:-55433}" shared_preload_libraries=pg_background
    check "$PG_MAJOR: preloaded, CREATE EXTENSION says nothing" "" \
        "$(psql_ -d postgres -c "CREATE EXTENSION pg_background" 2>&1)"
    check "$PG_MAJOR: the jobs view shows a job" "finished 1" "$(psql_ -At -F ' ' -d postgres \
        -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int)" \
        -c "SELECT state, rows FROM pg_background_jobs ORDER BY job_id DESC LIMIT 1" | tail -n1)"
    psql_ -d postgres -c "CREATE DATABASE two" >/dev/null
    check "$PG_MAJOR: the version with the 2.0 API is installed too, and runs a job" "7" \
        "$(psql_ -At -d two -c "CREATE EXTENSION pg_background VERSION '$API2_VERSION'" \
              -c "SELECT r FROM pg_background_launch('SELECT 7') h, LATERAL pg_background_result((h).pid, (h).cookie) AS (r int)")"
    stop_cluster
    checks_report install
}
