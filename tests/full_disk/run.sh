# Part of scripts/test.sh: spill files on a filesystem that fills up. A tablespace on an 8 MB
# tmpfs is the jobs' temp_tablespaces; a job whose result outgrows it while nobody reads fails
# with 53100, and its reader gets that error after the rows that fitted, from the same session
# and from another one after the launching session ended (a kept result). The server stays up
# and nothing is left on the small disk. Needs root (mount). Prints "full_disk: N passed,
# N failed".

full_disk_sql() { psql_ -At -d pgbg_full_disk "$@"; }
full_disk_files() { find "$FULL_DISK_DIR/ts" -type f | wc -l; }

full_disk_cleanup() {
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_full_disk" -c "DROP TABLESPACE IF EXISTS pgbg_small" >/dev/null 2>&1 || true
    if [ -n "${FULL_DISK_DIR:-}" ]; then
        umount "$FULL_DISK_DIR/ts" 2>/dev/null || true
        rm -rf "$FULL_DISK_DIR"
    fi
    FULL_DISK_DIR=
}

# full_disk_wait_failed JOB_ID: poll (bounded) until the job has ended; prints its state and SQLSTATE
full_disk_wait_failed() {
    wait_until pgbg_full_disk "SELECT state <> 'running' FROM pg_background_jobs WHERE job_id = $1"
    full_disk_sql -c "SELECT state, sqlstate FROM pg_background_jobs WHERE job_id = $1" | tr '|' ' '
}

run_full_disk_test() {
    local out job crashes big="SELECT repeat(''x'', 1000) FROM generate_series(1, 20000)"
    checks_reset
    full_disk_cleanup
    crashes=$(grep -c 'terminated by signal' "$CLUSTER_DIR/server.log" || true)
    FULL_DISK_DIR=$(mktemp -d /tmp/pg_background-full-disk.XXXXXX)
    chmod 755 "$FULL_DISK_DIR"
    mkdir "$FULL_DISK_DIR/ts"
    mount -t tmpfs -o size=8m,mode=0700,uid="$(id -u postgres)",gid="$(id -g postgres)" tmpfs "$FULL_DISK_DIR/ts"
    check "an 8 MB tmpfs" 0 $?
    psql_ -d postgres -c "CREATE TABLESPACE pgbg_small LOCATION '$FULL_DISK_DIR/ts'" \
        -c "CREATE DATABASE pgbg_full_disk" >/dev/null
    full_disk_sql -c "CREATE EXTENSION pg_background" >/dev/null

    # the same session reads, after the job failed; its own rows need no temporary file
    out=$(full_disk_sql -v VERBOSITY=verbose 2>&1 <<SQL || true
SET temp_tablespaces = pgbg_small;
SET work_mem = '64MB';
SELECT pg_background_launch('$big') AS pid \gset
SELECT set_config('pgbg_test.pid', :'pid', false) IS NOT NULL AS set;
DO \$\$ BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN EXISTS (SELECT FROM pg_background_jobs
                           WHERE worker_pid = current_setting('pgbg_test.pid')::int AND state <> 'running');
        PERFORM pg_sleep(0.1);
    END LOOP;
END \$\$;
SELECT 'ended: ' || state || ' ' || sqlstate FROM pg_background_jobs WHERE worker_pid = :pid;
\! find $FULL_DISK_DIR/ts -type f | wc -l | sed 's/^/files: /'
SELECT count(*) FROM pg_background_result(:pid) AS (r text);
SQL
)
    echo "$out"
    check "a job that fills the disk fails with 53100, nobody reading" 1 "$(echo "$out" | grep -c '^ended: failed 53100$')"
    check "... its file holds the rows until they are read" 1 "$(echo "$out" | grep -c '^files: 1$')"
    check "the reader gets the job's 53100" 1 \
        "$(echo "$out" | grep -c 'ERROR:  53100: could not write to file ".*": No space left on device')"
    check "... as the job's error" 1 "$(echo "$out" | grep -c '^CONTEXT:  background worker, pid')"
    check "nothing is left on the disk" 0 "$(full_disk_files)"

    # a kept result: the launching session ends at once, the job fills the disk afterwards
    job=$(full_disk_sql -c "SET temp_tablespaces = pgbg_small" \
        -c "SELECT pg_background_launch_kept('$big')" | tail -n 1)
    check "a kept job that fills the disk after its session ended fails with 53100" "failed 53100" \
        "$(full_disk_wait_failed "$job")"
    out=$(full_disk_sql -v VERBOSITY=verbose -c "SET work_mem = '64MB'" \
        -c "SELECT count(*) FROM pg_background_job_result($job) AS (r text)" 2>&1 || true)
    echo "$out"
    check "another session reading it gets the job's 53100" 1 \
        "$(echo "$out" | grep -c 'ERROR:  53100: could not write to file ".*": No space left on device')"
    check "nothing is left on the disk" 0 "$(full_disk_files)"

    check "the server stayed up: no process ended by a signal" "$crashes" \
        "$(grep -c 'terminated by signal' "$CLUSTER_DIR/server.log" || true)"
    check "jobs run there again" 20000 \
        "$(full_disk_sql -c "SET temp_tablespaces = pgbg_small" \
            -c "SELECT count(*) FROM pg_background_result(pg_background_launch('SELECT 1 FROM generate_series(1, 20000)')) AS (r int)" 2>&1 | tail -n 1)"
    full_disk_cleanup
    checks_report full_disk
}
