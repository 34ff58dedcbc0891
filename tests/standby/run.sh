# Part of scripts/test.sh: a streaming replica of the running cluster (a base backup taken with
# pg_backup_start and pg_backup_stop, a second cluster on this machine, the library preloaded as
# on the primary). On the standby, read-only jobs run and return rows, a job that writes fails
# with 25006, the jobs view, the caps and kept results work; after promotion, jobs write without
# a restart. Prints "standby: N passed, N failed".
#
# The base backup uses the server's low-level API rather than pg_basebackup: every version's
# server has it, while some server builds (the PostgreSQL 17 one here) come without client
# programs, and pg_basebackup refuses servers newer than itself.

standby_stop() {
    if [ -n "${STANDBY_DIR:-}" ] && [ -d "$STANDBY_DIR/data" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STANDBY_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$STANDBY_DIR"
    fi
    STANDBY_DIR=
    psql_ -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                          WHERE slot_name = 'pgbg_standby'" >/dev/null 2>&1 || true
}

# standby_base_backup DIR: copy the running cluster into DIR/data as a standby that streams from
# it. The slot keeps the WAL from the backup's start until the standby has it; the copy leaves
# out what the documentation's low-level backup procedure leaves out.
standby_base_backup() {
    local dir=$1 src
    src=$(psql_ -At -d postgres -c "SHOW data_directory")
    psql_ -d postgres -c "SELECT pg_create_physical_replication_slot('pgbg_standby', true)" >/dev/null
    mkdir "$dir/data"
    # one session from start to stop, as the API requires; the copy runs in between
    psql_ -At -d postgres >/dev/null <<SQL || return 1
SELECT pg_backup_start('pg_background standby test', true);
\\! tar -C '$src' -cf - --exclude=./postmaster.pid --exclude=./postmaster.opts --exclude='./pg_wal/*' --exclude='./pg_replslot/*' --exclude='./pg_dynshmem/*' --exclude='./pg_notify/*' --exclude='./pg_serial/*' --exclude='./pg_snapshots/*' --exclude='./pg_stat_tmp/*' --exclude='./pg_subtrans/*' --warning=no-file-changed --warning=no-file-removed . | tar -C '$dir/data' -xf -
SELECT labelfile FROM pg_backup_stop(false) \\g (format=unaligned tuples_only=on) $dir/data/backup_label
SQL
    touch "$dir/data/standby.signal"
    cat >> "$dir/data/postgresql.auto.conf" <<CONF
primary_conninfo = 'host=$PGHOST port=$PGPORT user=postgres'
primary_slot_name = 'pgbg_standby'
CONF
    chown -R postgres:postgres "$dir/data"
    chmod 700 "$dir/data"
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
    standby_base_backup "$STANDBY_DIR"
    check "a base backup with pg_backup_start and pg_backup_stop makes a standby" 0 $?
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
