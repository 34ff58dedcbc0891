# Part of scripts/test.sh: a streaming replica of the running cluster (pg_basebackup -R, a
# second cluster on this machine, the library preloaded as on the primary). On the standby,
# read-only jobs run and return rows, a job that writes fails with 25006, the jobs view, the
# caps and kept results work; after promotion, jobs write without a restart. Prints
# "standby: N passed, N failed".

standby_stop() {
    if [ -n "${STANDBY_DIR:-}" ] && [ -d "$STANDBY_DIR/data" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STANDBY_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$STANDBY_DIR"
    fi
    STANDBY_DIR=
}

run_standby_test() {
    local port=$((PGPORT + 7)) primary="psql_ -At -d pgbg_standby" standby out i lsn
    checks_reset
    standby_stop
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_standby" -c "CREATE DATABASE pgbg_standby" >/dev/null
    $primary -c "CREATE EXTENSION pg_background" \
        -c "CREATE TABLE facts AS SELECT i FROM generate_series(1, 1000) i" >/dev/null

    STANDBY_DIR=$(mktemp -d /tmp/pg_background-standby.XXXXXX)
    chmod 755 "$STANDBY_DIR"
    chown postgres:postgres "$STANDBY_DIR"
    runuser -u postgres -- "$PG_BIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres \
        -D "$STANDBY_DIR/data" -R -X stream >/dev/null
    check "pg_basebackup -R makes a standby" 0 $?
    # the primary's options, on the standby's own port and socket directory
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" \
        -D "$STANDBY_DIR/data" -l "$STANDBY_DIR/server.log" -w \
        -o "$(sed -e "s|-p [0-9]*|-p $port|" -e "s|-k [^ ]*|-k $STANDBY_DIR|" "$CLUSTER_DIR/options")" \
        start >/dev/null
    standby="psql_ -At -h $STANDBY_DIR -p $port -d pgbg_standby"
    check "the standby runs, in recovery" t "$($standby -c "SELECT pg_is_in_recovery()")"

    # a change on the primary, replayed on the standby
    $primary -c "INSERT INTO facts VALUES (1001)" >/dev/null
    lsn=$($primary -c "SELECT pg_current_wal_lsn()")
    for i in $(seq 1 300); do
        [ "$($standby -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
        sleep 0.1
    done
    check "a read-only job runs on the standby and returns rows" 1001 \
        "$($standby -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT count(*) FROM facts')) AS (n bigint)" 2>&1)"
    out=$($standby -v VERBOSITY=verbose -c "SELECT * FROM pg_background_result(pg_background_launch('INSERT INTO facts VALUES (0)')) AS (r text)" 2>&1 || true)
    echo "$out"
    check "a job that writes fails with 25006" 1 \
        "$(echo "$out" | grep -c 'ERROR:  25006: cannot execute INSERT in a read-only transaction')"
    check "a job with the caller's settings (work_mem) runs there" "3MB" \
        "$($standby -c "SET work_mem = '3MB'" -c "SELECT * FROM pg_background_result(pg_background_launch('SHOW work_mem')) AS (r text)" 2>&1)"
    check "the jobs view shows the standby's jobs" "finished failed" \
        "$($standby -c "SELECT string_agg(state, ' ' ORDER BY job_id) FROM pg_background_jobs WHERE query LIKE '%facts%'" 2>&1)"
    check "caps apply on the standby" 1 \
        "$($standby -c "SET pg_background.max_jobs_per_role = 5" -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int)" 2>&1)"
    out=$($standby -c "SELECT pg_background_launch_kept('SELECT i FROM facts WHERE i = 7')" 2>&1)
    check "a kept result of an ended session is read on the standby" 7 \
        "$($standby -c "SELECT * FROM pg_background_job_result($out) AS (i int)" 2>&1)"

    # promotion: the same running server takes writes, jobs too
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STANDBY_DIR/data" -w promote >/dev/null
    for i in $(seq 1 300); do
        [ "$($standby -c "SELECT pg_is_in_recovery()")" = f ] && break
        sleep 0.1
    done
    check "after promotion, a job writes without a restart" "INSERT 0 1" \
        "$($standby -c "SELECT * FROM pg_background_result(pg_background_launch('INSERT INTO facts VALUES (0)')) AS (r text)" 2>&1)"
    check "... and its row is there" 1002 "$($standby -c "SELECT count(*) FROM facts")"
    standby_stop
    psql_ -d postgres -c "DROP DATABASE pgbg_standby" >/dev/null
    checks_report standby
}
