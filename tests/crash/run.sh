# Part of scripts/test.sh: a crash restart of the running cluster. An unrelated backend killed
# by SIGKILL makes the postmaster end every server process and reinitialize shared memory (what
# any backend crash does). Before it: a kept result of an ended session on disk, a detached job
# and a waiting warm worker. After it, the extension works in new sessions, job ids keep growing,
# the jobs view and the counters start clean, the kept result of before is gone with its files,
# and no DSM segment of before is left. Prints "crash: N passed, N failed".

crash_sql() { psql_ -At -d pgbg_crash "$@"; }
# the files and directories of temporary files in the cluster's default tablespace
crash_temp_files() { find "$CLUSTER_DIR/data/base/pgsql_tmp" -mindepth 1 2>/dev/null | wc -l; }

run_crash_test() {
    local segments log_lines kept max_id victim out i
    checks_reset
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_crash" -c "CREATE DATABASE pgbg_crash" >/dev/null
    crash_sql -c "CREATE EXTENSION pg_background" -c "CREATE TABLE done(what text)" >/dev/null
    # the registry exists from here on (from PostgreSQL 17 it is a DSM segment of its own)
    crash_sql -c "SELECT count(*) FROM pg_background_jobs" >/dev/null
    segments=$(dsm_segment_names)
    log_lines=$(wc -l < "$CLUSTER_DIR/server.log")

    # a result of 5 MB kept after its session ended: part of it in files
    kept=$(crash_sql -c "SELECT pg_background_launch_kept('SELECT repeat(''x'', 1000) FROM generate_series(1, 5000)')")
    wait_until pgbg_crash "SELECT state = 'finished' FROM pg_background_jobs WHERE job_id = $kept"
    check "before the crash: a kept result waits" t \
        "$(crash_sql -c "SELECT result_kept_until IS NOT NULL FROM pg_background_jobs WHERE job_id = $kept")"
    check "... in temporary files" t "$([ "$(crash_temp_files)" -gt 0 ] && echo t)"
    # a detached job that has not committed yet, and a session with a waiting warm worker
    crash_sql -c "SELECT pg_background_detach(pg_background_launch('SELECT pg_sleep(600); INSERT INTO done VALUES (''detached'')'))" >/dev/null
    coproc CRASH_WARM { psql_ -At -d pgbg_crash; }
    echo "SET pg_background.worker_idle_timeout = '1h';
          SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int);" >&"${CRASH_WARM[1]}"
    wait_until pgbg_crash "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_background' AND state = 'idle'"
    check "before the crash: a detached job runs and a warm worker waits" 0 $?
    max_id=$(crash_sql -c "SELECT max(job_id) FROM pg_background_jobs")
    # the segments of the jobs running now
    segments=$(comm -13 <(echo "$segments") <(dsm_segment_names))
    check "... each with a DSM segment" t "$([ "$(echo "$segments" | grep -c .)" -ge 2 ] && echo t)"

    # an unrelated backend dies by a signal
    psql_ -At -d pgbg_crash -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
    wait_until pgbg_crash "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)' AND backend_type = 'client backend')"
    victim=$(crash_sql -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)' AND backend_type = 'client backend'")
    kill -KILL "$victim"
    for i in $(seq 1 300); do
        tail -n +"$((log_lines + 1))" "$CLUSTER_DIR/server.log" | grep -q 'all server processes terminated; reinitializing' \
            && crash_sql -c "SELECT 1" >/dev/null 2>&1 && break
        sleep 0.1
    done
    # the sessions of before lost their connections
    if [ -n "${CRASH_WARM[1]:-}" ]; then eval "exec ${CRASH_WARM[1]}>&-"; fi
    wait 2>/dev/null || true
    check "a backend killed by a signal makes the server reinitialize, and it accepts connections again" 1 \
        "$(tail -n +"$((log_lines + 1))" "$CLUSTER_DIR/server.log" | grep -c 'all server processes terminated; reinitializing')"

    # after it
    check "the jobs view starts clean" 0 "$(crash_sql -c "SELECT count(*) FROM pg_background_jobs" 2>&1)"
    check "so do the counters" 0 "$(crash_sql -c "SELECT launched FROM pg_background_cluster_stats" 2>&1)"
    check "no temporary file of before is left" 0 "$(crash_temp_files)"
    check "a job runs in a new session" 42 \
        "$(crash_sql -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 42')) AS (r int)" 2>&1)"
    check "job ids keep growing" t "$(crash_sql -c "SELECT min(job_id) > $max_id FROM pg_background_jobs" 2>&1)"
    out=$(crash_sql -v VERBOSITY=verbose -c "SELECT * FROM pg_background_job_result($kept) AS (r text)" 2>&1 || true)
    echo "$out"
    check "the kept result of before is gone (42704)" 1 \
        "$(echo "$out" | grep -c "ERROR:  42704: background job $kept does not exist")"
    check "the detached job of before did not commit" 0 "$(crash_sql -c "SELECT count(*) FROM done")"
    i=$(crash_sql -c "SELECT pg_background_launch_kept('SELECT repeat(''y'', 1000) FROM generate_series(1, 5000)')")
    check "a result kept after the restart is read in full from another session" 5000 \
        "$(crash_sql -c "SELECT count(*) FROM pg_background_job_result($i) AS (r text)" 2>&1)"
    check "... and its files are gone" 0 "$(crash_temp_files)"
    wait_until pgbg_crash "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_background'"
    check "no DSM segment of the jobs of before is left" "" \
        "$(comm -12 <(echo "$segments") <(dsm_segment_names) | tr '\n' ' ')"
    psql_ -d postgres -c "DROP DATABASE pgbg_crash" >/dev/null
    checks_report crash
}
