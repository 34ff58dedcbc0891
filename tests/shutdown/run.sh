# Part of scripts/test.sh: server shutdown with jobs running, on the running cluster (which it
# stops and starts again). Prints "shutdown: N passed, N failed".
#
# - fast: sessions and their jobs are terminated (57P01), detached jobs too; nothing the jobs had
#   not committed survives; no process is killed, no crash restart.
# - smart: new connections are refused; the server waits for the open sessions, so a session
#   that waits for its job gets its result and the job commits; jobs nobody waits for are then
#   terminated like the other background processes.
# In both, the server stops, starts again, and leaves no DSM segment behind.

pg_ctl_() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" "$@"; }
# start the cluster again with the options start_cluster gave it
restart_() {
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" \
        -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -o "$(cat "$CLUSTER_DIR/options")" start >/dev/null
}

run_shutdown_test() {
    local mode segments before t0 elapsed log_lines reader
    checks_reset
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_shutdown" -c "CREATE DATABASE pgbg_shutdown"
    psql_ -d pgbg_shutdown -c "CREATE EXTENSION pg_background" -c "CREATE TABLE done(mode text)"
    for mode in fast smart; do
        # the baseline: the server stopped
        pg_ctl_ -m fast -w stop >/dev/null
        segments=$(dsm_segments)
        restart_
        log_lines=$(wc -l < "$CLUSTER_DIR/server.log")
        # a detached job nobody waits for, and a session that waits for its job
        psql_ -d pgbg_shutdown -c "SELECT pg_background_detach(pg_background_launch(
            'SELECT pg_sleep(600); INSERT INTO done VALUES (''$mode detached'')'))" >/dev/null
        if [ "$mode" = fast ]; then
            reader="SELECT pg_sleep(600); INSERT INTO done VALUES (''fast waited'')"
        else
            reader="SELECT pg_sleep(2); INSERT INTO done VALUES (''smart waited'')"
        fi
        psql_ -d pgbg_shutdown -c "SELECT * FROM pg_background_result(pg_background_launch('$reader')) AS (r text)" \
            > "$CLUSTER_DIR/reader.out" 2>&1 &
        wait_until pgbg_shutdown "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_background' AND wait_event = 'PgSleep'"
        check "$mode: two jobs running" 0 $?
        t0=$(date +%s.%N)
        pg_ctl_ -m "$mode" -w -t 120 stop >/dev/null
        check "$mode: the server stops" 0 $?
        elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        echo "$mode shutdown with jobs running took ${elapsed} s"
        wait
        if [ "$mode" = fast ]; then
            # Either the session's own backend is terminated first, or its job's worker is and
            # the session relays the worker's 57P01 before its own turn comes (then the client
            # may get its own FATAL too): either ends the wait.
            check "fast: the waiting session is terminated" t \
                "$(grep -qE 'terminating (connection|background worker "pg_background") due to administrator command' \
                    "$CLUSTER_DIR/reader.out" && echo t)"
        else
            check "smart: the waiting session got its job's result" 1 \
                "$(grep -c 'INSERT 0 1' "$CLUSTER_DIR/reader.out")"
        fi
        if [ "$CHECKS_FAILED" -gt 0 ]; then sed 's/^/  reader: /' "$CLUSTER_DIR/reader.out"; fi
        check "$mode: no DSM segment left" "$segments" "$(dsm_segments)"
        check "$mode: no process killed, no crash restart" 0 \
            "$(tail -n +"$((log_lines + 1))" "$CLUSTER_DIR/server.log" | grep -cE 'terminated by signal|terminating any other active server processes')"
        restart_
        check "$mode: the server starts again" 0 $?
    done
    check "only what a job committed before the shutdown is there" "smart waited" \
        "$(psql_ -At -d pgbg_shutdown -c "SELECT string_agg(mode, ',' ORDER BY mode) FROM done")"
    psql_ -d postgres -c "DROP DATABASE pgbg_shutdown"
    checks_report shutdown
}
