#!/usr/bin/env bash
# A long soak: SOAK_SESSIONS sessions (8) launch a random mix of jobs for SOAK_SECONDS (600)
# with pg_background.on_capacity = wait: short and long queries, failing ones, cancels,
# detaches, results kept and read by job id (also after their session ended), spilled results,
# autonomous calls. At the end: no unexpected error, every detached job committed, and nothing
# grew — DSM segments, worker processes, temporary files, registry slots in use, each session's
# memory after its warm-up. Prints the figures and one line "soak: N passed, N failed".
#
#   bash bench/soak.sh                     # builds, installs, a throwaway cluster, 10 minutes
#   SOAK_SECONDS=60 bash bench/soak.sh     # what scripts/test.sh runs (on the running cluster)
#
# scripts/test.sh sources this file and calls run_soak against its cluster.

SOAK_DB=pgbg_soak
# after this many steps a session's memory is measured the first time (its caches are warm)
SOAK_WARMUP=${SOAK_WARMUP:-300}
# what a session's memory may grow by afterwards: memory contexts keep freed blocks, and the
# server's caches settle in steps
SOAK_MEMORY_SLACK_KB=${SOAK_MEMORY_SLACK_KB:-1024}

soak_sql() { psql_ -At -d "$SOAK_DB" "$@"; }
soak_temp_files() {
    { find "$(soak_sql -c "SHOW data_directory")/base/pgsql_tmp" -type f 2>/dev/null || true; } | wc -l
}
soak_workers() { soak_sql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_background'"; }
soak_slots() { soak_sql -c "SELECT count(*) FROM pg_background_jobs WHERE state IN ('queued', 'running') OR result_kept_until IS NOT NULL"; }

# The database of the soak and soak_step(kind): one step of a session, kind 0–8, which returns
# the kind's name; an error the kind expects (the failing job's 22012, the cancelled job's
# 57014) is part of the step, any other is raised.
soak_setup() {
    psql_ -d postgres -c "DROP DATABASE IF EXISTS $SOAK_DB" -c "CREATE DATABASE $SOAK_DB" >/dev/null
    soak_sql >/dev/null <<'SQL'
CREATE EXTENSION pg_background;
CREATE TABLE soak_detached(at timestamptz DEFAULT now());
CREATE TABLE soak_kept(job_id int8 PRIMARY KEY, owner int4 NOT NULL);
CREATE FUNCTION soak_step(kind int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h pg_background_handle;
    n int8;
    id int8;
BEGIN
    CASE kind
    WHEN 0 THEN
        SELECT r INTO n FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int);
        RETURN 'short';
    WHEN 1 THEN
        SELECT r INTO n FROM pg_background_result(pg_background_launch(
            'SELECT count(pg_sleep(0.001)) FROM generate_series(1, 200)')) AS (r int8);
        RETURN 'long';
    WHEN 2 THEN
        BEGIN
            SELECT r INTO n FROM pg_background_result(pg_background_launch('SELECT 1 / 0')) AS (r int);
            RAISE EXCEPTION 'the failing job did not fail';
        EXCEPTION WHEN division_by_zero THEN
            RETURN 'failing';
        END;
    WHEN 3 THEN
        h := pg_background_launch_v2('SELECT pg_sleep(30)::text');
        PERFORM pg_background_cancel_v2(h.pid, h.cookie);
        BEGIN
            PERFORM * FROM pg_background_result_v2(h.pid, h.cookie) AS (r text);
            RAISE EXCEPTION 'the cancelled job was not cancelled';
        EXCEPTION WHEN query_canceled THEN
            RETURN 'cancel';
        END;
    WHEN 4 THEN
        PERFORM pg_background_detach(pg_background_launch('INSERT INTO soak_detached DEFAULT VALUES'));
        RETURN 'detach';
    WHEN 5 THEN
        INSERT INTO soak_kept VALUES (pg_background_launch_kept('SELECT g FROM generate_series(1, 1000) g'),
                                      pg_backend_pid());
        RETURN 'keep';
    WHEN 6 THEN
        -- a kept result of this session, or of one that has ended
        DELETE FROM soak_kept WHERE job_id = (
            SELECT k.job_id FROM soak_kept k
             WHERE k.owner = pg_backend_pid()
                OR NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = k.owner)
             LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING job_id INTO id;
        IF id IS NULL THEN
            RETURN 'read kept (none)';
        END IF;
        SELECT count(*) INTO n FROM pg_background_job_result(id) AS (g int);
        IF n <> 1000 THEN
            RAISE EXCEPTION 'kept job % gave % rows', id, n;
        END IF;
        RETURN 'read kept';
    WHEN 7 THEN
        -- 3 MB through a 64 kB queue: the worker spills and finishes before the read
        h := pg_background_launch_v2('SELECT repeat(''x'', 1000) FROM generate_series(1, 3000)');
        PERFORM pg_background_wait_v2(h.pid, h.cookie);
        SELECT count(*) INTO n FROM pg_background_result_v2(h.pid, h.cookie) AS (r text);
        IF n <> 3000 THEN
            RAISE EXCEPTION 'the spilled job gave % rows', n;
        END IF;
        RETURN 'spill';
    WHEN 8 THEN
        SELECT r INTO n FROM pg_background_autonomous('SELECT $1::int + 1', 41) AS (r int);
        IF n <> 42 THEN
            RAISE EXCEPTION 'the autonomous call gave %', n;
        END IF;
        RETURN 'autonomous';
    END CASE;
END
$$;
SQL
}

# soak_session N DEADLINE: one session's steps until DEADLINE (epoch seconds), into $SOAK_DIR/N.out
soak_session() {
    local n=$1 deadline=$2 i=0
    {
        echo "SET pg_background.on_capacity = 'wait';"
        echo "\\set VERBOSITY verbose"
        while :; do
            i=$((i + 1))
            echo "SELECT soak_step($((RANDOM % 9)));"
            if [ "$i" = "$SOAK_WARMUP" ]; then
                echo "SELECT 'memory_start ' || sum(total_bytes) FROM pg_backend_memory_contexts;"
            fi
            if [ $((i % 10)) = 0 ]; then
                echo "SELECT extract(epoch FROM clock_timestamp()) > $deadline AS done \\gset"
                echo "\\if :done"
                echo "SELECT 'memory_end ' || sum(total_bytes) FROM pg_backend_memory_contexts;"
                echo "\\q"
                echo "\\endif"
            fi
        done
    } 2>/dev/null | "$PG_BIN/psql" -X -At -d "$SOAK_DB" > "$SOAK_DIR/$n.out" 2>&1 || true
}

run_soak() {
    local seconds=${SOAK_SECONDS:-600} sessions=${SOAK_SESSIONS:-8} deadline i
    local segments_before workers_before files_before slots_before errors detached kinds steps
    local growth max_growth=0 missing=0 start end
    checks_reset
    SOAK_DIR=$(mktemp -d /tmp/pg_background-soak.XXXXXX)
    soak_setup
    workers_before=$(soak_workers)
    files_before=$(soak_temp_files)
    slots_before=$(soak_slots)
    # (after the first look at the jobs view: from PostgreSQL 17 it maps the registry's segment)
    segments_before=$(dsm_segments)

    deadline=$(( $(date +%s) + seconds ))
    for i in $(seq 1 "$sessions"); do soak_session "$i" "$deadline" & done
    wait
    # the kept results of sessions that ended before they read them
    soak_sql -c "SELECT count(soak_step(6)) FROM soak_kept" >/dev/null

    # what the jobs left: their workers end, warm ones once their sessions have gone
    wait_until "$SOAK_DB" "SELECT count(*) = $workers_before FROM pg_stat_activity WHERE backend_type = 'pg_background'"
    steps=$(cat "$SOAK_DIR"/*.out | grep -cE '^(short|long|failing|cancel|detach|keep|read kept|read kept \(none\)|spill|autonomous)$' || true)
    kinds=$(cat "$SOAK_DIR"/*.out | grep -E '^(short|long|failing|cancel|detach|keep|read kept|spill|autonomous)$' \
        | sort | uniq -c | awk '{c = $1; $1 = ""; printf "%s%s %d", sep, substr($0, 2), c; sep = ", "}')
    errors=$(cat "$SOAK_DIR"/*.out | grep -c 'ERROR' || true)
    detached=$(cat "$SOAK_DIR"/*.out | grep -cx 'detach' || true)
    for i in $(seq 1 "$sessions"); do
        start=$(sed -n 's/^memory_start //p' "$SOAK_DIR/$i.out")
        end=$(sed -n 's/^memory_end //p' "$SOAK_DIR/$i.out")
        if [ -z "$start" ] || [ -z "$end" ]; then missing=$((missing + 1)); continue; fi
        growth=$(( (end - start) / 1024 ))
        [ "$growth" -gt "$max_growth" ] && max_growth=$growth
    done
    echo "soak: $sessions sessions × $seconds s, $steps steps ($kinds)"
    echo "soak: DSM segments $segments_before → $(dsm_segments), worker processes $workers_before → $(soak_workers)," \
        "temporary files $files_before → $(soak_temp_files), registry slots in use $slots_before → $(soak_slots)," \
        "session memory after warm-up grew by at most $max_growth kB"
    if [ "$errors" != 0 ]; then grep -h -A3 'ERROR' "$SOAK_DIR"/*.out | head -40; fi

    check "every session ran its steps" 0 "$missing"
    check "no unexpected error" 0 "$errors"
    check "every detached job committed" "$detached" "$(soak_sql -c "SELECT count(*) FROM soak_detached")"
    check "no kept result is left unread" 0 "$(soak_sql -c "SELECT count(*) FROM soak_kept")"
    check "no DSM segment more than before" "$segments_before" "$(dsm_segments)"
    check "no worker process more than before" "$workers_before" "$(soak_workers)"
    check "no temporary file more than before" "$files_before" "$(soak_temp_files)"
    check "no registry slot in use more than before" "$slots_before" "$(soak_slots)"
    check "no session's memory grew by more than $SOAK_MEMORY_SLACK_KB kB after its warm-up" t \
        "$([ "$max_growth" -le "$SOAK_MEMORY_SLACK_KB" ] && echo t)"
    psql_ -d postgres -c "DROP DATABASE $SOAK_DB" >/dev/null
    rm -rf "$SOAK_DIR"
    checks_report soak
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    source "$(dirname "$0")/../scripts/common.sh"
    source "$ROOT/tests/checks.sh"
    ensure_deps
    if [ "${BENCH_BUILD:-release}" = release ]; then RELEASE=1 install_extension; else install_extension; fi
    start_cluster "${PGBG_SOAK_PORT:-55441}" max_worker_processes=64 shared_preload_libraries=pg_background
    run_soak
fi
