# Part of scripts/test.sh: the running cluster restarted with pg_background.job_slots = 16 (and
# restarted again as it was): the registry then holds 16 jobs, finished ones make room for new
# ones, and when all 16 run, a launch that needs a slot fails with 53400 while one that does not
# runs without a slot. Prints "job_slots: N passed, N failed".

job_slots_sql() { psql_ -At -d pgbg_job_slots "$@"; }

# restart_with OPTIONS: the cluster stopped, then started with start_cluster's options and these
restart_with() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" \
        -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w \
        -o "$(cat "$CLUSTER_DIR/options") $1" start >/dev/null
}

run_job_slots_test() {
    local i out holder
    checks_reset
    restart_with "-c pg_background.job_slots=16"
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_job_slots" -c "CREATE DATABASE pgbg_job_slots" >/dev/null
    job_slots_sql -c "CREATE EXTENSION pg_background" >/dev/null
    check "the setting is read at server start" 16 "$(job_slots_sql -c "SHOW pg_background.job_slots")"

    # 20 jobs one after the other: the view keeps the last 16
    for i in $(seq 1 20); do
        job_slots_sql -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT $i')) AS (r int)" >/dev/null
    done
    check "the registry keeps 16 jobs" 16 "$(job_slots_sql -c "SELECT count(*) FROM pg_background_jobs")"
    check "... the most recent ones" "SELECT 5|SELECT 20" \
        "$(job_slots_sql -c "SELECT (array_agg(query ORDER BY job_id))[1], (array_agg(query ORDER BY job_id))[16] FROM pg_background_jobs")"

    # 16 running jobs take every slot
    coproc SLOT_HOLDER { psql_ -At -d pgbg_job_slots; }
    echo "SELECT pg_advisory_lock(4712);" >&"${SLOT_HOLDER[1]}"
    wait_until pgbg_job_slots "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 4712 AND granted)"
    job_slots_sql -c "SELECT count(pg_background_detach(pg_background_launch('SELECT pg_advisory_xact_lock(4712)'))) FROM generate_series(1, 16)" >/dev/null
    wait_until pgbg_job_slots "SELECT count(*) = 16 FROM pg_background_jobs WHERE state = 'running'"
    check "16 jobs run" 0 $?
    out=$(job_slots_sql -v VERBOSITY=verbose -c "SET pg_background.max_jobs_per_role = 100" \
        -c "SELECT pg_background_launch('SELECT 1')" 2>&1 || true)
    echo "$out"
    check "with a cap, a launch finds the registry full (53400)" 1 \
        "$(echo "$out" | grep -c 'ERROR:  53400: the background job registry is full')"
    check "... and is told how many slots there are" 1 \
        "$(echo "$out" | grep -c 'DETAIL:  All 16 slots (pg_background.job_slots) hold')"
    check "without a cap, a launch runs without a slot" "42 f" \
        "$(job_slots_sql -c "SELECT r, EXISTS (SELECT FROM pg_background_jobs WHERE query = 'SELECT 42') FROM pg_background_result(pg_background_launch('SELECT 42')) AS (r int)" | tr '|' ' ')"
    out=$(job_slots_sql -v VERBOSITY=verbose \
        -c "SELECT pg_background_job_id(pg_background_launch('SELECT 1'))" 2>&1 || true)
    echo "$out"
    check "... and has no job id (55000), with a hint" "1 1" \
        "$(echo "$out" | grep -c 'ERROR:  55000: background worker with PID [0-9]* has no job id') $(echo "$out" | grep -c 'HINT:  Raise pg_background.job_slots')"
    echo "SELECT pg_advisory_unlock(4712);" >&"${SLOT_HOLDER[1]}"
    exec {SLOT_HOLDER[1]}>&-
    wait "$SLOT_HOLDER_PID" 2>/dev/null
    wait_until pgbg_job_slots "SELECT count(*) = 0 FROM pg_background_jobs WHERE state = 'running'"
    check "the 16 jobs end once the lock is free" 0 $?

    # a job launched to be kept keeps its slot while others come and go, unread in its session
    coproc KEEPER { psql_ -At -d pgbg_job_slots > "$CLUSTER_DIR/keeper.out" 2>&1; }
    echo "SELECT pg_background_launch_kept('SELECT 4711');" >&"${KEEPER[1]}"
    wait_until pgbg_job_slots "SELECT EXISTS (SELECT FROM pg_background_jobs WHERE query = 'SELECT 4711' AND state = 'finished')"
    for i in $(seq 1 40); do
        job_slots_sql -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT $i')) AS (r int)" >/dev/null
    done
    exec {KEEPER[1]}>&-
    wait "$KEEPER_PID" 2>/dev/null
    check "a result launched to be kept outlives 40 jobs in 16 slots, and is read after its session left" 4711 \
        "$(job_slots_sql -c "SELECT * FROM pg_background_job_result($(head -n1 "$CLUSTER_DIR/keeper.out")) AS (r int)" 2>&1)"

    psql_ -d postgres -c "DROP DATABASE pgbg_job_slots" >/dev/null
    restart_with ""
    check "the cluster is back to the default" 1024 "$(psql_ -At -d postgres -c "SHOW pg_background.job_slots")"
    checks_report job_slots
}
